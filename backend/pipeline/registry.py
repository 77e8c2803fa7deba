"""Which stages a generate job runs. Later modules plug in here and nowhere else.

Motion: ``backend.motion.stage.MotionStage`` once the trained motion models exist,
else the placeholder (energy-driven mouth on a mean face) so the spine works end to end.
Plates: ``backend.render.stage.RenderStage``; without it, only landmark jobs run.
Stage objects are built once per server and reused across jobs (they cache models).
"""
from __future__ import annotations

from typing import Any

from backend.pipeline.base import GenerateJob, Stage, StageError


class StageSet:
    """The stages available in this process, built once (models load lazily inside them)."""

    def __init__(self, device: Any, subjects: Any):
        self.device = device
        self.subjects = subjects
        self.motion = self._motion_stage()
        self.render = self._render_stage()

    def _motion_stage(self) -> Stage:
        try:
            from backend.motion.stage import MotionStage
        except ImportError:
            from backend.pipeline.placeholder import PlaceholderMotionStage as MotionStage
        return MotionStage(device=self.device, subjects=self.subjects)

    def _render_stage(self) -> Stage | None:
        try:
            from backend.render.stage import RenderStage
        except ImportError:
            return None
        return RenderStage(device=self.device, subjects=self.subjects)

    @property
    def can_render(self) -> bool:
        return self.render is not None

    def for_job(self, job: GenerateJob) -> list[Stage]:
        """The stages to run for ``job`` in order; a plates job without a renderer is an error."""
        stages: list[Stage] = [self.motion]
        if not job.landmarks_only:
            if self.render is None:
                raise StageError("unsupported", "this backend has no plate renderer; ask for landmarks only")
            stages.append(self.render)
        return stages
