"""One frame of a trained subject NeRF, the part training and inference share: the checkpoint's
file stem, the subject's training camera, the per-frame conditions (landmark code, pose, head
transform, expression warp) and the chunked render of a frame's rays.

Inference (inference.py) and training (train.py) both import this module; it imports neither.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.render.camera import PinholeCamera
from backend.render.conditions import as_tensor, head_from_world, pose_code
from backend.render.model import SubjectNeRF

#: file stem of a subject's NeRF checkpoint (``<subject>/nerf.pt`` + ``nerf.json``)
CHECKPOINT_STEM = "nerf"


def training_camera(info: dict) -> PinholeCamera:
    """The camera the subject was filmed with (``subject.json``: intrinsics, image size)."""
    fx, fy, cx, cy = info["intrinsics"]
    w, h = info["image_size"]
    return PinholeCamera(fx, fy, cx, cy, w, h, np.eye(4))


@dataclass
class FrameConditions:
    code: torch.Tensor             # [F, K]
    pose: torch.Tensor             # [F, 6]
    head_from_world: torch.Tensor  # [F, 3, 4]
    out_of_range: torch.Tensor     # [F] how far the landmark code was clamped (0 = inside)
    warp_source: torch.Tensor | None = None  # [F, landmarks, 3] landmarks the code renders (deformation.py)
    warp_target: torch.Tensor | None = None  # [F, landmarks, 3] landmarks the frame should show

    def warp(self, index: int, config=None):
        """Frame ``index``'s LandmarkWarp, or None when it has no displacement."""
        if self.warp_source is None or self.warp_target is None:
            return None
        from backend.render.deformation import LandmarkWarp
        return LandmarkWarp.fit(self.warp_source[index], self.warp_target[index], config)


def frame_conditions(model: SubjectNeRF, landmarks: np.ndarray | torch.Tensor, rotation, translation,
                     scale=None, device: torch.device | str = "cpu") -> FrameConditions:
    """Conditions for a track (canonical landmarks + pose in the subject camera frame)."""
    lm = as_tensor(landmarks, device)
    rot, trans = as_tensor(rotation, device), as_tensor(translation, device)
    sc = as_tensor(scale, device) if scale is not None else None
    with torch.no_grad():
        code, out_of_range = model.landmark_code(lm)
        pose = pose_code(rot, trans, model.mean_rotation, model.mean_translation)
    return FrameConditions(code, pose, head_from_world(rot, trans, sc), out_of_range)


@torch.no_grad()
def render_frame(model: SubjectNeRF, origins: torch.Tensor, dirs: torch.Tensor, head_from_world: torch.Tensor,
                 code: torch.Tensor, pose: torch.Tensor, chunk: int = 16384,
                 warp=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Premultiplied colour [N, 3] and alpha [N] of one frame's rays (conditions ``[1, ...]``;
    ``warp``: the frame's LandmarkWarp or None)."""
    rgbs, alphas = [], []
    for i in range(0, len(origins), chunk):
        n = len(origins[i:i + chunk])
        out = model(origins[i:i + chunk], dirs[i:i + chunk], head_from_world.expand(n, 3, 4),
                    code.expand(n, -1), pose.expand(n, -1), warp=warp)
        rgbs.append(out["rgb"])
        alphas.append(out["alpha"])
    return torch.cat(rgbs), torch.cat(alphas)
