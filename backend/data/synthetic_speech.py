"""Synthetic speech with known phone timing (espeak-ng), labelled per 25 fps frame with viseme classes.

Only the phone recogniser's training (``scripts/train_phone_recognizer.py``) needs this
module; run time uses the recogniser's shipped weights and never espeak.

* Synthesis: ``libespeak-ng`` through ctypes in synchronous mode, initialised with
  phoneme events in IPA. Each ``PHONEME`` event carries its start in the audio
  (``audio_position``, ms) and the phone as IPA; a phone lasts until the next event.
  The audio (22.05 kHz) is resampled to the project's 16 kHz and turned into the
  project's log-mel (``backend.data.audio.mel_for_frames``: 4 rows per 25 fps frame).
* Labels: every phone is collapsed to one of :data:`VISEMES` (what the mouth does:
  closed lips, lip-teeth, rounding, open jaw, ...), and every video frame takes the
  class that covers most of its 40 ms.
* Variety: random word sequences (a word list plus random pseudo-words read by
  espeak's letter-to-sound rules), random voice (English accents and other languages'
  voices reading English), voice variant, pitch, pitch range, rate and word gap
  (:class:`SynthConfig`). Room, noise, level and vocal-tract warp are left to the
  mel-domain augmentation of the recogniser's training (``audio_features.MelAugment``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.data.audio import mel_for_frames, resample

#: viseme classes: index = label (0 = silence)
VISEMES = ("sil", "PBM", "FV", "TH", "TDN", "SZ", "L", "SH", "KG", "H", "R", "W", "Y",
           "AA", "EH", "IY", "AH", "AO", "UW")
FPS = 25.0

# IPA first symbols -> viseme (consonants and vowels); diphthongs take their first vowel
_IPA = {
    "p": "PBM", "b": "PBM", "m": "PBM", "ɱ": "FV", "ɸ": "FV", "β": "FV",
    "f": "FV", "v": "FV", "ʋ": "FV",
    "θ": "TH", "ð": "TH",
    "t": "TDN", "d": "TDN", "n": "TDN", "ɾ": "TDN", "ɗ": "TDN", "ʈ": "TDN", "ɖ": "TDN", "ɳ": "TDN", "c": "TDN",
    "ɲ": "TDN", "ɟ": "TDN",
    "s": "SZ", "z": "SZ", "ʂ": "SH", "ʐ": "SH", "ɕ": "SH", "ʑ": "SH",
    "l": "L", "ɫ": "L", "ɭ": "L", "ʎ": "L", "ɬ": "L",
    "ʃ": "SH", "ʒ": "SH",
    "k": "KG", "g": "KG", "ɡ": "KG", "ŋ": "KG", "x": "KG", "ɣ": "KG", "q": "KG", "ɢ": "KG", "χ": "KG", "ʁ": "R",
    "h": "H", "ɦ": "H", "ʔ": "H", "ħ": "H", "ʕ": "H",
    "r": "R", "ɹ": "R", "ɻ": "R", "ʀ": "R", "ɚ": "R", "ɝ": "R",
    "w": "W", "ʍ": "W", "ɥ": "W",
    "j": "Y",
    "a": "AA", "ɑ": "AA", "æ": "AA", "ɐ": "AH", "ɒ": "AO", "ɶ": "AA",
    "e": "EH", "ɛ": "EH", "œ": "EH", "ø": "UW",
    "i": "IY", "ɪ": "IY", "ɨ": "IY", "y": "UW", "ʏ": "UW",
    "ə": "AH", "ɜ": "AH", "ʌ": "AH", "ɘ": "AH", "ɵ": "AO", "ᵻ": "IY", "ɞ": "AH",
    "o": "AO", "ɔ": "AO", "ɤ": "AH",
    "u": "UW", "ʊ": "UW", "ɯ": "UW", "ʉ": "UW",
}
_SKIP = set("ˈˌːˑ.‿ \u0361\u035c-_'|,;")

#: voices that read English well enough (accents), and other languages' voices that read it with their own phones
ENGLISH_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
                  "en-us-nyc")
FOREIGN_VOICES = ("de", "fr", "es", "it", "nl", "pl", "pt", "sv", "hi", "ru", "tr", "cs", "fi", "id")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "croak", "whisper", "Andy", "Annie", "Alicia", "Gene", "Mario", "Storm", "Tweaky",
            "anika", "belinda", "boris", "david", "edward", "grandma", "grandpa")


class SynthesisError(RuntimeError):
    """espeak-ng is missing or failed; the message says what to install or what went wrong."""


def viseme_of(ipa: str) -> int:
    """Viseme index of one espeak IPA phone (``0`` for pauses and unknown symbols)."""
    s = "".join(ch for ch in unicodedata.normalize("NFD", ipa) if ch not in _SKIP and not unicodedata.combining(ch))
    if not s:
        return 0
    if s.startswith(("tʃ", "dʒ", "ts", "dz")):
        return VISEMES.index("SH") if s[1] in "ʃʒ" else VISEMES.index("SZ")
    for ch in s:
        name = _IPA.get(ch)
        if name is not None:
            return VISEMES.index(name)
    return 0


class _Event(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _Id)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_EVENT_PHONEME, _EVENT_END = 7, 0
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7


class Espeak:
    """The espeak-ng library in synchronous mode with IPA phoneme events (one per process)."""

    _instance: "Espeak | None" = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._open()
        return cls._instance

    def _open(self) -> None:
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as e:
            raise SynthesisError("libespeak-ng is not installed (Debian: apt-get install -y espeak-ng "
                                 f"libespeak-ng1): {e}") from None
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(2, 0, None, 0x0001 | 0x0002 | 0x8000)   # synchronous; phoneme events, IPA
        if rate <= 0:
            raise SynthesisError(f"espeak_Initialize failed ({rate})")
        self.sample_rate = rate
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self._callback = _CALLBACK(self._collect)
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                          ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.float32) / 32768.0)
        i = 0
        while events[i].type != _EVENT_END:
            e = events[i]
            if e.type == _EVENT_PHONEME and not e.id.string.startswith(b"("):   # "(en)": a language switch
                self._events.append((int(e.audio_position), e.id.string.decode("utf-8", "replace")))
            i += 1
        return 0

    def synthesise(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                   word_gap: int = 0) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """``(audio at self.sample_rate, [(start ms, IPA phone), ...])`` of ``text`` spoken by ``voice``."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SynthesisError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_WORDGAP, word_gap),
                             (_VOLUME, 100)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None)   # position type POS_CHARACTER, UTF-8
        if err != 0:
            raise SynthesisError(f"espeak_Synth failed ({err}) on {text[:40]!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        return audio, list(self._events)


def frame_labels(events: list[tuple[int, str]], n_frames: int, fps: float = FPS) -> np.ndarray:
    """Viseme index per video frame ``[n_frames]``: the class covering most of each frame (silence before,
    between and after the phones). Phones run from their event to the next event."""
    ms_per_frame = 1000.0 / fps
    total = int(np.ceil(n_frames * ms_per_frame))
    per_ms = np.zeros(total, np.int64)
    for k, (start, ipa) in enumerate(events):
        end = events[k + 1][0] if k + 1 < len(events) else start + 80
        per_ms[max(0, start):max(0, min(end, total))] = viseme_of(ipa)
    frames = np.zeros(n_frames, np.int64)
    for t in range(n_frames):
        a, b = int(round(t * ms_per_frame)), int(round((t + 1) * ms_per_frame))
        frames[t] = np.bincount(per_ms[a:b], minlength=len(VISEMES)).argmax() if b > a else 0
    return frames


@dataclass
class SynthConfig:
    words: tuple[int, int] = (3, 14)          # words per utterance
    pseudo_word_prob: float = 0.25            # share of random pseudo-words (letter-to-sound rules)
    foreign_voice_prob: float = 0.3           # share read by another language's voice
    variant_prob: float = 0.7
    rate: tuple[int, int] = (110, 260)        # words per minute
    pitch: tuple[int, int] = (10, 90)
    pitch_range: tuple[int, int] = (10, 100)
    word_gap: tuple[int, int] = (0, 12)       # extra pause between words, 10 ms units
    sentence_pause_prob: float = 0.3          # a comma / full stop after a word (pauses inside the utterance)
    voices: tuple[str, ...] = field(default=ENGLISH_VOICES + FOREIGN_VOICES)


@dataclass
class Utterance:
    text: str
    voice: str
    mel: np.ndarray        # [4T, 80] log-mel (the project's features)
    labels: np.ndarray     # [T] viseme index per 25 fps frame


_ONSETS = ("", "b", "bl", "br", "ch", "d", "dr", "f", "fl", "fr", "g", "gl", "gr", "h", "j", "k", "kl", "kr", "l",
           "m", "n", "p", "pl", "pr", "qu", "r", "s", "sh", "sl", "sm", "sn", "sp", "st", "str", "sw", "t", "th",
           "tr", "v", "w", "wh", "y", "z")
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ay", "ea", "ee", "oa", "oo", "ou", "ow", "oy", "ie", "ue", "er", "ar", "or")
_CODAS = ("", "", "b", "ck", "d", "f", "ft", "g", "k", "l", "ld", "lk", "m", "mp", "n", "nd", "ng", "nk", "nt", "p",
          "r", "rd", "rk", "rm", "s", "sh", "sk", "st", "t", "th", "ve", "x", "z")


def pseudo_word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
                   for _ in range(int(rng.integers(1, 4))))


