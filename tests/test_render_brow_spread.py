"""Opt-in depth-spread loss at the brows (TrainConfig.brow_spread_weight; brow_spread.py): 0 for weights in one
sample, growing as they spread along the ray; off by default (the training loop then adds no loss term)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_geometry_depth import CAMERA, FRONT, T, _frame
from torch import nn

from backend.render.brow_spread import LandmarkSpreadTargets, brow_landmarks, weight_spread
from backend.render.model import SubjectModelConfig, SubjectNeRF
from backend.render.train import TrainConfig


class _Layer(nn.Module):
    """Head field with density ``density`` behind the canonical plane z = 0.5, empty in front: a dense one is a
    sharp surface, a thin one a fog whose weights spread over depth (std about 1 / density)."""

    def __init__(self, box: torch.Tensor, density: float):
        super().__init__()
        self.box, self.density = box, nn.Parameter(torch.tensor(float(density)))
        self.embed = nn.Linear(1, 1)

    def embed_condition(self, condition):
        return condition[:, :1]

    def forward(self, positions01, embedding):
        z = self.box[0, 2] + positions01[:, 2] * (self.box[1, 2] - self.box[0, 2])
        return self.density * torch.sigmoid((0.5 - z) * 400), torch.zeros(len(z), 3)


def _model(density: float) -> SubjectNeRF:
    model = SubjectNeRF(SubjectModelConfig(head_samples=96))
    model.head_field = _Layer(model.head_box, density)
    return model


def _loss(model: SubjectNeRF, radius: float = 0.0) -> torch.Tensor:
    face = np.array([[0.0, 0.0, 0.5], [1.0, 0.5, 0.5], [-0.8, -1.0, 0.5], [0.2, 0.8, 0.5]])
    lms = np.repeat(face[None], 3, axis=0)
    targets = LandmarkSpreadTargets(lms, np.repeat(FRONT[None], 3, 0), np.repeat(T[None], 3, 0), np.ones(3), CAMERA,
                                    [0, 1, 2, 3], radius_px=radius)
    hfw, code = _frame(None)
    return targets.loss(model, hfw.expand(3, 3, 4), code.expand(3, 16), frames=2,
                        generator=torch.Generator().manual_seed(0))


def test_weight_spread_is_zero_in_one_sample_and_grows_with_the_spread():
    t = torch.linspace(0, 1, 11).expand(3, 11)
    one = torch.zeros(3, 11)
    one[:, 4] = 0.9
    two = torch.zeros(3, 11)
    two[:, 4] = two[:, 6] = 0.45          # same opacity, split 0.2 apart: std 0.1
    wide = torch.zeros(3, 11)
    wide[:, 0] = wide[:, 10] = 0.45       # 1.0 apart: std 0.5
    assert torch.allclose(weight_spread(one, t), torch.zeros(3), atol=1e-3)
    assert torch.allclose(weight_spread(two, t), torch.full((3,), 0.1), atol=1e-4)
    assert torch.allclose(weight_spread(wide, t), torch.full((3,), 0.5), atol=1e-4)


def test_a_sharp_surface_scores_near_zero_a_fog_high_and_the_loss_has_gradient():
    sharp, fog = _loss(_model(200.0)).detach(), _loss(_model(3.0)).detach()
    assert float(sharp) < 0.03 and float(fog) > 0.15, (float(sharp), float(fog))
    fog_model = _model(3.0)
    loss = _loss(fog_model, radius=1.5)
    loss.backward()
    assert fog_model.head_field.density.grad < 0      # more density = a thinner layer


def test_off_by_default_and_bad_requests():
    config = TrainConfig()
    assert config.brow_spread_weight == 0.0
    assert brow_landmarks() == list(range(17, 27)) + [37, 38, 43, 44]
    lms = np.zeros((1, 3, 3))
    with pytest.raises(ValueError, match="radius_px"):
        LandmarkSpreadTargets(lms, FRONT[None], T[None], np.ones(1), CAMERA, [0], radius_px=-1)
    with pytest.raises(ValueError, match="at least one"):
        LandmarkSpreadTargets(lms, FRONT[None], T[None], np.ones(1), CAMERA, [])
