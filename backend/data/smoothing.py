"""Temporal smoothing of landmark tracks: a zero-lag (forward-backward) one-euro filter.

The one-euro filter (Casiez et al., CHI 2012) is a first-order low-pass whose cutoff
rises with the signal's speed: ``cutoff = min_cutoff + beta * |dx/dt|``. Still
stretches get a low cutoff (jitter drops); fast moves (lips, blinks) get a high one
(they pass). A single causal pass lags a little at low speeds, so offline tracks run
it forward and backward in time and average the two passes: the lags cancel to first
order, and a step or a blink keeps its timing.

Values are expected in units of the face's inter-ocular distance (IOD) so one set of
parameters fits every video size (see :func:`smooth_points`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.landmarks import EYE_L, EYE_R, as_slice


@dataclass
class OneEuroConfig:
    min_cutoff_hz: float = 1.5   # cutoff when still: jitter above ~1.5 Hz drops
    beta: float = 8.0            # cutoff grows by 8 Hz per IOD/s of speed
    d_cutoff_hz: float = 2.0     # cutoff of the speed estimate itself


def _alpha(cutoff_hz: np.ndarray | float, fps: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * np.pi * cutoff_hz)
    return 1.0 / (1.0 + tau * fps)


def one_euro(signal: np.ndarray, fps: float, config: OneEuroConfig | None = None) -> np.ndarray:
    """Causal one-euro filter along axis 0 of ``signal`` ``[T, ...]`` (each element independent)."""
    config = config or OneEuroConfig()
    x = np.asarray(signal, dtype=np.float64)
    if x.shape[0] == 0:
        return x.copy()
    out = np.empty_like(x)
    out[0] = x[0]
    dx_hat = np.zeros_like(x[0])
    a_d = _alpha(config.d_cutoff_hz, fps)
    for t in range(1, x.shape[0]):
        dx = (x[t] - out[t - 1]) * fps
        dx_hat = a_d * dx + (1 - a_d) * dx_hat
        a = _alpha(config.min_cutoff_hz + config.beta * np.abs(dx_hat), fps)
        out[t] = a * x[t] + (1 - a) * out[t - 1]
    return out


def zero_lag_one_euro(signal: np.ndarray, fps: float, config: OneEuroConfig | None = None) -> np.ndarray:
    """Mean of a forward and a backward one-euro pass: no net lag, same jitter reduction."""
    x = np.asarray(signal, dtype=np.float64)
    forward = one_euro(x, fps, config)
    backward = one_euro(x[::-1], fps, config)[::-1]
    return 0.5 * (forward + backward)


def inter_ocular_pixels(points: np.ndarray) -> float:
    """Median distance between the eye centres (iBUG 36-41 and 42-47) of a ``[T, NUM_LANDMARKS, >=2]`` track."""
    right = points[:, as_slice(EYE_R), :2].mean(axis=1)
    left = points[:, as_slice(EYE_L), :2].mean(axis=1)
    return float(np.median(np.linalg.norm(left - right, axis=-1)))


def smooth_points(points: np.ndarray, fps: float, config: OneEuroConfig | None = None) -> np.ndarray:
    """Smooth a ``[T, NUM_LANDMARKS, 3]`` pixel track; the filter runs in units of the median IOD."""
    iod = max(inter_ocular_pixels(points), 1e-6)
    return (zero_lag_one_euro(points / iod, fps, config) * iod).astype(np.float32)
