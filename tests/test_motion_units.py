"""Motion models, unit level: structure and behaviour on synthetic tracks (no real data needed)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.checkpoints import CheckpointError
from backend.motion import training
from backend.motion.audio2motion import Audio2MotionVAE, close_lips_in_silence, silence_gate, SILENCE_GATED
from backend.motion.blinks import apply_blinks, blink_schedule, frame_closure
from backend.motion.generator import resample_linear, resample_rotation, sanitise_emotion
from backend.motion.landmarks import eye_opening
from backend.motion.ldm import LandmarkDeformationModel
from backend.motion.model_io import load_model, save_model
from backend.motion.pose_sampling import PoseTrack, motion_statistics, ping_pong, sample_pose, silent_spans
from backend.motion.synthetic import synthetic_clip, synthetic_dataset
from backend.motion.syncnet import sync_profile
from backend.motion.tracks_data import load_clips, split_clips

torch.set_num_threads(1)   # small models; on a shared CPU a second thread mostly waits
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def synth_splits(tmp_path_factory):
    folder = synthetic_dataset(tmp_path_factory.mktemp("synth_tracks"), talking=6, frames=300)
    return split_clips(load_clips(folder))


# ------------------------------------------------------------------ LDM structure
def _random_ldm(seed=0) -> LandmarkDeformationModel:
    torch.manual_seed(seed)
    model = LandmarkDeformationModel().eval()
    model.fields.normal_(std=0.05)             # make the output clearly non-zero
    return model


def test_ldm_intensity_zero_and_neutral_give_exactly_zero_displacement():
    model = _random_ldm()
    neutral = torch.randn(16, 68, 3) * 0.05
    w = torch.softmax(torch.randn(16, 8), -1)
    assert model(neutral, w, torch.ones(16)).abs().max() > 1e-3
    assert torch.equal(model(neutral, w, torch.zeros(16)), torch.zeros(16, 68, 3))
    pure_neutral = torch.zeros(16, 8)
    pure_neutral[:, 0] = 1
    assert torch.equal(model(neutral, pure_neutral, torch.ones(16)), torch.zeros(16, 68, 3))
    out = model.deform(neutral, w, torch.zeros(16))
    assert torch.equal(out, neutral)


def test_ldm_blend_is_the_blend_of_the_deformations_and_scales_with_intensity():
    model = _random_ldm(1)
    neutral = torch.randn(4, 68, 3) * 0.05
    happy, sad = torch.zeros(4, 8), torch.zeros(4, 8)
    happy[:, 5], sad[:, 6] = 1, 1
    one = torch.ones(4)
    d_h, d_s = model(neutral, happy, one), model(neutral, sad, one)
    d_mix = model(neutral, 0.3 * happy + 0.7 * sad, one)
    torch.testing.assert_close(d_mix, 0.3 * d_h + 0.7 * d_s, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(model(neutral, happy, one * 0.5), 0.5 * d_h, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ VAE structure
def _vae_with_stats() -> Audio2MotionVAE:
    torch.manual_seed(0)
    vae = Audio2MotionVAE().eval()
    vae.pca_basis.copy_(torch.linalg.qr(torch.randn(204, 24))[0].T)
    vae.coef_std.fill_(0.02)
    return vae


def test_vae_deterministic_mode_and_seeds():
    vae = _vae_with_stats()
    mel = torch.randn(4 * 120, 80)
    a = vae.generate(mel, temperature=0.0, seed=1)
    b = vae.generate(mel, temperature=0.0, seed=2)
    assert torch.equal(a, b), "temperature 0 must not depend on the seed"
    s1 = vae.generate(mel, temperature=1.0, seed=1)
    s1_again = vae.generate(mel, temperature=1.0, seed=1)
    s2 = vae.generate(mel, temperature=1.0, seed=2)
    assert torch.equal(s1, s1_again)
    assert (s1 - s2).abs().max() > 1e-5


def test_vae_chunked_generation_equals_one_pass():
    vae = _vae_with_stats()
    mel = torch.randn(4 * 300, 80)
    whole = vae.generate(mel, temperature=0.7, seed=3, chunk=10_000)
    chunked = vae.generate(mel, temperature=0.7, seed=3, chunk=37)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-4)
    short = vae.generate(torch.randn(4 * 5, 80), temperature=1.0, seed=0)   # 0.2 s
    assert short.shape == (5, 68, 3) and torch.isfinite(short).all()


def test_silence_gate_and_lip_closing():
    speech = np.zeros(100, bool)
    speech[30:50] = True
    gate = silence_gate(speech)
    assert gate[35:45].min() == pytest.approx(1.0)
    assert gate[:20].max() == 0.0 and gate[65:].max() == 0.0
    assert np.all(np.abs(np.diff(gate)) < 0.5), "the gate ramps, it does not jump"
    disp = torch.randn(100, 68, 3)
    rest = torch.randn(68, 3)
    out = close_lips_in_silence(disp, rest, torch.from_numpy(gate))
    idx = torch.as_tensor(SILENCE_GATED)
    assert torch.equal(out[:20][:, idx], rest[idx].expand(20, -1, -1))
    assert torch.equal(out[40], disp[40])
    other = torch.as_tensor([i for i in range(68) if i not in set(SILENCE_GATED)])
    assert torch.equal(out[:, other], disp[:, other])


# ------------------------------------------------------------------ trained on synthetic data
def test_syncnet_finds_the_offset_on_a_held_out_synthetic_clip(synth_splits):
    model, hist = training.train_syncnet(training.SyncNetTrainConfig(steps=200), synth_splits.talking_train, CPU)
    assert hist["loss"][-1] < hist["loss"][0]
    clip = synth_splits.talking_test[0]
    real = sync_profile(model, clip.mel, clip.landmarks, speech=clip.speech)
    shifted = sync_profile(model, clip.mel, np.roll(clip.landmarks, 5, axis=0), speech=clip.speech)
    assert abs(real.offset) <= 1
    assert shifted.offset in (4, 5, 6)
    assert real.similarity > shifted.similarity


def test_ldm_and_classifier_learn_synthetic_emotions(synth_splits):
    # synthetic speakers carry exactly their emotion's offset: keep all of it, at the least-squares amplitude
    fit = training.LDMFitConfig(common_weight=1.0, amplitude=0.0, generator_pool_only=False)
    ldm, _ = training.train_ldm(training.LDMTrainConfig(fit=fit), synth_splits.mead_train, CPU)
    pairs = training.deformation_pairs(synth_splits.mead_test)
    w = torch.nn.functional.one_hot(torch.as_tensor(pairs.label), 8).float()
    with torch.no_grad():
        pred = ldm(torch.as_tensor(pairs.neutral), w, torch.as_tensor(pairs.intensity)).numpy()
    err_model = np.linalg.norm(pairs.neutral + pred - pairs.emotional, axis=-1).mean()
    err_none = np.linalg.norm(pairs.neutral - pairs.emotional, axis=-1).mean()
    assert err_model < 0.7 * err_none
    clf, _ = training.train_emotion_classifier(training.EmotionTrainConfig(steps=200), synth_splits.mead_train, CPU)
    from backend.motion.emotion_classifier import classify_track
    correct = [np.mean(classify_track(clf, c.landmarks)[0] == c.emotion_label) for c in synth_splits.mead_test]
    assert np.mean(correct) > 0.5      # chance 0.125


def test_checkpoint_round_trip_and_wrong_kind(tmp_path):
    model = _random_ldm()
    save_model(model, tmp_path, "ldm")
    loaded = load_model(tmp_path, "ldm")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    (tmp_path / "ldm.json").rename(tmp_path / "syncnet.json")
    (tmp_path / "ldm.safetensors").rename(tmp_path / "syncnet.safetensors")
    with pytest.raises(CheckpointError, match="emogene.ldm.*expected 'emogene.syncnet'"):
        load_model(tmp_path, "syncnet")
    import json
    meta = json.loads((tmp_path / "syncnet.json").read_text())
    meta.update(kind="emogene.ldm", version=99)
    (tmp_path / "ldm.json").write_text(json.dumps(meta))
    (tmp_path / "syncnet.safetensors").rename(tmp_path / "ldm.safetensors")
    with pytest.raises(CheckpointError, match="version 99"):
        load_model(tmp_path, "ldm")


# ------------------------------------------------------------------ pose, idle, blinks, resampling
def test_idle_pose_sampling_is_calmer_in_silence_and_continuous():
    clip = synthetic_clip("pose", 600, seed=4)
    rng = np.random.default_rng(0)
    steps = rng.normal(0, 0.01, (600, 3))               # random-walk head motion ...
    for s in range(0, 600, 70):
        steps[s + 40:s + 70] *= 0.05                      # ... with still stretches, as real listeners have
    rv = np.cumsum(steps, 0)
    from scipy.spatial.transform import Rotation
    track = PoseTrack(Rotation.from_rotvec(rv).as_matrix(), clip.translation)
    speech = np.ones(500, bool)
    speech[100:220] = False
    speech[300:420] = False
    silent = ~speech
    r_on, t_on = sample_pose(track, 500, speech, seed=1, idle=True)
    r_off, t_off = sample_pose(track, 500, speech, seed=1, idle=False)
    rv_on = Rotation.from_matrix(r_on).as_rotvec()
    rv_off = Rotation.from_matrix(r_off).as_rotvec()
    ratios = []
    for seed in range(6):
        on = Rotation.from_matrix(sample_pose(track, 500, speech, seed=seed, idle=True)[0]).as_rotvec()
        off = Rotation.from_matrix(sample_pose(track, 500, speech, seed=seed, idle=False)[0]).as_rotvec()
        ratios.append(motion_statistics(on, silent)[0] / motion_statistics(off, silent)[0])
    # idle segments (length of the track's still runs, ~30 frames) alternate with its mean gap (~40
    # frames) of ordinary motion, so silence should be roughly 30-45 % calmer, never livelier
    assert np.mean(ratios) < 0.8 and max(ratios) < 1.0, ratios
    np.testing.assert_allclose(rv_on[speech & np.r_[speech[1:], True] & np.r_[True, speech[:-1]]][:50],
                               rv_off[speech & np.r_[speech[1:], True] & np.r_[True, speech[:-1]]][:50], atol=1e-6)
    assert np.abs(np.diff(rv_on, axis=0)).max() < 4 * np.abs(np.diff(rv_off, axis=0)).max(), "no jumps"
    np.testing.assert_allclose(r_on @ r_on.transpose(0, 2, 1), np.tile(np.eye(3), (500, 1, 1)), atol=1e-5)
    again, _ = sample_pose(track, 500, speech, seed=1, idle=True)
    assert np.array_equal(again, r_on)
    assert silent_spans(speech, 12) == [(100, 220), (300, 420)]


def test_blinks_have_natural_rate_and_duration_at_any_fps():
    blinks = blink_schedule(600.0, seed=0)
    rate = len(blinks) / 10.0
    assert 13 <= rate <= 21, rate
    lengths = np.array([b[1] for b in blinks])
    assert lengths.min() >= 0.1 and lengths.max() <= 0.15
    for fps in (23.976, 25.0, 60.0):
        closure = frame_closure(int(60 * fps), fps, blink_schedule(60.0, seed=1))
        count = len(blink_schedule(60.0, seed=1))
        onsets = np.sum(np.diff((closure > 0.5).astype(int)) == 1)
        assert onsets == count, (fps, onsets, count)
    face = synthetic_clip("b", 10).landmarks[:3]
    closed = apply_blinks(face, np.array([0.0, 0.5, 1.0]))
    op = eye_opening(closed)
    assert op[0] == pytest.approx(eye_opening(face[:1])[0]) and op[2] < 0.1 * op[0] and op[0] > op[1] > op[2]


def test_resampling_and_emotion_sanitising():
    x = np.arange(50, dtype=np.float32)[:, None]
    out = resample_linear(x, 48, 23.976)
    assert out.shape == (48, 1) and out[0, 0] == 0 and out[1, 0] == pytest.approx(25 / 23.976, rel=1e-5)
    assert resample_linear(x, 120, 60.0)[59, 0] == pytest.approx(59 * 25 / 60)
    assert resample_linear(x, 120, 60.0)[-1, 0] == 49   # past the last 25 fps frame: held
    from scipy.spatial.transform import Rotation
    rot = Rotation.from_rotvec(np.linspace([0, 0, 0], [0, 0.5, 0], 50)).as_matrix()
    r60 = resample_rotation(rot, 120, 60.0)
    assert Rotation.from_matrix(r60[60]).magnitude() == pytest.approx(0.5 * 60 * 25 / 60 / 49, rel=1e-3)
    w = np.zeros((4, 8), np.float32)
    w[0, 5], w[1, [5, 6]], w[2, 1] = 2, [1, 3], -1
    w[3, 2] = np.nan
    weights, intensity, notes = sanitise_emotion(w, np.array([0.5, 2, -1, 1], np.float32), 4)
    np.testing.assert_allclose(weights.sum(1), 1)
    assert weights[1, 6] == pytest.approx(0.75) and weights[2, 0] == 1 and weights[3, 0] == 1
    assert intensity.tolist() == [0.5, 1, 0, 1] and len(notes) == 3
    w2, i2, notes2 = sanitise_emotion(w[:2].clip(0), np.ones(2, np.float32), 5)
    assert w2.shape == (5, 8) and i2.shape == (5,) and notes2


def test_frame_log_mel_matches_the_data_module_in_chunks():
    from backend.data.audio import mel_for_frames
    from backend.motion.features import frame_log_mel, frames_for_audio
    rng = np.random.default_rng(0)
    audio = (rng.normal(0, 0.1, 16000 * 3 + 77) * np.sin(np.linspace(0, 30, 16000 * 3 + 77))).astype(np.float32)
    T = frames_for_audio(len(audio))
    np.testing.assert_allclose(frame_log_mel(audio, T, chunk_frames=17), mel_for_frames(audio, T), atol=1e-4)


def test_silence_gate_keeps_the_length_of_clips_shorter_than_its_kernel():
    """Regression: 4 frames of audio (0.16 s) made a 5-frame gate and crashed the motion stage."""
    import numpy as np

    from backend.motion.audio2motion import silence_gate
    for frames in range(0, 12):
        speech = np.zeros(frames, bool)
        speech[frames // 2:] = True
        gate = silence_gate(speech)
        assert gate.shape == (frames,)
        if frames:
            assert gate[-1] == 1.0


def test_pose_sampling_never_crosses_from_one_clip_into_the_next():
    """A capture session's track holds its clips one after another (``clip_starts``; here: two clips 3 units apart in
    depth); a sampled stretch must replay one clip (no jump), and a one-run track samples exactly as a track without
    segments."""
    from backend.motion.pose_sampling import clip_segments

    n = 120
    rotation = np.repeat(np.eye(3)[None], n, 0)
    translation = np.zeros((n, 3))
    translation[:, 2] = np.where(np.arange(n) >= 70, 13.0, 10.0) + 0.001 * np.arange(n)
    segments = clip_segments(np.array([0, 70]), n)
    assert segments == ((0, 70), (70, 120))
    joined, split = PoseTrack(rotation, translation), PoseTrack(rotation, translation, segments)
    crossed = 0
    for seed in range(40):
        _, t_split = sample_pose(split, 200, seed=seed, idle=False)
        _, t_joined = sample_pose(joined, 200, seed=seed, idle=False)
        assert np.abs(np.diff(t_split[:, 2])).max() < 0.01
        crossed += np.abs(np.diff(t_joined[:, 2])).max() > 1
    assert crossed > 0                                  # without segments the same draws do jump
    whole = PoseTrack(rotation, translation, ((0, n),))
    for seed in range(5):
        assert np.array_equal(sample_pose(whole, 200, seed=seed)[1], sample_pose(joined, 200, seed=seed)[1])
    assert clip_segments(np.array([0]), n) == ()       # one clip: one run
    with pytest.raises(ValueError, match="exactly once"):
        PoseTrack(rotation, translation, ((0, 60), (50, 120)))
    with pytest.raises(ValueError, match="clip_starts"):
        clip_segments(np.array([0, 119]), n)            # a one-row clip is no run


def test_pose_is_drawn_from_the_neutral_clips_of_a_capture_session(tmp_path):
    """Head motion for a generated take comes from the subject's neutral clips (an emotional clip's head motion belongs
    to that emotion), read through track.npz's clip_starts and subject.json's clip labels; a track whose clips carry
    no neutral label draws from all of them; every draw stays inside one clip."""
    from backend.motion.generator import SubjectMotion

    starts, n = np.array([0, 50, 90]), 140
    depth = np.repeat([10.0, 12.0, 14.0], np.diff(np.r_[starts, n])) + 0.001 * np.arange(n)
    np.savez(tmp_path / "track.npz", rotation=np.repeat(np.eye(3)[None], n, 0),
             translation=np.c_[np.zeros((n, 2)), depth], clip_starts=starts)
    labelled = [{"emotion": "happy"}, {"emotion": "neutral"}, {"emotion": "sad"}]
    motion = SubjectMotion.from_track(tmp_path / "track.npz", labelled)
    assert motion.pose.segments == ((0, 50), (50, 90), (90, 140)) and motion.pose.drawn_segments == (1,)
    for seed in range(30):
        _, t = sample_pose(motion.pose, 300, seed=seed, idle=False)
        assert np.all(np.round(t[:, 2]) == 12.0)        # the neutral clip's depth, every frame
    unlabelled = SubjectMotion.from_track(tmp_path / "track.npz", [{"emotion": None}] * 3)
    assert unlabelled.pose.drawn_segments == ()
    seen = {float(np.round(sample_pose(unlabelled.pose, 300, seed=s, idle=False)[1][0, 2])) for s in range(30)}
    assert seen == {10.0, 12.0, 14.0}
    with pytest.raises(ValueError, match="drawn_segments"):
        PoseTrack(motion.pose.rotation, motion.pose.translation, motion.pose.segments, (3,))


def test_ping_pong_plays_a_run_forward_and_back_and_a_one_frame_run_stays_put():
    assert ping_pong(np.arange(9), 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert ping_pong(np.arange(5), 2).tolist() == [0, 1, 0, 1, 0]
    assert ping_pong(np.arange(4), 1).tolist() == [0, 0, 0, 0]
