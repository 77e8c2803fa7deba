"""Mel-LPC formants (``backend.motion.formants``) and the speech-motion model's opt-in formant input."""
from __future__ import annotations

import librosa
import numpy as np
import torch

from backend.motion.formants import COUNT, formant_features, formants_hz
from backend.motion.speech_motion import SpeechMotionConfig, SpeechMotionModel

torch.set_num_threads(1)


def _vowel_log_mel(formants_hz_: tuple[float, ...], bandwidth: float = 90.0, rows: int = 20) -> torch.Tensor:
    """Log-mel rows of an all-pole (vowel-like) spectrum with resonances at ``formants_hz_``, as the data module
    computes log-mel (16 kHz, n_fft 512, 80 Slaney bands 55-7600 Hz)."""
    f = np.linspace(0, 8000, 257)
    z = np.exp(-1j * np.pi * f / 8000)
    h = np.ones_like(z)
    for fc in formants_hz_:
        pole = np.exp(-np.pi * bandwidth / 16000) * np.exp(1j * 2 * np.pi * fc / 16000)
        h = h / ((1 - pole * z) * (1 - np.conj(pole) * z))
    power = np.abs(h) ** 2 * (1 + 0.02 * np.random.default_rng(0).random(257))
    basis = librosa.filters.mel(sr=16000, n_fft=512, n_mels=80, fmin=55.0, fmax=7600.0)
    mel = np.log(basis @ power + 1e-6)
    return torch.as_tensor(np.repeat(mel[None], rows, 0), dtype=torch.float32)


def test_formants_of_a_synthetic_vowel_are_found_within_ten_percent():
    for vowel in ((730.0, 1090.0, 2440.0), (270.0, 2290.0, 3010.0), (300.0, 870.0, 2240.0)):   # /a/, /i/, /u/
        found = formants_hz(_vowel_log_mel(vowel))[0].numpy()
        assert found.shape == (COUNT,)
        assert np.all(np.abs(found - vowel) / np.asarray(vowel) < 0.1), (vowel, found)


def test_formant_features_move_with_the_vowel_not_with_level_and_rank_jaw_opening():
    a = _vowel_log_mel((730.0, 1090.0, 2440.0))          # open jaw: high F1
    i = _vowel_log_mel((270.0, 2290.0, 3010.0))          # closed jaw, spread lips: low F1, high F2
    mel = torch.cat([a, i])
    feats = formant_features(mel)
    assert torch.allclose(formant_features(mel + 3.0), feats, atol=1e-2)      # +13 dB: same features (float32 noise)
    assert feats[:20, 0].mean() > feats[20:, 0].mean() + 1.0                   # F1 higher on /a/
    assert feats[:20, 1].mean() < feats[20:, 1].mean() - 1.0                   # F2 lower on /a/
    # the recording's own mean over its louder half of rows is removed (speaker normalisation)
    energy = torch.logsumexp(mel, -1)
    loud = energy >= torch.quantile(energy, 0.5)
    assert feats[loud].mean(0).abs().max() < 1e-2


def test_a_model_with_formant_input_keeps_its_chunking_contract_and_the_default_input_is_unchanged():
    torch.manual_seed(0)
    m = SpeechMotionModel(SpeechMotionConfig(formants=True)).eval()
    rng = np.random.default_rng(0)
    mel = torch.as_tensor(np.log(np.exp(rng.normal(0, 1, (4 * 120, 80))) + 1e-6), dtype=torch.float32)
    assert m.normalise(mel).shape == (4 * 120, 80 + COUNT)
    whole = m.generate(mel, temperature=0.0, chunk=1000)
    pieces = m.generate(mel, temperature=0.0, chunk=41)
    assert torch.allclose(whole, pieces, atol=1e-5)
    plain = SpeechMotionModel(SpeechMotionConfig())
    assert plain.normalise(mel).shape == (4 * 120, 80)
