"""Head-field depth at landmark pixels (backend/render/depth_probe.py) and the opt-in landmark depth loss."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from backend.render.camera import PinholeCamera
from backend.render.depth_probe import (LandmarkDepthTargets, head_depth, inner_face_landmarks, landmark_rays,
                                        landmarks_in_camera)
from backend.render.model import SubjectModelConfig, SubjectNeRF
from backend.render.train import TrainConfig

CAMERA = PinholeCamera(400.0, 400.0, 64.0, 64.0, 128, 128, np.eye(4))
FRONT = np.eye(3)   # canonical z (toward the viewer) -> camera -z through FLIP
T = np.array([0.0, 0.0, 12.0])


class _Slab(nn.Module):
    """A head field that is opaque behind the canonical plane z = ``front`` (the face), empty in front."""

    def __init__(self, box: torch.Tensor, front: float):
        super().__init__()
        self.box, self.front = box, nn.Parameter(torch.tensor(front))
        self.embed = nn.Linear(1, 1)

    def embed_condition(self, condition):
        return condition[:, :1]

    def forward(self, positions01, embedding):
        z = self.box[0, 2] + positions01[:, 2] * (self.box[1, 2] - self.box[0, 2])
        return 200 * torch.sigmoid((self.front - z) * 400), torch.zeros(len(z), 3)


def _model(front: float = 0.5) -> SubjectNeRF:
    model = SubjectNeRF(SubjectModelConfig(head_samples=96))
    model.head_field = _Slab(model.head_box, front)
    return model


def _frame(landmarks: np.ndarray):
    from backend.render.conditions import head_from_world
    hfw = head_from_world(torch.tensor(FRONT[None], dtype=torch.float32), torch.tensor(T[None], dtype=torch.float32),
                          torch.ones(1))
    return hfw, torch.zeros(1, 16)


def test_landmark_rays_hit_the_landmarks():
    c = np.array([[0.3, -0.2, 0.4], [-0.5, 0.6, 0.1]])
    points = landmarks_in_camera(c, FRONT, T, 1.0)
    assert np.allclose(points[:, 2], T[2] - c[:, 2])          # canonical z toward the camera
    origins, dirs, t = landmark_rays(CAMERA, points)
    assert np.allclose((origins + dirs * torch.tensor(t, dtype=torch.float32)[:, None]).numpy(), points, atol=1e-4)


def test_head_depth_finds_a_flat_face_at_its_plane():
    model = _model(front=0.5)
    c = np.array([[0.0, 0.0, 0.5], [1.0, 0.5, 0.5], [-0.8, -1.0, 0.5]])
    origins, dirs, t = landmark_rays(CAMERA, landmarks_in_camera(c, FRONT, T, 1.0))
    hfw, code = _frame(c)
    hd = head_depth(model, origins, dirs, hfw, code, samples=400)
    assert torch.all(hd.alpha > 0.99)
    assert np.allclose(hd.depth.numpy(), t, atol=0.03)
    assert torch.all(hd.spread < 0.05)


def _targets(c: np.ndarray) -> LandmarkDepthTargets:
    lms = np.repeat(c[None], 3, axis=0)
    return LandmarkDepthTargets(lms, np.repeat(FRONT[None], 3, 0), np.repeat(T[None], 3, 0), np.ones(3), CAMERA,
                                list(range(1, len(c))), nose_tip=0)


def test_landmark_depth_loss_prefers_the_right_relief_and_has_gradient():
    flat = np.array([[0.0, 0.0, 0.5], [1.0, 0.5, 0.5], [-0.8, -1.0, 0.5], [0.2, 0.8, 0.5]])
    deep = flat.copy()
    deep[1:, 2] = -0.3          # a face whose features lie 0.8 IOD behind the nose tip
    model = _model(front=0.5)    # renders a flat face
    hfw, code = _frame(flat)
    hfw, code = hfw.expand(3, 3, 4), code.expand(3, 16)
    g = torch.Generator().manual_seed(0)
    right = _targets(flat).loss(model, hfw, code, frames=2, generator=g)
    wrong = _targets(deep).loss(model, hfw, code, frames=2, generator=g)
    assert right < 0.01 and wrong > 0.3
    wrong.backward()
    assert model.head_field.front.grad is not None


def test_nose_tip_must_not_be_a_target_and_inner_face_excludes_it():
    with pytest.raises(ValueError, match="nose tip"):
        _targets(np.zeros((3, 3))).__class__(np.zeros((1, 3, 3)), np.eye(3)[None], T[None], np.ones(1), CAMERA,
                                              [0, 1], nose_tip=0)
    assert 30 not in inner_face_landmarks() and {7, 8, 9, 19, 48}.issubset(inner_face_landmarks())


def test_landmark_depth_is_off_by_default():
    assert TrainConfig().landmark_depth_weight == 0.0
