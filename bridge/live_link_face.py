"""ARKit weights as files: a Live Link Face-style CSV and a JSON document.

CSV layout, as Epic's Live Link Face app records it: a header ``Timecode,
BlendShapeCount, EyeBlinkLeft, ... TongueOut, HeadYaw, HeadPitch, HeadRoll,
LeftEyeYaw, ... RightEyeRoll`` (:data:`bridge.arkit_names.LIVE_LINK_FACE_HEADER`),
then one row per frame: timecode ``HH:MM:SS:FF.fff`` (frame within the second at
the nominal integer rate, then the sub-frame, always ``.000`` here),
``61``, the 52 weights (0..1) and 9 angles. Head angles are radians (see
:func:`bridge.arkit.head_angles` for the signs; 0 when no pose is given); eye
angles are 0 (the iBUG landmarks have no pupils).
"""
from __future__ import annotations

import csv
import json

import numpy as np

from bridge.arkit_basis import NOT_OBSERVABLE
from bridge.arkit_names import ARKIT_NAMES, BLEND_SHAPE_COUNT, LIVE_LINK_FACE_HEADER, NUM_SHAPES, POSE_COLUMNS


def timecode(frame: int, fps: float) -> str:
    """Live Link Face's ``HH:MM:SS:FF.fff`` for a frame number at ``fps`` (nominal integer rate)."""
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    rate = max(1, int(round(fps)))
    frame = int(frame)
    sign = "-" if frame < 0 else ""
    frame = abs(frame)
    seconds, ff = divmod(frame, rate)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}.000"


def _check(weights: np.ndarray, frames: np.ndarray, head: np.ndarray | None):
    weights = np.asarray(weights, np.float64)
    frames = np.asarray(frames).astype(int)
    if weights.ndim != 2 or weights.shape[1] != NUM_SHAPES:
        raise ValueError(f"weights must be [frames, {NUM_SHAPES}], got shape {weights.shape}")
    if frames.shape != (len(weights),):
        raise ValueError(f"need one frame number per row of weights ({len(weights)}), got {frames.shape}")
    pose = np.zeros((len(weights), len(POSE_COLUMNS)))
    if head is not None:
        head = np.asarray(head, np.float64)
        if head.shape != (len(weights), 3):
            raise ValueError(f"head angles must be [frames, 3], got shape {head.shape}")
        pose[:, :3] = head
    return weights, frames, pose


def write_csv(path, weights, frames, fps: float, head_angles=None) -> None:
    """Write the Live Link Face CSV (see the module docstring)."""
    weights, frames, pose = _check(weights, frames, head_angles)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(LIVE_LINK_FACE_HEADER)
        for f, row, angles in zip(frames, weights, pose):
            out.writerow([timecode(f, fps), BLEND_SHAPE_COUNT, *(f"{v:.6f}" for v in row),
                          *(f"{v:.6f}" for v in angles)])


def write_json(path, weights, frames, fps: float, head_angles=None, source: str = "") -> None:
    """Write the weights as JSON: names, frames, timecodes, ``weights [F][52]``, head angles."""
    weights, frames, pose = _check(weights, frames, head_angles)
    doc = {
        "format": "emogene-arkit-weights", "version": 1, "fps": float(fps), "source": source,
        "names": list(ARKIT_NAMES), "not_observable": list(NOT_OBSERVABLE),
        "frames": frames.tolist(), "timecodes": [timecode(f, fps) for f in frames],
        "weights": np.round(weights, 6).tolist(),
        "head_yaw_pitch_roll": np.round(pose[:, :3], 6).tolist() if head_angles is not None else None,
    }
    with open(path, "w") as fh:
        json.dump(doc, fh)


def read_csv(path) -> tuple[list[str], list[str], np.ndarray]:
    """(header, timecodes, values ``[F, 61]``: the 52 weights then the 9 angles) of a Live Link Face CSV."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path} is empty")
    header, body = rows[0], rows[1:]
    for row in body:
        if len(row) != len(header) or int(row[1]) != len(row) - 2:
            raise ValueError(f"{path}: row {row[0]!r} has {len(row)} columns / count {row[1]} "
                             f"for a header of {len(header)}")
    values = np.array([[float(v) for v in r[2:]] for r in body]) if body else np.zeros((0, len(header) - 2))
    return header, [r[0] for r in body], values


def write_take(folder, landmarks, rotation, fps: float, rest_frames=None, stem: str = "arkit") -> tuple[str, str]:
    """Solve ARKit weights for a generated track and write ``<folder>/arkit.csv`` and ``arkit.json``.

    ``rest_frames`` (bool ``[F]``, e.g. frames keyed neutral) narrows where the neutral face
    is looked for; ``rotation [F, 3, 3]`` (camera frame) gives the head angles.
    """
    import os

    from bridge.arkit import estimate_neutral, head_angles, solve

    neutral = estimate_neutral(landmarks, rest_frames)
    weights = solve(landmarks, neutral).weights
    frames = np.arange(len(weights))
    angles = head_angles(rotation) if rotation is not None else None
    csv_path, json_path = (os.path.join(str(folder), f"{stem}.{ext}") for ext in ("csv", "json"))
    write_csv(csv_path, weights, frames, fps, angles)
    write_json(json_path, weights, frames, fps, angles, source="emogene generate")
    return csv_path, json_path
