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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[:-1]
        x = x.reshape(-1, 3).clamp(0.0, 1.0)
        scaled = x[:, None, :] * self.resolutions.view(1, -1, 1).to(x.dtype)      # [N, L, 3]
        base = scaled.floor().long()
        base = torch.minimum(base, (self.resolutions.view(1, -1, 1) - 1))
        frac = scaled - base.to(x.dtype)                                             # [N, L, 3]
        cell = base[:, :, None, :] + self.corners.view(1, 1, 8, 3)                  # [N, L, 8, 3]
        rows = self.corner_indices(cell)                                             # [N, L, 8]
        c = self.corners.view(1, 1, 8, 3).to(x.dtype)
        f = frac[:, :, None, :]
        weights = (c * f + (1 - c) * (1 - f)).prod(dim=-1)                           # [N, L, 8]
        feats = self.table[rows]                                                     # [N, L, 8, F]
        out = (feats * weights[..., None]).sum(dim=2)                                # [N, L, F]
        return out.reshape(*shape, self.out_dim)


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
