"""Export the face rig's animation as CSV, JSON or NPZ, read from its F-curves.

Values are ``FCurve.evaluate(frame)`` of the rig as it is now, so the
animator's edits are exported. Landmarks are in the rig's local space (metres,
relative to the head Empty; Blender axes: X the subject's left, Y into the face,
Z up); NPZ and JSON also carry them in canonical units. Head pose: location
(metres, relative to the anchor) and XYZ Euler rotation (radians) in rig axes,
plus the rotation matrix.

CSV columns: ``frame,index,name,x,y,z,rot_x,rot_y,rot_z``; one row per landmark
and frame, and one ``index=-1, name=head`` row per frame carrying the head's
location in x,y,z and its Euler angles in rot_*.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

import numpy as np

from .. import bridge_api, compat, rig_space
from ..importers import face_rig, take

_LANDMARKS = bridge_api.landmarks()

@dataclass
class RigCurves:
    frames: np.ndarray           # int [F]
    names: list[str]             # one name per landmark (bridge.landmarks)
    positions: np.ndarray        # float64 [F, NUM_LANDMARKS, 3] rig-local metres
    head_location: np.ndarray    # float64 [F, 3]
    head_rotation: np.ndarray    # float64 [F, 3] XYZ Euler, radians

    @property
    def canonical(self) -> np.ndarray:
        return rig_space.landmarks_from_rig(self.positions)

    @property
    def head_matrix(self) -> np.ndarray:
        return rig_space.euler_xyz_to_matrices(self.head_rotation)


def _channel(obj, data_path: str, frames: np.ndarray) -> np.ndarray:
    """``[F, 3]`` values of ``obj.<data_path>`` over ``frames`` (static value where not animated)."""
    out = np.empty((len(frames), 3))
    static = getattr(obj, data_path)
    for axis in range(3):
        fcurve = compat.find_fcurve(obj, data_path, axis)
        out[:, axis] = [fcurve.evaluate(f) for f in frames] if fcurve else static[axis]
    return out


def read(scene, collection=None) -> RigCurves:
    """The current take's curves over the take's frame range."""
    collection = collection or take.current_take(scene)
    if collection is None:
        raise ValueError("this scene has no EmoGene take to export; press Generate first")
    first, last = (int(v) for v in collection[take.FRAMES_PROP])
    frames = np.arange(first, last + 1)
    head = face_rig.find_head(collection)
    empties = face_rig.find_landmarks(collection)
    if head is None or len(empties) != _LANDMARKS.NUM_LANDMARKS:
        raise ValueError(f"take {collection.name!r} is incomplete: head {'found' if head else 'missing'}, "
                         f"{len(empties)} of {_LANDMARKS.NUM_LANDMARKS} landmark Empties")
    positions = np.stack([_channel(obj, "location", frames) for obj in empties], axis=1)
    names = [face_rig.landmark_names()[int(o[face_rig.INDEX_PROP])] for o in empties]
    return RigCurves(frames, names, positions, _channel(head, "location", frames),
                     _channel(head, "rotation_euler", frames))


def write_csv(c: RigCurves, path: str) -> None:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["frame", "index", "name", "x", "y", "z", "rot_x", "rot_y", "rot_z"])
        for t, frame in enumerate(c.frames):
            out.writerow([int(frame), -1, "head", *map(repr, c.head_location[t]), *map(repr, c.head_rotation[t])])
            for i, name in enumerate(c.names):
                out.writerow([int(frame), i, name, *map(repr, c.positions[t, i]), "", "", ""])


def write_json(c: RigCurves, path: str) -> None:
    doc = {
        "format": "emogene-landmark-curves", "version": 1,
        "space": "blender rig: metres, X subject's left, Y into the face, Z up; head relative to the anchor",
        "frames": c.frames.tolist(), "names": c.names,
        "landmarks": c.positions.tolist(), "landmarks_canonical": c.canonical.tolist(),
        "head_location": c.head_location.tolist(), "head_rotation_euler_xyz": c.head_rotation.tolist(),
        "head_rotation_matrix": c.head_matrix.tolist(),
    }
    with open(path, "w") as fh:
        json.dump(doc, fh)


def write_npz(c: RigCurves, path: str) -> None:
    np.savez(path, frames=c.frames, names=np.array(c.names), landmarks=c.positions,
             landmarks_canonical=c.canonical, head_location=c.head_location,
             head_rotation_euler_xyz=c.head_rotation, head_rotation_matrix=c.head_matrix)


def load(path: str) -> RigCurves:
    """Read an exported file back (any of the three formats)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        with np.load(path) as z:
            return RigCurves(z["frames"], [str(n) for n in z["names"]], z["landmarks"], z["head_location"],
                             z["head_rotation_euler_xyz"])
    if ext == ".json":
        with open(path) as fh:
            d = json.load(fh)
        return RigCurves(np.array(d["frames"]), d["names"], np.array(d["landmarks"]),
                         np.array(d["head_location"]), np.array(d["head_rotation_euler_xyz"]))
    if ext == ".csv":
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        frames = sorted({int(r["frame"]) for r in rows})
        index_of = {f: k for k, f in enumerate(frames)}
        names = [""] * _LANDMARKS.NUM_LANDMARKS
        positions = np.zeros((len(frames), _LANDMARKS.NUM_LANDMARKS, 3))
        head_loc = np.zeros((len(frames), 3))
        head_rot = np.zeros((len(frames), 3))
        for r in rows:
            t, i = index_of[int(r["frame"])], int(r["index"])
            xyz = [float(r["x"]), float(r["y"]), float(r["z"])]
            if i < 0:
                head_loc[t] = xyz
                head_rot[t] = [float(r["rot_x"]), float(r["rot_y"]), float(r["rot_z"])]
            else:
                positions[t, i] = xyz
                names[i] = r["name"]
        return RigCurves(np.array(frames), names, positions, head_loc, head_rot)
    raise ValueError(f"unknown export format {ext!r}")
