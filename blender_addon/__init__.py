"""EmoGene for Blender: key emotions on the timeline, generate a talking face, get curves and plates back.

Each module registers its classes through one ``CLASSES`` tuple; this file
registers them in order and unregisters them in reverse.
"""
from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import preferences, properties, running_jobs
from .operators import batch, connect, emotion, export, generate, shape_keys
from .ui import panels

_MODULES_WITH_CLASSES = (generate, batch, emotion, connect, export, shape_keys, panels)


@persistent
def _drop_jobs_on_load(*_args):
    """Opening another .blend: running jobs belong to the old file's scenes. They keep running on the
    backend: a .blend saved mid-job gets them back with Fetch Results."""
    running_jobs.cancel_all(remote=False)


def register():
    preferences.register()
    properties.register()
    for module in _MODULES_WITH_CLASSES:
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.append(_drop_jobs_on_load)


def unregister():
    if _drop_jobs_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_drop_jobs_on_load)
    running_jobs.cancel_all()
    for module in reversed(_MODULES_WITH_CLASSES):
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
    properties.unregister()
    preferences.unregister()
