"""scripts/probe_render_brow_pathway.py's ablations: head only, the torso fed the mean pose, alpha at chosen pixels."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from probe_render_brow_pathway import PatchedForward, ablation, alpha_at, pinned_judge  # noqa: E402

from backend.render.camera import PinholeCamera, pinhole_rays  # noqa: E402
from backend.render.conditions import head_from_world  # noqa: E402
from backend.render.model import SubjectModelConfig, SubjectNeRF  # noqa: E402


def _model():
    torch.manual_seed(0)
    config = SubjectModelConfig(head_samples=24, torso_samples=16, occupancy_resolution=16)
    return SubjectNeRF(config, torso_box=torch.tensor([[-3.0, -3, 6], [3.0, 4, 12]])).eval()


def _rays(n=64):
    origins = torch.zeros(n, 3)
    dirs = torch.nn.functional.normalize(torch.cat([torch.rand(n, 2) * 0.6 - 0.3, torch.ones(n, 1)], -1), dim=-1)
    hfw = head_from_world(torch.eye(3)[None], torch.tensor([[0.0, 0.0, 9.0]])).expand(n, 3, 4)
    return origins, dirs, hfw, torch.randn(n, 16), torch.randn(n, 6)


def test_unknown_ablation_names_the_choices():
    with pytest.raises(ValueError, match="head_nosr"):
        ablation("torso_off")
    assert ablation("head_nosr").head_only and not ablation("head_nosr").super_resolve
    assert ablation("torso_mean").torso_mean_pose and not ablation("full").head_only


@torch.no_grad()
def test_patched_forward_head_only_and_mean_pose_torso():
    model = _model()
    rays = _rays()
    plain = model(*rays)
    patch = PatchedForward(model)
    model.forward = patch
    assert torch.equal(model(*rays)["rgb"], plain["rgb"])            # no mode: the model as it is
    patch.mode = ablation("head")
    out = model(*rays)
    assert torch.equal(out["rgb"], plain["head_rgb"]) and torch.equal(out["alpha"], plain["head_alpha"])
    assert not torch.equal(plain["rgb"], plain["head_rgb"])           # the torso did contribute before
    patch.mode = ablation("torso_mean")
    origins, dirs, hfw, code, pose = rays
    frozen = patch.original(origins, dirs, hfw, code, torch.zeros_like(pose))
    out = model(*rays)
    assert torch.equal(out["rgb"], frozen["rgb"]) and torch.equal(out["head_rgb"], plain["head_rgb"])
    assert not torch.equal(out["torso_rgb"], plain["torso_rgb"])     # the pose did reach the torso


def test_alpha_at_reads_the_pixels_the_rays_belong_to():
    camera = PinholeCamera(20.0, 20.0, 4.0, 4.0, 8, 8, np.eye(4))
    _, dirs = pinhole_rays(camera)
    head = torch.zeros(64)
    torso = torch.full((64,), 0.5)
    head[3 * 8 + 5] = 1.0                                             # pixel (x 5, y 3) opaque head
    records = [(dirs[:40], head[:40], torso[:40]), (dirs[40:], head[40:], torso[40:])]
    assert alpha_at(records, camera, torch.tensor([[5.0, 3.0]]).numpy()) == pytest.approx((1.0, 0.0))
    assert alpha_at(records, camera, torch.tensor([[2.0, 6.0]]).numpy()) == pytest.approx((0.0, 0.5))


def test_judge_is_pinned_to_the_talking_heads_judge_of_session_10():
    config = pinned_judge()
    assert config.neutral_bias == 2.0 and config.seed == 0 and config.window == 9 and config.hidden == 32
