"""The LDM across people: held-out MEAD speakers vs "no deformation", amplitude of real emotion,
structure (exact zero, linear and monotonic in intensity), the generator/judge split, and lip sync
surviving emotion. Real-data tests skip without ../shared/data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from backend.data.mead_pools import GENERATOR_SPEAKERS, JUDGE_SPEAKERS, PoolOverlapError
from backend.motion.ldm import LandmarkDeformationModel
from backend.motion.ldm_training import LDMFitConfig, generator_clips, preserve_inner_lips
from backend.motion.model_io import SHIPPED_MODELS, load_model
from backend.motion.landmarks import inner_lip_gaps

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clips(prepared_tracks):
    from backend.motion.tracks_data import load_clips
    return load_clips(prepared_tracks)


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED_MODELS, "ldm")


def test_shipped_ldm_exact_zero_linear_and_monotonic_in_intensity(shipped):
    neutral = torch.as_tensor(np.random.default_rng(0).normal(0, 0.5, (5, 68, 3)), dtype=torch.float32)
    for k in range(1, 8):
        w = torch.zeros(5, 8)
        w[:, k] = 1
        assert torch.equal(shipped(neutral, w, torch.zeros(5)), torch.zeros(5, 68, 3))
        sizes = [shipped(neutral, w, torch.full((5,), i)).norm(dim=-1).mean().item() for i in np.linspace(0, 1, 11)]
        assert all(b > a for a, b in zip(sizes, sizes[1:])), sizes
        torch.testing.assert_close(shipped(neutral, w, torch.full((5,), 0.4)),
                                   0.4 * shipped(neutral, w, torch.ones(5)), atol=1e-7, rtol=1e-6)
    pure_neutral = torch.zeros(5, 8)
    pure_neutral[:, 0] = 1
    assert torch.equal(shipped.deform(neutral, pure_neutral, torch.ones(5)), neutral)


def test_shipped_ldm_keeps_the_mouth_opening(shipped):
    neutral = torch.as_tensor(np.random.default_rng(1).normal(0, 0.5, (3, 68, 3)), dtype=torch.float32)
    for k in range(1, 8):
        w = torch.zeros(3, 8)
        w[:, k] = 1
        out = shipped.deform(neutral, w, torch.ones(3))
        torch.testing.assert_close(inner_lip_gaps(out), inner_lip_gaps(neutral), atol=1e-6, rtol=0)
    fields = np.random.default_rng(2).normal(size=(7, 68, 3))
    assert np.allclose(inner_lip_gaps(preserve_inner_lips(fields)), 0)


def test_shipped_ldm_learnt_from_the_generator_pool_only(shipped):
    meta = json.loads((SHIPPED_MODELS / "ldm.json").read_text())
    speakers = {name.split("_")[0] for name in meta["train_clips"]}
    assert speakers and speakers <= GENERATOR_SPEAKERS, speakers
    assert not speakers & JUDGE_SPEAKERS


def test_generator_clips_drops_judge_speakers_and_checks_the_pools(clips, monkeypatch):
    kept = generator_clips(clips)
    mead = {c.speaker for c in kept if c.emotion is not None}
    assert mead and mead <= GENERATOR_SPEAKERS
    assert any(c.emotion is None for c in kept)                 # non-MEAD clips stay for the identity model
    import backend.motion.ldm_training as lt
    monkeypatch.setattr(lt, "JUDGE_SPEAKERS", frozenset({"M030"}))
    with pytest.raises(PoolOverlapError, match="M030"):
        generator_clips(clips)


def test_ldm_beats_no_deformation_on_held_out_speakers_filmed_neutral(clips):
    """Leave one speaker out, clip-mean shape error: the recipe fitted without M030 (or W009) must
    explain part of that person's real expression (their own neutral clip is the reference)."""
    from backend.motion.ldm_eval import leave_one_speaker_out
    loso = leave_one_speaker_out(clips)
    tested = [s for s in ("M030", "W009") if s in loso and loso[s]["reference"] == "own_neutral"]
    if not tested:
        pytest.skip("no MEAD speaker with a neutral clip in the tracks")
    for s in tested:
        row = loso[s]["clip_mean"]
        assert row["ldm"] < row["no_deformation"], (s, row)
        assert s not in loso[s]["trained_on"]


def test_shipped_ldm_amplitude_is_that_of_real_emotion(shipped, clips):
    from backend.motion.ldm_eval import AMPLITUDE_TOLERANCE, amplitude_table
    table = amplitude_table(shipped, clips)
    for emotion, row in table["per_emotion"].items():
        assert row["real"] is not None, emotion
        assert abs(row["ratio"] - 1) <= AMPLITUDE_TOLERANCE, (emotion, row)


def test_ldm_fit_needs_a_reference():
    from backend.motion.ldm_training import fit_ldm
    from backend.motion.synthetic import synthetic_clip
    from backend.motion.tracks_data import TrackDataError
    lonely = [synthetic_clip("x_happy", 40, speaker="x", emotion="happy", with_audio=False)]
    with pytest.raises(TrackDataError, match="neutral"):
        fit_ldm(lonely, LDMFitConfig(generator_pool_only=False))


def test_lip_sync_survives_emotion(clips):
    """Shipped VAE on a held-out speech clip; every emotion at intensity 1 through the LDM:
    SyncNet best offset within ±1 frame, mouth opening correlates >= 0.9 with the neutral take."""
    from backend.motion.ldm_eval import lip_sync_under_emotion
    from backend.motion.model_io import load_motion_models
    from backend.motion.tracks_data import split_clips
    held_out = split_clips(clips).talking_test
    if not held_out:
        pytest.skip("no held-out talking clip")
    models = load_motion_models(None, "cpu", with_metrics=True)
    clip = max(held_out, key=lambda c: c.frames)
    result = lip_sync_under_emotion(models, clip)
    for emotion, row in result["per_emotion"].items():
        assert abs(row["offset"]) <= 1, (emotion, row)
        assert row["mouth_correlation"] >= 0.9, (emotion, row)


def test_report_section_and_plots(shipped, clips, tmp_path):
    from backend.motion.ldm_eval import evaluate_ldm, markdown, plots
    metrics = evaluate_ldm(shipped, clips)
    text = markdown(metrics)
    assert "| M030 | own_neutral |" in text and "ratio" in text
    paths = plots(json.loads(json.dumps(metrics)), tmp_path)            # as read back from metrics.json
    assert [p.name for p in paths] == ["ldm_amplitude.png", "ldm_leave_one_out.png", "ldm_fields.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)
