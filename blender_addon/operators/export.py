"""Export the face rig's curves (CSV / JSON / NPZ), or the ARKit weights solved from them (Live Link Face
CSV / JSON), as they are after the animator's edits. The formats come from ``exporters.formats.FORMATS``."""
from __future__ import annotations

import bpy
from bpy_extras.io_utils import ExportHelper

from ..exporters import formats


class EMOGENE_OT_export_landmarks(bpy.types.Operator, ExportHelper):
    """Write the current take's landmark and head-pose curves to a file"""
    bl_idname = "emogene.export_landmarks"
    bl_label = "Export Landmark Curves"

    filename_ext = formats.FORMATS[0].extension
    filter_glob: bpy.props.StringProperty(default=";".join(f"*{e}" for e in formats.EXTENSIONS), options={"HIDDEN"})
    file_format: bpy.props.EnumProperty(name="Format", items=formats.enum_items(), default=formats.FORMATS[0].name)

    @classmethod
    def poll(cls, context):
        from ..importers import take
        return context.scene is not None and take.current_take(context.scene) is not None

    def check(self, context):
        self.filename_ext = formats.BY_NAME[self.file_format].extension
        return super().check(context)

    def execute(self, context):
        path = formats.target_path(bpy.path.abspath(self.filepath), self.file_format)
        try:
            frames = formats.BY_NAME[self.file_format].export(context.scene, path)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, f"Export failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {frames} frames to {path}")
        return {"FINISHED"}


CLASSES = (EMOGENE_OT_export_landmarks,)
