"""Rendering plates of a trained subject: load once, pick the camera, clamp conditions,
render RGBA (straight alpha) frame by frame.

Resolution limit: a subject renders at most ``subject.json:max_resolution`` (4x its
working resolution per side); larger requests fail with :class:`RenderRequestError`.
Default camera (``camera=None``): the subject's own training camera, scaled to the
requested resolution (uniform zoom, centred).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.pipeline.base import CameraSpec
from backend.render.camera import PinholeCamera, blender_camera_to_pinhole, pinhole_rays
from backend.render.model import MODEL_KIND, MODEL_VERSION, SubjectModelConfig, SubjectNeRF
from backend.render.renderer import straight_alpha
from backend.render.sampling import ray_box_bounds
from backend.render.subject_dataset import FrameConditions, frame_conditions, load_subject_info, training_camera
from backend.render.train import CHECKPOINT_STEM, render_frame

#: how far (in training standard deviations) a landmark code may leave the training range before we warn
OUT_OF_RANGE_WARN = 1.0


class RenderRequestError(ValueError):
    """A render request this subject cannot serve (resolution, camera); the message says why."""


@dataclass
class PreparedConditions:
    conditions: FrameConditions
    clamped_frames: int
    worst_excess: float


class SubjectRenderer:
    """A loaded subject NeRF plus what is needed to render it through any camera."""

    def __init__(self, subject_dir: str | Path, device: torch.device | str = "cpu"):
        from backend.checkpoints import CheckpointError, load_checkpoint, read_checkpoint_meta

        self.dir = Path(subject_dir)
        self.info = load_subject_info(self.dir)
        self.device = torch.device(device)
        stem = self.dir / (self.info.get("nerf") or CHECKPOINT_STEM)
        meta = read_checkpoint_meta(stem, kind=MODEL_KIND, version=MODEL_VERSION)
        if meta.get("subject") != self.info["name"]:
            raise CheckpointError(f"{stem}.json was trained for subject {meta.get('subject')!r}, "
                                  f"but {self.dir / 'subject.json'} is subject {self.info['name']!r}")
        config = _model_config(meta["config"])
        self.model = SubjectNeRF(config)
        load_checkpoint(stem, self.model, kind=MODEL_KIND, version=MODEL_VERSION)
        self.model.to(self.device).eval()
        self.meta = meta
        self.world_from_anchor = np.asarray(self.info["world_from_anchor"], np.float64).reshape(4, 4)
        self.training_camera = training_camera(self.info)
        self.max_resolution = tuple(int(v) for v in self.info["max_resolution"])

    # -- camera ------------------------------------------------------------------------
    def camera_for(self, camera: CameraSpec | None, resolution: tuple[int, int] | None) -> PinholeCamera:
        """The pinhole camera in world space for a job (checks the resolution limit)."""
        if camera is not None:
            if resolution is not None and tuple(resolution) != tuple(camera.resolution):
                camera = CameraSpec(**{**camera.__dict__, "resolution": tuple(resolution)})
            width, height = (int(v) for v in camera.resolution)
        else:
            width, height = (int(v) for v in (resolution or self.training_camera_size))
        if width <= 0 or height <= 0:
            raise RenderRequestError(f"plate resolution must be positive, got {width}x{height}")
        max_w, max_h = self.max_resolution
        if max(width, height) > max(max_w, max_h):
            raise RenderRequestError(
                f"plate resolution {width}x{height} is above subject {self.info['name']!r}'s limit of "
                f"{max_w}x{max_h} (trained at {self.info['image_size'][0]}x{self.info['image_size'][1]}); "
                f"render smaller and upscale in the compositor, or retrain the subject at a higher resolution")
        if camera is None:
            return self.training_camera.scaled_to(width, height)
        try:
            return blender_camera_to_pinhole(camera, self.world_from_anchor)
        except ValueError as exc:
            raise RenderRequestError(str(exc)) from exc

    def fit_to_limit(self, size: tuple[int, int]) -> tuple[int, int]:
        """``size`` scaled down (aspect kept) so its longer side is within the subject's limit."""
        width, height = (int(v) for v in size)
        limit = max(self.max_resolution)
        if max(width, height) <= limit:
            return width, height
        factor = limit / max(width, height)
        return max(1, round(width * factor)), max(1, round(height * factor))

    @property
    def training_camera_size(self) -> tuple[int, int]:
        return tuple(self.info["image_size"])

    def sees_subject(self, camera: PinholeCamera, stride: int = 4) -> bool:
        """Whether any ray (on a coarse pixel lattice) passes through the torso or head region."""
        ys, xs = np.mgrid[0:camera.height:stride, 0:camera.width:stride]
        pixels = torch.from_numpy(np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64))
        origins, dirs = pinhole_rays(camera, self.device, pixels)
        m = self.model
        if ray_box_bounds(origins, dirs, m.torso_box)[2].any():
            return True
        # head box in world space at the mean pose: its bounding box in world is a loose superset
        corners = torch.tensor([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=torch.float32,
                               device=self.device)
        canonical = m.head_box[0] + corners * (m.head_box[1] - m.head_box[0])
        flip = torch.diag(torch.tensor([1.0, -1.0, -1.0], device=self.device))
        world = canonical @ (m.mean_rotation @ flip).T + m.mean_translation
        box = torch.stack([world.amin(0) - 1.0, world.amax(0) + 1.0])
        return bool(ray_box_bounds(origins, dirs, box)[2].any())

    def retarget(self, landmarks: np.ndarray, neutral_landmarks: np.ndarray) -> np.ndarray:
        """Move a generated track onto this subject's face (see stage.py): keeps motion and emotion."""
        subject_mean = self.model.landmark_code.mean.reshape(68, 3).cpu().numpy()
        return (subject_mean + landmarks - neutral_landmarks.mean(axis=0)).astype(np.float32)

    # -- conditions --------------------------------------------------------------------
    def conditions(self, landmarks: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                   scale: np.ndarray | None = None) -> PreparedConditions:
        cond = frame_conditions(self.model, landmarks, rotation, translation, scale, self.device)
        excess = cond.out_of_range.cpu().numpy()
        return PreparedConditions(cond, int((excess > OUT_OF_RANGE_WARN).sum()), float(excess.max(initial=0.0)))

    # -- rendering ---------------------------------------------------------------------
    @torch.no_grad()
    def render(self, camera: PinholeCamera, conditions: FrameConditions, index: int,
               rays: tuple[torch.Tensor, torch.Tensor] | None = None) -> np.ndarray:
        """One plate: uint8 ``[H, W, 4]`` RGBA with straight alpha."""
        origins, dirs = rays if rays is not None else pinhole_rays(camera, self.device)
        rgb, alpha = render_frame(self.model, origins, dirs, conditions.head_from_world[index:index + 1],
                                  conditions.code[index:index + 1], conditions.pose[index:index + 1])
        colour = straight_alpha(rgb, alpha)
        rgba = torch.cat([colour, alpha.clamp(0, 1)[:, None]], dim=-1)
        return (rgba * 255).round().to(torch.uint8).reshape(camera.height, camera.width, 4).cpu().numpy()

    def background(self) -> np.ndarray:
        import cv2
        return cv2.imread(str(self.dir / self.info["background"]))[..., ::-1].copy()


def _model_config(raw: dict) -> SubjectModelConfig:
    """Rebuild the dataclass config stored in a checkpoint."""
    from backend.render.encodings import HashGridConfig
    raw = dict(raw)
    for key in ("head_grid", "torso_grid"):
        if isinstance(raw.get(key), dict):
            raw[key] = HashGridConfig(**raw[key])
    if "head_box" in raw:
        raw["head_box"] = tuple(tuple(v) for v in raw["head_box"])
    return SubjectModelConfig(**raw)
