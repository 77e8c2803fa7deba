"""RenderStage: a generate job's plates, rendered from the motion stage's emotional
landmarks and head pose through the job's camera, streamed one frame at a time.

Camera: the job's camera (``bridge.camera``): none (the subject's own), a still one, or one per frame, each
plate rendered through its own frame's camera; the plate size is ``bridge.camera.plate_size``'s rule.

Bad input: a camera that does not see the subject gives transparent plates and a
warning; a resolution above the subject's limit is a ``bad_request`` error; landmarks
far outside the training range are clamped with a warning (in the subject's ``warp`` expression
mode the deformation field carries the clamped part, see deformation.py); a checkpoint of another
subject or version is an ``internal`` error naming the files. Models load once per
subject and stay cached.

Identity: when the motion stage also gives ``neutral_landmarks``, the driving landmarks are
retargeted onto the subject: ``subject_mean + landmarks - mean_t(neutral_landmarks)``. This
keeps lip motion and the emotional offset but not the generator's own face shape.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from backend.pipeline.base import GenerateJob, StageContext, StageError
from bridge.camera import CameraSpec, CameraTrack, frame_camera


class RenderStage:
    name = "render"
    weight = 4.0

    def __init__(self, device: Any, subjects: Any, open_renderer: Any = None):
        self.device = device
        self.subjects = subjects
        #: ``(subject_dir, device) -> renderer``; the composition root passes the one subject.json names
        self.open_renderer = open_renderer
        self._renderers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def renderer(self, subject: str):
        """The cached renderer of ``subject`` (loaded on first use; default :class:`SubjectRenderer`)."""
        from backend.checkpoints import CheckpointError
        from backend.subjects import UnknownSubjectError
        if self.open_renderer is None:
            from backend.render.inference import SubjectRenderer as open_renderer
        else:
            open_renderer = self.open_renderer

        with self._lock:
            if subject not in self._renderers:
                try:
                    path = self.subjects.path(subject)
                except UnknownSubjectError as exc:
                    raise StageError("unknown_subject", str(exc)) from exc
                try:
                    self._renderers[subject] = open_renderer(path, self.device or "cpu")
                except (CheckpointError, FileNotFoundError) as exc:
                    raise StageError("internal", f"subject {subject!r} cannot render plates: {exc}") from exc
            return self._renderers[subject]

    def run(self, job: GenerateJob, ctx: StageContext) -> None:
        import torch

        from backend.render.inference import RenderRequestError

        renderer = self.renderer(job.subject)
        try:
            landmarks = np.asarray(ctx.state["landmarks"], np.float32)
            rotation = np.asarray(ctx.state["rotation"], np.float32)
            translation = np.asarray(ctx.state["translation"], np.float32)
        except KeyError as exc:
            raise StageError("internal", f"render stage needs the motion stage's {exc.args[0]!r} track") from exc
        frames = landmarks.shape[0]
        if rotation.shape != (frames, 3, 3) or translation.shape != (frames, 3):
            raise StageError("internal", f"pose track shapes {rotation.shape}/{translation.shape} do not match "
                             f"{frames} landmark frames")
        if isinstance(job.camera, CameraTrack) and len(job.camera) != frames:
            raise StageError("internal", f"{len(job.camera)} per-frame cameras for {frames} frames")
        try:
            size = renderer.plate_size(job.resolution, job.camera)
            cameras = FrameCameras(renderer, job.camera, size.size)
            cameras.at(0)   # a camera the subject cannot use fails before any plate
        except RenderRequestError as exc:
            raise StageError("bad_request", str(exc)) from exc
        if size.fitted_from:
            # the sequencer scales the strip to fit; an explicit size above the limit stays an error
            ctx.warn(f"the camera's {size.fitted_from[0]}x{size.fitted_from[1]} is above subject {job.subject!r}'s "
                     f"limit; plates are rendered at {size.width}x{size.height} with the same framing")
        neutral = ctx.state.get("neutral_landmarks")
        if neutral is not None and np.shape(neutral) == landmarks.shape:
            neutral = np.asarray(neutral, np.float32)
            landmarks = renderer.retarget(landmarks, neutral)
            neutral = renderer.retarget(neutral, neutral)
        else:
            neutral = None
        # the motion stage's pose is in the subject camera's frame at the canonical face scale (scale 1)
        prepared = renderer.conditions(landmarks, rotation, translation, neutral_landmarks=neutral)
        if prepared.clamped_frames:
            fate = ("the deformation field carries them beyond it" if renderer.expression.mode == "warp"
                    else "they were clamped to the nearest rendered expression")
            ctx.warn(f"{prepared.clamped_frames} of {frames} frames have landmarks far outside subject "
                     f"{job.subject!r}'s training range (up to {prepared.worst_excess:.1f} std); {fate}")
        blind = []
        with torch.inference_mode():
            for i in range(frames):
                ctx.check_cancelled()
                camera, rays = cameras.at(i)
                if rays is None:
                    blind.append(i)
                    plate = np.zeros((camera.height, camera.width, 4), np.uint8)
                else:
                    plate = renderer.render(camera, prepared.conditions, i, rays)
                ctx.emit_plate(i, plate)
                ctx.progress((i + 1) / frames, f"plate {i + 1}/{frames}")
        if blind:
            where = "" if len(blind) == frames else f" on {len(blind)} of {frames} frames (first: {blind[0]})"
            ctx.warn(f"the camera does not see subject {job.subject!r}{where}: those plates are transparent "
                     f"(aim the camera at the subject anchor)")


class FrameCameras:
    """Each output frame's pinhole camera and rays (None when it does not see the subject), converted from
    the job's camera through the one Blender-camera conversion; a camera repeated from the last frame is
    reused (a still camera is converted once)."""

    def __init__(self, renderer: Any, camera: CameraSpec | CameraTrack | None, size: tuple[int, int]):
        self.renderer = renderer
        self.camera = camera
        self.size = size
        self._last: tuple[Any, Any] | None = None
        self._last_key: Any = None

    def _key(self, index: int) -> Any:
        return self.camera.rows[index].tobytes() if isinstance(self.camera, CameraTrack) else None

    def at(self, index: int):
        from backend.render.camera import pinhole_rays

        key = self._key(index)
        if self._last is None or key != self._last_key:
            spec = frame_camera(self.camera, index) if self.camera is not None else None
            pinhole = self.renderer.camera_for(spec, self.size)
            rays = pinhole_rays(pinhole, self.renderer.device) if self.renderer.sees_subject(pinhole) else None
            self._last, self._last_key = (pinhole, rays), key
        return self._last
