"""EmoGene for Blender: key emotions on the timeline, generate a talking face, get curves and plates back.

Each module registers its classes through one ``CLASSES`` tuple; this file
registers them in order and unregisters them in reverse.
"""
from __future__ import annotations

import bpy

from . import preferences, properties
from .operators import connect, emotion, export, generate
from .ui import panels

_MODULES_WITH_CLASSES = (generate, emotion, connect, export, panels)


def register():
    preferences.register()
    properties.register()
    for module in _MODULES_WITH_CLASSES:
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)


def unregister():
    generate.cancel_all()
    for module in reversed(_MODULES_WITH_CLASSES):
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
    properties.unregister()
    preferences.unregister()
