"""iBUG landmark index groups and small geometric measures used across the motion models."""
from __future__ import annotations

import numpy as np

from bridge import landmarks as _bridge_landmarks
from bridge.landmarks import NUM_LANDMARKS  # noqa: F401  (re-exported: the one definition)

JAW = np.asarray(_bridge_landmarks.JAW)
MOUTH = np.asarray(_bridge_landmarks.MOUTH)  # 20 mouth points (outer, inner)
#: (upper, lower) inner-lip pairs whose vertical gap is the mouth opening
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
#: (upper, lower) eyelid pairs; a blink moves the upper lid onto the lower
EYELID_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))


def mouth_opening(landmarks):
    """Mean vertical inner-lip gap per frame (canonical units, y up). Works on numpy or torch ``[..., NUM_LANDMARKS, 3]``."""
    gaps = [landmarks[..., u, 1] - landmarks[..., l, 1] for u, l in INNER_LIP_PAIRS]
    return sum(gaps) / len(gaps)


def inner_lip_gaps(landmarks):
    """The three vertical inner-lip gaps ``[..., 3]`` (numpy or torch)."""
    gaps = [landmarks[..., u, 1] - landmarks[..., l, 1] for u, l in INNER_LIP_PAIRS]
    if isinstance(landmarks, np.ndarray):
        return np.stack(gaps, axis=-1)
    import torch
    return torch.stack(gaps, dim=-1)


def eye_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mean eyelid gap per frame ``[...]`` (canonical units)."""
    return np.mean([landmarks[..., u, 1] - landmarks[..., l, 1] for u, l in EYELID_PAIRS], axis=0)
