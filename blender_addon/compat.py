"""The few bpy API differences between Blender 4.2-4.5 and 5.0 that the add-on touches.

5.0 renamed the sequencer's ``sequences`` to ``strips`` and keeps an Action's
F-curves in per-slot channelbags (``Action.fcurves`` is gone); 4.4 introduced
slots with ``Action.fcurve_ensure_for_datablock``. Everything else is the same API.
"""
from __future__ import annotations

import bpy


def strips(sequence_editor):
    """Top-level strips of a sequence editor (``strips`` in 5.0, ``sequences`` before)."""
    return sequence_editor.strips if hasattr(sequence_editor, "strips") else sequence_editor.sequences


def all_strips(sequence_editor):
    """All strips including those inside meta strips."""
    if hasattr(sequence_editor, "strips_all"):
        return sequence_editor.strips_all
    return sequence_editor.sequences_all


def id_fcurves(id_data) -> list:
    """The F-curves animating ``id_data`` through its active action (empty when none)."""
    anim = getattr(id_data, "animation_data", None)
    action = anim.action if anim else None
    if action is None:
        return []
    slot = getattr(anim, "action_slot", None)
    if slot is not None:
        try:
            from bpy_extras.anim_utils import action_get_channelbag_for_slot
        except ImportError:  # 4.4: slots but no helper; the legacy list still works
            action_get_channelbag_for_slot = None
        if action_get_channelbag_for_slot is not None:
            channelbag = action_get_channelbag_for_slot(action, slot)
            return list(channelbag.fcurves) if channelbag is not None else []
    return list(getattr(action, "fcurves", []))


def find_fcurve(id_data, data_path: str, index: int = 0):
    """The F-curve for ``data_path[index]`` on ``id_data``, or None."""
    for fcurve in id_fcurves(id_data):
        if fcurve.data_path == data_path and fcurve.array_index == index:
            return fcurve
    return None


def ensure_fcurve(id_data, action, data_path: str, index: int = 0, group: str = ""):
    """Create (or find) the F-curve for ``data_path[index]`` of ``id_data`` in ``action``.

    ``action`` must already be assigned to ``id_data.animation_data``.
    """
    if hasattr(action, "fcurve_ensure_for_datablock"):  # 4.4+ (group_name arrived in 5.0)
        try:
            return action.fcurve_ensure_for_datablock(id_data, data_path, index=index, group_name=group)
        except TypeError:
            fcurve = action.fcurve_ensure_for_datablock(id_data, data_path, index=index)
            if group and hasattr(action, "groups"):
                fcurve.group = action.groups.get(group) or action.groups.new(group)
            return fcurve
    fcurve = action.fcurves.find(data_path, index=index)
    if fcurve is None:
        fcurve = action.fcurves.new(data_path, index=index, action_group=group)
    return fcurve


def set_status_text(text: str | None) -> None:
    """Status-bar text of every window's workspace (no-op without a window, e.g. in background)."""
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        workspace = getattr(window, "workspace", None)
        if workspace is not None:
            try:
                workspace.status_text_set(text)
            except (AttributeError, RuntimeError, TypeError):
                pass


def redraw_ui() -> None:
    """Ask every area to redraw (progress and state live in the panels)."""
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        screen = window.screen
        if screen is None:
            continue
        for area in screen.areas:
            if area.type in {"SEQUENCE_EDITOR", "VIEW_3D", "PROPERTIES", "DOPESHEET_EDITOR", "GRAPH_EDITOR"}:
                area.tag_redraw()
