"""Zero-lag one-euro smoothing: jitter drops on still signals, steps and blinks survive without lag."""
from __future__ import annotations

import numpy as np

from backend.data.smoothing import OneEuroConfig, one_euro, smooth_points, zero_lag_one_euro

FPS = 25.0


def _noise(n, sigma=0.01, seed=0):
    return np.random.default_rng(seed).normal(0, sigma, n)


def test_jitter_on_a_still_signal_drops_by_more_than_half():
    x = 0.5 + _noise(250)
    y = zero_lag_one_euro(x, FPS)
    assert np.std(np.diff(y)) < 0.5 * np.std(np.diff(x))
    assert abs(y.mean() - 0.5) < 0.005


def test_a_step_keeps_its_timing_and_height():
    x = np.where(np.arange(100) < 50, 0.0, 0.3) + _noise(100, 0.003)
    y = zero_lag_one_euro(x, FPS)
    crossing = np.flatnonzero(y > 0.15)[0]
    assert abs(crossing - 50) <= 1, f"step moved to frame {crossing}"
    assert abs(y[60:].mean() - 0.3) < 0.01 and abs(y[:40].mean()) < 0.01


def test_a_two_frame_blink_keeps_most_of_its_depth():
    # eye openness 0.3 -> 0.05 for two frames (80 ms), as in a real blink at 25 fps
    x = np.full(75, 0.3) + _noise(75, 0.004)
    x[40:42] = 0.05
    y = zero_lag_one_euro(x, FPS)
    depth_in, depth_out = 0.3 - x[40:42].min(), 0.3 - y[38:44].min()
    assert depth_out > 0.7 * depth_in, f"blink depth {depth_out:.3f} of {depth_in:.3f}"
    assert int(np.argmin(y)) in (40, 41), "blink must not move in time"


def test_a_fast_lip_oscillation_is_not_delayed():
    t = np.arange(100) / FPS
    x = 0.2 * np.sin(2 * np.pi * 4.0 * t)  # 4 Hz syllable rate, 0.2 IOD amplitude
    y = zero_lag_one_euro(x, FPS)
    lags = range(-3, 4)
    best = max(lags, key=lambda k: np.dot(np.roll(y, k)[10:-10], x[10:-10]))
    assert best == 0
    assert np.std(y) > 0.8 * np.std(x)


def test_the_causal_filter_alone_lags_which_is_why_we_run_both_ways():
    x = np.where(np.arange(100) < 50, 0.0, 0.3)
    causal = one_euro(x, FPS, OneEuroConfig(beta=0.0))
    assert np.flatnonzero(causal > 0.15)[0] > 51


def test_smooth_points_works_in_face_units_for_any_image_size():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, (68, 3))
    base[36:42, 0] -= 0.5
    base[42:48, 0] += 0.5  # eye centres 1 apart
    for pixels in (100.0, 1000.0):
        track = np.repeat(base[None] * pixels, 100, axis=0) + rng.normal(0, 0.01 * pixels, (100, 68, 3))
        out = smooth_points(track.astype(np.float32), FPS)
        ratio = np.std(np.diff(out, axis=0)) / np.std(np.diff(track, axis=0))
        assert out.dtype == np.float32 and ratio < 0.5, f"{pixels}px face: ratio {ratio:.2f}"
