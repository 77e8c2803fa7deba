"""Where a trained head field puts the face's surface: expected ray depth of the head field, and
the depth FaceMesh's 3-D landmarks say the same pixels should have.

Used to test whether a subject NeRF learnt a face that is too flat (or too deep) at the brows,
eyes, nose, mouth and jaw, which makes a rigid head turn move the features non-rigidly.
Depth is the ray parameter ``t`` (world units, about one inter-ocular distance): the head's
canonical space is an affine image of world space, so a sample's ``t`` is the same in both.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.data.canonical import camera_points
from backend.render.camera import PinholeCamera, pinhole_rays
from backend.render.model import SubjectNeRF
from backend.render.sampling import stratified_samples
from backend.render.volume_rendering import render_weights


@dataclass
class HeadDepth:
    depth: torch.Tensor   # [N] expected t of the head field's weights (normalised by alpha)
    alpha: torch.Tensor   # [N] head opacity along the ray
    spread: torch.Tensor  # [N] standard deviation of t under the weights (a sharp surface: about 0)


@torch.no_grad()
def head_depth(model: SubjectNeRF, origins: torch.Tensor, dirs: torch.Tensor, head_from_world: torch.Tensor,
               code: torch.Tensor, samples: int = 192, chunk: int = 8192) -> HeadDepth:
    """Expected depth of the head field along world rays (one frame: ``head_from_world [1, 3, 4]``,
    ``code [1, K]``); ``samples`` per ray between the head box's entry and exit, no jitter."""
    if head_from_world.shape[0] != 1 or code.shape[0] != 1:
        raise ValueError("head_depth renders one frame: head_from_world [1, 3, 4] and code [1, K]")
    rot, shift = head_from_world[0, :, :3], head_from_world[0, :, 3]
    embedding = model.head_field.embed_condition(code)
    depths, alphas, spreads = [], [], []
    for i in range(0, len(origins), chunk):
        o = origins[i:i + chunk] @ rot.T + shift
        d = dirs[i:i + chunk] @ rot.T
        s = stratified_samples(o, d, model.head_box, samples, jitter=False)
        keep = s.keep & model.head_grid.lookup(s.positions01)
        sigma, _ = model._evaluate(model.head_field, s.positions01, keep, embedding.expand(len(o), -1))
        # the same t parameterisation and weights as the model's own render (model.py)
        weights = render_weights(sigma, s.delta)
        alpha = weights.sum(-1)
        depth = (weights * s.t).sum(-1) / alpha.clamp(min=1e-6)
        variance = (weights * (s.t - depth[:, None]) ** 2).sum(-1) / alpha.clamp(min=1e-6)
        depths.append(depth)
        alphas.append(alpha)
        spreads.append(variance.sqrt())
    return HeadDepth(torch.cat(depths), torch.cat(alphas), torch.cat(spreads))


def landmarks_in_camera(landmarks: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                        scale: float) -> np.ndarray:
    """Canonical landmarks ``[L, 3]`` of one frame -> world (camera) points ``scale * R @ FLIP @ c + t``."""
    return camera_points(np.asarray(landmarks, np.float64)[None], np.asarray(rotation, np.float64)[None],
                         np.asarray(translation, np.float64)[None], scale)[0]


