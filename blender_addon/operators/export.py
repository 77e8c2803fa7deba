"""Export the face rig's curves (CSV / JSON / NPZ), or the ARKit weights solved from them (Live Link Face
CSV / JSON), as they are after the animator's edits."""
from __future__ import annotations

import os

import bpy
from bpy_extras.io_utils import ExportHelper

from ..exporters import arkit_curves, landmark_curves


class EMOGENE_OT_export_landmarks(bpy.types.Operator, ExportHelper):
    """Write the current take's landmark and head-pose curves to a file"""
    bl_idname = "emogene.export_landmarks"
    bl_label = "Export Landmark Curves"

    filename_ext = ".csv"
    filter_glob: bpy.props.StringProperty(default="*.csv;*.json;*.npz", options={"HIDDEN"})
    file_format: bpy.props.EnumProperty(name="Format", items=[
        ("CSV", "CSV", "One row per frame and landmark"),
        ("JSON", "JSON", "Arrays per frame, with canonical-space copies"),
        ("NPZ", "NPZ", "numpy arrays, with canonical-space copies"),
        ("ARKIT_CSV", "ARKit CSV (Live Link Face)", "52 ARKit blendshape weights per frame, Live Link Face columns"),
        ("ARKIT_JSON", "ARKit JSON", "52 ARKit blendshape weights per frame as JSON")], default="CSV")

    def _extension(self) -> str:
        return arkit_curves.FORMATS.get(self.file_format, "." + self.file_format.lower())

    @classmethod
    def poll(cls, context):
        from ..importers import take
        return context.scene is not None and take.current_take(context.scene) is not None

    def check(self, context):
        self.filename_ext = self._extension()
        return super().check(context)

    def execute(self, context):
        stem, ext = os.path.splitext(bpy.path.abspath(self.filepath))
        if ext.lower() not in {".csv", ".json", ".npz"}:
            stem += ext
        path = stem + self._extension()
        try:
            if self.file_format in arkit_curves.FORMATS:
                curves = arkit_curves.solve_take(context.scene)
                arkit_curves.write(curves, path, self.file_format)
            else:
                curves = landmark_curves.read(context.scene)
                landmark_curves.write(curves, path)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, f"Export failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {len(curves.frames)} frames to {path}")
        return {"FINISHED"}


CLASSES = (EMOGENE_OT_export_landmarks,)
