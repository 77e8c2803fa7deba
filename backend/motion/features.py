"""Audio features for inference: frame-aligned log-mel computed in bounded-memory chunks, and VAD.

Uses ``backend.data.audio`` (the same log-mel and VAD the track files were made
with). :func:`frame_log_mel` gives exactly the rows of ``mel_for_frames`` at 25 fps
but never builds a spectrogram of more than ``chunk_frames`` video frames, so ten
minutes of audio cost the same peak memory as one.
"""
from __future__ import annotations

import numpy as np

from backend.motion.tracks_data import MEL_BINS, MEL_PER_FRAME

FPS = 25.0
SAMPLES_PER_FRAME = 640     # 16 kHz / 25 fps
HOP = 160
CONTEXT = 2 * HOP           # audio on each side of a chunk so its edge rows see real samples


def frames_for_audio(samples: int, fps: float = FPS, sample_rate: int = 16_000) -> int:
    """Video frames covering ``samples`` of audio (at least 1)."""
    return max(1, int(np.ceil(samples / sample_rate * fps - 1e-9)))


def frame_log_mel(audio: np.ndarray, frames: int, chunk_frames: int = 1500) -> np.ndarray:
    """``[4 * frames, 80]`` log-mel at 25 fps (frame t owns rows 4t..4t+3), chunked."""
    from backend.data.audio import SILENCE_LOG_MEL, log_mel
    audio = np.asarray(audio, np.float32)
    out = np.full((frames * MEL_PER_FRAME, MEL_BINS), SILENCE_LOG_MEL, np.float32)
    for f0 in range(0, frames, chunk_frames):
        f1 = min(frames, f0 + chunk_frames)
        s0, s1 = f0 * SAMPLES_PER_FRAME - CONTEXT, f1 * SAMPLES_PER_FRAME + CONTEXT
        piece = audio[max(0, s0):max(0, min(len(audio), s1))]
        piece = np.pad(piece, (max(0, -s0), max(0, s1 - max(len(audio), s0) if s1 > len(audio) else 0)))
        if not np.any(piece):
            continue
        rows = log_mel(piece)[CONTEXT // HOP: CONTEXT // HOP + (f1 - f0) * MEL_PER_FRAME]
        out[f0 * MEL_PER_FRAME: f0 * MEL_PER_FRAME + len(rows)] = rows
    out[1 + len(audio) // HOP:] = SILENCE_LOG_MEL     # as log_mel: no rows centred past the end
    return out


def speech_mask(audio: np.ndarray, frames: int, backend: str = "silero") -> np.ndarray:
    """bool ``[frames]`` voice activity at 25 fps (``backend.data.audio.voice_activity``)."""
    from backend.data.audio import voice_activity
    return voice_activity(np.asarray(audio, np.float32), frames, FPS, backend=backend)