def landmark_rays(camera: PinholeCamera, points: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Rays through the pixels where ``points [L, 3]`` (world, camera at the origin) project, and each
    point's distance along its ray (the depth FaceMesh's landmark says that ray should stop at)."""
    if not np.allclose(camera.world_from_camera, np.eye(4)):
        raise ValueError("landmark_rays expects the subject's training camera (world_from_camera = identity)")
    uv, _ = camera.project(points)
    origins, dirs = pinhole_rays(camera, pixels=torch.from_numpy(uv - 0.5))
    return origins, dirs, np.linalg.norm(points, axis=1)


class LandmarkDepthTargets:
    """Opt-in training signal (``TrainConfig.landmark_depth_weight``): the head field's expected depth at
    the pixels of a frame's tracked inner-face landmarks should match FaceMesh's, both relative to the
    nose tip. Monocular footage with little head motion leaves depth almost unconstrained, so the
    photometric loss alone can draw the brows or chin at the wrong depth (they then slide across the
    face when the head turns). Rays and target depths of every training frame are precomputed."""

    def __init__(self, landmarks: np.ndarray, rotation: np.ndarray, translation: np.ndarray, scale: np.ndarray,
                 camera: PinholeCamera, landmark_indices: list[int], nose_tip: int = 30,
                 contour_indices: list[int] | tuple = (), contour_ratio: float = 0.0):
        """``contour_indices`` (opt-in): further landmarks whose mean error is added ``contour_ratio`` times to the
        mean over ``landmark_indices`` (rays that meet the face obliquely, e.g. the jaw contour, weigh less)."""
        if nose_tip in landmark_indices or nose_tip in contour_indices:
            raise ValueError("the nose tip is the depth reference: leave it out of landmark_indices")
        if contour_indices and not contour_ratio > 0:
            raise ValueError(f"contour landmarks need a contour_ratio > 0, got {contour_ratio}")
        self.indices = [nose_tip] + list(landmark_indices) + list(contour_indices)
        self.inner_count, self.contour_ratio = len(landmark_indices), float(contour_ratio)
        dirs, depth = [], []
        for i in range(len(landmarks)):
            points = landmarks_in_camera(landmarks[i][self.indices], rotation[i], translation[i], float(scale[i]))
            _, d, t = landmark_rays(camera, points)
            dirs.append(d)
            depth.append(torch.as_tensor(t - t[0], dtype=torch.float32))
        self.dirs = torch.stack(dirs)             # [F, 1 + L, 3]
        self.relative_depth = torch.stack(depth)  # [F, 1 + L] (column 0, the nose tip, is 0)

    def loss(self, model: SubjectNeRF, head_from_world: torch.Tensor, code: torch.Tensor, frames: int,
             generator: torch.Generator, beta: float = 0.1) -> torch.Tensor:
        """Smooth-L1 (``beta`` IOD) error of the rendered relative depth on ``frames`` random training
        frames (conditions indexed like the training frames), jittered samples like the photometric rays."""
        device = head_from_world.device
        pick = torch.randint(len(self.dirs), (frames,), generator=generator)
        dirs = self.dirs[pick].to(device)                    # [n, 1 + L, 3]
        n, rays = dirs.shape[:2]
        hfw = head_from_world[pick.to(device)]
        rot, shift = hfw[..., :3], hfw[..., 3]
        o = shift[:, None, :].expand(n, rays, 3).reshape(-1, 3)   # camera (world origin) in canonical space
        d = (dirs @ rot.transpose(-1, -2)).reshape(-1, 3)
        s = stratified_samples(o, d, model.head_box, model.config.head_samples, jitter=True)
        keep = s.keep & model.head_grid.lookup(s.positions01)
        embedding = model.head_field.embed_condition(code[pick.to(device)]).repeat_interleave(rays, dim=0)
        sigma, _ = model._evaluate(model.head_field, s.positions01, keep, embedding)
        weights = render_weights(sigma, s.delta)
        depth = ((weights * s.t).sum(-1) / weights.sum(-1).clamp(min=1e-3)).reshape(n, rays)
        rendered = depth[:, 1:] - depth[:, :1]
        target = self.relative_depth[pick, 1:].to(device)
        if rendered.shape[1] == self.inner_count:
            return torch.nn.functional.smooth_l1_loss(rendered, target, beta=beta)
        error = torch.nn.functional.smooth_l1_loss(rendered, target, beta=beta, reduction="none")
        k = self.inner_count
        return error[:, :k].mean() + self.contour_ratio * error[:, k:].mean()


def lower_jaw_contour_landmarks() -> list[int]:
    """The jaw contour below the ears, less the chin (iBUG 2-6, 10-14): with the inner face they fix the face's
    sides, which a turn (yaw) shows; 0-1 and 15-16 sit at ear level, where rays graze or miss the head."""
    from bridge.landmarks import JAW
    return [i for i in JAW if 2 <= i <= 14 and i not in (7, 8, 9)]


def inner_face_landmarks() -> list[int]:
    """Brows, eyes, nose (less its tip), lips and the chin: landmarks whose rays meet the face head-on."""
    from bridge.landmarks import REGIONS
    keys = ("brow_r", "brow_l", "eye_r", "eye_l", "nose_bridge", "nose_base", "lip_outer", "lip_inner")
    return sorted({i for k in keys for i in REGIONS[k]} - {30}) + [7, 8, 9]
