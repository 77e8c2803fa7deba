"""Landmark deformation model (LDM): neutral landmarks + per-frame emotion -> per-landmark displacements.

``emotional = neutral + displacement`` with

    displacement = intensity * sum_k weight_k * g(neutral, emotion_k)

where ``g`` is an MLP on the neutral face (as an offset from the mean face) and a
learned embedding of one emotion, and ``g`` is never evaluated for neutral (its
term is structurally zero). So intensity 0 or a pure-neutral row gives exactly
zero displacement, and a blend of two emotions is the same blend of their
deformations.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bridge.emotions import NUM_EMOTIONS

KIND = "emogene.ldm"
VERSION = 1


@dataclass
class LDMConfig:
    hidden: int = 256
    embed: int = 16
    input_scale: float = 10.0     # offsets from the mean face are ~0.05 canonical units


class LandmarkDeformationModel(nn.Module):
    def __init__(self, config: LDMConfig | None = None):
        super().__init__()
        self.config = c = config or LDMConfig()
        self.register_buffer("mean_face", torch.zeros(68, 3))
        self.register_buffer("displacement_scale", torch.tensor(0.05))
        self.emotion_embedding = nn.Embedding(NUM_EMOTIONS - 1, c.embed)   # angry .. surprised
        self.net = nn.Sequential(
            nn.Linear(68 * 3 + c.embed, c.hidden), nn.GELU(),
            nn.Linear(c.hidden, c.hidden), nn.GELU(),
            nn.Linear(c.hidden, 68 * 3))

    def per_emotion_displacement(self, neutral: torch.Tensor) -> torch.Tensor:
        """``[N, 68, 3]`` -> displacement for each non-neutral emotion at full intensity ``[N, 7, 68, 3]``."""
        N = neutral.shape[0]
        x = ((neutral - self.mean_face) * self.config.input_scale).flatten(1)
        emb = self.emotion_embedding.weight                                   # [7, E]
        inp = torch.cat([x[:, None].expand(-1, emb.shape[0], -1), emb[None].expand(N, -1, -1)], -1)
        return (self.net(inp) * self.displacement_scale).unflatten(-1, (68, 3))

    def forward(self, neutral: torch.Tensor, weights: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
        """Displacements ``[N, 68, 3]`` for ``neutral [N,68,3]``, ``weights [N,8]`` (rows sum to 1), ``intensity [N]``."""
        per = self.per_emotion_displacement(neutral)
        mix = weights[:, 1:] * intensity[:, None]                             # neutral column contributes nothing
        return torch.einsum("nk,nkpc->npc", mix, per)

    @torch.no_grad()
    def deform(self, neutral: torch.Tensor, weights: torch.Tensor, intensity: torch.Tensor,
               chunk: int = 2048) -> torch.Tensor:
        """``neutral + displacement`` in chunks (bounded memory for long tracks)."""
        out = torch.empty_like(neutral)
        for s in range(0, neutral.shape[0], chunk):
            e = s + chunk
            active = (intensity[s:e] > 0) & (weights[s:e, 1:].sum(-1) > 0)
            out[s:e] = neutral[s:e]
            if active.any():
                n = neutral[s:e][active]
                out[s:e][active] = n + self(n, weights[s:e][active], intensity[s:e][active])
        return out
