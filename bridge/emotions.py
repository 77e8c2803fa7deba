"""The emotion vocabulary and its per-frame conditioning arrays (shared by Blender and backend)."""
from __future__ import annotations

import numpy as np

#: MEAD's eight emotions in the fixed order used by every array in the project.
EMOTIONS: tuple[str, ...] = (
    "neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised",
)
EMOTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}
NUM_EMOTIONS = len(EMOTIONS)

#: MEAD intensity levels 1..3 map to these intensities.
MEAD_LEVEL_INTENSITY = {1: 1.0 / 3.0, 2: 2.0 / 3.0, 3: 1.0}


class UnknownEmotionError(ValueError):
    """An emotion name outside :data:`EMOTIONS`."""

    def __init__(self, name: str):
        super().__init__(f"unknown emotion {name!r}; expected one of {', '.join(EMOTIONS)}")
        self.name = name


def emotion_index(name: str) -> int:
    """Index of an emotion name (case-insensitive), or :class:`UnknownEmotionError`."""
    try:
        return EMOTION_INDEX[name.strip().lower()]
    except KeyError:
        raise UnknownEmotionError(name) from None


def normalise_weights(weights: np.ndarray) -> np.ndarray:
    """Rows of ``[frames, 8]`` non-negative weights scaled to sum to 1.

    A row that sums to 0 becomes pure neutral. Negative or non-finite weights
    are rejected with ``ValueError`` (they have no meaning as a blend).
    """
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[1] != NUM_EMOTIONS:
        raise ValueError(f"emotion weights must have shape [frames, {NUM_EMOTIONS}], got {list(weights.shape)}")
    if not np.all(np.isfinite(weights)):
        raise ValueError("emotion weights contain NaN or infinity")
    if np.any(weights < 0):
        raise ValueError("emotion weights must be >= 0")
    totals = weights.sum(axis=1, keepdims=True)
    out = np.where(totals > 0, weights / np.maximum(totals, 1e-12), 0.0).astype(np.float32)
    out[totals[:, 0] <= 0, EMOTION_INDEX["neutral"]] = 1.0
    return out
