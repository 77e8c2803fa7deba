"""Turn a ``generate`` request's audio buffer into mono float32 at 16 kHz, or a ``BridgeError``."""
from __future__ import annotations

import io
import math
from fractions import Fraction

import numpy as np

from backend.pipeline.base import AUDIO_SAMPLE_RATE
from bridge.errors import BridgeError
from bridge.messages import EncodedBuffer
from bridge.protocol import ErrorCode, Limits

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384_000


def resample(audio: np.ndarray, from_rate: int, to_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (scipy) to ``to_rate``; a no-op at the same rate."""
    if from_rate == to_rate:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    ratio = Fraction(to_rate, from_rate).limit_denominator(10_000)
    # float32 in, float32 out: half the memory of float64 for the longest (600 s) requests
    return resample_poly(np.asarray(audio, np.float32), ratio.numerator, ratio.denominator).astype(np.float32, copy=False)


#: the most decoded (mono) samples an encoded request may declare: 600 s at 48 kHz. Compressed audio
#: (FLAC of silence, a WAV header that lies) can declare far more than its bytes; it is refused from
#: its header, before anything is decoded
MAX_DECODED_SAMPLES = 600 * 48_000
_BLOCK_FRAMES = 1 << 16


def _decode_soundfile(data: memoryview | bytes, limits: Limits) -> tuple[np.ndarray, int] | None:
    """WAV/FLAC/OGG: probe the header (rate, length), then decode in blocks, mixed to mono as it goes,
    so memory stays at the mono float32 result. None when soundfile cannot read the bytes."""
    import soundfile

    try:
        handle = soundfile.SoundFile(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    with handle:
        rate, frames, channels = int(handle.samplerate), int(handle.frames), int(handle.channels)
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise BridgeError(ErrorCode.BAD_AUDIO,
                              f"audio declares a sample rate of {rate} Hz; {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} allowed")
        if frames / rate > limits.max_audio_seconds:
            raise BridgeError(ErrorCode.AUDIO_TOO_LONG,
                              f"audio declares {frames / rate:.1f} s, this backend takes at most "
                              f"{limits.max_audio_seconds:g} s")
        if frames > MAX_DECODED_SAMPLES:
            raise BridgeError(ErrorCode.TOO_LARGE,
                              f"audio declares {frames} samples at {rate} Hz; at most {MAX_DECODED_SAMPLES} "
                              "(600 s at 48 kHz): resample it to 48 kHz or less")
        mono = np.empty(max(frames, 0), np.float32)
        filled = 0
        while filled < frames:
            block = handle.read(min(_BLOCK_FRAMES, frames - filled), dtype="float32", always_2d=True)
            if len(block) == 0:
                break   # the header promised more than the file holds
            mono[filled:filled + len(block)] = block.mean(axis=1) if channels > 1 else block[:, 0]
            filled += len(block)
    return mono[:filled], rate


def _decode(data: memoryview | bytes, media_type: str, limits: Limits) -> tuple[np.ndarray, int]:
    """Encoded audio to (mono samples, rate): soundfile formats probed first and decoded in blocks;
    others (mp3, m4a ...) through ffmpeg, which stops after the longest allowed duration."""
    decoded = _decode_soundfile(data, limits)
    if decoded is not None:
        return decoded
    from backend.data.audio import _ffmpeg_decode

    name = f"{media_type} audio ({len(data)} bytes)"
    seconds = limits.max_audio_seconds + 1.0   # one second over: long enough to tell it is too long
    return _ffmpeg_decode(["-t", f"{seconds:g}", "-i", "pipe:0"], name, stdin=bytes(data)), AUDIO_SAMPLE_RATE


def request_audio(buffer: object, sample_rate: object, limits: Limits) -> tuple[np.ndarray, float]:
    """(mono float32 16 kHz samples, duration in seconds of the original audio)."""
    if isinstance(buffer, EncodedBuffer):
        if not buffer.media_type.startswith("audio/"):
            raise BridgeError(ErrorCode.BAD_AUDIO, f"audio buffer has media type {buffer.media_type!r}, "
                                                   "expected audio/*")
        if len(buffer.data) == 0:
            raise BridgeError(ErrorCode.BAD_AUDIO, "audio is empty (0 bytes)")
        try:
            samples, rate = _decode(buffer.data, buffer.media_type, limits)
        except BridgeError:
            raise
        except Exception as exc:
            raise BridgeError(ErrorCode.BAD_AUDIO,
                              f"cannot decode {buffer.media_type} audio: {type(exc).__name__}: {exc}") from None
    else:
        samples = np.asarray(buffer)
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
            raise BridgeError(ErrorCode.BAD_AUDIO, "PCM audio needs content.sample_rate as an integer (Hz)")
        rate = sample_rate
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
        elif samples.dtype not in (np.float32, np.float64):
            raise BridgeError(ErrorCode.BAD_AUDIO, f"PCM audio must be float32 (or float64/int16), got {samples.dtype}")
        if samples.ndim != 1:
            raise BridgeError(ErrorCode.BAD_AUDIO, f"PCM audio must be mono [samples], got shape {list(samples.shape)}")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise BridgeError(ErrorCode.BAD_AUDIO, f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE}")
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.ndim != 1 or samples.size == 0:
        raise BridgeError(ErrorCode.BAD_AUDIO, "audio is empty (no samples)")
    duration = samples.shape[0] / rate
    if duration > limits.max_audio_seconds:
        raise BridgeError(ErrorCode.AUDIO_TOO_LONG,
                          f"audio is {duration:.1f} s, this backend takes at most {limits.max_audio_seconds:g} s")
    if not np.all(np.isfinite(samples)):
        raise BridgeError(ErrorCode.BAD_AUDIO, "audio contains NaN or infinite samples")
    audio = resample(samples, rate)
    if not math.isfinite(float(np.abs(audio).max(initial=0.0))):
        raise BridgeError(ErrorCode.BAD_AUDIO, "audio overflowed while resampling")
    return np.ascontiguousarray(audio, dtype=np.float32), duration
