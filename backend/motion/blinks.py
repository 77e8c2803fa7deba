"""Blinks at natural rates, applied to the eyelid landmarks.

Blink onsets form a renewal process: a refractory gap plus an exponential
interval, so the mean rate is ``rate_per_minute`` (people blink ~15-20 times a
minute); each blink lasts ``duration_s`` (100-150 ms) with a sine closing
profile. The schedule is in continuous time, so it is sampled at any frame rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.motion.landmarks import EYELID_PAIRS


@dataclass
class BlinkConfig:
    rate_per_minute: float = 17.0
    min_duration_s: float = 0.10
    max_duration_s: float = 0.15
    refractory_s: float = 1.2        # no blink within this time after another
    closure: float = 0.95            # fraction of the lid gap closed at the peak


def blink_schedule(duration_s: float, seed: int = 0, config: BlinkConfig | None = None) -> list[tuple[float, float]]:
    """``(start_s, length_s)`` of every blink in ``[0, duration_s)``."""
    config = config or BlinkConfig()
    rng = np.random.default_rng(seed)
    mean_interval = 60.0 / config.rate_per_minute
    extra = max(mean_interval - config.refractory_s, 1e-3)
    blinks, t = [], float(rng.uniform(0.3, mean_interval))
    while t < duration_s:
        length = float(rng.uniform(config.min_duration_s, config.max_duration_s))
        blinks.append((t, length))
        t += length + config.refractory_s + float(rng.exponential(extra))
    return blinks


def closure_at(times_s: np.ndarray, blinks: list[tuple[float, float]]) -> np.ndarray:
    """Eye closure in [0, 1] at the given times (sine profile over each blink)."""
    times_s = np.asarray(times_s, np.float64)
    out = np.zeros(times_s.shape)
    for start, length in blinks:
        inside = (times_s >= start) & (times_s < start + length)
        out[inside] = np.maximum(out[inside], np.sin(np.pi * (times_s[inside] - start) / length))
    return out


def frame_closure(frames: int, fps: float, blinks: list[tuple[float, float]]) -> np.ndarray:
    """Closure per frame: the peak closure within each frame's exposure ``[i, i+1) / fps``.

    Sampling only at frame starts could miss a 100 ms blink at low frame rates, so
    each frame takes the maximum over a few sub-samples.
    """
    sub = (np.arange(frames)[:, None] + np.linspace(0, 1, 5, endpoint=False)[None]) / fps
    return closure_at(sub, blinks).max(1)


def apply_blinks(landmarks: np.ndarray, closure: np.ndarray, amount: float = 0.95) -> np.ndarray:
    """Move each upper eyelid point toward its lower partner by ``closure * amount`` of the gap."""
    out = np.array(landmarks, np.float32, copy=True)
    c = (np.asarray(closure, np.float32) * amount)[:, None]
    for upper, lower in EYELID_PAIRS:
        gap = out[:, upper] - out[:, lower]
        out[:, upper] -= 0.8 * c * gap
        out[:, lower] += 0.2 * c * gap
    return out