def load_words(path: str | Path) -> list[str]:
    words = [w.strip() for w in Path(path).read_text().split() if w.strip().isalpha()]
    if not words:
        raise SynthesisError(f"{path}: no words")
    return words


def random_text(words: list[str], rng: np.random.Generator, cfg: SynthConfig) -> str:
    out = []
    for _ in range(int(rng.integers(cfg.words[0], cfg.words[1] + 1))):
        w = pseudo_word(rng) if rng.random() < cfg.pseudo_word_prob else str(rng.choice(words))
        if rng.random() < cfg.sentence_pause_prob:
            w += str(rng.choice([",", ".", "?"]))
        out.append(w)
    return " ".join(out)


def random_utterance(words: list[str], rng: np.random.Generator, cfg: SynthConfig | None = None,
                     voice: str | None = None) -> Utterance:
    """One random utterance, its log-mel and per-frame viseme labels (``voice`` fixed or drawn from ``cfg``)."""
    cfg = cfg or SynthConfig()
    engine = Espeak()
    if voice is None:
        foreign = [v for v in cfg.voices if v not in ENGLISH_VOICES]
        english = [v for v in cfg.voices if v in ENGLISH_VOICES]
        pool = foreign if foreign and (not english or rng.random() < cfg.foreign_voice_prob) else english
        voice = str(rng.choice(pool))
        if rng.random() < cfg.variant_prob:
            voice += "+" + str(rng.choice(VARIANTS[1:]))
    text = random_text(words, rng, cfg)
    audio, events = engine.synthesise(text, voice, rate=int(rng.integers(*cfg.rate)), pitch=int(rng.integers(*cfg.pitch)),
                                      pitch_range=int(rng.integers(*cfg.pitch_range)),
                                      word_gap=int(rng.integers(*cfg.word_gap)))
    if audio.size == 0 or not events:
        raise SynthesisError(f"espeak-ng produced nothing for voice {voice!r}")
    # a little silence before and after, as in recordings
    lead, tail = (int(rng.uniform(0.05, 0.5) * engine.sample_rate) for _ in range(2))
    audio = np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(tail, np.float32)])
    events = [(t + int(round(1000 * lead / engine.sample_rate)), p) for t, p in events]
    audio16 = resample(audio, engine.sample_rate)
    n_frames = int(len(audio16) / 16000 * FPS)
    return Utterance(text, voice, mel_for_frames(audio16, n_frames).astype(np.float32),
                     frame_labels(events, n_frames))
