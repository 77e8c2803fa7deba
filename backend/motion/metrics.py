"""Landmark metrics: M-LMD / F-LMD, mouth-opening agreement, emotion accuracy per class."""
from __future__ import annotations

import numpy as np

from backend.motion.landmarks import MOUTH, mouth_opening
from bridge.landmarks import EYE_L, EYE_R, as_slice


def landmark_distance(pred: np.ndarray, target: np.ndarray, points: np.ndarray | None = None) -> float:
    """Mean Euclidean distance per point and frame after mean-centring each frame's point set.

    ``points=MOUTH`` is M-LMD, ``None`` (all NUM_LANDMARKS) is F-LMD; units are those of the inputs.
    """
    idx = np.arange(pred.shape[1]) if points is None else points
    p = pred[:, idx] - pred[:, idx].mean(1, keepdims=True)
    t = target[:, idx] - target[:, idx].mean(1, keepdims=True)
    return float(np.linalg.norm(p - t, axis=-1).mean())


def lmd_pair(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    return {"m_lmd": landmark_distance(pred, target, MOUTH), "f_lmd": landmark_distance(pred, target)}


def pixels_per_unit(landmarks_image: np.ndarray | None) -> float | None:
    """Source-video pixels per canonical unit (= the inter-ocular distance in pixels), if image landmarks exist."""
    if landmarks_image is None:
        return None
    left = landmarks_image[:, as_slice(EYE_R)].mean(1)    # image left: the subject's right eye
    right = landmarks_image[:, as_slice(EYE_L)].mean(1)
    return float(np.median(np.linalg.norm(right - left, axis=-1)))


def mouth_opening_correlation(pred: np.ndarray, target: np.ndarray) -> float:
    a, b = mouth_opening(pred), mouth_opening(target)
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
