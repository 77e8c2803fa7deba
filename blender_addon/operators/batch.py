"""Generate All Marked: every scene ticked "In batch" becomes its own job, sent in one click.

Each scene is prepared and sent exactly as its own Generate button would (its audio,
emotion track, camera and output). The shared timer (``running_jobs.generate_timer``)
drives all the jobs at once and imports each take into its scene as soon as that
job is done; a backend with several workers (``emogene serve --runner ray``) runs
them side by side, a single-worker backend one after another.
"""
from __future__ import annotations

import bpy

from .. import running_jobs, submit


def marked_scenes() -> list:
    return [scene for scene in bpy.data.scenes if scene.emogene.batch]


def start_batch(context) -> tuple[list[str], dict[str, str]]:
    """Send a job for every marked scene that has none running; (started scene names, {scene: why not})."""
    started, skipped = [], {}
    for scene in marked_scenes():
        if running_jobs.job_running(scene):
            skipped[scene.name] = "a job is already running for it"
            continue
        try:
            running_jobs.start(context, scene)
        except submit.SubmitError as exc:
            scene.emogene.job_state = "ERROR"
            scene.emogene.status = str(exc)
            skipped[scene.name] = str(exc)
            continue
        started.append(scene.name)
    return started, skipped


class EMOGENE_OT_generate_batch(bpy.types.Operator):
    """Send one job per scene ticked "In batch"; each take is imported into its scene as soon as it is done"""
    bl_idname = "emogene.generate_batch"
    bl_label = "Generate All Marked"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return any(scene.emogene.batch for scene in bpy.data.scenes)

    def execute(self, context):
        started, skipped = start_batch(context)
        for name, why in skipped.items():
            self.report({"WARNING"}, f"EmoGene batch: scene {name!r} not sent: {why}")
        if not started:
            self.report({"ERROR"}, "EmoGene batch: no job was sent")
            return {"CANCELLED"}
        self.report({"INFO"}, f"EmoGene batch: {len(started)} job(s) sent ({', '.join(started)})")
        return {"FINISHED"}


class EMOGENE_OT_cancel_batch(bpy.types.Operator):
    """Stop the running jobs of every scene ticked "In batch"; nothing more is imported for them"""
    bl_idname = "emogene.cancel_batch"
    bl_label = "Cancel All Marked"

    @classmethod
    def poll(cls, context):
        return any(scene.name in running_jobs.SESSIONS for scene in marked_scenes())

    def execute(self, context):
        for scene in marked_scenes():
            session = running_jobs.SESSIONS.get(scene.name)
            if session is not None and not session.finished:
                session.cancel()
                scene.emogene.job_state = "CANCELLING"
                scene.emogene.status = session.status
        return {"FINISHED"}


def draw_batch(layout, context) -> None:
    """The Batch panel: each scene with its tick box and its job's progress, and the two buttons."""
    col = layout.column(align=True)
    for scene in bpy.data.scenes:
        settings = scene.emogene
        row = col.row(align=True)
        row.prop(settings, "batch", text=scene.name)
        if scene.name in running_jobs.SESSIONS:   # as the Generate panel decides "running"
            row.progress(factor=settings.progress, type="BAR", text=f"{settings.progress * 100:.0f}%")
        elif settings.job_state != "IDLE":
            row.label(text=settings.job_state.capitalize(), icon="ERROR" if settings.job_state == "ERROR" else "NONE")
    row = layout.row(align=True)
    row.operator("emogene.generate_batch", icon="PLAY")
    row.operator("emogene.cancel_batch", text="", icon="CANCEL")


CLASSES = (EMOGENE_OT_generate_batch, EMOGENE_OT_cancel_batch)
