"""Units of the speech-driven motion model: features, augmentation, the model's contract, the lip-sync split."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.motion.audio_features import MelAugment, frame_energy, normalise_mel
from backend.motion.lipsync_data import lip_sync_reason, lip_sync_split, person
from backend.motion.speech_motion import SpeechMotionConfig, SpeechMotionModel
from backend.motion.tracks_data import TrackClip
from bridge.landmarks import NUM_LANDMARKS

torch.set_num_threads(1)


def _speech_like_mel(rows: int = 400, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    env = np.clip(np.sin(np.arange(rows) / 7.0) + rng.normal(0, 0.3, rows), 0, None)
    spec = np.log(np.outer(env, np.linspace(2.0, 0.2, 80)) ** 2 + 1e-6)
    return torch.as_tensor(spec + rng.normal(0, 0.2, spec.shape), dtype=torch.float32)


def test_normalised_features_ignore_level_and_microphone_colour():
    mel = _speech_like_mel()
    louder = mel + 3.0                                         # +13 dB
    coloured = mel + torch.linspace(-1, 1, 80)                  # a tilted microphone response
    ref = normalise_mel(mel)
    assert torch.allclose(normalise_mel(louder), ref, atol=1e-5)
    # colour: same except where the -8 nat floor clips differently
    assert (normalise_mel(coloured) - ref).abs().median() < 1e-4
    # the loudness envelope itself is not invariant (the baseline uses it)
    assert frame_energy(louder.numpy()).mean() > frame_energy(mel.numpy()).mean() + 2.9


def test_augmentation_changes_the_spectrum_but_keeps_shape_and_floor():
    mel = torch.stack([_speech_like_mel(seed=s) for s in range(8)])
    out = MelAugment(seed=1)(mel.clone())
    assert out.shape == mel.shape and torch.isfinite(out).all()
    assert out.min() >= np.log(1e-6) - 1e-4
    assert (out - mel).abs().mean() > 0.1
    assert torch.equal(MelAugment(seed=1)(mel.clone()), out)    # seeded


def _model() -> SpeechMotionModel:
    torch.manual_seed(0)
    m = SpeechMotionModel(SpeechMotionConfig(hidden=32, front=16, dilations=(1, 2, 4), speakers=4, style_dim=4))
    basis = torch.linalg.qr(torch.randn(204, 20))[0].T
    m.pca_basis.copy_(basis)
    m.coef_std.fill_(0.01)
    m.style_sigma.fill_(0.5)
    return m.eval()


def test_generate_is_independent_of_chunking_and_deterministic_at_temperature_zero():
    m = _model()
    mel = _speech_like_mel(4 * 150)
    whole = m.generate(mel, temperature=0.0, chunk=1000)
    pieces = m.generate(mel, temperature=0.0, chunk=37)
    assert whole.shape == (150, 68, 3)
    assert torch.allclose(whole, pieces, atol=1e-5)
    assert torch.equal(m.generate(mel, 0.0, seed=1), m.generate(mel, 0.0, seed=2))


def test_seeds_pick_different_styles_at_temperature_one():
    m = _model()
    mel = _speech_like_mel(4 * 100)
    a, b = m.generate(mel, 1.0, seed=3), m.generate(mel, 1.0, seed=4)
    assert torch.equal(a, m.generate(mel, 1.0, seed=3))
    assert (a - b).abs().mean() > 1e-4


def test_merged_members_average_their_outputs_and_refuse_different_statistics():
    a, b = _model(), _model()
    torch.manual_seed(1)
    for p in b.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    mel = _speech_like_mel(4 * 80)
    merged = SpeechMotionModel.merge([a, b], output_gain=1.5)
    assert merged.config.members == 2 and len(merged.others) == 1
    for t, seed in ((0.0, 0), (1.0, 5)):
        expect = 1.5 * (a.generate(mel, t, seed) + b.generate(mel, t, seed)) / 2
        assert torch.allclose(merged.generate(mel, t, seed, chunk=33), expect, atol=1e-5)
    b.mean_face.add_(1.0)
    with pytest.raises(ValueError, match="mean_face"):
        SpeechMotionModel.merge([a, b])


def _clip(name, speaker, split, source="talking/x.mp4", usable=True, speech=0.9) -> TrackClip:
    T = 50
    return TrackClip(name=name, landmarks=np.zeros((T, 68, 3), np.float32), rotation=np.tile(np.eye(3), (T, 1, 1)),
                     translation=np.zeros((T, 3)), mel=np.zeros((4 * T, 80), np.float32),
                     speech=np.arange(T) < speech * T, speaker=speaker, split=split,
                     meta={"source": source, "lip_sync_usable": usable})


def test_a_person_the_shipped_models_trained_on_is_never_held_out(tmp_path):
    """A fresh `emogene prepare` of a grown corpus can move a speaker into validation (the split depends on the whole
    speaker set); evaluating the models trained before must count that person as training data, whichever of their
    clips the models saw and whatever the track files say."""
    import json

    from backend.motion.lipsync_data import held_out_from

    (tmp_path / "audio2motion.json").write_text(json.dumps({"train_clips": ["feifeili_clip1", "cnn2"]}))
    (tmp_path / "syncnet.json").write_text(json.dumps({"train_clips": ["obama_20s"]}))
    clips = [_clip("feifeili_clip2", "feifeili", "val"), _clip("feifeili_clip1", "feifeili", "val"),
             _clip("obama_weekly_47s", "obama_weekly", "val"), _clip("obama_20s", "obama", "train"),
             _clip("lieu_60s", "lieu", "val"), _clip("cnn2", "cnn2", "train")]
    marked, moved = held_out_from(clips, tmp_path)
    assert moved == ["feifeili", "obama"]               # both were held out by the tracks, both trained on
    assert [c.split for c in marked] == ["train", "train", "train", "train", "val", "train"]
    assert lip_sync_split(marked).held_out_people == ["lieu"]
    assert [c.split for c in clips][0] == "val"          # the caller's clips are not modified
    assert held_out_from(clips, tmp_path / "no_models") == (clips, [])


def test_lip_sync_split_holds_out_whole_people_and_drops_unusable_audio():
    clips = [_clip("obama_20s", "obama", "val"), _clip("obama_weekly_47s", "obama_weekly", "train"),
             _clip("cnn2", "cnn2", "train"), _clip("dub", "dub", "train", usable=False),
             _clip("driver", "driver", "train", source="../shared/data/video_only/d.mp4"),
             _clip("mute", "mute", "train", speech=0.0)]
    split = lip_sync_split(clips)
    assert [c.name for c in split.train] == ["cnn2"]
    # the weekly address is Obama too: held out with him although its own split says train
    assert sorted(c.name for c in split.test) == ["obama_20s", "obama_weekly_47s"]
    assert person(clips[1]) == "obama"
    assert set(split.excluded) == {"dub", "driver", "mute"}
    assert "video_only" in lip_sync_reason(clips[4])
    # a clip the data module's loudness check flagged, but the speech-motion model found in sync, teaches
    assert lip_sync_reason(_clip("grid_swwp2s", "grid_swwp2s", "train", usable=False)) is None
    assert "lip_sync_usable" in lip_sync_reason(_clip("sun", "sun", "train", usable=False))
    # the emotion judge's MEAD speakers never teach a generator model
    judge = _clip("W023_x", "W023", "train")
    judge.meta["corpus"] = "mead"
    assert "generator pool" in lip_sync_reason(judge)


def test_clips_with_a_known_audio_offset_are_realigned_not_dropped(monkeypatch):
    from backend.motion import lipsync_data
    monkeypatch.setitem(lipsync_data.AUDIO_OFFSET, "late", 2)
    late = _clip("late", "late", "train", usable=False)
    late.landmarks[:, 0, 0] = np.arange(late.frames)          # frame index in the landmarks ...
    late.mel[:] = np.repeat(np.arange(late.frames), 4)[:, None]  # ... and in the audio rows
    split = lip_sync_split([late, _clip("dub", "dub", "train", usable=False)])
    assert [c.name for c in split.train] == ["late"] and "dub" in split.excluded
    c = split.train[0]
    assert c.frames == 48 and c.mel.shape == (4 * 48, 80) and c.speech.shape == (48,)
    # landmarks of frame t now sit beside the audio of frame t + 2
    assert np.array_equal(c.mel[::4, 0] - c.landmarks[:, 0, 0], np.full(48, 2.0))


def test_pause_gate_closes_pauses_and_edges_but_not_brief_gaps():
    from backend.motion.audio2motion import pause_gate
    speech = np.zeros(70, bool)
    speech[4:20] = True          # 4 silent frames at the start: an edge pause
    speech[23:30] = True         # a 3-frame gap (20-22): speech continues through it
    speech[42:50] = True         # a 12-frame pause (30-41)
    speech[58:65] = True         # an 8-frame gap (50-57): shorter than min_pause, speech continues
    gate = pause_gate(speech)    # ... then 5 silent frames at the end
    assert gate.shape == (70,)
    # pauses closed, the motion ramps in and out on the speech side (ramp 1: half-way)
    assert np.all(gate[:4] == 0) and np.all(gate[30:42] == 0) and np.all(gate[65:] == 0)
    assert gate[4] == 0.5 and gate[42] == 0.5 and gate[64] == 0.5, gate
    # lead 1: the lips part one frame before each speech onset (not at the end)
    lead = pause_gate(speech, lead=1)
    assert lead[3] == 0.5 and lead[41] == 0.5 and lead[4] == 1.0 and np.all(lead[65:] == 0)
    assert gate[20:23].min() == 1.0 and gate[50:58].min() == 1.0, "a brief VAD gap keeps the speech motion"
    assert gate[10] == 1.0 and gate[46] == 1.0
    assert np.all(np.abs(np.diff(gate)) <= 0.5), "ramps, no jumps"
    assert np.all(pause_gate(np.zeros(7, bool)) == 0) and np.all(pause_gate(np.ones(7, bool)) == 1)
    assert pause_gate(np.zeros(0, bool)).shape == (0,)


def test_closed_rest_lands_on_closed_lips_for_any_face():
    import torch
    from backend.motion.audio2motion import CLOSED_OPENING, closed_rest, gate_pauses
    from backend.motion.landmarks import mouth_opening
    rng = np.random.default_rng(0)
    face = torch.as_tensor(rng.normal(size=(NUM_LANDMARKS, 3)), dtype=torch.float32) * 0.1
    rest = torch.zeros(NUM_LANDMARKS, 3)
    rest[[61, 62, 63], 1] = -0.05          # upper inner lip down, lower up: closes by 0.1
    rest[[65, 66, 67], 1] = 0.05
    for gap in (0.03, 0.08, 0.12):         # faces less and more open than the rest step closes
        f = face.clone()
        f[[61, 62, 63], 1] = f[[65, 66, 67], 1] + gap
        closed = f + closed_rest(rest, f)
        assert abs(float(mouth_opening(closed)) - CLOSED_OPENING) < 1e-6, gap
    # through the gate: silent frames are at the face's closed pose, speech frames untouched
    disp = torch.randn(20, NUM_LANDMARKS, 3) * 0.01
    speech = np.r_[np.zeros(5, bool), np.ones(15, bool)]
    out = gate_pauses(disp, rest, speech, f)
    assert torch.allclose(mouth_opening(out[:3] + f), torch.full((3,), CLOSED_OPENING), atol=1e-6)
    assert torch.equal(out[8:], disp[8:])


def _silero_sequential_mask(audio: np.ndarray, frames: int) -> np.ndarray:
    """silero-vad's own one-window-at-a-time path, with voice_activity's settings."""
    from silero_vad import get_speech_timestamps
    from backend.data.audio import SAMPLE_RATE, VadConfig, _silero_model, _timestamps_to_mask
    c = VadConfig()
    stamps = get_speech_timestamps(torch.from_numpy(audio.copy()), _silero_model(), sampling_rate=SAMPLE_RATE,
                                   threshold=c.threshold, min_speech_duration_ms=c.min_speech_ms,
                                   min_silence_duration_ms=c.min_silence_ms)
    return _timestamps_to_mask(stamps, frames, 25.0)


def test_batched_silero_vad_matches_the_sequential_one(shared_data):
    from backend.data.audio import SILERO_WINDOW, _silero_model, load_audio, silero_speech_probs, voice_activity
    audio = load_audio(shared_data / "speech" / "eng_60s.wav")[: 16000 * 20]
    model = _silero_model()
    short = audio[: 60 * SILERO_WINDOW]           # one segment: exactly silero's sequential probabilities
    model.reset_states()
    with torch.no_grad():
        seq = [float(model(torch.from_numpy(short[i:i + SILERO_WINDOW].copy()), 16000))
               for i in range(0, len(short), SILERO_WINDOW)]
    assert np.allclose(silero_speech_probs(short, model), seq, atol=1e-5)
    frames = len(audio) * 25 // 16000               # 20 s = 10 segments side by side
    batched, sequential = voice_activity(audio, frames), _silero_sequential_mask(audio, frames)
    assert 0.3 < sequential.mean() and np.mean(batched == sequential) >= 0.98


def test_best_lag_finds_a_shifted_mouth():
    from backend.motion.landmarks import INNER_LIP_PAIRS
    from backend.motion.lipsync_eval import best_lag
    from bridge.landmarks import NUM_LANDMARKS
    rng = np.random.default_rng(0)
    opening = np.convolve(rng.normal(size=300), np.ones(5) / 5, "same")
    real = np.zeros((300, NUM_LANDMARKS, 3), np.float32)
    for upper, _ in INNER_LIP_PAIRS:
        real[:, upper, 1] = opening                                     # upper inner lip up = mouth open
    late = np.roll(real, 3, axis=0)                                     # real lips 3 frames after the generated
    lag, r = best_lag(real, late)
    assert lag == 3 and r > 0.95
    assert best_lag(real, real)[0] == 0
