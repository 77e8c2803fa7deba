"""Viseme labels of synthetic speech: phone -> class mapping, per-frame labelling, espeak-ng timing."""
from __future__ import annotations

import numpy as np
import pytest

from backend.data.synthetic_speech import VISEMES, frame_labels, viseme_of


def _v(name: str) -> int:
    return VISEMES.index(name)


def test_ipa_phones_map_to_the_mouth_classes():
    assert viseme_of("p") == viseme_of("b") == viseme_of("m") == _v("PBM")
    assert viseme_of("f") == viseme_of("v") == _v("FV")
    assert viseme_of("tʃ") == viseme_of("dʒ") == viseme_of("ʃ") == _v("SH")
    assert viseme_of("ˈaɪ") == _v("AA")              # stress mark skipped, diphthong by its first vowel
    assert viseme_of("uː") == _v("UW") and viseme_of("oʊ") == _v("AO")
    assert viseme_of("ɹ") == _v("R") and viseme_of("w") == _v("W")
    assert viseme_of("") == viseme_of("_:") == _v("sil")


def test_each_frame_takes_the_class_covering_most_of_it():
    # 40 ms frames: silence 0-50 ms, 'm' 50-100, 'a' 100-190, then the end (80 ms default length)
    events = [(50, "m"), (100, "a"), (190, "")]
    lab = frame_labels(events, 7)
    assert lab.tolist() == [_v("sil"), _v("PBM"), _v("PBM"), _v("AA"), _v("AA"), _v("sil"), _v("sil")]


def _espeak():
    from backend.data.synthetic_speech import Espeak, SynthesisError
    try:
        return Espeak()
    except SynthesisError as e:
        pytest.skip(str(e))


def test_espeak_phone_timing_matches_the_sound():
    """Lip closures of 'papa' are quiet frames; the vowels are loud: the labels line up with the audio."""
    from backend.data.audio import mel_for_frames, resample
    from backend.motion.audio_features import frame_energy
    engine = _espeak()
    audio, events = engine.synthesise("papa, papa, papa", "en-us", rate=120)
    assert viseme_of(events[0][1]) == _v("PBM")
    a16 = resample(audio, engine.sample_rate)
    T = int(len(a16) / 16000 * 25)
    lab = frame_labels(events, T)
    energy = frame_energy(mel_for_frames(a16, T))
    closed, open_ = energy[lab == _v("PBM")], energy[lab == _v("AA")]
    assert len(closed) >= 3 and len(open_) >= 6
    assert np.median(open_) > np.median(closed) + 2.0       # nats


def test_random_utterances_cover_the_classes_with_aligned_shapes():
    from backend.data.synthetic_speech import SynthConfig, random_utterance
    _espeak()
    rng = np.random.default_rng(3)
    words = ["mouth", "open", "five", "thin", "shoe", "red", "way", "yes", "good", "light"]
    utts = [random_utterance(words, rng, SynthConfig(words=(6, 10))) for _ in range(6)]
    for u in utts:
        assert u.mel.shape == (4 * len(u.labels), 80)
        assert u.labels[0] == _v("sil")                     # leading silence
    seen = set(np.concatenate([u.labels for u in utts]).tolist())
    assert len(seen) >= 12
