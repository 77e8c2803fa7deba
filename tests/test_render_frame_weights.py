"""Rare-mouth frame weighting of NeRF training (opt-in): rare mouth shapes are drawn more often,
the default sampler is unchanged."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from backend.render.camera import PinholeCamera
from backend.render.frame_weights import RareMouthWeighting, mouth_shape, rare_mouth_weights
from backend.render.train import RaySampler, TrainConfig

DEFAULT_TRACK = Path(__file__).resolve().parents[1] / "backend" / "assets" / "subjects" / "default" / "track.npz"


@pytest.fixture(scope="module")
def training_landmarks() -> np.ndarray:
    """The default subject's canonical landmarks over its training frames (0..1600)."""
    return np.load(DEFAULT_TRACK)["landmarks"][:1601]


def test_wide_pressed_lips_weigh_more_than_common_shapes(training_landmarks):
    weights = rare_mouth_weights(training_landmarks)
    opening, width, _ = mouth_shape(training_landmarks).T
    pressed_wide = (opening <= 0) & (width >= 0.75)          # the held-out stretches' shape, 22 training frames
    assert 10 <= pressed_wide.sum() <= 60
    share_drawn = weights[pressed_wide].sum() / weights.sum()
    assert share_drawn > 3 * pressed_wide.mean()              # uniform draws give pressed_wide.mean()
    common = np.abs(opening - np.median(opening)) < 0.005
    assert np.median(weights[common]) < 1.0


def test_weights_have_median_one_and_respect_the_cap(training_landmarks):
    for cap in (2.0, 8.0):
        weights = rare_mouth_weights(training_landmarks, RareMouthWeighting(cap=cap))
        assert weights.shape == (len(training_landmarks),)
        assert np.median(weights) == pytest.approx(1.0)
        assert weights.max() == pytest.approx(cap)
        assert weights.min() > 0


def test_bad_input_is_refused(training_landmarks):
    with pytest.raises(ValueError, match="canonical landmarks"):
        rare_mouth_weights(training_landmarks[:, :, :2])
    with pytest.raises(ValueError, match="cap"):
        rare_mouth_weights(training_landmarks, RareMouthWeighting(cap=0.5))


def _tiny_data(frames: int = 10, size: int = 8) -> SimpleNamespace:
    camera = PinholeCamera(fx=10.0, fy=10.0, cx=size / 2, cy=size / 2, width=size, height=size,
                           world_from_camera=np.eye(4))
    return SimpleNamespace(frames=np.zeros((frames, size, size, 3), np.uint8),
                           masks=np.zeros((frames, size, size), np.uint8),
                           head_masks=np.zeros((frames, size, size), np.uint8),
                           mouth_boxes=np.tile(np.array([2, 2, 6, 6], np.int32), (frames, 1)),
                           background=np.zeros((size, size, 3), np.uint8), train_indices=np.arange(frames),
                           upper_face_boxes=None,
                           camera=camera)


def test_default_sampler_draws_as_before():
    """No weights: frames come from torch.randint exactly as the shipped subject was trained."""
    assert TrainConfig().rare_mouth_cap is None
    sampler = RaySampler(_tiny_data(), torch.device("cpu"))
    batch = sampler.sample(256, 0.2, torch.Generator().manual_seed(3))
    expected = torch.randint(10, (256,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(batch["frame"], expected)


def test_weighted_sampler_draws_heavy_frames_more_often():
    weights = np.ones(10)
    weights[7] = 8.0
    sampler = RaySampler(_tiny_data(), torch.device("cpu"), weights)
    frames = sampler.sample(20000, 0.2, torch.Generator().manual_seed(0))["frame"].numpy()
    share = np.bincount(frames, minlength=10) / len(frames)
    assert share[7] == pytest.approx(8 / 17, abs=0.02)
    assert share[0] == pytest.approx(1 / 17, abs=0.01)


def test_upper_face_share_draws_inside_the_brow_and_eye_box():
    data = _tiny_data(size=16)
    data.upper_face_boxes = np.tile(np.array([4, 1, 12, 5], np.int32), (10, 1))   # 32 of 256 pixels
    sampler = RaySampler(data, torch.device("cpu"))
    for share in (0.0, 0.5):
        batch = sampler.sample(4000, 0.2, torch.Generator().manual_seed(0), upper_face_share=share)
        d = batch["dirs"]                                   # pinhole at the origin: the direction names the pixel
        col = (d[:, 0] / d[:, 2] * 10 + 8 - 0.5).round().long()
        row = (d[:, 1] / d[:, 2] * 10 + 8 - 0.5).round().long()
        inside = (col >= 4) & (col < 12) & (row >= 1) & (row < 5)
        assert batch["mouth"][:800].min() == 1              # the mouth share is drawn first, as before
        if share == 0:
            assert inside[800:].float().mean() < 0.2
        else:
            assert inside[800:2800].all()                   # the next half of the rays lie in the box
            assert inside[2800:].float().mean() < 0.2


def test_upper_face_share_without_working_landmarks_is_a_clear_error():
    data = _tiny_data()
    data.upper_face_boxes = None
    with pytest.raises(ValueError, match="landmarks_working"):
        RaySampler(data, torch.device("cpu")).sample(64, 0.2, torch.Generator().manual_seed(0), upper_face_share=0.3)
