"""Lip sync on real held-out people: the shipped speech-motion model against the loudness envelope and the
static face, lips closed in pauses (silence, the noisy meeting recording), seeds that change the motion.

Honest without training here: the shipped weights were trained by scripts/train_default_models.py on the
lip-sync split's training people only (``lipsync_data``: held-out people never seen, SyncNet included).
``test_training_beats_loudness_and_static_face`` (slow) trains a model from the tracks inside the test.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.motion.lipsync_data import held_out_from, lip_sync_split
from backend.motion.model_io import SHIPPED_MODELS, load_motion_models
from backend.motion.tracks_data import load_clips

torch.set_num_threads(1)
pytestmark = pytest.mark.skipif(not (SHIPPED_MODELS / "audio2motion.json").is_file(),
                                reason="shipped motion weights missing: run scripts/train_default_models.py")


@pytest.fixture(scope="module")
def clips(prepared_tracks):
    return held_out_from(load_clips(prepared_tracks), SHIPPED_MODELS)[0]   # never a person the models trained on


@pytest.fixture(scope="module")
def split(clips):
    s = lip_sync_split(clips)
    if not s.test or not s.train:
        pytest.skip("no held-out lip-sync people in the prepared tracks")
    return s


@pytest.fixture(scope="module")
def models():
    return load_motion_models(None, "cpu")


def _check_against_baselines(result: dict, min_mean_corr: float, lmd_factor: float) -> None:
    rows = result["per_clip"]
    # the loudness envelope is the trivial audio baseline: the model must read more than loudness on all held-out
    # clips but at most one (the shipped model on every clip: test_beats_loudness_on_every_held_out_clip)
    losses = [row["clip"] for row in rows if row["model"]["mouth_open_corr"] <= row["loudness_envelope"]["mouth_open_corr"]]
    assert len(losses) <= 1, losses
    mean = result["mean"]
    assert mean["model"]["mouth_open_corr"] > mean["loudness_envelope"]["mouth_open_corr"] + 0.2, mean
    for row in rows:
        # and the static face (constant mouth) correlates 0
        assert row["model"]["mouth_open_corr"] > 0.15, row["clip"]
    assert mean["model"]["mouth_open_corr"] > min_mean_corr, mean["model"]
    # M-LMD charges motion that is not exactly in sync, so a lively mouth (velocity ~ real) cannot beat the clip's
    # own static mean face with correlations near 0.4 (issue 11's -20 % is not reached, see MODEL_CARD); it must
    # stay near it and clearly beat equally lively real motion that is not in sync
    assert mean["model"]["m_lmd"] < lmd_factor * mean["static_mean_face"]["m_lmd"], mean
    assert mean["model"]["m_lmd"] < 0.92 * mean["other_real_motion"]["m_lmd"], mean


def test_shipped_model_beats_loudness_and_static_face_on_held_out_people(models, split):
    from backend.motion.lipsync_eval import evaluate_lipsync
    result = evaluate_lipsync({"model": models.audio2motion}, split.test, split.train)
    _check_against_baselines(result, min_mean_corr=0.38, lmd_factor=1.1)
    # motion as lively as real motion, not damped (the VAE before reached 0.26-0.36)
    assert 0.75 <= result["mean"]["model"]["velocity_ratio"] <= 1.25, result["mean"]["model"]


def test_beats_loudness_on_every_held_out_clip(models, split):
    from backend.motion.lipsync_eval import evaluate_lipsync
    result = evaluate_lipsync({"model": models.audio2motion}, split.test, split.train)
    losses = [row["clip"] for row in result["per_clip"]
              if row["model"]["mouth_open_corr"] <= row["loudness_envelope"]["mouth_open_corr"]]
    assert not losses, losses


def test_lips_close_in_silence_and_in_the_pauses_of_a_noisy_meeting(models, clips, split, shared_data):
    from backend.data.audio import load_audio
    from backend.motion.lipsync_eval import SUBJECT_CLIP, silence_closure
    subject = next((c for c in clips if c.name == SUBJECT_CLIP), split.train[0])
    silent = silence_closure(models, np.zeros(5 * 16000, np.float32), subject.landmarks)
    assert silent["non_speech_frames"] == silent["frames"] and silent["closed_share"] >= 0.9, silent
    meeting = silence_closure(models, load_audio(shared_data / "speech" / "noisy_audio_meeting_snr_10.wav"),
                              subject.landmarks)
    assert meeting["non_speech_frames"] >= 12, meeting      # the recording has one ~0.5 s pause (+ its start)
    assert meeting["closed_share"] >= 0.9, meeting
    # and the mouth does open while people speak (a closed mouth would pass the line above)
    assert meeting["closed_share_speech"] < 0.6, meeting


def test_seeds_change_the_speaking_style(models, split):
    from backend.motion.lipsync_eval import seed_spread
    s = seed_spread(models.audio2motion, split.test[0])
    assert s["relative"] > 0.05, s
    m = models.audio2motion
    mel = torch.as_tensor(split.test[0].mel[: 4 * 200])
    assert torch.equal(m.generate(mel, 0.0, seed=1), m.generate(mel, 0.0, seed=2))


@pytest.mark.slow
def test_training_beats_loudness_and_static_face(split):
    from backend.motion.a2m_training import SpeechMotionTrainConfig, train_speech_motion
    from backend.motion.lipsync_eval import evaluate_lipsync
    model, history = train_speech_motion(SpeechMotionTrainConfig(steps=300), split.train, torch.device("cpu"),
                                         progress=False)
    assert history["loss"][-1] < history["loss"][0]
    result = evaluate_lipsync({"model": model}, split.test, split.train)
    _check_against_baselines(result, min_mean_corr=0.3, lmd_factor=1.15)
