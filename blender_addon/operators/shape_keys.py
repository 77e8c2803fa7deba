"""Drive Shape Keys: key a mesh's ARKit-named shape keys on every frame of the take.

Weights are solved from the take's landmark F-curves as they are now (edits
included) by ``exporters.arkit_curves``. The keys go into one action of the
mesh's shape-key datablock, made for this purpose and marked as the add-on's;
running again builds a fresh action and deletes the previous one of ours, so
nothing is keyed twice. An action of the user's that was there is kept (with a
fake user) and reported. Shape keys with other names are reported, never fatal.
"""
from __future__ import annotations

import bpy
import numpy as np

from .. import bridge_api, compat
from ..exporters import arkit_curves
from ..shape_key_names import match_shape_keys

ACTION_PROP = "emogene_arkit"
LINEAR = 1
#: what the last run did, for scripts and tests: matched {key: arkit}, unmatched keys, missing ARKit names
LAST_RESULT: dict = {}


def _key_datablock(obj):
    data = getattr(obj, "data", None)
    return getattr(data, "shape_keys", None) if obj is not None and obj.type == "MESH" else None


def _fill(fcurve, frames: np.ndarray, values: np.ndarray) -> None:
    points = fcurve.keyframe_points
    if len(points):
        points.clear()
    points.add(len(frames))
    co = np.empty(2 * len(frames), np.float32)
    co[0::2], co[1::2] = frames, values
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(len(frames), LINEAR, np.int32))
    fcurve.update()


def drive(obj, take: arkit_curves.TakeWeights) -> dict:
    """Key ``obj``'s matching shape keys from ``take``; returns what matched (see :data:`LAST_RESULT`)."""
    key = _key_datablock(obj)
    if key is None:
        raise ValueError(f"{obj.name if obj else 'nothing'} is not a mesh with shape keys: add ARKit-named shape "
                         "keys (eyeBlinkLeft, jawOpen, ...) first")
    names = bridge_api.module("arkit_names")
    matched, unmatched, missing = match_shape_keys([b.name for b in key.key_blocks], names.ARKIT_NAMES)
    if not matched:
        raise ValueError(f"none of the shape keys of {obj.name} has an ARKit name (eyeBlinkLeft, jawOpen, ...); "
                         f"found {', '.join(b.name for b in key.key_blocks[:8])}")
    anim = key.animation_data or key.animation_data_create()
    previous = anim.action
    action = bpy.data.actions.new(f"EmoGene ARKit {obj.name}")
    action[ACTION_PROP] = True
    anim.action = action
    kept = ""
    if previous is not None:
        if previous.get(ACTION_PROP):
            if previous.users == 0:
                bpy.data.actions.remove(previous)
        else:
            previous.use_fake_user = True
            kept = previous.name
    frames = take.frames.astype(np.float64)
    for key_name, arkit_name in matched.items():
        column = take.weights[:, names.ARKIT_INDEX[arkit_name]]
        fcurve = compat.ensure_fcurve(key, action, f'key_blocks["{key_name}"].value', group="ARKit")
        _fill(fcurve, frames, column)
        key.key_blocks[key_name].value = float(column[0])
    result = {"matched": matched, "unmatched": unmatched, "missing": missing, "frames": [int(take.frames[0]),
              int(take.frames[-1])], "action": action.name, "kept_action": kept}
    LAST_RESULT.clear()
    LAST_RESULT.update(result)
    return result


def _target(context, name: str):
    if name:
        return bpy.data.objects.get(name)
    return context.active_object


class EMOGENE_OT_drive_shape_keys(bpy.types.Operator):
    """Key the ARKit-named shape keys of a mesh on every frame of the take, from the landmark curves as edited"""
    bl_idname = "emogene.drive_shape_keys"
    bl_label = "Drive Shape Keys"
    bl_options = {"REGISTER", "UNDO"}

    target: bpy.props.StringProperty(name="Mesh", description="Mesh object to drive (default: the active object)")

    @classmethod
    def poll(cls, context):
        from ..importers import take
        return context.scene is not None and take.current_take(context.scene) is not None

    def execute(self, context):
        obj = _target(context, self.target)
        try:
            weights = arkit_curves.solve_take(context.scene)
            result = drive(obj, weights)
        except ValueError as exc:
            self.report({"ERROR"}, f"Drive Shape Keys: {exc}")
            return {"CANCELLED"}
        if result["unmatched"]:
            self.report({"WARNING"}, f"Not ARKit names, left alone: {', '.join(result['unmatched'])}")
        if result["kept_action"]:
            self.report({"INFO"}, f"Your action {result['kept_action']!r} was replaced and kept with a fake user")
        first, last = result["frames"]
        matched = ", ".join(k if k == a else f"{k} ({a})" for k, a in result["matched"].items())
        self.report({"INFO"}, f"Keyed {len(result['matched'])} shape keys of {obj.name} on frames {first}-{last}: "
                              f"{matched}; {len(result['missing'])} ARKit shapes have no key on this mesh")
        return {"FINISHED"}


CLASSES = (EMOGENE_OT_drive_shape_keys,)
