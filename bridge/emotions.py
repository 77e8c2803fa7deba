"""The emotion vocabulary and its per-frame conditioning arrays (shared by Blender and backend)."""
from __future__ import annotations

import numpy as np

#: MEAD's eight emotions in the fixed order used by every array in the project.
EMOTIONS: tuple[str, ...] = (
    "neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised",
)
EMOTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}
NUM_EMOTIONS = len(EMOTIONS)
#: index of the rest state (a zero blend falls back to it)
NEUTRAL = EMOTION_INDEX["neutral"]

#: MEAD intensity levels 1..3 map to these intensities.
MEAD_LEVEL_INTENSITY = {1: 1.0 / 3.0, 2: 2.0 / 3.0, 3: 1.0}


def level_intensity(level: int | str | None, missing: float | None = None) -> float | None:
    """Intensity of a MEAD level (1, 2, 3 -> 1/3, 2/3, 1); ``missing`` when there is none (None, 0 or "").
    Any other level is a ValueError that names it."""
    if level is None or level == "" or level == 0:
        return missing
    try:
        return MEAD_LEVEL_INTENSITY[int(level)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"MEAD level must be 1, 2 or 3, got {level!r}") from None


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


def neutral_rows(frames: int) -> np.ndarray:
    """``[frames, NUM_EMOTIONS]`` float32 weights of pure neutral."""
    rows = np.zeros((frames, NUM_EMOTIONS), np.float32)
    rows[:, NEUTRAL] = 1.0
    return rows


def normalise_emotion(weights: np.ndarray, intensity: np.ndarray | None = None, *, frames: int | None = None,
                      repair: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The one normalisation of an emotion track: ``(weights [F, NUM_EMOTIONS], intensity [F], notes)``.

    Rows of the weights are scaled to sum to 1; a row that sums to 0 becomes pure
    neutral. Strict (default): negative or non-finite weights, intensity outside
    [0, 1] and a row count other than ``frames`` raise ``ValueError`` naming the
    problem. ``repair=True`` fixes them instead (non-finite -> 0, negative -> 0,
    intensity clipped, rows padded with the last row or neutral / cut) and says
    what it did in ``notes``. ``intensity=None`` means 1 for every frame.
    """
    notes: list[str] = []
    w = np.asarray(weights, np.float32)
    if repair and w.size == 0:
        w = np.zeros((0, NUM_EMOTIONS), np.float32)
    elif repair and w.ndim != 2 and w.size % NUM_EMOTIONS == 0:
        w = w.reshape(-1, NUM_EMOTIONS)
    if w.ndim != 2 or w.shape[1] != NUM_EMOTIONS:
        raise ValueError(f"emotion weights must have shape [frames, {NUM_EMOTIONS}], got {list(w.shape)}")
    i = np.ones(len(w), np.float32) if intensity is None else np.asarray(intensity, np.float32).reshape(-1)
    if frames is not None and (len(w) != frames or len(i) != frames):
        if not repair:
            raise ValueError(f"emotion arrays have {len(w)}/{len(i)} rows for {frames} frames")
        notes.append(f"emotion arrays have {len(w)}/{len(i)} rows for {frames} frames: padded/cut")
        w = np.concatenate([w, np.repeat(w[-1:] if len(w) else neutral_rows(1), max(0, frames - len(w)), 0)])[:frames]
        i = np.concatenate([i, np.repeat(i[-1:] if len(i) else np.zeros(1, np.float32),
                                         max(0, frames - len(i)))])[:frames]
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(i))):
        if not repair:
            raise ValueError("emotion weights contain NaN or infinity" if not np.all(np.isfinite(w))
                             else "emotion intensity must be finite and within [0, 1]")
        notes.append("non-finite emotion values replaced by 0")
        w, i = np.nan_to_num(w, nan=0, posinf=0, neginf=0), np.nan_to_num(i, nan=0, posinf=1, neginf=0)
    if np.any(w < 0):
        if not repair:
            raise ValueError("emotion weights must be >= 0")
        notes.append("negative emotion weights set to 0")
        w = np.maximum(w, 0)
    if np.any((i < 0) | (i > 1)):
        if not repair:
            raise ValueError("emotion intensity must be finite and within [0, 1]")
        notes.append("emotion intensity clipped to [0, 1]")
        i = np.clip(i, 0, 1)
    totals = w.sum(axis=1, keepdims=True)
    out = np.where(totals > 0, w / np.maximum(totals, 1e-12), 0.0).astype(np.float32)
    out[totals[:, 0] <= 0, NEUTRAL] = 1.0
    return out, np.ascontiguousarray(i, np.float32), notes


def normalise_weights(weights: np.ndarray) -> np.ndarray:
    """Rows of ``[frames, NUM_EMOTIONS]`` non-negative weights scaled to sum to 1 (see :func:`normalise_emotion`).

    A row that sums to 0 becomes pure neutral. Negative or non-finite weights
    are rejected with ``ValueError`` (they have no meaning as a blend).
    """
    return normalise_emotion(weights)[0]
