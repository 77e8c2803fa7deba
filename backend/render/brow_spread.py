"""Opt-in training signal (``TrainConfig.brow_spread_weight``): keep the head field's weights along the rays
through the brows (and upper eyelids) in one thin layer.

A head field that spreads a feature's colour over depth (a layer off the surface) draws it at a place that
shifts with the viewing angle (parallax), so the default subject's rendered brows follow head pitch although
its head field takes no pose. The loss is the standard deviation of the ray parameter ``t`` under the head
weights (normalised by the ray's opacity): 0 when the weights sit in one sample, larger as they spread.
"""
from __future__ import annotations

import numpy as np
import torch

from backend.render.camera import PinholeCamera, pinhole_rays
from backend.render.depth_probe import landmarks_in_camera
from backend.render.model import SubjectNeRF
from backend.render.sampling import stratified_samples
from backend.render.volume_rendering import render_weights


def brow_landmarks() -> list[int]:
    """Both brows and the upper eyelids (iBUG 37, 38, 43, 44)."""
    from bridge.landmarks import REGIONS
    return list(REGIONS["brow_r"]) + list(REGIONS["brow_l"]) + [37, 38, 43, 44]


def weight_spread(weights: torch.Tensor, t: torch.Tensor, min_alpha: float = 1e-3) -> torch.Tensor:
    """Standard deviation of ``t [N, S]`` under ``weights [N, S]`` (normalised by their sum), per ray ``[N]``."""
    alpha = weights.sum(-1).clamp(min=min_alpha)
    depth = (weights * t).sum(-1) / alpha
    variance = (weights * (t - depth[:, None]) ** 2).sum(-1) / alpha
    return variance.clamp(min=1e-8).sqrt()


class LandmarkSpreadTargets:
    """Pixels of chosen tracked landmarks in every training frame (the same projection as
    depth_probe.LandmarkDepthTargets); ``loss`` renders the head field's weights along rays through them."""

    def __init__(self, landmarks: np.ndarray, rotation: np.ndarray, translation: np.ndarray, scale: np.ndarray,
                 camera: PinholeCamera, landmark_indices: list[int], radius_px: float = 0.0):
        if not np.allclose(camera.world_from_camera, np.eye(4)):
            raise ValueError("LandmarkSpreadTargets expects the subject's training camera (world_from_camera = identity)")
        if not landmark_indices:
            raise ValueError("LandmarkSpreadTargets needs at least one landmark index")
        if radius_px < 0:
            raise ValueError(f"radius_px must be >= 0, got {radius_px}")
        self.camera, self.radius = camera, float(radius_px)
        uv = [camera.project(landmarks_in_camera(landmarks[i][landmark_indices], rotation[i], translation[i],
                                                 float(scale[i])))[0] for i in range(len(landmarks))]
        self.pixels = torch.as_tensor(np.stack(uv) - 0.5, dtype=torch.float64)   # [F, L, 2] (x, y), pixel centres

    def loss(self, model: SubjectNeRF, head_from_world: torch.Tensor, code: torch.Tensor, frames: int,
             generator: torch.Generator) -> torch.Tensor:
        """Mean weight spread (world units, about an inter-ocular distance) on the landmark rays of ``frames``
        random training frames, each pixel moved by up to ``radius_px`` (uniform), jittered samples."""
        device = head_from_world.device
        pick = torch.randint(len(self.pixels), (frames,), generator=generator)
        pixels = self.pixels[pick]                                          # [n, L, 2]
        if self.radius > 0:
            pixels = pixels + self.radius * (2 * torch.rand(pixels.shape, generator=generator, dtype=torch.float64) - 1)
        n, rays = pixels.shape[:2]
        _, dirs = pinhole_rays(self.camera, device, pixels.reshape(-1, 2))
        hfw = head_from_world[pick.to(device)]
        rot, shift = hfw[..., :3], hfw[..., 3]
        o = shift[:, None, :].expand(n, rays, 3).reshape(-1, 3)            # camera (world origin) in canonical space
        d = (dirs.reshape(n, rays, 3) @ rot.transpose(-1, -2)).reshape(-1, 3)
        s = stratified_samples(o, d, model.head_box, model.config.head_samples, jitter=True)
        keep = s.keep & model.head_grid.lookup(s.positions01)
        embedding = model.head_field.embed_condition(code[pick.to(device)]).repeat_interleave(rays, dim=0)
        sigma, _ = model._evaluate(model.head_field, s.positions01, keep, embedding)
        return weight_spread(render_weights(sigma, s.delta), s.t).mean()
