"""The opt-in ``brow_pose_shift`` expression option (deformation.py, SubjectRenderer.conditions): the warp moves the
brows' target by ``shift . head turn`` to cancel brows that slide against the eyes as a rendered head turns. Without
the option nothing changes; with it only the brows' y moves, by the head's turn from the subject's mean pose."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from backend.render.deformation import BROWS, ExpressionConfig, expression_config, expression_landmarks
from backend.render.inference import SubjectRenderer
from backend.subjects import SubjectStore
from bridge.landmarks import NUM_LANDMARKS

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def renderer():
    return SubjectRenderer(SubjectStore().path("mead_m030"))


def turned(renderer, degrees) -> np.ndarray:
    """``[F, 3, 3]`` camera-frame rotations: the subject's mean head rotation turned by each rotation vector (deg)."""
    mean = renderer.model.mean_rotation.numpy().astype(np.float64)
    return np.stack([Rotation.from_rotvec(d, degrees=True).as_matrix() @ mean for d in degrees]).astype(np.float32)


def test_option_is_off_by_default_and_parsed_from_subject_json():
    assert ExpressionConfig().brow_pose_shift is None
    assert expression_config({"expression": "code"}).brow_pose_shift is None
    parsed = expression_config({"expression": {"mode": "code", "brow_pose_shift": [0.0135, 0, -0.002]}})
    assert parsed.brow_pose_shift == (0.0135, 0, -0.002) and parsed.mode == "code"
    for bad in ([0.01, 0.0], [0.5, 0, 0]):
        with pytest.raises(ValueError, match="brow_pose_shift"):
            expression_config({"expression": {"mode": "code", "brow_pose_shift": bad}})


def test_head_turn_is_the_rotation_from_the_subject_mean_in_degrees(renderer):
    degrees = np.array([[0, 0, 0], [2, 0, 0], [0, -3, 0], [1, 1, 0.5]], np.float64)
    assert np.allclose(renderer.head_turn(turned(renderer, degrees)), degrees, atol=1e-3)


@pytest.mark.parametrize("mode", ["code", "warp"])
def test_brow_shift_moves_only_the_brows_target_by_the_turn(renderer, mode):
    track = np.load(renderer.dir / "track.npz")
    frames = [10, 11, 12]
    lm = renderer.retarget(track["landmarks"][frames], track["landmarks"][frames])   # keyed neutral: no emotion
    rotation, translation = turned(renderer, [[0, 0, 0], [2, 0, 0], [-1, 0, 0]]), track["translation"][frames]
    renderer.expression = dataclasses.replace(renderer.expression, mode=mode, brow_pose_shift=None)
    plain = renderer.conditions(lm, rotation, translation, neutral_landmarks=lm).conditions
    renderer.expression = dataclasses.replace(renderer.expression, brow_pose_shift=(0.01, 0.0, 0.0))
    shifted = renderer.conditions(lm, rotation, translation, neutral_landmarks=lm).conditions
    # the NeRF's code is untouched; the warp's source is what the code renders
    assert torch.equal(shifted.code, plain.code)
    source, target = shifted.warp_source, shifted.warp_target
    assert source is not None and target is not None
    if mode == "code":
        assert plain.warp_target is None                  # keyed neutral without the option: no warp at all
        assert torch.equal(source, torch.as_tensor(lm))
    else:
        assert torch.equal(source, plain.warp_source)
    before = torch.as_tensor(lm) if mode == "code" else plain.warp_target
    moved = target - before
    expected = torch.tensor([0.0, 0.02, -0.01])
    brows = list(BROWS)
    assert torch.allclose(moved[:, brows, 1], expected[:, None].expand(3, len(brows)), atol=1e-5)
    others = [i for i in range(NUM_LANDMARKS) if i not in brows]
    assert float(moved[:, others].abs().max()) == 0.0 and float(moved[:, brows][..., [0, 2]].abs().max()) == 0.0


def test_expression_landmarks_without_brow_shift_is_unchanged():
    g = torch.Generator().manual_seed(0)
    lm = torch.randn(4, NUM_LANDMARKS, 3, generator=g)
    neutral = lm + 0.05 * torch.randn(4, NUM_LANDMARKS, 3, generator=g)

    class Code:   # the code mode does not read the landmark code without code_components
        pass

    config = ExpressionConfig(mode="code")
    a = expression_landmarks(Code(), lm, neutral, config)
    b = expression_landmarks(Code(), lm, neutral, config, brow_shift=None)
    assert torch.equal(a.target, b.target) and torch.equal(a.source, b.source)
    with pytest.raises(ValueError, match="brow shift"):
        expression_landmarks(Code(), lm, neutral, config, brow_shift=torch.zeros(3))
