"""Per-person motion equalisation for audio-to-motion training (``SpeechMotionTrainConfig.equalise_people``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.motion.a2m_training import SpeechMotionTrainConfig, equalise_motion_spread, train_speech_motion
from backend.motion.landmarks import mouth_opening
from backend.motion.speech_motion import SpeechMotionConfig
from backend.motion.tracks_data import TrackClip, TrackDataError
from bridge.landmarks import MOUTH, NUM_LANDMARKS

torch.set_num_threads(1)


def _talker(name: str, speaker: str, amplitude: float, frames: int = 120, seed: int = 0) -> TrackClip:
    face = np.random.default_rng(0).normal(0, 0.3, (NUM_LANDMARKS, 3)).astype(np.float32)   # one face for all
    rng = np.random.default_rng(seed)
    lm = np.repeat(face[None], frames, 0)
    wave = amplitude * np.sin(np.arange(frames) / 3.0 + seed)
    lm[:, MOUTH, 1] += wave[:, None] * rng.uniform(0.5, 1.5, lm[:, MOUTH].shape[1])
    lm[:, 62, 1] += wave                                          # upper inner lip up when the mouth opens
    lm[:, 66, 1] -= wave
    lm += rng.normal(0, 0.002, lm.shape).astype(np.float32)
    mel = rng.normal(-4, 1, (4 * frames, 80)).astype(np.float32)
    return TrackClip(name=name, landmarks=lm.astype(np.float32), rotation=np.tile(np.eye(3), (frames, 1, 1)),
                     translation=np.zeros((frames, 3)), mel=mel, speech=np.ones(frames, bool), speaker=speaker,
                     split="train", meta={"source": "talking/x.mp4", "lip_sync_usable": True})


def _spread(clips):
    people = {}
    for c in clips:
        people.setdefault(c.speaker, []).append(mouth_opening(c.landmarks))
    return {p: float(np.concatenate(v).std()) for p, v in people.items()}


def test_every_person_gets_the_median_opening_spread_and_keeps_the_mean_face():
    clips = [_talker("a1", "a", 0.01, seed=1), _talker("a2", "a", 0.012, seed=2),
             _talker("b1", "b", 0.03, seed=3), _talker("c1", "c", 0.06, seed=4)]
    before = _spread(clips)
    assert max(before.values()) / min(before.values()) > 4            # very unequal movers
    originals = [c.landmarks.copy() for c in clips]
    out = equalise_motion_spread(clips)
    after = _spread(out)
    median = float(np.median(list(before.values())))
    for p in after:
        assert after[p] == pytest.approx(median, rel=1e-4)
    for c, o in zip(out, clips):
        assert c.name == o.name and c.mel is o.mel and c.landmarks.dtype == np.float32
        assert np.allclose(c.landmarks.mean(0), o.landmarks.mean(0), atol=1e-6)   # same mean face
    # timing is untouched: the scaled opening follows the original one exactly
    assert np.corrcoef(mouth_opening(out[3].landmarks), mouth_opening(clips[3].landmarks))[0, 1] > 0.9999
    for c, o in zip(clips, originals):                                  # inputs not modified
        assert np.array_equal(c.landmarks, o)


def test_a_person_without_mouth_motion_is_a_clear_error():
    still = _talker("s", "still", 0.0)
    still.landmarks[:] = still.landmarks[0]
    with pytest.raises(TrackDataError, match="still"):
        equalise_motion_spread([_talker("a", "a", 0.02), still])


def test_the_flag_trains_on_equalised_motion_and_is_off_by_default():
    clips = [_talker("a1", "a", 0.01, seed=1), _talker("b1", "b", 0.05, seed=3)]
    assert SpeechMotionTrainConfig().equalise_people is False
    small = SpeechMotionConfig(hidden=16, front=8, dilations=(1, 2), speakers=4, style_dim=2, pca_components=6)
    cfg = SpeechMotionTrainConfig(model=small, steps=2, batch=4, window=16, ensemble=1, log_every=1)
    flagged, _ = train_speech_motion(SpeechMotionTrainConfig(**{**cfg.__dict__, "equalise_people": True}), clips,
                                     torch.device("cpu"), progress=False)
    by_hand, _ = train_speech_motion(cfg, equalise_motion_spread(clips), torch.device("cpu"), progress=False)
    plain, _ = train_speech_motion(cfg, clips, torch.device("cpu"), progress=False)
    for k, v in flagged.state_dict().items():
        assert torch.equal(v, by_hand.state_dict()[k]), k
    assert not torch.equal(flagged.coef_std, plain.coef_std)
