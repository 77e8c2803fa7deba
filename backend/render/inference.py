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

from backend.render.camera import PinholeCamera, blender_camera_to_pinhole, pinhole_rays
from backend.render.compositing import straight_alpha
from backend.render.frame_render import (CHECKPOINT_STEM, FrameConditions, frame_conditions, render_frame,
                                         training_camera)
from backend.render.model import MODEL_KIND, MODEL_VERSION, SubjectModelConfig, SubjectNeRF
from backend.render.sampling import ray_box_bounds
from backend.subjects import load_subject_info
from bridge.landmarks import NUM_LANDMARKS
from bridge.camera import CameraSpec, CameraTrack, PlateSize, PlateSizeError, fit_within, plate_size

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
        from backend.render.deformation import expression_config
        try:
            self.expression = expression_config(self.info)
        except ValueError as exc:
            raise CheckpointError(f"{self.dir / 'subject.json'}: {exc}") from exc
        from backend.render.screen_region import ScreenRegion
        from backend.render.sr_plates import load_super_resolution
        self.screen_region = ScreenRegion(self.model)
        self.super_resolution = load_super_resolution(self.dir, self.info, self.device)
        self._rays: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- camera ------------------------------------------------------------------------
    def plate_size(self, requested: tuple[int, int] | None, camera: CameraSpec | CameraTrack | None) -> PlateSize:
        """The job's plate size by ``bridge.camera.plate_size``'s rule, with this subject's limit."""
        try:
            return plate_size(requested, camera, self.training_camera_size, max(self.max_resolution))
        except PlateSizeError as exc:
            max_w, max_h = self.max_resolution
            raise RenderRequestError(
                f"{exc} (subject {self.info['name']!r}: {max_w}x{max_h}, trained at {self.info['image_size'][0]}x"
                f"{self.info['image_size'][1]}); render smaller and upscale in the compositor, or retrain the "
                f"subject at a higher resolution") from None

    def camera_for(self, camera: CameraSpec | None, resolution: tuple[int, int] | None) -> PinholeCamera:
        """One frame's pinhole camera in world space: a Blender camera seen at the plate size (None: the
        subject's training camera, scaled); ``resolution`` None picks the size by :meth:`plate_size`."""
        width, height = self.plate_size(resolution, camera).size
        if camera is None:
            return self.training_camera.scaled_to(width, height)
        try:
            return blender_camera_to_pinhole(camera.with_resolution((width, height)), self.world_from_anchor)
        except ValueError as exc:
            raise RenderRequestError(str(exc)) from exc

    def fit_to_limit(self, size: tuple[int, int]) -> tuple[int, int]:
        """``size`` scaled down (aspect kept) so its longer side is within the subject's limit."""
        return fit_within(size, max(self.max_resolution))

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
        """Move a generated track onto this subject's face (see stage.py): keeps motion and emotion.

        The subject's rest face is its neutral clip's mean when it was filmed with emotions
        (``subject.json: neutral_landmarks``), else the mean of its training frames."""
        return (self.rest_face() + landmarks - neutral_landmarks.mean(axis=0)).astype(np.float32)

    def rest_face(self) -> np.ndarray:
        """``[NUM_LANDMARKS, 3]``: the subject's neutral-clip mean when it was filmed with emotions
        (``subject.json: neutral_landmarks``), else the mean of its training frames."""
        rest = self.info.get("neutral_landmarks")
        if rest is not None:
            return np.asarray(rest, np.float32).reshape(NUM_LANDMARKS, 3)
        return self.model.landmark_code.mean.reshape(NUM_LANDMARKS, 3).cpu().numpy()

    # -- conditions --------------------------------------------------------------------
    def conditions(self, landmarks: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                   scale: np.ndarray | None = None, neutral_landmarks: np.ndarray | None = None) -> PreparedConditions:
        """Per-frame conditions; the subject's ``expression`` config decides which landmarks give the
        NeRF code (``neutral_landmarks`` when given, in ``warp`` mode) and what the warp carries."""
        from backend.render.conditions import as_tensor
        from backend.render.deformation import expression_landmarks
        neutral = as_tensor(neutral_landmarks, self.device) if neutral_landmarks is not None else None
        rest = as_tensor(self.rest_face(), self.device) if self.expression.code_components is not None else None
        split = expression_landmarks(self.model.landmark_code, as_tensor(landmarks, self.device), neutral,
                                     self.expression, rest=rest)
        cond = frame_conditions(self.model, split.code_landmarks.cpu(), rotation, translation, scale, self.device)
        cond.warp_source, cond.warp_target = split.source, split.target
        excess = cond.out_of_range.cpu().numpy()
        return PreparedConditions(cond, int((excess > OUT_OF_RANGE_WARN).sum()), float(excess.max(initial=0.0)))

    # -- rendering ---------------------------------------------------------------------
    @torch.no_grad()
    def render(self, camera: PinholeCamera, conditions: FrameConditions, index: int,
               rays: tuple[torch.Tensor, torch.Tensor] | None = None, cull: bool = True,
               super_resolve: bool = True) -> np.ndarray:
        """One plate: uint8 ``[H, W, 4]`` RGBA with straight alpha. Above the working resolution a
        subject with a super-resolution network renders the NeRF at its working resolution and
        super-resolves (``super_resolve=False``: one ray per plate pixel, the old way)."""
        sr = self.super_resolution if super_resolve else None
        if sr is not None and max(camera.width, camera.height) > max(self.training_camera_size):
            from backend.render.sr_plates import super_resolved_plate
            rgba = super_resolved_plate(self, sr, camera, conditions, index)
        else:
            rgba = self.render_premultiplied(camera, conditions, index, rays, cull)
        colour = straight_alpha(rgba[..., :3], rgba[..., 3])
        rgba = torch.cat([colour, rgba[..., 3:].clamp(0, 1)], dim=-1)
        return (rgba * 255).round().to(torch.uint8).cpu().numpy()

    @torch.no_grad()
    def render_premultiplied(self, camera: PinholeCamera, conditions: FrameConditions, index: int,
                             rays: tuple[torch.Tensor, torch.Tensor] | None = None,
                             cull: bool = True) -> torch.Tensor:
        """``[H, W, 4]`` float premultiplied RGB + alpha; with ``cull`` only pixels whose rays can meet
        an occupied cell are rendered (see screen_region.py), the rest are exactly transparent."""
        origins, dirs = rays if rays is not None else self.rays_for(camera)
        head_from_world = conditions.head_from_world[index:index + 1]
        args = (head_from_world, conditions.code[index:index + 1], conditions.pose[index:index + 1])
        warp = conditions.warp(index, self.expression.warp)
        out = torch.zeros(camera.height * camera.width, 4, device=self.device)
        if cull:
            from backend.render.screen_region import warp_bound
            keep = torch.from_numpy(self.screen_region.pixel_mask(camera, head_from_world[0], warp_bound(warp))
                                    .reshape(-1))
            pixels = keep.nonzero()[:, 0].to(self.device)
            if len(pixels):
                rgb, alpha = render_frame(self.model, origins[pixels], dirs[pixels], *args, warp=warp)
                out[pixels] = torch.cat([rgb, alpha[:, None]], dim=-1)
        else:
            rgb, alpha = render_frame(self.model, origins, dirs, *args, warp=warp)
            out = torch.cat([rgb, alpha[:, None]], dim=-1)
        return out.reshape(camera.height, camera.width, 4)

    def rays_for(self, camera: PinholeCamera) -> tuple[torch.Tensor, torch.Tensor]:
        """The camera's rays, cached for the last few cameras (a job keeps one camera)."""
        key = (camera.fx, camera.fy, camera.cx, camera.cy, camera.width, camera.height,
               camera.world_from_camera.tobytes())
        if key not in self._rays:
            if len(self._rays) >= 4:
                self._rays.pop(next(iter(self._rays)))
            self._rays[key] = pinhole_rays(camera, self.device)
        return self._rays[key]

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
