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
    return resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator).astype(np.float32)


def _decode(data: bytes, media_type: str) -> tuple[np.ndarray, int]:
    """Encoded audio to (samples [n] or [n, ch], rate): the data module's decoder, else soundfile."""
    try:
        from backend.data.audio import decode_audio_bytes
    except ImportError:
        decode_audio_bytes = None
    if decode_audio_bytes is not None:
        decoded = decode_audio_bytes(data, media_type)
        if isinstance(decoded, tuple):
            return np.asarray(decoded[0]), int(decoded[1])
        return np.asarray(decoded), AUDIO_SAMPLE_RATE
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return samples, int(rate)


def request_audio(buffer: object, sample_rate: object, limits: Limits) -> tuple[np.ndarray, float]:
    """(mono float32 16 kHz samples, duration in seconds of the original audio)."""
    if isinstance(buffer, EncodedBuffer):
        if not buffer.media_type.startswith("audio/"):
            raise BridgeError(ErrorCode.BAD_AUDIO, f"audio buffer has media type {buffer.media_type!r}, "
                                                   "expected audio/*")
        if len(buffer.data) == 0:
            raise BridgeError(ErrorCode.BAD_AUDIO, "audio is empty (0 bytes)")
        try:
            samples, rate = _decode(bytes(buffer.data), buffer.media_type)
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
