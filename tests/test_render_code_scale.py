"""The NeRF's landmark condition code (backend/render/encodings.py: LandmarkCode) and its opt-in variants: the
default whitened code is unchanged; ``scale="global"`` keeps the landmarks' relative distances; the opt-in
``code_components`` expression option (deformation.py) moves only the code's minor components."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from backend.data.mean_face import MEAN_FACE_68
from backend.render.deformation import ExpressionConfig, expression_config, expression_landmarks
from backend.render.encodings import LandmarkCode
from backend.render.inference import _model_config
from backend.render.model import SubjectModelConfig, SubjectNeRF
from bridge.landmarks import NUM_LANDMARKS

torch.set_num_threads(1)
FACE = torch.tensor(np.asarray(MEAN_FACE_68), dtype=torch.float32)


def frames(count: int = 120, seed: int = 0) -> torch.Tensor:
    """'Training frames': a few large smooth modes (expression) plus small noise (the minor components)."""
    g = torch.Generator().manual_seed(seed)
    modes = torch.randn(4, NUM_LANDMARKS, 3, generator=g) * torch.tensor([0.3, 0.15, 0.08, 0.04])[:, None, None]
    weights = torch.randn(count, 4, generator=g)
    return FACE + torch.einsum("fm,mlc->flc", weights, modes) + 0.01 * torch.randn(count, NUM_LANDMARKS, 3,
                                                                                 generator=g)


def test_default_code_is_the_whitened_pca_code_as_before():
    x = frames()
    code = LandmarkCode(16).fit(x)
    flat = x.reshape(len(x), -1).double()
    mean = flat.mean(0)
    _, _, vt = torch.linalg.svd(flat - mean, full_matrices=False)
    coeff = (flat - mean) @ vt[:16].T
    std = coeff.std(0).clamp(min=1e-6)
    # the default fit is the former formula, bit for bit
    assert torch.equal(code.std, std.float()) and torch.equal(code.basis, vt[:16].float())
    assert torch.equal(code.low, (coeff / std).amin(0).float())
    values, excess = code(x)
    assert torch.allclose(values.std(0), torch.ones(16), atol=1e-3) and float(excess.max()) == 0.0
    assert SubjectModelConfig().code_scale == "component" and SubjectNeRF().landmark_code.scale == "component"


def test_global_code_keeps_relative_landmark_distances_and_small_components_small():
    x = frames()
    whitened, plain = LandmarkCode(16).fit(x), LandmarkCode(16, scale="global").fit(x)
    assert torch.equal(plain.basis, whitened.basis)
    assert torch.allclose(plain.std, whitened.std[:1].expand(16))
    a, b, c = x[:1], x[1:2], x[2:3]
    # within the PCA subspace the code is the landmark displacement divided by one number
    proj = lambda d: (d.reshape(1, -1) @ plain.basis.T).norm()
    code = lambda y: ((y.reshape(1, -1) - plain.mean) @ plain.basis.T) / plain.std
    for p, q in ((a, b), (a, c), (b, c)):
        assert torch.allclose((code(p) - code(q)).norm() * plain.std[0], proj(p - q), rtol=1e-4)
    # a whitened code gives the noise components unit spread; the global code keeps them small
    spread_whitened, spread_plain = whitened(x)[0].std(0), plain(x)[0].std(0)
    assert float(spread_whitened[-1]) == pytest.approx(1.0, abs=1e-3)
    assert float(spread_plain[-1]) < 0.1 * float(spread_plain[0])


def test_split_code_keeps_brows_and_mouth_in_separate_coordinates():
    """``regions="split"``: every basis row moves either the brows and eyes or the rest, never both; the rows stay
    orthonormal and sorted by the variance they explain; a brow change moves only upper-face coordinates."""
    from bridge.landmarks import UPPER_FACE

    train = frames()
    code = LandmarkCode(16, scale="global", regions="split").fit(train)
    rows = code.basis.double().reshape(16, NUM_LANDMARKS, 3)
    upper = torch.zeros(NUM_LANDMARKS, dtype=torch.bool)
    upper[list(UPPER_FACE)] = True
    moves_upper = rows[:, upper].abs().sum((1, 2)) > 0
    moves_rest = rows[:, ~upper].abs().sum((1, 2)) > 0
    assert not (moves_upper & moves_rest).any() and moves_upper.any() and moves_rest.any()
    assert torch.allclose(code.basis.double() @ code.basis.double().T, torch.eye(16, dtype=torch.float64), atol=1e-5)
    spread = ((train.reshape(len(train), -1) - code.mean) @ code.basis.T).std(0)
    assert torch.all(spread[:-1] >= spread[1:] - 1e-4)
    raised = train[:1].clone()
    raised[:, list(UPPER_FACE), 1] += 0.1
    delta = code(raised)[0][0] - code(train[:1])[0][0]
    assert float(delta[~moves_upper].abs().max()) < 1e-5 < float(delta[moves_upper].abs().max())
    whole = LandmarkCode(16, scale="global").fit(train)
    assert torch.equal(whole.basis, LandmarkCode(16, scale="global", regions="whole").fit(train).basis)
    with pytest.raises(ValueError, match="regions"):
        LandmarkCode(16, regions="halves")
    assert SubjectNeRF(SubjectModelConfig(code_regions="split")).landmark_code.regions == "split"
    assert _model_config({"code_scale": "global"}).code_regions == "whole"     # a checkpoint from before the option


def test_code_scale_is_stored_in_the_checkpoint_config_and_bad_values_are_refused():
    config = SubjectModelConfig(code_scale="global")
    assert _model_config(asdict(config)).code_scale == "global"
    assert SubjectNeRF(config).landmark_code.scale == "global"
    old_checkpoint = {k: v for k, v in asdict(SubjectModelConfig()).items() if k != "code_scale"}
    assert _model_config(old_checkpoint).code_scale == "component"
    with pytest.raises(ValueError, match="scale"):
        LandmarkCode(16, scale="per-landmark")


def test_code_components_shrink_only_the_minor_components_toward_the_rest_face():
    x = frames()
    code = LandmarkCode(16).fit(x)
    rest = x[:20].mean(0)
    foreign = frames(5, seed=3) + 0.02   # another person's frames
    raw = lambda y: ((y.reshape(len(y), -1) - code.mean) @ code.basis.T) / code.std
    default = expression_landmarks(code, foreign, foreign, ExpressionConfig(mode="code", emotion_gain=()))
    assert torch.equal(default.code_landmarks, foreign)
    config = ExpressionConfig(mode="code", emotion_gain=(), code_components=6)
    shrunk = expression_landmarks(code, foreign, foreign, config, rest=rest)
    assert torch.allclose(raw(shrunk.code_landmarks)[:, :6], raw(foreign)[:, :6], atol=1e-4)
    assert torch.allclose(raw(shrunk.code_landmarks)[:, 6:], raw(rest[None])[:, 6:].expand(5, -1), atol=1e-3)
    assert not torch.allclose(raw(foreign)[:, 6:], raw(rest[None])[:, 6:].expand(5, -1), atol=1e-2)
    half = expression_landmarks(code, foreign, foreign, ExpressionConfig(mode="code", emotion_gain=(),
                                                                         code_components=6, code_minor_scale=0.5),
                                rest=rest)
    assert torch.allclose(raw(half.code_landmarks)[:, 6:], (raw(foreign)[:, 6:] + raw(rest[None])[:, 6:]) / 2,
                          atol=1e-3)
    with pytest.raises(ValueError, match="rest face"):
        expression_landmarks(code, foreign, foreign, config)
    parsed = expression_config({"expression": {"mode": "code", "code_components": 8, "code_minor_scale": 0.5}})
    assert parsed.code_components == 8 and parsed.code_minor_scale == 0.5
    with pytest.raises(ValueError, match="code_minor_scale"):
        expression_config({"expression": {"mode": "code", "code_components": 8, "code_minor_scale": 2}})


def test_a_from_scratch_run_with_the_global_code_is_re_created_with_all_its_options():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import train_emotional_subject as script
    cfg = dict(learning_rate=1e-2, final_lr_ratio=0.05, minutes=55.0, steps=20000, threads=1, rays_per_step=1024,
               anneal_by_time=True, landmark_noise=0.015, landmark_depth_weight=0.05, model={"code_scale": "global"})
    summary = {"config": cfg, "steps": 8000, "train_seconds": 3300.0, "device": "cpu", "prior": None}
    command = script._recreate(summary, 128)
    assert "--code-scale global" in command and "--landmark-depth-weight 0.05" in command
    assert "--anneal-by-time" in command and "--init-from" not in command
    assert "code_scale='global'" in script._training_lines(summary, 10.0)
    plain = dict(cfg, anneal_by_time=False, landmark_noise=0.0, landmark_depth_weight=0.0, model={})
    assert script._recreate(dict(summary, config=plain), 128).endswith("--minutes 55 --resolution 128`.")


def test_renderer_shrinks_the_code_toward_its_own_rest_face():
    """Through SubjectRenderer.conditions on the shipped mead_m030: a track at the subject's rest face gives the same
    code with and without the option, and a scale of 1 keeps every code (the option only pulls minor components)."""
    import dataclasses

    from backend.render.inference import SubjectRenderer
    from backend.subjects import SubjectStore

    renderer = SubjectRenderer(SubjectStore().path("mead_m030"))
    track = np.load(renderer.dir / "track.npz")
    lm, rot, trans = track["landmarks"][:4], track["rotation"][:4], track["translation"][:4]
    rest = np.repeat(renderer.rest_face()[None], 2, axis=0)

    def code(landmarks, rotation, translation, **option):
        renderer.expression = dataclasses.replace(default, **option)
        return renderer.conditions(landmarks, rotation, translation).conditions.code

    default = renderer.expression
    try:
        plain = code(lm, rot, trans)
        assert torch.allclose(code(lm, rot, trans, code_components=8, code_minor_scale=1.0), plain, atol=1e-5)
        assert not torch.allclose(code(lm, rot, trans, code_components=8, code_minor_scale=0.0), plain, atol=1e-3)
        assert torch.allclose(code(rest, rot[:2], trans[:2], code_components=8, code_minor_scale=0.0),
                              code(rest, rot[:2], trans[:2]), atol=1e-5)
    finally:
        renderer.expression = default
