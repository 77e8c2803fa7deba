"""Motion models on real data: the shipped weights against trivial baselines on held-out tracks,
the pipeline stage end to end, and the issue's acceptance checks.

Why the shipped weights and not in-test training: they were trained by
scripts/train_default_models.py on the training split only (held-out talking
speakers KristiNoem, andrew, lieu and MEAD speaker W009 never seen), so scoring
them on held-out tracks is an honest test, and it fits the default time budget.
``test_cli_training_beats_baselines`` (slow) retrains all four from the tracks.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.motion.model_io import SHIPPED_MODELS, load_motion_models
from backend.motion.lipsync_data import held_out_from
from backend.motion.tracks_data import load_clips, split_clips

torch.set_num_threads(1)   # small models; on a shared CPU a second thread mostly waits
pytestmark = pytest.mark.skipif(not (SHIPPED_MODELS / "audio2motion.json").is_file(),
                                reason="shipped motion weights missing: run scripts/train_default_models.py")


@pytest.fixture(scope="module")
def splits(prepared_tracks):
    return split_clips(held_out_from(load_clips(prepared_tracks), SHIPPED_MODELS)[0])   # never a trained-on person


@pytest.fixture(scope="module")
def models():
    return load_motion_models(None, "cpu", with_metrics=True)


@pytest.fixture(scope="module")
def generated(models, splits):
    from backend.motion.evaluate import vae_neutral
    return {c.name: vae_neutral(models, c) for c in splits.talking_test}


def test_vae_beats_static_mean_face_on_held_out_speakers(splits, generated):
    from backend.motion.lipsync_eval import other_motion
    from backend.motion.metrics import landmark_distance, mouth_opening_correlation
    from backend.motion.landmarks import MOUTH
    model, lively, corr = [], [], []
    donor = max(splits.talking_train, key=lambda c: c.frames)
    for c in splits.talking_test:
        model.append(landmark_distance(generated[c.name], c.landmarks, MOUTH))
        lively.append(landmark_distance(other_motion(c, donor), c.landmarks, MOUTH))
        corr.append(mouth_opening_correlation(generated[c.name], c.landmarks))
    # issue 11 asks for motion as fast as real motion (velocity 0.75-1.25x), which a static face or a
    # damped mouth cannot show; M-LMD charges any motion not exactly in sync, so the fair baseline is
    # equally lively real motion of another recording: the model's speech-driven motion must beat it
    assert np.mean(model) < 0.9 * np.mean(lively), (model, lively)
    # and the mouth must open and close with the real one (a constant gives 0)
    assert np.mean(corr) > 0.3, corr


def test_shipped_vae_is_deterministic_at_temperature_zero_and_seeds_differ(models, splits):
    mel = torch.as_tensor(splits.talking_test[0].mel[: 4 * 200])
    vae = models.audio2motion
    assert torch.equal(vae.generate(mel, 0.0, seed=1), vae.generate(mel, 0.0, seed=2))
    assert torch.equal(vae.generate(mel, 1.0, seed=3), vae.generate(mel, 1.0, seed=3))
    # the latent carries little with this much data (see MODEL_CARD), but it must carry something
    assert (vae.generate(mel, 1.0, seed=3) - vae.generate(mel, 1.0, seed=4)).abs().mean() > 1e-5


def test_syncnet_locates_real_and_shifted_audio(models, splits):
    from backend.motion.syncnet import sync_profile
    real, shifted = [], []
    for c in splits.talking_test:
        real.append(sync_profile(models.syncnet, c.mel, c.landmarks, speech=c.speech))
        n = c.frames - 5
        shifted.append(sync_profile(models.syncnet, c.mel[20:], c.landmarks[:n], speech=c.speech[5:]))
    # audio delayed by 5 frames must move the best offset by +5 (+-1) on every clip
    for r, s in zip(real, shifted):
        assert abs((s.offset - r.offset) - 5) <= 1, (r.offset, s.offset)
    # the trivial baseline (no model) cannot find any offset; real tracks must sit near 0:
    # the data module measured -3..0 frame audio lags in these very clips, so allow 3
    assert np.mean([abs(r.offset) for r in real]) <= 3


def test_ldm_beats_no_deformation_on_held_out_frames(models, splits):
    """Held-out tails of the generator-pool speakers' MEAD clips (frames never trained on; the judge's
    speakers, never seen at all, are tested leave-one-speaker-out in test_ldm_generalisation.py)."""
    from backend.data.mead_pools import pool_of
    from backend.motion.evaluate import ldm_landmark_error
    seen = [c for c in splits.mead_test if pool_of(c.speaker) == "generator"]
    pool = [c for c in splits.mead_full if c.emotion == "neutral" and pool_of(c.speaker) == "generator"]
    err = ldm_landmark_error(models.ldm, seen, pool)
    # the LDM must explain part of the expression: at least 10 % below doing nothing
    assert err["ldm"] < 0.9 * err["no_deformation"], err


def test_classifier_beats_chance_on_held_out_frames(models, splits):
    from backend.motion.emotion_classifier import classify_track
    acc = [np.mean(classify_track(models.emotion, c.landmarks)[0] == c.emotion_label) for c in splits.mead_test]
    # chance is 1/8 (a constant guess scores exactly that on these balanced clips); ask for twice chance
    assert np.mean(acc) > 0.25, acc


# ------------------------------------------------------------------ the pipeline stage
from backend.pipeline.base import GenerateJob  # noqa: E402


def _job(audio, fps=25.0, weights=None, intensity=None, **kw) -> GenerateJob:
    frames = int(np.ceil(len(audio) / 16000 * fps))
    if weights is None:
        weights = np.zeros((frames, 8), np.float32)
        weights[:, 0] = 1
    if intensity is None:
        intensity = np.ones(frames, np.float32)
    return GenerateJob(job_id="t", audio=np.asarray(audio, np.float32), fps=fps, frame_count=frames,
                       emotion_weights=weights, emotion_intensity=intensity, subject="default",
                       landmarks_only=True, **kw)


class _Stages:
    def __init__(self, stage):
        self.stage, self.device = stage, "cpu"

    def for_job(self, job):
        return [self.stage]


@pytest.fixture(scope="module")
def stage_set():
    from backend.composition import StageSet
    from backend.subjects import SubjectStore
    stages = StageSet("cpu", SubjectStore())
    assert type(stages.motion).__name__ == "MotionStage", "the composition root must pick the trained motion stage"
    return stages


@pytest.fixture(scope="module")
def speech_audio(shared_data):
    from backend.data.audio import load_audio
    return load_audio(shared_data / "speech" / "eng_60s.wav")[16000 * 4:]   # the first 3 s are near-silent


def _run(stage_set, job):
    from backend.pipeline.local import run_generate_local
    result = run_generate_local(job, stage_set)
    assert result.state == "done", result.error
    return result


@pytest.mark.parametrize("fps", [23.976, 60.0])
def test_stage_outputs_the_requested_fps(stage_set, speech_audio, fps):
    audio = speech_audio[: 16000 * 3]
    result = _run(stage_set, _job(audio, fps))
    frames = int(np.ceil(3 * fps))
    assert result.landmarks.shape == (frames, 68, 3) and np.isfinite(result.landmarks).all()
    np.testing.assert_allclose(result.rotation @ result.rotation.transpose(0, 2, 1),
                               np.tile(np.eye(3), (frames, 1, 1)), atol=1e-4)
    st = result.stage_state
    for key, shape in (("landmarks", (frames, 68, 3)), ("neutral_landmarks", (frames, 68, 3)),
                       ("rotation", (frames, 3, 3)), ("translation", (frames, 3)), ("speech_mask", (frames,))):
        assert st[key].shape == shape, key
    assert st["speech_mask"].mean() > 0.5
    np.testing.assert_array_equal(st["landmarks"], result.landmarks)


def test_silence_only_and_very_short_audio(stage_set, models):
    from backend.motion.landmarks import mouth_opening
    result = _run(stage_set, _job(np.zeros(16000 * 3, np.float32)))
    st = result.stage_state
    assert not st["speech_mask"].any()
    opening = mouth_opening(st["neutral_landmarks"])
    assert np.ptp(opening) < 1e-5, "silence: the mouth must not move"
    short = _run(stage_set, _job(np.random.default_rng(0).normal(0, 0.05, 3200).astype(np.float32)))  # 0.2 s
    assert short.landmarks.shape == (5, 68, 3) and np.isfinite(short.landmarks).all()


def test_lips_close_in_silent_gaps(stage_set, speech_audio):
    from backend.motion.landmarks import mouth_opening
    audio = np.concatenate([speech_audio[:16000 * 2], np.zeros(16000 * 2, np.float32), speech_audio[16000 * 2:16000 * 4]])
    st = _run(stage_set, _job(audio)).stage_state
    opening = mouth_opening(st["neutral_landmarks"])
    silent = opening[60:90]                      # 2.4-3.6 s: well inside the gap (2-4 s)
    spoken = opening[st["speech_mask"]]
    assert not st["speech_mask"][60:90].any()
    assert np.ptp(silent) < 1e-5, "lips hold the rest pose in silence"
    assert silent.mean() < np.percentile(spoken, 25), "closed: below most speaking openings"


def test_intensity_zero_and_bad_weights(stage_set, speech_audio):
    audio = speech_audio[: 16000 * 2]
    frames = 50
    w = np.zeros((frames, 8), np.float32)
    w[:, 5] = 1
    zero = _run(stage_set, _job(audio, weights=w, intensity=np.zeros(frames, np.float32))).stage_state
    np.testing.assert_array_equal(zero["landmarks"], zero["neutral_landmarks"])
    happy = _run(stage_set, _job(audio, weights=w)).stage_state
    assert np.abs(happy["landmarks"] - happy["neutral_landmarks"]).max() > 1e-3
    bad = w.copy()
    bad[:10, 1] = -1.0
    bad[10:20] *= 3.0
    result = _run(stage_set, _job(audio, weights=bad))
    assert any("negative" in m for m in result.warnings)
    np.testing.assert_allclose(result.landmarks[10:], happy["landmarks"][10:], atol=1e-5)


def test_wrong_checkpoint_kind_is_a_clear_error(tmp_path, speech_audio):
    import shutil
    from backend.motion.stage import MotionStage
    from backend.pipeline.local import run_generate_local
    for p in SHIPPED_MODELS.iterdir():
        shutil.copy(p, tmp_path / p.name)
    for ext in (".json", ".safetensors"):       # an LDM checkpoint where the VAE should be
        shutil.copy(SHIPPED_MODELS / f"ldm{ext}", tmp_path / f"audio2motion{ext}")
    result = run_generate_local(_job(speech_audio[:16000]), _Stages(MotionStage("cpu", None, models_dir=tmp_path)))
    assert result.state == "failed"
    assert "CheckpointError" in result.error and "'emogene.ldm'" in result.error and "emogene.audio2motion" in result.error


# ------------------------------------------------------------------ acceptance
def test_acceptance_generated_mouth_follows_the_audio(stage_set, models, speech_audio):
    """Unseen speech (not in any track) -> generated track; SyncNet best offset within 1 frame."""
    from backend.motion.features import frame_log_mel
    from backend.motion.syncnet import sync_profile
    audio = speech_audio[: 16000 * 20]
    st = _run(stage_set, _job(audio, temperature=1.0, seed=7)).stage_state
    mel = frame_log_mel(audio, len(st["landmarks"]))
    r = sync_profile(models.syncnet, mel, st["landmarks"], speech=st["speech_mask"])
    assert abs(r.offset) <= 1, r


def test_acceptance_keyed_happy_to_sad_blend_is_recognised(stage_set, models, speech_audio):
    from backend.motion.emotion_classifier import classify_track
    audio = speech_audio[16000 * 20: 16000 * 32]
    frames = 12 * 25
    t = np.linspace(0, 1, frames)
    sad_share = np.clip((t - 0.4) / 0.2, 0, 1).astype(np.float32)      # happy, 0.4-0.6 cross-fade, sad
    w = np.zeros((frames, 8), np.float32)
    w[:, 5], w[:, 6] = 1 - sad_share, sad_share
    st = _run(stage_set, _job(audio, weights=w)).stage_state
    pred, starts = classify_track(models.emotion, st["landmarks"])
    centre = np.minimum(starts + models.emotion.config.window // 2, frames - 1)
    keyed = np.where(sad_share[centre] >= 0.5, 6, 5)
    accuracy = float(np.mean(pred == keyed))
    neutral_pred, _ = classify_track(models.emotion, st["neutral_landmarks"])
    assert accuracy > 0.125, (accuracy, np.bincount(pred, minlength=8))
    assert accuracy > np.mean(neutral_pred == keyed), "the deformation, not the face, carries the emotion"


def test_stage_streams_in_chunks_and_stops_when_cancelled(speech_audio):
    from backend.motion.stage import MotionStage
    from backend.pipeline.base import JobCancelled

    class Ctx:
        device, state = "cpu", {}

        def __init__(self, cancel_after):
            self.calls, self.cancel_after, self.chunks, self.fractions = 0, cancel_after, [], []

        def progress(self, fraction, message=""):
            self.fractions.append(fraction)

        def check_cancelled(self):
            self.calls += 1
            if self.calls > self.cancel_after:
                raise JobCancelled("t")

        def warn(self, message):
            pass

        def emit_landmarks(self, start, landmarks, rotation, translation):
            self.chunks.append((start, len(landmarks)))

    stage = MotionStage("cpu", None, chunk_frames=100)
    job = _job(speech_audio[: 16000 * 20])                 # 500 frames -> 5 chunks
    full = Ctx(10 ** 9)
    stage.run(job, full)
    assert full.chunks == [(s, 100) for s in range(0, 500, 100)]
    assert full.fractions == sorted(full.fractions) and full.fractions[-1] == 1.0
    cancelled = Ctx(full.calls - 3)
    with pytest.raises(JobCancelled):
        stage.run(job, cancelled)
    assert 0 < len(cancelled.chunks) < 5
