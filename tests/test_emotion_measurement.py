"""The plate-level emotion evaluation as a measurement (backend/evaluation/plate_emotion.py): which bursts each
take renders, when a take may reuse the reference's plates, and the bootstrap interval over bursts."""
from __future__ import annotations

import numpy as np
import pytest

from backend.evaluation.judge_real_video import bootstrap_interval
from backend.evaluation.plate_emotion import PlateEvalConfig, _same_render_inputs, image_warp


def test_full_takes_cover_every_burst_and_other_intensities_a_spread_subset_of_whole_bursts():
    config = PlateEvalConfig(frames=54, frames_other=18, burst=9, intensities=(1.0, 0.5))
    frames = config.burst_frames(300)
    bursts = np.concatenate([[0], np.cumsum(np.diff(frames) != 1)])
    assert len(frames) == 54 and len(np.unique(bursts)) == 6
    assert frames.min() > 0 and frames.max() < 299                         # spread inside the clip
    assert np.array_equal(config.positions(1.0, bursts), np.arange(54))
    assert np.array_equal(config.positions(0.0, bursts), np.arange(54))
    half = config.positions(0.5, bursts)
    assert len(half) == 18
    chosen = np.unique(bursts[half])
    assert len(chosen) == 2 and chosen[0] == 0 and chosen[-1] == 5        # whole bursts, first and last
    assert all(np.sum(bursts[half] == b) == 9 for b in chosen)


def test_a_take_reuses_the_reference_plates_only_when_every_render_input_is_equal():
    rng = np.random.default_rng(0)
    ref = {"landmarks": rng.normal(size=(6, 68, 3)), "neutral_landmarks": rng.normal(size=(6, 68, 3)),
           "rotation": rng.normal(size=(6, 3, 3)), "translation": rng.normal(size=(6, 3)), "other": 1}
    same = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in ref.items()}
    assert _same_render_inputs(same, ref, np.arange(6))
    moved = dict(same, landmarks=same["landmarks"].copy())
    moved["landmarks"][4, 50, 1] += 1e-6                                  # a mouth corner, one frame
    assert not _same_render_inputs(moved, ref, np.arange(6))
    assert _same_render_inputs(moved, ref, np.array([0, 1, 2]))           # ... not among these frames
    turned = dict(same, rotation=same["rotation"] * 1.001)
    assert not _same_render_inputs(turned, ref, np.arange(6))


def test_bootstrap_interval_resamples_whole_bursts():
    labels = np.tile(np.arange(8), 10)
    units = np.repeat(np.arange(10), 8)
    assert bootstrap_interval(labels, labels, units) == (1.0, 1.0)
    # bursts 0-4 all right, 5-9 all wrong: the point estimate 0.5 with a wide interval around it
    predictions = np.where(units < 5, labels, (labels + 1) % 8)
    lo, hi = bootstrap_interval(labels, predictions, units)
    assert lo < 0.4 and hi > 0.6 and lo < 0.5 < hi
    # the same errors spread evenly over the bursts: every resample is the same, the interval collapses
    even = np.where(np.arange(len(labels)) % 2 == 0, labels, (labels + 1) % 8)
    lo, hi = bootstrap_interval(labels, even, np.repeat(np.arange(10), 8))
    assert hi - lo < 0.2


def test_clips_resampled_within_their_emotion_keep_every_emotion():
    labels = np.repeat([0, 0, 1, 1], 5)
    clips = np.repeat(np.arange(4), 5)
    predictions = np.where(clips == 0, 0, np.where(clips == 1, 1, 1))   # neutral clips: one right, one wrong
    lo, hi = bootstrap_interval(labels, predictions, clips, strata=np.array([0, 0, 1, 1]))
    assert (lo, hi) == pytest.approx((0.5, 1.0))                        # emotion 1 always right, neutral 0..1


def test_coarse_flow_image_warp_matches_the_exact_one():
    image = np.zeros((256, 256, 3), np.uint8)
    yy, xx = np.mgrid[0:256, 0:256]
    image[((xx - 120) ** 2 + (yy - 130) ** 2) < 36] = 255
    points = np.array([[120.0, 130.0], [200.0, 60.0], [60.0, 200.0]], np.float32)
    shift = np.array([[6.0, -4.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
    moved = image_warp(image, points, shift, width=36.0)[..., 0].astype(np.float64)   # flow on a 6-px grid
    centre = np.array([(moved * xx).sum(), (moved * yy).sum()]) / moved.sum()
    assert centre == pytest.approx([126.0, 126.0], abs=0.5)
