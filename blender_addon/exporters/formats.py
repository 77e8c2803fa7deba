"""The one table of export formats: the Export operator's menu, file filter and extensions all come from it.

Adding a format: one row here plus its writer (``write(data, path)``) in its own module; ``read(scene)``
gives the data (``landmark_curves.read`` for the rig's curves, ``arkit_curves.solve_take`` for ARKit weights).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from . import arkit_curves, landmark_curves


@dataclass(frozen=True)
class ExportFormat:
    name: str                           # EnumProperty identifier (the operator's ``file_format``)
    label: str
    description: str
    extension: str                      # with the dot
    read: Callable[[object], object]    # scene -> data with a ``frames`` array
    write: Callable[[object, str], None]

    def export(self, scene, path: str) -> int:
        """Read the current take of ``scene`` and write it to ``path``; returns the frames written."""
        data = self.read(scene)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.write(data, path)
        return len(data.frames)


_CURVES, _ARKIT = landmark_curves.read, arkit_curves.solve_take

FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat("CSV", "CSV", "One row per frame and landmark", ".csv", _CURVES, landmark_curves.write_csv),
    ExportFormat("JSON", "JSON", "Arrays per frame, with canonical-space copies", ".json", _CURVES,
                 landmark_curves.write_json),
    ExportFormat("NPZ", "NPZ", "numpy arrays, with canonical-space copies", ".npz", _CURVES,
                 landmark_curves.write_npz),
    ExportFormat("ARKIT_CSV", "ARKit CSV (Live Link Face)",
                 "52 ARKit blendshape weights per frame, Live Link Face columns", ".csv", _ARKIT,
                 arkit_curves.write_csv),
    ExportFormat("ARKIT_JSON", "ARKit JSON", "52 ARKit blendshape weights per frame as JSON", ".json", _ARKIT,
                 arkit_curves.write_json),
)
BY_NAME: dict[str, ExportFormat] = {f.name: f for f in FORMATS}
#: every extension a format writes (the file browser's filter)
EXTENSIONS: tuple[str, ...] = tuple(dict.fromkeys(f.extension for f in FORMATS))


def enum_items() -> list[tuple[str, str, str]]:
    return [(f.name, f.label, f.description) for f in FORMATS]


def target_path(path: str, name: str) -> str:
    """``path`` with the extension of format ``name`` (a known extension it already has is replaced)."""
    stem, ext = os.path.splitext(path)
    if ext.lower() not in EXTENSIONS:
        stem += ext
    return stem + BY_NAME[name].extension
