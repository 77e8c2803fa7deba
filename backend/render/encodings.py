"""Position encodings with a clear ``in_dim``/``out_dim``: a multiresolution hash grid
(instant-NGP style, pure PyTorch) and the classic NeRF frequency encoding.

The hash grid keeps one table per level. Coarse levels whose dense grid fits the
table are indexed directly (no collisions); finer levels hash the integer corner
coordinates with the instant-NGP primes and rely on the MLP + gradient averaging to
resolve collisions. Features are trilinearly interpolated, so the encoding is
continuous in the input and differentiable w.r.t. the tables (and the input).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bridge.landmarks import NUM_LANDMARKS, UPPER_FACE

_PRIMES = (1, 2654435761, 805459861)


@dataclass
class HashGridConfig:
    levels: int = 12
    features_per_level: int = 2
    log2_table_size: int = 15
    base_resolution: int = 16
    max_resolution: int = 512
    init_scale: float = 1e-4


class HashGridEncoding(nn.Module):
    """Maps points in [0, 1]^3 to ``levels * features_per_level`` features."""

    in_dim = 3

    def __init__(self, config: HashGridConfig | None = None):
        super().__init__()
        self.config = c = config or HashGridConfig()
        growth = math.exp((math.log(c.max_resolution) - math.log(c.base_resolution)) / max(c.levels - 1, 1))
        table_size = 2 ** c.log2_table_size
        resolutions, sizes, dense = [], [], []
        for level in range(c.levels):
            res = int(math.floor(c.base_resolution * growth ** level))
            cells = (res + 1) ** 3
            resolutions.append(res)
            dense.append(cells <= table_size)
            sizes.append(min(cells, table_size))
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        self.register_buffer("resolutions", torch.tensor(resolutions, dtype=torch.long), persistent=False)
        self.register_buffer("table_sizes", torch.tensor(sizes, dtype=torch.long), persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets[:-1], dtype=torch.long), persistent=False)
        self.register_buffer("is_dense", torch.tensor(dense), persistent=False)
        self.table = nn.Parameter((torch.rand(offsets[-1], c.features_per_level) * 2 - 1) * c.init_scale)
        self._dense_levels = sum(dense)
        if not all(dense[:self._dense_levels]):
            raise ValueError("dense levels must come first")
        self._hash_size = table_size
        self.register_buffer("_strides", torch.tensor([r + 1 for r in resolutions], dtype=torch.int32), persistent=False)
        self.register_buffer("_offsets32", torch.tensor(offsets[:-1], dtype=torch.int32), persistent=False)
        self._primes32 = tuple(((p + 2**31) % 2**32) - 2**31 for p in _PRIMES)  # same bits as int32
        corners = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.long)
        self.register_buffer("corners", corners, persistent=False)

    @property
    def out_dim(self) -> int:
        return self.config.levels * self.config.features_per_level

    def corner_indices(self, cell: torch.Tensor) -> torch.Tensor:
        """Table rows for integer corners ``cell [N, L, 8, 3]`` -> ``[N, L, 8]`` (global rows)."""
        res = (self.resolutions + 1).view(1, -1, 1)
        dense_index = cell[..., 0] + cell[..., 1] * res + cell[..., 2] * res * res
        hashed = (cell[..., 0] * _PRIMES[0]) ^ (cell[..., 1] * _PRIMES[1]) ^ (cell[..., 2] * _PRIMES[2])
        local = torch.where(self.is_dense.view(1, -1, 1), dense_index, hashed) % self.table_sizes.view(1, -1, 1)
        return local + self.offsets.view(1, -1, 1)

    def _rows_and_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[N, L, 8]`` (int32) and trilinear weights ``[N, L, 8]``, corners ordered as ``self.corners``.

        Each axis contributes two candidate terms (floor, floor + 1); corners combine them by
        broadcasting instead of materialising ``[N, L, 8, 3]`` coordinates. Hashing runs in
        wrapping int32 arithmetic; hashed tables are powers of two, so ``& (size - 1)`` is the modulo.
        """
        res = self.resolutions.view(1, -1, 1)
        scaled = x[:, None, :] * res.to(x.dtype)                               # [N, L, 3]
        base = torch.minimum(scaled.floor(), (res - 1).to(x.dtype))
        frac = scaled - base
        base = base.int()
        pair = torch.stack([base, base + 1], dim=-1)                            # [N, L, 3, 2]
        wpair = torch.stack([1 - frac, frac], dim=-1)                           # [N, L, 3, 2]
        rows = torch.empty(x.shape[0], self.config.levels, 2, 2, 2, dtype=torch.int32, device=x.device)
        dense_levels = self._dense_levels
        if dense_levels:
            d = slice(0, dense_levels)
            stride = self._strides[d].view(1, -1, 1)
            p = pair[:, d]
            rows[:, d] = (p[:, :, 0, :, None, None] + p[:, :, 1, None, :, None] * stride[..., None, None]
                          + p[:, :, 2, None, None, :] * (stride * stride)[..., None, None])
        if dense_levels < self.config.levels:
            h = slice(dense_levels, None)
            p = pair[:, h]
            rows[:, h] = ((p[:, :, 0, :, None, None] * self._primes32[0]) ^ (p[:, :, 1, None, :, None] * self._primes32[1])
                          ^ (p[:, :, 2, None, None, :] * self._primes32[2])) & (self._hash_size - 1)
        rows = (rows + self._offsets32.view(1, -1, 1, 1, 1)).reshape(x.shape[0], -1, 8)
        weights = (wpair[:, :, 0, :, None, None] * wpair[:, :, 1, None, :, None]
                   * wpair[:, :, 2, None, None, :]).reshape(x.shape[0], -1, 8)
        return rows, weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[:-1]
        x = x.reshape(-1, 3).clamp(0.0, 1.0)
        rows, weights = self._rows_and_weights(x)
        out = _TrilinearGather.apply(self.table, rows, weights)
        return out.reshape(*shape, self.out_dim)


