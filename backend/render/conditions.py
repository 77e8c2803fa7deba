"""Per-frame conditions of the subject NeRF, computed from a landmark + pose track.

``head_from_world``: the affine map world -> canonical face space of each frame's head
pose (``p_cam = scale * R @ FLIP @ c + t``, so ``c = FLIP @ R.T @ (p - t) / scale``).
``pose_code``: the head pose relative to the subject's mean pose (rotation vector and
translation offset, roughly unit-scaled), which conditions the torso.
"""
from __future__ import annotations

import numpy as np
import torch

FLIP = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
ROTATION_UNIT = 0.1      # radians
TRANSLATION_UNIT = 0.5   # canonical units (inter-ocular distances)


def head_from_world(rotation: torch.Tensor, translation: torch.Tensor,
                    scale: torch.Tensor | None = None) -> torch.Tensor:
    """``[F, 3, 4]`` affine maps for ``rotation [F, 3, 3]``, ``translation [F, 3]``, ``scale [F]``."""
    linear = FLIP.to(rotation) @ rotation.transpose(-1, -2)
    if scale is not None:
        linear = linear / scale[:, None, None]
    shift = -(linear @ translation[..., None])[..., 0]
    return torch.cat([linear, shift[..., None]], dim=-1)


def _rotation_vector(matrix: torch.Tensor) -> torch.Tensor:
    cos = ((matrix.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1 + 1e-7, 1 - 1e-7)
    angle = torch.acos(cos)
    axis = torch.stack([matrix[..., 2, 1] - matrix[..., 1, 2], matrix[..., 0, 2] - matrix[..., 2, 0],
                        matrix[..., 1, 0] - matrix[..., 0, 1]], -1)
    factor = torch.where(angle < 1e-4, torch.full_like(angle, 0.5), angle / (2 * torch.sin(angle)))
    return axis * factor[..., None]


def pose_code(rotation: torch.Tensor, translation: torch.Tensor, mean_rotation: torch.Tensor,
              mean_translation: torch.Tensor) -> torch.Tensor:
    """``[F, 6]``: rotation vector of ``R @ mean_R.T`` and ``t - mean_t``, in rough units."""
    relative = rotation @ mean_rotation.to(rotation).T
    return torch.cat([_rotation_vector(relative) / ROTATION_UNIT,
                      (translation - mean_translation.to(translation)) / TRANSLATION_UNIT], dim=-1)


def as_tensor(array: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32), device=device)
