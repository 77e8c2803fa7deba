"""Key emotion: set and key a preset blend (e.g. happy 0.8) at the current frame."""
from __future__ import annotations

import bpy

from .. import emotion_track
from ..properties import EMOTIONS


class EMOGENE_OT_key_emotion(bpy.types.Operator):
    """Key all emotion weights and the intensity at the current frame (the rest of the blend is neutral)"""
    bl_idname = "emogene.key_emotion"
    bl_label = "Key Emotion"
    bl_options = {"REGISTER", "UNDO"}

    emotion: bpy.props.EnumProperty(
        name="Emotion", items=[(e, e.capitalize(), "") for e in EMOTIONS], default="happy")
    weight: bpy.props.FloatProperty(name="Weight", default=0.8, min=0.0, max=1.0)
    intensity: bpy.props.FloatProperty(name="Intensity", default=1.0, min=0.0, max=1.0)
    frame: bpy.props.IntProperty(name="Frame", default=-1,
                                 description="Frame to key (-1 = the current frame)")

    def execute(self, context):
        scene = context.scene
        frame = scene.frame_current if self.frame < 0 else self.frame
        emotion_track.key_preset(scene, frame, self.emotion, self.weight, self.intensity)
        self.report({"INFO"}, f"Keyed {self.emotion} {self.weight:.2f} (intensity {self.intensity:.2f}) at frame {frame}")
        return {"FINISHED"}


class EMOGENE_OT_add_anchor(bpy.types.Operator):
    """Create the Empty that marks where the subject's head is (the face rig and the camera are relative to it)"""
    bl_idname = "emogene.add_anchor"
    bl_label = "Add Subject Anchor"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from .. import submit
        settings = context.scene.emogene
        settings.anchor = None
        anchor = submit.ensure_anchor(context.scene, settings)
        anchor.location = context.scene.cursor.location
        return {"FINISHED"}


CLASSES = (EMOGENE_OT_key_emotion, EMOGENE_OT_add_anchor)
