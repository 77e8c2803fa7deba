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


OWN_NEUTRAL_SPEAKERS = ("M030", "W009")


@pytest.fixture(scope="module")
def held_out_folds(clips):
    """Per speaker filmed neutral: the recipe's model fitted without them, their clips and reference."""
    from backend.motion.ldm_training import (fit_ldm, identity_basis_from_clips, mead_clips, motion_directions,
                                             speaker_targets)
    cfg = LDMFitConfig(generator_pool_only=False)
    basis, smoothing = identity_basis_from_clips(clips, cfg), motion_directions(clips, cfg.smooth_components)
    targets, labelled = speaker_targets(clips, basis, cfg), mead_clips(clips)
    folds = {}
    for s in OWN_NEUTRAL_SPEAKERS:
        if s not in targets or targets[s].reference_kind != "own_neutral":
            continue
        model, info = fit_ldm([c for c in clips if c not in labelled or c.speaker != s], cfg, basis=basis,
                              smoothing=smoothing)
        assert s not in info["speakers"]
        folds[s] = (model, [c for c in labelled if c.speaker == s], targets[s])
    if not folds:
        pytest.skip("no MEAD speaker with a neutral clip in the tracks")
    return folds


def test_ldm_fields_are_emotion_specific_on_held_out_speakers_filmed_neutral(held_out_folds):
    """Leave one speaker out, clip-mean shape error: the recipe fitted without M030 (or W009) explains that
    person's real expression better with the right emotion's field than with any other emotion's (the
    fields carry the emotion, not only "an emotional face"), and its direction agrees (cosine >= 0.4;
    unrelated fields: ~0; measured 0.46 / 0.51)."""
    from backend.motion.ldm_eval import held_out_errors
    for s, (model, test, target) in held_out_folds.items():
        right = held_out_errors(model, test, target.reference, target.reference_kind)
        for shift in range(1, 7):
            wrong = LandmarkDeformationModel()
            wrong.fields.copy_(torch.roll(model.fields, shift, 0))
            other = held_out_errors(wrong, test, target.reference, target.reference_kind)["clip_mean"]["ldm"]
            assert right["clip_mean"]["ldm"] < 0.97 * other, (s, shift, right["clip_mean"], other)
        assert right["cosine"] >= 0.4, (s, right["cosine"])


def test_ldm_beats_no_deformation_at_the_shipped_amplitude(held_out_folds):
    """Issue 10's gate: the recipe as shipped (0.9 x real level-3 amplitude, per face region) beats "no
    deformation" on every held-out speaker filmed neutral, by at least 2 % (measured: M030 0.979 x, W009 0.950 x)."""
    from backend.motion.ldm_eval import held_out_errors
    assert LDMFitConfig().amplitude == 0.9 and LDMFitConfig().amplitude_per_region
    for s, (model, test, target) in held_out_folds.items():
        row = held_out_errors(model, test, target.reference, target.reference_kind)["clip_mean"]
        assert row["ldm"] < 0.98 * row["no_deformation"], (s, row)


def test_ldm_at_full_real_amplitude_does_not_beat_no_deformation(held_out_folds):
    """Why the shipped amplitude is under 1: a direction that is half right across people (cosine ~0.5)
    at the full real size ties or loses against "no deformation" on some held-out speaker."""
    from backend.motion.ldm_eval import held_out_errors
    ratios = []
    for s, (model, test, target) in held_out_folds.items():
        full = LandmarkDeformationModel()
        full.fields.copy_(model.fields / LDMFitConfig().amplitude)
        row = held_out_errors(full, test, target.reference, target.reference_kind)["clip_mean"]
        ratios.append(row["ldm"] / row["no_deformation"])
    assert max(ratios) > 0.99, ratios


def test_shipped_ldm_keeps_the_generator_speakers_expression(shipped, clips):
    """Fidelity: the shipped field's cosine with M030's real displacement (clip mean minus own neutral,
    nothing removed) averages >= 0.75 over the emotions (measured 0.777: M030's part common to all his
    emotional takes is left out by design), and >= 0.5 in every face region."""
    from backend.motion.ldm_eval import region_agreement
    agree = region_agreement(shipped, clips)
    if "M030" not in agree:
        pytest.skip("M030's neutral clip is not in the tracks")
    mean = agree["M030"]["mean"]
    assert mean["face"] >= 0.75, mean
    assert min(mean.values()) >= 0.5, mean


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
    assert "| M030 | own_neutral |" in text and "ratio" in text and "| W009 | " in text
    gated, not_gated = text.split("Speakers never filmed neutral, not gated")[:2]
    assert "| M030 | own_neutral |" in gated and "identity_projection |" not in gated
    assert "| M003 | identity_projection |" in not_gated.split("## LDM amplitude")[0]
    paths = plots(json.loads(json.dumps(metrics)), tmp_path)            # as read back from metrics.json
    assert [p.name for p in paths] == ["ldm_amplitude.png", "ldm_leave_one_out.png", "ldm_fields.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


@pytest.mark.slow
def test_judge_reads_the_shipped_driving_landmarks_above_chance(shipped, prepared_tracks, tmp_path):
    """The plate-level judge (trained on the judge pool only) on the driving landmarks of held-out speech at
    intensity 1: mean over the 8 emotions well above chance (12.5 %), the intensity-0-like neutral take read
    neutral. Pooled over motion draws 0-4 on the tuning clip KristiNoem (54 burst frames per draw): 45.2 %, the
    LDM before 43.0 % (session 8); the judge's bar on real video 35.4 %."""
    from backend.motion.ldm_eval import driving_judge_reading, markdown, plot_driving_judge
    from backend.subjects import SubjectStore
    track = SubjectStore().path("default") / "track.npz"
    reading = driving_judge_reading(shipped, prepared_tracks, track if track.is_file() else None, intensities=(1.0,))
    acc = reading["intensity 1"]["bursts"]
    assert acc["mean_over_emotions"] >= 0.25, acc["per_emotion"]
    assert acc["per_emotion"]["neutral"] >= 0.69, acc["per_emotion"]
    assert plot_driving_judge({"driving_judge": reading}, tmp_path / "judge.png").stat().st_size > 10_000
    section = markdown({"leave_one_speaker_out": {}, "amplitude": {"tolerance": 0.3, "per_emotion": {},
                                                                  "within_tolerance": True},
                        "driving_judge": reading})
    assert "| 1 | bursts |" in section


def test_shipped_ldm_fields_are_left_right_symmetric_except_contempt(shipped):
    """A person's asymmetry is not the emotion's: every field but contempt's (one-sided by nature) equals its
    mirror image up to what the smoothing projection, the lip constraint and the per-region amplitude bring back
    (measured 6-10 % of the field; the version before the symmetrisation: 27-67 %)."""
    from backend.motion.ldm_training import mirror_field
    from bridge.emotions import EMOTIONS
    fields = shipped.fields.double().numpy()
    for k, emotion in enumerate(EMOTIONS[1:]):
        asymmetry = np.linalg.norm(fields[k] - mirror_field(fields[k])) / np.linalg.norm(fields[k])
        if emotion == "contempt":
            assert asymmetry > 0.3, asymmetry
        else:
            assert asymmetry < 0.15, (emotion, asymmetry)
    face = np.random.default_rng(3).normal(size=(68, 3))
    np.testing.assert_allclose(mirror_field(mirror_field(face)), face)
