"""The transfer ratio of the plate-level emotion evaluation (backend/evaluation/plate_emotion.py): how much
of the asked landmark displacement the tracked plates show, per region, and the 2-D image warp behind its
tracker ceiling."""
from __future__ import annotations

import numpy as np
import pytest

from backend.data.mean_face import MEAN_FACE_68
from backend.evaluation.plate_emotion import (TRANSFER_REGIONS, SubjectPlates, Take, image_warp,
                                              transfer_ratio)

FACE = np.asarray(MEAN_FACE_68, np.float32)


def _take(emotion: str, intensity: float, driving: np.ndarray, landmarks: np.ndarray) -> Take:
    n = len(driving)
    return Take(emotion, intensity, np.zeros((n, 4, 4, 3), np.uint8), landmarks, np.ones(n, bool), driving,
                np.zeros(n, int))


def test_transfer_ratio_is_the_shown_share_of_the_asked_displacement_per_region():
    rng = np.random.default_rng(0)
    n = 40
    neutral_driving = FACE + 0.01 * rng.normal(size=(n, 68, 3)).astype(np.float32)
    neutral_tracked = FACE + 0.01 * rng.normal(size=(n, 68, 3)).astype(np.float32)
    asked = 0.05 * rng.normal(size=(n, 68, 3)).astype(np.float32)
    shown_share = np.ones(68, np.float32)
    shown_share[list(TRANSFER_REGIONS["brows"])] = 0.5          # the plates show half the brows
    shown_share[list(TRANSFER_REGIONS["jaw"])] = 0.0            # and none of the jaw
    noise = 0.02 * rng.normal(size=(n, 68, 3)).astype(np.float32)   # tracker jitter: must not bias the ratio
    happy = _take("happy", 1.0, neutral_driving + asked, neutral_tracked + shown_share[:, None] * asked + noise)
    plates = SubjectPlates("s", np.arange(n), [_take("neutral", 0.0, neutral_driving, neutral_tracked), happy])
    t = transfer_ratio(plates)
    assert t["ratio"]["brows"] == pytest.approx(0.5, abs=0.1)
    assert t["ratio"]["jaw"] == pytest.approx(0.0, abs=0.1)
    for region in ("mouth_corners", "lips", "eyes"):
        assert t["ratio"][region] == pytest.approx(1.0, abs=0.15), region
    assert set(t["per_emotion"]) == {"happy"}
    assert t["asked_rms_displacement"]["lips"] == pytest.approx(0.05 * np.sqrt(2), rel=0.2)


def test_untracked_frames_are_left_out_and_no_takes_give_nan():
    n = 6
    neutral = _take("neutral", 0.0, FACE[None].repeat(n, 0), FACE[None].repeat(n, 0))
    asked = np.zeros((n, 68, 3), np.float32)
    asked[..., 1] = 0.1
    shown = FACE + asked
    shown[0] = 100.0                                            # a wild frame ...
    take = _take("sad", 1.0, FACE + asked, shown)
    take.found[0] = False                                       # ... that FaceMesh did not find
    t = transfer_ratio(SubjectPlates("s", np.arange(n), [neutral, take]))
    assert all(v == pytest.approx(1.0) for v in t["ratio"].values())
    assert all(np.isnan(v) for v in transfer_ratio(SubjectPlates("s", np.arange(n), [neutral]))["ratio"].values())


def test_image_warp_moves_the_content_at_a_point_by_its_shift():
    image = np.zeros((96, 96, 3), np.uint8)
    yy, xx = np.mgrid[0:96, 0:96]
    image[((xx - 40) ** 2 + (yy - 50) ** 2) < 9] = 255          # a dot at (40, 50)
    points = np.array([[40.0, 50.0], [70.0, 20.0], [20.0, 80.0]], np.float32)
    shift = np.array([[4.0, -3.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
    moved = image_warp(image, points, shift, width=8.0)[..., 0].astype(np.float64)
    centre = np.array([(moved * xx).sum(), (moved * yy).sum()]) / moved.sum()
    assert centre == pytest.approx([44.0, 47.0], abs=0.5)
    assert np.array_equal(image_warp(image, points, np.zeros_like(shift), width=8.0), image)
