"""Conversions between the bridge's landmark/pose space and the Blender face rig (numpy only).

Canonical face space (bridge contract): +x the subject's left, +y up, +z toward
the viewer, inter-ocular distance 1. The rig maps canonical ``(x, y, z)`` to
Blender ``(x, -z, y)`` (Z up, the face looks toward -Y) at 0.063 m per unit.
Head pose arrives in the camera frame with OpenCV axes (x right, y down, z
forward), ``p_cam = R @ diag(1,-1,-1) @ p + t`` with ``t`` in canonical units.
The head Empty carries the rotation expressed in rig axes and the translation
relative to the take's first frame, so frame one sits exactly on the anchor.
"""
from __future__ import annotations

import numpy as np

METRES_PER_UNIT = 0.063
#: canonical axes -> Blender rig axes
CANONICAL_TO_RIG = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: OpenCV camera axes <-> canonical-style axes (y up, z toward the viewer)
FLIP_YZ = np.diag([1.0, -1.0, -1.0])
#: a camera-frame vector -> rig axes
CAMERA_TO_RIG = CANONICAL_TO_RIG @ FLIP_YZ


def landmarks_to_rig(points: np.ndarray) -> np.ndarray:
    """Canonical ``[..., 3]`` -> rig-local metres."""
    return np.asarray(points, np.float64) @ CANONICAL_TO_RIG.T * METRES_PER_UNIT


def landmarks_from_rig(points: np.ndarray) -> np.ndarray:
    """Rig-local metres ``[..., 3]`` -> canonical units."""
    return np.asarray(points, np.float64) @ CANONICAL_TO_RIG / METRES_PER_UNIT


def rotation_to_rig(rotation: np.ndarray) -> np.ndarray:
    """OpenCV-frame head rotation ``[..., 3, 3]`` -> the same rotation in rig axes (frontal = identity)."""
    return CAMERA_TO_RIG @ np.asarray(rotation, np.float64) @ CAMERA_TO_RIG.T


def rotation_from_rig(rotation: np.ndarray) -> np.ndarray:
    return CAMERA_TO_RIG.T @ np.asarray(rotation, np.float64) @ CAMERA_TO_RIG


def translation_to_rig(translation: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Camera-frame translation ``[F, 3]`` (canonical units) -> rig metres relative to ``reference``."""
    delta = np.asarray(translation, np.float64) - np.asarray(reference, np.float64)
    return delta @ CAMERA_TO_RIG.T * METRES_PER_UNIT


def translation_from_rig(location: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.asarray(location, np.float64) @ CAMERA_TO_RIG / METRES_PER_UNIT + np.asarray(reference, np.float64)


def matrices_to_euler_xyz(rotation: np.ndarray) -> np.ndarray:
    """``[F, 3, 3]`` rotation matrices -> continuous XYZ Euler angles ``[F, 3]`` (Blender's XYZ order).

    Blender's 'XYZ' mode composes ``R = Rz @ Ry @ Rx``; angles are unwrapped over
    frames so keyed curves do not jump by 2*pi.
    """
    r = np.asarray(rotation, np.float64)
    sy = np.clip(-r[:, 2, 0], -1.0, 1.0)
    y = np.arcsin(sy)
    x = np.arctan2(r[:, 2, 1], r[:, 2, 2])
    z = np.arctan2(r[:, 1, 0], r[:, 0, 0])
    return np.unwrap(np.stack([x, y, z], axis=1), axis=0)


def euler_xyz_to_matrices(euler: np.ndarray) -> np.ndarray:
    e = np.asarray(euler, np.float64)
    cx, cy, cz = np.cos(e[:, 0]), np.cos(e[:, 1]), np.cos(e[:, 2])
    sx, sy, sz = np.sin(e[:, 0]), np.sin(e[:, 1]), np.sin(e[:, 2])
    out = np.empty((len(e), 3, 3))
    out[:, 0, 0] = cy * cz
    out[:, 0, 1] = sx * sy * cz - cx * sz
    out[:, 0, 2] = cx * sy * cz + sx * sz
    out[:, 1, 0] = cy * sz
    out[:, 1, 1] = sx * sy * sz + cx * cz
    out[:, 1, 2] = cx * sy * sz - sx * cz
    out[:, 2, 0] = -sy
    out[:, 2, 1] = sx * cy
    out[:, 2, 2] = cx * cy
    return out
