"""RenderStage: a generate job's plates, rendered from the motion stage's emotional
landmarks and head pose through the job's camera, streamed one frame at a time.

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

        from backend.render.camera import pinhole_rays
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
        requested = job.resolution
        if job.camera is not None and requested is None:
            # No explicit size: the Blender camera's render size, scaled down to the subject's limit if needed
            # (same framing; the sequencer scales the strip to fit). An explicit size above it stays an error.
            scene_size = tuple(int(v) for v in job.camera.resolution)
            requested = renderer.fit_to_limit(scene_size)
            if requested != scene_size:
                ctx.warn(f"the camera's {scene_size[0]}x{scene_size[1]} is above subject {job.subject!r}'s limit; "
                         f"plates are rendered at {requested[0]}x{requested[1]} with the same framing")
        try:
            camera = renderer.camera_for(job.camera, requested)
        except RenderRequestError as exc:
            raise StageError("bad_request", str(exc)) from exc
        neutral = ctx.state.get("neutral_landmarks")
        if neutral is not None and np.shape(neutral) == landmarks.shape:
            neutral = np.asarray(neutral, np.float32)
            landmarks = renderer.retarget(landmarks, neutral)
            neutral = renderer.retarget(neutral, neutral)
        else:
            neutral = None
        scale = ctx.state.get("scale")
        prepared = renderer.conditions(landmarks, rotation, translation, scale, neutral_landmarks=neutral)
        if prepared.clamped_frames:
            fate = ("the deformation field carries them beyond it" if renderer.expression.mode == "warp"
                    else "they were clamped to the nearest rendered expression")
            ctx.warn(f"{prepared.clamped_frames} of {frames} frames have landmarks far outside subject "
                     f"{job.subject!r}'s training range (up to {prepared.worst_excess:.1f} std); {fate}")
        visible = renderer.sees_subject(camera)
        if not visible:
            ctx.warn(f"the camera does not see subject {job.subject!r}: plates are transparent "
                     f"(aim the camera at the subject anchor)")
            blank = np.zeros((camera.height, camera.width, 4), np.uint8)
        rays = pinhole_rays(camera, renderer.device) if visible else None
        with torch.inference_mode():
            for i in range(frames):
                ctx.check_cancelled()
                plate = renderer.render(camera, prepared.conditions, i, rays) if visible else blank
                ctx.emit_plate(i, plate)
                ctx.progress((i + 1) / frames, f"plate {i + 1}/{frames}")
