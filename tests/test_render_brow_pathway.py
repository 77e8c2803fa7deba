"""scripts/probe_render_brow_pathway.py's ablations: head only, the torso fed the mean pose, alpha at chosen pixels."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from probe_render_brow_pathway import PatchedForward, ablation, alpha_at, pinned_judge  # noqa: E402

from backend.render.camera import PinholeCamera, pinhole_rays  # noqa: E402
from render_support import rays_through_head, tiny_subject_model  # noqa: E402


def test_unknown_ablation_names_the_choices():
    with pytest.raises(ValueError, match="head_nosr"):
        ablation("torso_off")
    assert ablation("head_nosr").head_only and not ablation("head_nosr").super_resolve
    assert ablation("torso_mean").torso_mean_pose and not ablation("full").head_only


@torch.no_grad()
def test_patched_forward_head_only_and_mean_pose_torso():
    model = tiny_subject_model()
    rays = rays_through_head(spread=0.6)
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
