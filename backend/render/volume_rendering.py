"""Volume rendering of dense ``[rays, samples]`` densities/colours into premultiplied colour
and accumulated opacity (alpha), plus the head-over-torso composite."""
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


def over(front_rgb: torch.Tensor, front_alpha: torch.Tensor, back_rgb: torch.Tensor,
         back_alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Porter-Duff 'over' for premultiplied colour."""
    rest = (1.0 - front_alpha)
    return front_rgb + rest[..., None] * back_rgb, front_alpha + rest * back_alpha


def straight_alpha(premultiplied: torch.Tensor, alpha: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Un-premultiply colour where alpha > eps (colour 0 where fully transparent)."""
    return torch.where(alpha[..., None] > eps, premultiplied / alpha.clamp(min=eps)[..., None],
                       torch.zeros_like(premultiplied)).clamp(0.0, 1.0)
