"""Generate, Cancel and Fetch Results: thin operators over ``jobs`` (which holds the sessions and the timer)."""
from __future__ import annotations

import bpy

from .. import running_jobs, submit


def _run_starter(operator, context, starter, started_message):
    """Run ``starter(context, scene)``; report its SubmitError in the panel and the status bar."""
    try:
        session = starter(context, context.scene)
    except submit.SubmitError as exc:
        context.scene.emogene.job_state = "ERROR"
        context.scene.emogene.status = str(exc)
        operator.report({"ERROR"}, str(exc))
        return {"CANCELLED"}
    operator.report({"INFO"}, started_message(session))
    return {"FINISHED"}


class EMOGENE_OT_generate(bpy.types.Operator):
    """Send the audio and the emotion track to the backend; results are imported when done"""
    bl_idname = "emogene.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return context.scene is not None and not running_jobs.job_running(context.scene)

    def execute(self, context):
        return _run_starter(self, context, running_jobs.start, lambda session: f"EmoGene: job sent to {session.address}")


class EMOGENE_OT_cancel(bpy.types.Operator):
    """Stop the running job; nothing is imported"""
    bl_idname = "emogene.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return context.scene is not None and context.scene.name in running_jobs.SESSIONS

    def execute(self, context):
        session = running_jobs.SESSIONS.get(context.scene.name)
        if session is None:
            return {"CANCELLED"}
        session.cancel()
        context.scene.emogene.job_state = "CANCELLING"
        context.scene.emogene.status = session.status
        return {"FINISHED"}


class EMOGENE_OT_fetch_results(bpy.types.Operator):
    """Get the results of the job this .blend saved (started before Blender was closed or the file
    reloaded, or cut off from the backend) and import them as Generate would"""
    bl_idname = "emogene.fetch_results"
    bl_label = "Fetch Results"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        scene = context.scene
        return scene is not None and bool(scene.emogene.job_id) and not running_jobs.job_running(scene)

    def execute(self, context):
        return _run_starter(self, context, running_jobs.start_fetch,
                       lambda session: f"EmoGene: fetching job {session.job_id} from {session.address}")


class EMOGENE_OT_report(bpy.types.Operator):
    """Internal: show a message from a timer in the status bar and Info log"""
    bl_idname = "emogene.report"
    bl_label = "EmoGene Message"
    bl_options = {"INTERNAL"}

    level: bpy.props.EnumProperty(items=[("INFO", "Info", ""), ("WARNING", "Warning", ""),
                                         ("ERROR", "Error", "")], default="INFO")
    message: bpy.props.StringProperty()

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}


CLASSES = (EMOGENE_OT_generate, EMOGENE_OT_cancel, EMOGENE_OT_fetch_results, EMOGENE_OT_report)
