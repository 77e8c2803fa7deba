"""The composition root: which stages a generate job runs and which renderer draws each subject.

The server (``emogene serve``), the Ray workers, the demo and the evaluations build their stages
here and nowhere else; the stage packages (``backend.motion``, ``backend.render``) never import
this module. A stage that cannot be built (a missing module, a broken install) stops start-up
with :class:`StageUnavailableError` naming it: no stand-in is ever served in its place (tests that
need one subclass :class:`StageSet`, see tests/placeholder_motion.py).

Renderers come in kinds: ``subject.json: "renderer"`` names one row of :data:`RENDERERS`
(absent: :data:`DEFAULT_RENDERER`). Adding a renderer = one row here + its own module whose
class is built as ``Renderer(subject_dir, device)`` and offers what ``render/stage.py`` calls.
Stage objects are built once per process and reused across jobs (they cache models).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from backend.pipeline.base import GenerateJob, Stage, StageError

#: ``subject.json: "renderer"`` -> ``"module:Class"`` of the renderer that draws that subject
RENDERERS: dict[str, str] = {
    "subject_nerf": "backend.render.inference:SubjectRenderer",
}
DEFAULT_RENDERER = "subject_nerf"


class StageUnavailableError(RuntimeError):
    """A stage or renderer this backend needs cannot be loaded; the message names it and the cause."""


class UnknownRendererError(LookupError):
    """A renderer kind this backend does not have."""


def _import(target: str, what: str) -> Any:
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise StageUnavailableError(
            f"the {what} cannot be loaded from {target} ({type(exc).__name__}: {exc}); this install is "
            f"broken or incomplete: reinstall the backend (pip install -e .)") from exc


def renderer_class(kind: str) -> type:
    """The renderer class of ``kind`` (a :data:`RENDERERS` key)."""
    if kind not in RENDERERS:
        raise UnknownRendererError(f"renderer {kind!r} is not one this backend has ({', '.join(sorted(RENDERERS))})")
    return _import(RENDERERS[kind], f"{kind!r} renderer")


def open_renderer(subject_dir: str | Path, device: Any) -> Any:
    """The renderer ``subject.json`` asks for, loaded for the subject folder ``subject_dir``; a kind this
    backend does not have is a :class:`backend.checkpoints.CheckpointError` naming the file (the subject's
    files do not fit this code, like a checkpoint of another version)."""
    from backend.checkpoints import CheckpointError
    from backend.subjects import load_subject_info
    kind = load_subject_info(subject_dir).get("renderer", DEFAULT_RENDERER)
    try:
        cls = renderer_class(kind)
    except UnknownRendererError as exc:
        raise CheckpointError(f"{Path(subject_dir) / 'subject.json'}: {exc.args[0]}") from None
    return cls(subject_dir, device)


class StageSet:
    """The stages of this process, built once (models load lazily inside them).

    Motion: ``backend.motion.stage.MotionStage``. Plates: ``backend.render.stage.RenderStage`` with
    the renderer each subject's ``subject.json`` names. Subclasses (tests) may return ``None`` from
    :meth:`_render_stage` for a landmarks-only backend.
    """

    def __init__(self, device: Any, subjects: Any):
        self.device = device
        self.subjects = subjects
        self.motion = self._motion_stage()
        self.render = self._render_stage()

    def _motion_stage(self) -> Stage:
        motion_stage = _import("backend.motion.stage:MotionStage", "motion stage")
        return motion_stage(device=self.device, subjects=self.subjects)

    def _render_stage(self) -> Stage | None:
        render_stage = _import("backend.render.stage:RenderStage", "render stage")
        for kind in RENDERERS:   # a broken renderer fails here, at start-up, not in the first plate job
            renderer_class(kind)
        return render_stage(device=self.device, subjects=self.subjects, open_renderer=open_renderer)

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
