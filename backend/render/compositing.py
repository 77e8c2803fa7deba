"""Compositing of premultiplied colour: Porter-Duff 'over' (head over torso) and back to
straight alpha for the plates that leave the renderer."""
from __future__ import annotations

import torch


def over(front_rgb: torch.Tensor, front_alpha: torch.Tensor, back_rgb: torch.Tensor,
         back_alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Porter-Duff 'over' for premultiplied colour."""
    rest = (1.0 - front_alpha)
    return front_rgb + rest[..., None] * back_rgb, front_alpha + rest * back_alpha


def straight_alpha(premultiplied: torch.Tensor, alpha: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Un-premultiply colour where alpha > eps (colour 0 where fully transparent)."""
    return torch.where(alpha[..., None] > eps, premultiplied / alpha.clamp(min=eps)[..., None],
                       torch.zeros_like(premultiplied)).clamp(0.0, 1.0)
