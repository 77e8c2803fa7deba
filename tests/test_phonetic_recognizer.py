"""The phone recogniser (viseme posteriors from log-mel): shapes, chunked decoding, checkpoints, shipped weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.checkpoints import CheckpointError, save_checkpoint
from backend.data.synthetic_speech import VISEMES
from backend.motion.phonetic import (DEFAULT_WEIGHTS, PhoneRecognizer, PhoneticConfig, load_recognizer,
                                     save_recognizer, viseme_features)


def _model() -> PhoneRecognizer:
    torch.manual_seed(0)
    return PhoneRecognizer(PhoneticConfig(front=16, hidden=24)).eval()


def test_shapes_and_a_clear_error_on_bad_input():
    m = _model()
    out = m(torch.randn(2, 4 * 30, 80))
    assert out.shape == (2, 30, len(VISEMES))
    with pytest.raises(ValueError, match="4T"):
        m(torch.randn(2, 4 * 30 + 1, 80))
    feats = viseme_features(torch.randn(4 * 30, 80), m)
    assert feats.shape == (4 * 30, len(VISEMES))
    assert torch.allclose(feats.sum(-1), torch.ones(4 * 30), atol=1e-5)


def test_output_depends_only_on_the_receptive_field():
    m = _model()
    x = torch.randn(1, 4 * 100, 80)
    full = m(x)
    rf = m.receptive_field
    part = m(x[:, 4 * (50 - rf): 4 * (60 + rf)])
    assert torch.allclose(full[:, 50:60], part[:, rf: rf + 10], atol=1e-5)


def test_checkpoint_round_trip_and_wrong_files(tmp_path):
    m = _model()
    save_recognizer(m, tmp_path / "p", {"acc": 1.0})
    back = load_recognizer(tmp_path / "p")
    x = torch.randn(1, 40, 80)
    assert torch.equal(m(x), back(x))
    with pytest.raises(CheckpointError, match="train_phone_recognizer"):
        load_recognizer(tmp_path / "missing")
    save_checkpoint(tmp_path / "o", m, kind="other", version=1)
    with pytest.raises(CheckpointError, match="expected 'emogene.phones'"):
        load_recognizer(tmp_path / "o")


def _shipped() -> PhoneRecognizer:
    if not DEFAULT_WEIGHTS.with_suffix(".safetensors").is_file():
        pytest.skip("no shipped phone recogniser weights")
    return load_recognizer()


def test_shipped_recognizer_says_silence_in_silence_and_speech_in_real_speech(shared_data):
    """Real recorded speech (never seen: the recogniser learnt from synthetic voices only) with 1 s of silence added:
    the silence frames read as silence, and the speech frames mostly do not."""
    from backend.data.audio import load_audio, mel_for_frames
    from backend.motion.audio_features import normalise_mel
    m = _shipped()
    audio = load_audio(shared_data / "speech" / "eng_60s.wav")[: 16000 * 8]
    audio = np.concatenate([np.zeros(16000, np.float32), audio])
    T = len(audio) * 25 // 16000
    mel = torch.as_tensor(mel_for_frames(audio, T))
    post = m.posteriors(normalise_mel(mel)[None])[0].numpy()
    sil = post[:, 0]
    assert np.mean(sil[3:22] > 0.5) >= 0.9
    assert np.mean(sil[40:] > 0.5) <= 0.4
    assert len(set(post[40:].argmax(-1).tolist())) >= 8      # many mouth classes, not one


def test_shipped_recognizer_reads_a_voice_it_never_heard():
    """Synthetic speech in a held-out voice (en-029, not in the training voices): frame accuracy far above the
    majority class."""
    from backend.data.synthetic_speech import Espeak, SynthConfig, SynthesisError, random_utterance
    from backend.motion.audio_features import normalise_mel
    m = _shipped()
    try:
        Espeak()
    except SynthesisError as e:
        pytest.skip(str(e))
    rng = np.random.default_rng(11)
    words = ["people", "speak", "mouth", "open", "five", "thin", "shoe", "red", "way", "yes", "good", "light", "blue"]
    utts = [random_utterance(words, rng, SynthConfig(voices=("en-029",))) for _ in range(6)]
    hits = total = 0
    majority = np.bincount(np.concatenate([u.labels for u in utts])).max()
    for u in utts:
        pred = m(normalise_mel(torch.as_tensor(u.mel))[None]).argmax(-1)[0].numpy()
        hits += int((pred == u.labels).sum())
        total += len(u.labels)
    assert hits / total > 0.6 > 1.5 * majority / total
