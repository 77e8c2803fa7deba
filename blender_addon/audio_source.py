"""The audio a generate request sends: from a sound strip or a file, cut to the frame range.

Decoding uses Blender's own audio library (``aud``, Audaspace), so any format
Blender plays works, and nothing outside Blender is needed. The result is mono
float32 at 16 kHz holding exactly the samples of frames ``start..end``: silence
is padded where the range runs past the sound.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class AudioClip:
    samples: np.ndarray     # float32 [n], mono, SAMPLE_RATE
    source_path: str
    offset_seconds: float   # where frame_start falls in the source file


def sample_count(frame_count: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples whose duration the backend turns into exactly ``frame_count`` frames.

    The backend counts frames with ``bridge.requests.frame_count_for``; this picks
    the largest sample count for which that is ``frame_count`` (float rounding included).
    """
    from . import bridge_api
    count_frames = bridge_api.requests().frame_count_for
    guess = int(math.floor(frame_count * sample_rate / fps))
    for n in range(guess + 2, guess - 3, -1):
        if n > 0 and count_frames(n / sample_rate, fps) == frame_count:
            return n
    return max(guess, 1)


def decode(path: str) -> np.ndarray:
    """A whole file as mono float32 at 16 kHz, via ``aud``."""
    import aud
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data = aud.Sound(path).resample(SAMPLE_RATE, True).rechannel(1).data()
    except Exception as exc:  # aud raises its own error types
        raise ValueError(f"Blender cannot decode audio file {path}: {exc}") from exc
    data = np.asarray(data, dtype=np.float32).reshape(-1)
    if data.size == 0:
        raise ValueError(f"audio file {path} has no samples")
    return data


def cut(samples: np.ndarray, offset_seconds: float, frame_count: int, fps: float) -> np.ndarray:
    """``frame_count`` frames of audio starting ``offset_seconds`` into ``samples`` (zero padded)."""
    n = sample_count(frame_count, fps)
    start = int(round(offset_seconds * SAMPLE_RATE))
    out = np.zeros(n, dtype=np.float32)
    src_lo, src_hi = max(start, 0), min(start + n, len(samples))
    if src_hi > src_lo:
        out[src_lo - start:src_hi - start] = samples[src_lo:src_hi]
    return out


def strip_offset_seconds(strip, frame: int, fps: float) -> float:
    """Time in the strip's sound file that plays at scene ``frame``."""
    sound_offset = float(getattr(strip, "sound_offset", 0.0) or 0.0)
    return (frame - strip.frame_start) / fps + sound_offset


def strip_sound_path(strip) -> str:
    import bpy
    sound = strip.sound
    if sound is None:
        raise ValueError(f"sound strip {strip.name!r} has no sound")
    if sound.packed_file is not None:
        raise ValueError(f"sound strip {strip.name!r} uses a packed sound; unpack it (File > External Data) first")
    return os.path.normpath(bpy.path.abspath(sound.filepath, library=sound.library))


def from_strip(strip, frame_start: int, frame_count: int, fps: float) -> AudioClip:
    path = strip_sound_path(strip)
    offset = strip_offset_seconds(strip, frame_start, fps)
    return AudioClip(cut(decode(path), offset, frame_count, fps), path, offset)


def from_file(path: str, frame_count: int, fps: float) -> AudioClip:
    """A file's first ``frame_count`` frames (the file starts at the range's first frame)."""
    return AudioClip(cut(decode(path), 0.0, frame_count, fps), path, 0.0)
