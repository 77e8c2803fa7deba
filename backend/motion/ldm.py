"""Landmark deformation model (LDM): neutral landmarks + per-frame emotion -> per-landmark displacements.

``emotional = neutral + displacement`` with

    displacement = intensity * sum_k weight_k * field_k

where ``field_k [NUM_LANDMARKS, 3]`` is emotion ``k``'s displacement at full intensity, in
canonical units (inter-ocular distances), learnt across MEAD speakers relative to
each speaker's own neutral face (see :mod:`backend.motion.ldm_training`). Neutral
has no field, so intensity 0 or a pure-neutral row gives exactly zero
displacement; the output is linear in intensity (continuous, monotonic) and a
blend of two emotions is the same blend of their deformations.

The fields do not depend on the neutral input: leave-one-MEAD-speaker-out, a
displacement conditioned on the input face learnt the training speakers' faces
rather than emotions (version 1: 0.072 vs 0.050 "no deformation" on M030), while a
shared field per emotion transfers (docs in ``ldm_eval``). The fields keep the
inner-lip gaps unchanged (both lips of each inner pair move alike vertically), so
the mouth opening, and with it lip sync, is exactly the neutral input's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bridge.emotions import NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS

KIND = "emogene.ldm"
VERSION = 2


@dataclass
class LDMConfig:
    landmarks: int = NUM_LANDMARKS


class LandmarkDeformationModel(nn.Module):
    def __init__(self, config: LDMConfig | None = None):
        super().__init__()
        self.config = c = config or LDMConfig()
        #: displacement of each non-neutral emotion (angry .. surprised) at intensity 1
        self.register_buffer("fields", torch.zeros(NUM_EMOTIONS - 1, c.landmarks, 3))
        self.register_buffer("mean_face", torch.zeros(c.landmarks, 3))   # the training speakers' mean reference

    def per_emotion_displacement(self, neutral: torch.Tensor) -> torch.Tensor:
        """``[N, NUM_LANDMARKS, 3]`` -> displacement for each non-neutral emotion at full intensity
        ``[N, 7, NUM_LANDMARKS, 3]``."""
        return self.fields.to(neutral.dtype)[None].expand(neutral.shape[0], -1, -1, -1)

    def forward(self, neutral: torch.Tensor, weights: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
        """Displacements ``[N, NUM_LANDMARKS, 3]`` for ``neutral [N, NUM_LANDMARKS, 3]``, ``weights [N,8]`` (rows sum
        to 1), ``intensity [N]``."""
        mix = weights[:, 1:].to(neutral.dtype) * intensity[:, None].to(neutral.dtype)   # neutral column: nothing
        return torch.einsum("nk,kpc->npc", mix, self.fields.to(neutral.dtype))

    @torch.no_grad()
    def deform(self, neutral: torch.Tensor, weights: torch.Tensor, intensity: torch.Tensor,
               chunk: int = 2048) -> torch.Tensor:
        """``neutral + displacement`` in chunks (bounded memory for long tracks)."""
        out = torch.empty_like(neutral)
        for s in range(0, neutral.shape[0], chunk):
            e = s + chunk
            out[s:e] = neutral[s:e] + self(neutral[s:e], weights[s:e], intensity[s:e])
        return out
