"""The add-on's data on each Scene: the animatable emotion track and the Generate settings.

``scene.emogene_emotion`` holds one weight per emotion (``bridge.emotions``
order) and an intensity. They are ordinary animatable properties, so their keys
appear in the Dope Sheet and Graph Editor under "EmoGene Emotion".
``scene.emogene`` holds the panel's settings and the running job's visible state.
"""
from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from . import bridge_api

EMOTIONS: tuple[str, ...] = tuple(bridge_api.emotions().EMOTIONS)
EMOTION_GROUP = "EmoGene Emotion"
EMOTION_PATH = "emogene_emotion"


def _emotion_annotations() -> dict:
    annotations = {
        name: FloatProperty(name=name.capitalize(), default=1.0 if name == "neutral" else 0.0,
                            min=0.0, soft_max=1.0, description=f"Weight of '{name}' in the emotion blend")
        for name in EMOTIONS
    }
    annotations["intensity"] = FloatProperty(
        name="Intensity", default=1.0, min=0.0, max=1.0,
        description="How strongly the blend is expressed (0 = no emotional displacement)")
    return annotations


EmogeneEmotion = type("EmogeneEmotion", (bpy.types.PropertyGroup,), {
    "__annotations__": _emotion_annotations(),
    "__doc__": "Per-frame emotion weights and intensity (animatable)",
})


def _camera_poll(self, obj):
    return obj.type == "CAMERA"


def _anchor_poll(self, obj):
    return obj.type == "EMPTY"


JOB_STATES = [
    ("IDLE", "Idle", ""), ("RUNNING", "Running", ""), ("CANCELLING", "Cancelling", ""),
    ("DONE", "Done", ""), ("ERROR", "Error", ""), ("CANCELLED", "Cancelled", ""),
]


class EmogeneSettings(bpy.types.PropertyGroup):
    # audio
    audio_source: EnumProperty(name="Audio", items=[
        ("STRIP", "Sound strip", "A sound strip of this scene's sequencer"),
        ("FILE", "File", "An audio file on disk")], default="STRIP")
    sound_strip: StringProperty(name="Sound strip", description="Sound strip that drives the face")
    audio_file: StringProperty(name="Audio file", subtype="FILE_PATH")
    # what and where
    subject: StringProperty(name="Subject", default="default",
                            description="Backend subject (person) to render; see Connect for the list")
    use_strip_range: BoolProperty(name="Range from strip", default=True,
                                  description="Generate for the sound strip's frames (else the range below)")
    frame_start: IntProperty(name="Start", default=1, min=0)
    frame_end: IntProperty(name="End", default=100, min=0)
    camera: PointerProperty(name="Camera", type=bpy.types.Object, poll=_camera_poll,
                            description="Camera for the plates (empty = the scene camera)")
    use_subject_camera: BoolProperty(name="Subject's own camera", default=False,
                                     description="Ignore the Blender camera: render from the camera the subject was filmed with")
    anchor: PointerProperty(name="Subject anchor", type=bpy.types.Object, poll=_anchor_poll,
                            description="Empty marking the head's place; the face rig is parented to it")
    resolution_mode: EnumProperty(name="Resolution", items=[
        ("SUBJECT", "Subject", "The subject's own resolution with its own camera; "
                               "with a Blender camera, the scene's render size, scaled down to the subject's limit "
                               "(same framing) when it is larger"),
        ("SCENE", "Scene", "The scene's render resolution (after percentage)"),
        ("CUSTOM", "Custom", "Width and height below")], default="SUBJECT")
    resolution_x: IntProperty(name="Width", default=512, min=16, max=8192)
    resolution_y: IntProperty(name="Height", default=512, min=16, max=8192)
    output: EnumProperty(name="Output", items=[
        ("LANDMARKS", "Landmarks only", "Face rig curves only (fast)"),
        ("PLATES", "Landmarks + plates", "Face rig and a rendered image sequence")], default="LANDMARKS")
    use_camera_background: BoolProperty(name="Plates as camera background", default=False)
    seed: IntProperty(name="Seed", default=0, min=0)
    temperature: FloatProperty(name="Temperature", default=1.0, min=0.0, soft_max=2.0,
                               description="Variation of the generated motion (0 = deterministic)")
    idle_pose: BoolProperty(name="Idle head motion", default=True,
                            description="Sample natural head motion in silent spans")
    # job state shown by the panel (written by the timer)
    job_state: EnumProperty(name="State", items=JOB_STATES, default="IDLE")
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    status: StringProperty(name="Status", default="")
    take_counter: IntProperty(name="Takes", default=0, min=0)
    # Generate All Marked (Batch panel) sends a job for every scene with this ticked
    batch: BoolProperty(name="In batch", default=False,
                        description="Generate All Marked sends this scene as its own job")
    # the backend's id of the job in flight (or cut off) and what its import needs (JSON): saved in
    # the .blend, so Fetch Results can get the take after a reload; cleared once imported and acked
    job_id: StringProperty(name="Job", default="")
    # the job's secret token from the backend (fetch/ack/cancel need it); saved beside the id
    job_token: StringProperty(name="Job token", default="", options={"HIDDEN"})
    job_import: StringProperty(name="Job import settings", default="")


CLASSES = (EmogeneEmotion, EmogeneSettings)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.emogene_emotion = PointerProperty(type=EmogeneEmotion)
    bpy.types.Scene.emogene = PointerProperty(type=EmogeneSettings)


def unregister():
    del bpy.types.Scene.emogene
    del bpy.types.Scene.emogene_emotion
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