class _TrilinearGather(torch.autograd.Function):
    """Weighted sum of 8 table rows per (point, level): embedding_bag forward, index_add backward
    (on CPU several times faster than autograd's own backward of either)."""

    @staticmethod
    def forward(ctx, table, rows, weights):
        ctx.save_for_backward(table, rows, weights)
        n, levels, _ = rows.shape
        out = torch.nn.functional.embedding_bag(rows.reshape(-1, 8).long(), table,
                                                per_sample_weights=weights.reshape(-1, 8), mode="sum")
        return out.reshape(n, levels, table.shape[1])

    @staticmethod
    def backward(ctx, grad):
        table, rows, weights = ctx.saved_tensors
        grad_table = grad_weights = None
        if ctx.needs_input_grad[0]:
            contrib = (weights[..., None] * grad[:, :, None, :]).reshape(-1, table.shape[1])
            grad_table = torch.zeros_like(table).index_add_(0, rows.reshape(-1).long(), contrib)
        if ctx.needs_input_grad[2]:
            grad_weights = (table[rows.long()] * grad[:, :, None, :]).sum(-1)
        return grad_table, None, grad_weights


class FrequencyEncoding(nn.Module):
    """NeRF's positional encoding: x, sin(2^k pi x), cos(2^k pi x) for k < ``frequencies``."""

    def __init__(self, in_dim: int = 3, frequencies: int = 10, include_input: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.include_input = include_input
        self.register_buffer("scales", (2.0 ** torch.arange(frequencies)) * math.pi, persistent=False)

    @property
    def out_dim(self) -> int:
        return self.in_dim * (2 * len(self.scales) + int(self.include_input))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = (x[..., None] * self.scales).flatten(-2)
        parts = [torch.sin(angles), torch.cos(angles)]
        if self.include_input:
            parts.insert(0, x)
        return torch.cat(parts, dim=-1)


class LandmarkCode(nn.Module):
    """Condition encoder: canonical iBUG landmarks -> normalised PCA coefficients.

    Fitted on a subject's training frames (``fit``); ``forward`` returns the code and how
    far each frame lay outside the training range (0 inside), after clamping the code to
    that range widened by ``margin`` standard deviations.

    ``scale``: ``"component"`` (default) divides each PCA coefficient by its own std (whitening);
    ``"global"`` (opt-in) divides every coefficient by the leading component's std, so the code
    keeps the landmarks' relative distances and the minor components stay as small as they are.

    ``regions``: ``"whole"`` (default) fits one PCA over all landmarks; ``"split"`` (opt-in) fits one over the upper
    face (brows, eyes, nose bridge) and one over the rest (jaw, nose base, lips) and keeps the ``components`` of
    largest variance from both, so a brow shape and a mouth shape are separate coordinates (a surprised brow can meet
    a speaking mouth). Either way the basis is orthonormal and sorted by variance; only ``fit`` differs.
    """

    SCALES = ("component", "global")
    REGIONS = ("whole", "split")

    def __init__(self, components: int = 16, margin: float = 0.5, scale: str = "component", regions: str = "whole"):
        super().__init__()
        if scale not in self.SCALES:
            raise ValueError(f"LandmarkCode scale {scale!r} is not one of {', '.join(self.SCALES)}")
        if regions not in self.REGIONS:
            raise ValueError(f"LandmarkCode regions {regions!r} is not one of {', '.join(self.REGIONS)}")
        self.components = components
        self.margin = margin
        self.scale = scale
        self.regions = regions
        self.register_buffer("mean", torch.zeros(NUM_LANDMARKS * 3))
        self.register_buffer("basis", torch.zeros(components, NUM_LANDMARKS * 3))
        self.register_buffer("std", torch.ones(components))
        self.register_buffer("low", torch.full((components,), -3.0))
        self.register_buffer("high", torch.full((components,), 3.0))

    @torch.no_grad()
    def fit(self, landmarks: torch.Tensor) -> "LandmarkCode":
        flat = landmarks.reshape(len(landmarks), -1).double()
        mean = flat.mean(0)
        basis = self._basis(flat - mean)
        coeff = (flat - mean) @ basis.T
        std = coeff.std(0).clamp(min=1e-6)
        if self.scale == "global":
            std = std[:1].expand_as(std).clone()
        code = coeff / std
        self.mean.copy_(mean.float())
        self.basis.copy_(basis.float())
        self.std.copy_(std.float())
        self.low.copy_(code.amin(0).float())
        self.high.copy_(code.amax(0).float())
        return self

    def _basis(self, centred: torch.Tensor) -> torch.Tensor:
        """``[components, NUM_LANDMARKS * 3]`` orthonormal rows, largest variance first."""
        if self.regions == "whole":
            return torch.linalg.svd(centred, full_matrices=False)[2][: self.components]
        upper = torch.zeros(NUM_LANDMARKS, dtype=torch.bool)
        upper[list(UPPER_FACE)] = True
        columns = upper.repeat_interleave(3)
        rows, variances = [], []
        for part in (columns, ~columns):
            _, sv, vt = torch.linalg.svd(centred[:, part], full_matrices=False)
            full = torch.zeros(len(vt), centred.shape[1], dtype=centred.dtype)
            full[:, part] = vt
            rows.append(full)
            variances.append(sv ** 2)
        order = torch.cat(variances).argsort(descending=True)[: self.components]
        return torch.cat(rows)[order]

    def forward(self, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = landmarks.reshape(len(landmarks), -1)
        code = ((flat - self.mean) @ self.basis.T) / self.std
        low, high = self.low - self.margin, self.high + self.margin
        clamped = torch.maximum(torch.minimum(code, high), low)
        return clamped, (code - clamped).abs().amax(dim=-1)
