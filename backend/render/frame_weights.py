"""How often each training frame is drawn: uniformly (the default), or more often where the
subject's mouth takes a shape it rarely shows (pressed lips, a wide closed mouth), so the NeRF
sees rare mouth shapes often enough to render them.

The mouth shape of a frame is three canonical-landmark measures — inner-lip opening, mouth
width (corner to corner) and outer-lip height — each standardised over the training frames.
A frame's weight is the inverse of a Gaussian kernel density of that shape among the training
frames, normalised to a median of 1 and capped (a handful of outliers must not take over).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.motion.landmarks import mouth_opening

#: iBUG indices: mouth corners (width) and outer-lip middle top / bottom (height)
MOUTH_CORNERS = (48, 54)
OUTER_LIP_MIDDLE = (51, 57)


@dataclass
class RareMouthWeighting:
    """Frame weights ∝ 1 / density of the frame's mouth shape, capped at ``cap`` × the median."""
    cap: float = 8.0          # largest weight relative to the median frame
    bandwidth: float = 0.5    # kernel width in standard deviations of each measure


def mouth_shape(landmarks: np.ndarray) -> np.ndarray:
    """``[T, 3]``: inner-lip opening, mouth width, outer-lip height of canonical ``[T, 68, 3]`` landmarks."""
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.ndim != 3 or landmarks.shape[-1] != 3:
        raise ValueError(f"mouth_shape needs canonical landmarks [T, 68, 3], got shape {landmarks.shape}")
    width = landmarks[:, MOUTH_CORNERS[1], 0] - landmarks[:, MOUTH_CORNERS[0], 0]
    height = landmarks[:, OUTER_LIP_MIDDLE[0], 1] - landmarks[:, OUTER_LIP_MIDDLE[1], 1]
    return np.stack([mouth_opening(landmarks), width, height], axis=1)


def rare_mouth_weights(landmarks: np.ndarray, config: RareMouthWeighting | None = None) -> np.ndarray:
    """Sampling weight per frame ``[T]`` (median 1, at most ``cap``) from canonical landmarks."""
    config = config or RareMouthWeighting()
    if config.cap < 1 or config.bandwidth <= 0:
        raise ValueError(f"rare-mouth weighting needs cap >= 1 and bandwidth > 0, got {config}")
    shape = mouth_shape(landmarks)
    z = (shape - shape.mean(0)) / np.maximum(shape.std(0), 1e-9)
    density = np.zeros(len(z))
    for start in range(0, len(z), 512):             # chunks keep the [chunk, T] distance matrix small
        d2 = ((z[start:start + 512, None] - z[None]) ** 2).sum(-1)
        density[start:start + 512] = np.exp(-0.5 * d2 / config.bandwidth ** 2).sum(1)
    weights = 1.0 / density
    weights /= np.median(weights)
    return np.minimum(weights, config.cap)
