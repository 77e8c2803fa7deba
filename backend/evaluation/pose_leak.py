"""How much head pose leaks into FaceMesh's canonical landmarks, as a linear model fitted on real video.

The canonical fit removes the rigid head pose, but FaceMesh's face-oval and brow readings still
shift with pitch, yaw and roll. :func:`fit_pose_leak` regresses each clip's per-frame landmark
deviation from its own mean on the head's angle deviation from its mean, with the inner-lip opening
as a second regressor (speakers nod while they open the mouth; without it the jaw's speech motion
would be booked as pose). :meth:`PoseLeak.remove` subtracts the pose part only. No I/O here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from bridge.landmarks import MOUTH, NUM_LANDMARKS

#: inner-lip midpoints (upper, lower) of the iBUG mouth: the opening regressor
INNER_UPPER, INNER_LOWER = MOUTH[14], MOUTH[18]


def head_angles(rotation: np.ndarray) -> np.ndarray:
    """``[T, 3, 3]`` camera-frame rotations (OpenCV axes) -> ``[T, 3]`` pitch, yaw, roll in degrees."""
    rotation = np.asarray(rotation, np.float64)
    if rotation.ndim != 3 or rotation.shape[1:] != (3, 3):
        raise ValueError(f"rotations must be [frames, 3, 3], got {list(rotation.shape)}")
    return Rotation.from_matrix(rotation).as_euler("xyz", degrees=True)


def _opening(landmarks: np.ndarray) -> np.ndarray:
    return landmarks[:, INNER_LOWER, 1] - landmarks[:, INNER_UPPER, 1]


@dataclass
class PoseLeak:
    """Landmark shift per degree: ``coefficients[k]`` is the ``[NUM_LANDMARKS, 3]`` shift per degree of
    pitch (k = 0), yaw (1) and roll (2)."""
    coefficients: np.ndarray

    def __post_init__(self):
        self.coefficients = np.asarray(self.coefficients, np.float32)
        if self.coefficients.shape != (3, NUM_LANDMARKS, 3):
            raise ValueError(f"pose-leak coefficients must be [3, {NUM_LANDMARKS}, 3], "
                             f"got {list(self.coefficients.shape)}")

    def predict(self, angles: np.ndarray, reference_angles: np.ndarray) -> np.ndarray:
        """``[T, 3]`` angles and the reference's ``[3]`` -> the ``[T, NUM_LANDMARKS, 3]`` shift they cause."""
        d = np.asarray(angles, np.float32) - np.asarray(reference_angles, np.float32).reshape(1, 3)
        return np.einsum("tk,kld->tld", d, self.coefficients)

    def remove(self, landmarks: np.ndarray, angles: np.ndarray, reference_angles: np.ndarray) -> np.ndarray:
        """Landmarks as if the head had the reference's pose (the linear leak taken out)."""
        landmarks = np.asarray(landmarks, np.float32)
        angles = np.asarray(angles, np.float32)
        if angles.shape != (len(landmarks), 3):
            raise ValueError(f"need one [pitch, yaw, roll] per frame: {len(landmarks)} frames, "
                             f"angles {list(angles.shape)}")
        return landmarks - self.predict(angles, reference_angles)


def fit_pose_leak(clips: list[tuple[np.ndarray, np.ndarray]], min_frames: int = 10) -> PoseLeak:
    """Least-squares leak from real clips, each ``(landmarks [T, NUM_LANDMARKS, 3], angles [T, 3])``;
    every clip is centred on its own mean (identity and the clip's mean pose drop out)."""
    xs, ys = [], []
    for landmarks, angles in clips:
        landmarks = np.asarray(landmarks, np.float64)
        angles = np.asarray(angles, np.float64)
        if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 3) or angles.shape != (len(landmarks), 3):
            raise ValueError(f"each clip needs landmarks [T, {NUM_LANDMARKS}, 3] and angles [T, 3], got "
                             f"{list(landmarks.shape)} and {list(angles.shape)}")
        ok = np.isfinite(landmarks).all(axis=(1, 2)) & np.isfinite(angles).all(axis=1)
        if ok.sum() < min_frames:
            continue
        landmarks, angles = landmarks[ok], angles[ok]
        x = np.concatenate([angles, _opening(landmarks)[:, None]], axis=1)
        xs.append(x - x.mean(0))
        ys.append((landmarks - landmarks.mean(0)).reshape(len(landmarks), -1))
    if not xs:
        raise ValueError(f"no clip with at least {min_frames} finite frames to fit the pose leak on")
    beta = np.linalg.lstsq(np.concatenate(xs), np.concatenate(ys), rcond=None)[0]
    return PoseLeak(beta[:3].reshape(3, NUM_LANDMARKS, 3))
