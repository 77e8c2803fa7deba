"""The "Face" rig: one Empty per landmark, parented to a head-pose Empty, keyed on every frame.

Keys are written straight into F-curves (``keyframe_points.foreach_set``), one
key per frame with linear interpolation, so the rig plays back exactly the
generated samples and the animator can edit them like any other curve.
"""
from __future__ import annotations

import bpy
import numpy as np

from .. import bridge_api, compat, rig_space

ROLE_PROP = "emogene_role"          # "head" | "landmark"
INDEX_PROP = "emogene_landmark"     # landmark index on landmark Empties
LINEAR = 1                          # enum value of 'LINEAR' in Keyframe.interpolation


def landmark_names() -> tuple[str, ...]:
    return tuple(bridge_api.landmarks().LANDMARK_NAMES)


def _key_curve(obj, action, data_path: str, index: int, frames: np.ndarray, values: np.ndarray,
               group: str) -> None:
    fcurve = compat.ensure_fcurve(obj, action, data_path, index=index, group=group)
    points = fcurve.keyframe_points
    if len(points):
        points.clear()
    points.add(len(frames))
    co = np.empty(2 * len(frames), np.float32)
    co[0::2] = frames
    co[1::2] = values
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(len(frames), LINEAR, np.int32))
    fcurve.update()


def _animate(obj, name: str, channels: dict[str, np.ndarray], frames: np.ndarray, group: str):
    obj.animation_data_create()
    action = bpy.data.actions.new(name)
    obj.animation_data.action = action
    for data_path, values in channels.items():
        for axis in range(values.shape[1]):
            _key_curve(obj, action, data_path, axis, frames, values[:, axis], group)
    return action


def build(collection, anchor, frame_start: int, landmarks: np.ndarray, rotation: np.ndarray,
          translation: np.ndarray, prefix: str) -> tuple[object, list]:
    """Create the head Empty and NUM_LANDMARKS landmark Empties in ``collection``; returns ``(head, landmarks)``.

    ``landmarks [F,NUM_LANDMARKS,3]`` canonical, ``rotation [F,3,3]``/``translation [F,3]`` camera frame.
    """
    frames = np.arange(frame_start, frame_start + len(landmarks), dtype=np.float64)
    head = bpy.data.objects.new(f"{prefix}head", None)
    head.empty_display_type = "ARROWS"
    head.empty_display_size = 0.03
    head.rotation_mode = "XYZ"
    head[ROLE_PROP] = "head"
    head["emogene_translation_reference"] = [float(v) for v in translation[0]]
    collection.objects.link(head)
    if anchor is not None:
        head.parent = anchor
    euler = rig_space.matrices_to_euler_xyz(rig_space.rotation_to_rig(rotation))
    location = rig_space.translation_to_rig(translation, translation[0])
    _animate(head, f"{prefix}head", {"location": location, "rotation_euler": euler}, frames, "Head")

    positions = rig_space.landmarks_to_rig(landmarks)  # [F, NUM_LANDMARKS, 3]
    empties = []
    for index, name in enumerate(landmark_names()):
        obj = bpy.data.objects.new(f"{prefix}{name}", None)
        obj.empty_display_type = "SPHERE"
        obj.empty_display_size = 0.0015
        obj[ROLE_PROP] = "landmark"
        obj[INDEX_PROP] = index
        collection.objects.link(obj)
        obj.parent = head
        _animate(obj, f"{prefix}{name}", {"location": positions[:, index, :]}, frames, name)
        obj.location = positions[0, index]
        empties.append(obj)
    head.location = location[0]
    head.rotation_euler = euler[0]
    return head, empties


def remove_objects(objects) -> None:
    """Delete Empties made by :func:`build` and their actions."""
    for obj in list(objects):
        try:
            action = obj.animation_data.action if obj.animation_data else None
        except ReferenceError:
            continue
        bpy.data.objects.remove(obj, do_unlink=True)
        if action is not None and action.users == 0:
            bpy.data.actions.remove(action)


def find_head(collection):
    """The head Empty of a take's collection, or None."""
    if collection is None:
        return None
    for obj in collection.objects:
        if obj.get(ROLE_PROP) == "head":
            return obj
    return None


def find_landmarks(collection) -> list:
    """The take's landmark Empties sorted by landmark index."""
    found = [o for o in collection.objects if o.get(ROLE_PROP) == "landmark"]
    return sorted(found, key=lambda o: int(o[INDEX_PROP]))
