"""Reading the keyed emotion track as per-frame arrays, and keying presets.

Values come from ``FCurve.evaluate(frame)`` on the scene's active action, so the
animator's interpolation (Bezier, linear, constant, easing, modifiers) is
honoured exactly; ``frame_set`` is not used (it does not update scenes made with
``bpy.data.scenes.new()``). A property without an F-curve keeps its current value.
NLA strips are not evaluated: only the active action counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import compat
from .properties import EMOTION_GROUP, EMOTION_PATH, EMOTIONS


@dataclass
class EmotionArrays:
    weights: np.ndarray     # float32 [F, 8], raw keyed values clamped to >= 0 (normalised by the bridge)
    intensity: np.ndarray   # float32 [F], clamped to [0, 1]
    clamped: int            # how many values had to be clamped (Bezier overshoot, typed-in negatives)


def property_curve(scene, name: str):
    return compat.find_fcurve(scene, f"{EMOTION_PATH}.{name}")


def evaluate(scene, frame_start: int, frame_end: int) -> EmotionArrays:
    """Per-frame weights ``[F, 8]`` and intensity ``[F]`` for frames ``frame_start..frame_end`` inclusive."""
    if frame_end < frame_start:
        raise ValueError(f"frame range {frame_start}..{frame_end} is empty")
    frames = np.arange(frame_start, frame_end + 1, dtype=np.float64)
    track = scene.emogene_emotion

    def column(name: str) -> np.ndarray:
        fcurve = property_curve(scene, name)
        if fcurve is None:
            return np.full(len(frames), float(getattr(track, name)), dtype=np.float64)
        return np.array([fcurve.evaluate(f) for f in frames], dtype=np.float64)

    weights = np.stack([column(name) for name in EMOTIONS], axis=1)
    intensity = column("intensity")
    clamped = int(np.count_nonzero(weights < 0) + np.count_nonzero((intensity < 0) | (intensity > 1)))
    if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(intensity))):
        raise ValueError("the emotion track evaluates to NaN or infinity; check its F-curve modifiers")
    return EmotionArrays(np.clip(weights, 0.0, None).astype(np.float32),
                         np.clip(intensity, 0.0, 1.0).astype(np.float32), clamped)


def preset_values(emotion: str, weight: float) -> dict[str, float]:
    """The 8 weights for "``emotion`` at ``weight``": the rest of the blend is neutral."""
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}")
    weight = min(max(float(weight), 0.0), 1.0)
    values = {name: 0.0 for name in EMOTIONS}
    if emotion == "neutral":
        values["neutral"] = 1.0
    else:
        values[emotion] = weight
        values["neutral"] = 1.0 - weight
    return values


def key_preset(scene, frame: int, emotion: str, weight: float, intensity: float) -> None:
    """Set and key all eight weights plus intensity at ``frame``."""
    track = scene.emogene_emotion
    for name, value in preset_values(emotion, weight).items():
        setattr(track, name, value)
        track.keyframe_insert(name, frame=frame, group=EMOTION_GROUP)
    track.intensity = min(max(float(intensity), 0.0), 1.0)
    track.keyframe_insert("intensity", frame=frame, group=EMOTION_GROUP)
