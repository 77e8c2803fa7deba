"""Volume rendering of dense ``[rays, samples]`` densities/colours into premultiplied colour
and accumulated opacity (alpha). Compositing (head over torso, straight alpha) is in
compositing.py."""
from __future__ import annotations

import torch


def render_weights(sigma: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Per-sample weights ``T_i * (1 - exp(-sigma_i delta_i))`` for ``[R, S]`` inputs."""
    tau = sigma * delta
    alpha = 1.0 - torch.exp(-tau)
    transmittance = torch.exp(-(torch.cumsum(tau, dim=-1) - tau))
    return alpha * transmittance


def volume_render(sigma: torch.Tensor, rgb: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Premultiplied colour ``[R, 3]`` and accumulated opacity ``[R]``."""
    weights = render_weights(sigma, delta)
    return (weights[..., None] * rgb).sum(dim=-2), weights.sum(dim=-1)
