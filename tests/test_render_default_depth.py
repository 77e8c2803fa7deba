"""Opt-in depth target on the lower jaw contour (TrainConfig.landmark_depth_contour_weight; depth_probe.py), the
yaw candidate of session 8 on the default subject. Off: the landmark depth loss is the inner face's, unchanged."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_geometry_depth import CAMERA, FRONT, T, _frame, _model

from backend.render.depth_probe import LandmarkDepthTargets, inner_face_landmarks, lower_jaw_contour_landmarks
from backend.render.train import TrainConfig


def _targets(c: np.ndarray, inner: list[int], contour: list[int] = (), ratio: float = 0.0) -> LandmarkDepthTargets:
    lms = np.repeat(c[None], 3, axis=0)
    return LandmarkDepthTargets(lms, np.repeat(FRONT[None], 3, 0), np.repeat(T[None], 3, 0), np.ones(3), CAMERA,
                                inner, nose_tip=0, contour_indices=contour, contour_ratio=ratio)


def _loss(targets: LandmarkDepthTargets, model) -> float:
    hfw, code = _frame(None)
    torch.manual_seed(0)
    return float(targets.loss(model, hfw.expand(3, 3, 4), code.expand(3, 16), frames=2,
                              generator=torch.Generator().manual_seed(0)))


def test_the_contour_adds_its_own_mean_error_times_its_ratio():
    """A flat rendered face: the inner landmarks lie on it (no error), the contour ones 0.8 IOD behind it; the
    loss with the contour is the inner mean plus ratio x the contour's mean error (smooth-L1: 0.8 - 0.05)."""
    face = np.array([[0.0, 0.0, 0.5], [1.0, 0.5, 0.5], [-0.8, -1.0, 0.5], [1.2, -0.6, -0.3], [-1.2, -0.6, -0.3]])
    model = _model(front=0.5)
    inner_only = _loss(_targets(face, [1, 2]), model)
    contour_only = _loss(_targets(face, [3, 4]), model)
    both = _loss(_targets(face, [1, 2], [3, 4], ratio=0.4), model)
    assert inner_only < 0.01 and abs(contour_only - 0.75) < 0.03
    assert abs(both - (inner_only + 0.4 * contour_only)) < 0.03, (inner_only, contour_only, both)   # sample jitter


def test_without_a_contour_the_loss_is_the_inner_face_mean_as_before():
    face = np.array([[0.0, 0.0, 0.5], [1.0, 0.5, 0.2], [-0.8, -1.0, -0.1]])
    model = _model(front=0.5)
    targets = _targets(face, [1, 2])
    assert targets.indices == [0, 1, 2] and targets.inner_count == 2
    assert _loss(targets, model) > 0.1       # the 0.3 / 0.6 IOD relief is missed by a flat face


def test_lower_jaw_contour_landmarks_and_bad_requests():
    contour = lower_jaw_contour_landmarks()
    assert contour == [2, 3, 4, 5, 6, 10, 11, 12, 13, 14]
    assert not set(contour) & set(inner_face_landmarks())
    assert TrainConfig().landmark_depth_contour_weight == 0.0
    with pytest.raises(ValueError, match="contour_ratio"):
        _targets(np.zeros((3, 3)), [1], [2], ratio=0.0)
    with pytest.raises(ValueError, match="nose tip"):
        _targets(np.zeros((3, 3)), [1], [0], ratio=0.5)
