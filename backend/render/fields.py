"""Fields map positions (+ conditions) to density and colour; they know nothing of rays.

``HeadField``: canonical head-space positions + a landmark code (PCA coefficients of the
canonical iBUG landmarks) -> density, colour. ``TorsoField``: positions in the
subject camera's space + a per-ray condition (head pose and the head's rendered colour)
-> density, colour. ``PlainNerfField`` is the benchmark's baseline: the same
conditioning on a frequency-encoded NeRF MLP (no hash grid, no empty-space skipping).
"""
from __future__ import annotations

import torch
from torch import nn

from backend.render.encodings import FrequencyEncoding, HashGridConfig, HashGridEncoding


def _mlp(in_dim: int, hidden: int, layers: int, out_dim: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers):
        mods += [nn.Linear(dim, hidden), nn.ReLU(inplace=True)]
        dim = hidden
    mods.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*mods)


def density_activation(raw: torch.Tensor) -> torch.Tensor:
    """exp with a bounded input (instant-NGP's truncated exponential, bias -1)."""
    return torch.exp(raw.clamp(max=11.0) - 1.0)


class ConditionedField(nn.Module):
    """Hash-grid features of a position, concatenated with an embedded per-ray condition.

    ``gate`` (opt-in): the condition also scales each hash-grid feature channel, ``f * (1 + g(c))``
    (FiLM-style channel attention, as ER-NeRF's region attention), so a condition can switch spatial
    features on and off instead of only shifting the MLP's input; zero-initialised, so a gated field
    starts as the plain one."""

    def __init__(self, grid: HashGridConfig, condition_dim: int, condition_embed: int = 16,
                 hidden: int = 64, layers: int = 2, gate: bool = False):
        super().__init__()
        self.encoding = HashGridEncoding(grid)
        self.condition_dim = condition_dim
        self.condition_embed = condition_embed
        self.embed = nn.Linear(condition_dim, condition_embed)
        self.gate = nn.Linear(condition_dim, self.encoding.out_dim) if gate else None
        if self.gate is not None:
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)
        self.mlp = _mlp(self.encoding.out_dim + condition_embed, hidden, layers, 4)

    def embed_condition(self, condition: torch.Tensor) -> torch.Tensor:
        """Per-ray embedding (and gate), computed once per ray and gathered for its samples."""
        if self.gate is None:
            return self.embed(condition)
        return torch.cat([self.embed(condition), self.gate(condition)], dim=-1)

    def forward(self, positions01: torch.Tensor, condition_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoding(positions01)
        if self.gate is not None:
            condition_embedding, gate = condition_embedding.split([self.condition_embed, features.shape[-1]], -1)
            features = features * (1 + gate)
        raw = self.mlp(torch.cat([features, condition_embedding], dim=-1))
        return density_activation(raw[..., 0]), torch.sigmoid(raw[..., 1:])


class HeadField(ConditionedField):
    """Head in canonical face space, conditioned on the landmark code."""


class TorsoField(ConditionedField):
    """Torso in the subject camera's space, conditioned on head pose + the head's colour."""


class PlainNerfField(nn.Module):
    """Baseline: frequency encoding + 8x256 MLP, same (position, condition) interface."""

    def __init__(self, condition_dim: int, condition_embed: int = 16, hidden: int = 256, layers: int = 8):
        super().__init__()
        self.encoding = FrequencyEncoding(3, 10)
        self.embed = nn.Linear(condition_dim, condition_embed)
        self.mlp = _mlp(self.encoding.out_dim + condition_embed, hidden, layers, 4)

    def embed_condition(self, condition: torch.Tensor) -> torch.Tensor:
        return self.embed(condition)

    def forward(self, positions01: torch.Tensor, condition_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.mlp(torch.cat([self.encoding(positions01 * 2 - 1), condition_embedding], dim=-1))
        return density_activation(raw[..., 0]), torch.sigmoid(raw[..., 1:])
