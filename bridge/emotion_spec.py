"""Parse the CLI's emotion text (``happy``, ``happy:0.8``, ``neutral@0,happy:0.8@1.5,sad@4``) into per-frame arrays.

A key is ``NAME[:INTENSITY][@SECONDS]``; intensity defaults to 1. One key needs no
time (it holds for the whole clip); several keys each need a time, strictly
increasing. Between two keys the emotion cross-fades linearly (weights and
intensity); before the first key and after the last the nearest key holds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bridge.emotions import EMOTIONS, NUM_EMOTIONS, emotion_index

SPEC_HELP = (
    "SPEC is an emotion name (" + ", ".join(EMOTIONS) + "), optionally with an intensity in [0, 1] "
    "(happy:0.8; default 1), or comma-separated timed keys NAME[:INTENSITY]@SECONDS "
    "(neutral@0,happy:0.8@1.5,sad@4) that cross-fade linearly between keys and hold before the "
    "first and after the last."
)


class EmotionSpecError(ValueError):
    """Emotion text that cannot be parsed (the message says which part and why)."""


@dataclass(frozen=True)
class EmotionKey:
    emotion: str        # one of bridge.emotions.EMOTIONS
    intensity: float    # [0, 1]
    time_s: float       # seconds from the start of the audio


def _number(key: str, what: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise EmotionSpecError(f"key {key!r}: {what} {text!r} is not a number" + (
            " of seconds" if what == "time" else "")) from None


def _parse_key(text: str, needs_time: bool) -> EmotionKey:
    item = key = text.strip()
    if not item:
        raise EmotionSpecError("empty emotion key (two commas in a row, or a trailing comma?)")
    time_s = 0.0
    if "@" in item:
        item, _, time_text = item.partition("@")
        time_s = _number(key, "time", time_text)
        if not math.isfinite(time_s) or time_s < 0:
            raise EmotionSpecError(f"key {key!r}: time must be a finite number of seconds >= 0")
    elif needs_time:
        raise EmotionSpecError(f"key {key!r} has no time; with several keys each needs NAME@SECONDS")
    intensity = 1.0
    if ":" in item:
        item, _, intensity_text = item.partition(":")
        intensity = _number(key, "intensity", intensity_text)
        if not (0.0 <= intensity <= 1.0):
            raise EmotionSpecError(f"key {key!r}: intensity {intensity} is outside [0, 1]")
    name = EMOTIONS[emotion_index(item)]  # raises bridge.emotions.UnknownEmotionError
    return EmotionKey(name, intensity, time_s)


def parse_emotion_spec(spec: str) -> list[EmotionKey]:
    """Keys in time order; raises :class:`EmotionSpecError` or ``UnknownEmotionError``."""
    if not isinstance(spec, str) or not spec.strip():
        raise EmotionSpecError("emotion spec is empty; " + SPEC_HELP)
    parts = spec.split(",")
    keys = [_parse_key(p, needs_time=len(parts) > 1) for p in parts]
    for previous, key in zip(keys, keys[1:]):
        if key.time_s <= previous.time_s:
            raise EmotionSpecError(
                f"key times must increase strictly: {key.emotion}@{key.time_s:g} comes after "
                f"{previous.emotion}@{previous.time_s:g}")
    return keys


def keys_to_frames(keys: list[EmotionKey], frame_count: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``weights float32 [F, NUM_EMOTIONS]`` (rows sum to 1) and ``intensity float32 [F]``.

    Frame ``i`` sits at time ``i / fps`` seconds.
    """
    if not keys:
        raise EmotionSpecError("no emotion keys")
    if frame_count < 0:
        raise ValueError(f"frame_count must be >= 0, got {frame_count}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a finite number > 0, got {fps}")
    times = np.array([k.time_s for k in keys], np.float64)
    one_hot = np.zeros((len(keys), NUM_EMOTIONS), np.float64)
    one_hot[np.arange(len(keys)), [emotion_index(k.emotion) for k in keys]] = 1.0
    intensities = np.array([k.intensity for k in keys], np.float64)
    frame_times = np.arange(frame_count, dtype=np.float64) / fps
    weights = np.stack([np.interp(frame_times, times, one_hot[:, e]) for e in range(NUM_EMOTIONS)], axis=1)
    intensity = np.interp(frame_times, times, intensities)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return weights.astype(np.float32).reshape(frame_count, NUM_EMOTIONS), intensity.astype(np.float32)


def spec_to_frames(spec: str, frame_count: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """``parse_emotion_spec`` then ``keys_to_frames``."""
    return keys_to_frames(parse_emotion_spec(spec), frame_count, fps)
