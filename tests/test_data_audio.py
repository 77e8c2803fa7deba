"""Audio decoding (every format/rate/channel count), log-mel alignment and voice activity."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from backend.data.audio import (AudioError, SILENCE_LOG_MEL, decode_audio_bytes, energy_voice_activity,
                                load_audio, log_mel, mel_for_frames, voice_activity)

SR = 16_000


@pytest.fixture(scope="module")
def speech(shared_data):
    """8.7 s of real German speech at 16 kHz mono."""
    return load_audio(shared_data / "speech" / "German1.wav")


def _ffmpeg(*args):
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True)


def _tone(rate, seconds=1.0, channels=1, freq=440.0):
    t = np.arange(int(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("rate, channels", [(8_000, 1), (44_100, 1), (96_000, 1), (48_000, 2), (22_050, 6)])
def test_any_rate_and_channel_count_becomes_16k_mono(tmp_path, rate, channels):
    path = tmp_path / f"tone {rate} Hz ü.wav"  # spaces and unicode in the path
    sf.write(path, _tone(rate, 1.5, channels), rate)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 1.5 * SR) <= 2
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * SR / len(audio) - 440.0) < 2.0, "pitch must survive resampling"
    assert 0.25 < np.abs(audio).max() < 0.35


@pytest.mark.parametrize("suffix, codec", [(".m4a", "aac"), (".mp3", "libmp3lame"), (".flac", "flac"),
                                           (".ogg", "libvorbis")])
def test_compressed_formats_decode_to_the_same_speech(tmp_path, speech, shared_data, suffix, codec):
    out = tmp_path / f"speech{suffix}"
    _ffmpeg("-i", shared_data / "speech" / "German1.wav", "-c:a", codec, "-ar", 44_100, "-ac", 2, out)
    audio = load_audio(out)
    assert abs(len(audio) - len(speech)) < 0.06 * SR  # encoder padding only
    n = min(len(audio), len(speech))
    # lossy codecs shift by a few ms of padding: compare envelopes
    env = lambda x: np.sqrt(np.convolve(x[:n] ** 2, np.ones(800) / 800, mode="same"))  # noqa: E731
    assert np.corrcoef(env(audio), env(speech))[0, 1] > 0.95


def test_the_audio_track_of_a_video(shared_data):
    audio = load_audio(shared_data / "talking" / "WDA_KatieHill_000.mp4")
    assert abs(len(audio) / SR - 8.0) < 0.1 and np.abs(audio).max() > 0.05


def test_video_without_audio_stream_is_a_clear_error(shared_data):
    path = shared_data / "mead" / "M030_front_angry_level3_001.mp4"
    with pytest.raises(AudioError, match="no audio stream") as info:
        load_audio(path)
    assert "M030_front_angry_level3_001.mp4" in str(info.value)


@pytest.mark.parametrize("content, message", [(b"", "zero-length"), (b"RIFF\x00\x00garbage" * 10, "unreadable"),
                                              (b"\x00\x01not audio at all" * 50, "could not decode")])
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, message):
    suffix = ".m4a" if "decode" in message else ".wav"
    path = tmp_path / f"bad file{suffix}"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as info:
        load_audio(path)
    assert "bad file" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")


def test_decode_bytes_wav_and_compressed(tmp_path, speech, shared_data):
    wav_bytes = (shared_data / "speech" / "German1.wav").read_bytes()
    assert np.allclose(decode_audio_bytes(wav_bytes, "audio/wav"), speech, atol=1e-6)
    out = tmp_path / "s.mp3"
    _ffmpeg("-i", shared_data / "speech" / "German1.wav", out)
    decoded = decode_audio_bytes(out.read_bytes(), "audio/mpeg")
    assert abs(len(decoded) - len(speech)) < 0.06 * SR
    with pytest.raises(AudioError, match="empty"):
        decode_audio_bytes(b"", "audio/wav")
    with pytest.raises(AudioError, match="audio/ogg"):
        decode_audio_bytes(b"definitely not audio" * 20, "audio/ogg")


def test_log_mel_shape_and_centring():
    audio = np.zeros(SR, np.float32)
    audio[8000:8160] = 0.5  # a 10 ms click at 0.5 s
    mel = log_mel(audio)
    assert mel.shape == (1 + SR // 160, 80) and mel.dtype == np.float32
    assert abs(int(np.argmax(mel.mean(axis=1))) - 50) <= 1, "row m is centred at m * 10 ms"
    assert np.isclose(mel[0].min(), SILENCE_LOG_MEL, atol=1e-3)


@pytest.mark.parametrize("seconds, n_frames", [(2.0, 50), (2.0, 40), (2.0, 60), (0.0, 5)])
def test_mel_for_frames_is_exactly_four_rows_per_frame(seconds, n_frames):
    audio = (0.1 * np.random.default_rng(0).normal(size=int(seconds * SR))).astype(np.float32)
    mel = mel_for_frames(audio, n_frames)
    assert mel.shape == (4 * n_frames, 80)
    if n_frames * 0.04 > seconds + 0.05:
        assert np.allclose(mel[-4:], SILENCE_LOG_MEL), "frames past the audio are silence"


def test_mel_for_frames_aligns_an_onset_to_its_video_frame():
    audio = np.zeros(4 * SR, np.float32)
    audio[int(2.0 * SR):int(2.2 * SR)] = 0.3 * np.sin(np.arange(int(0.2 * SR)) * 0.3)
    for fps in (25.0, 30.0, 24.0, 29.97):
        n = int(4 * fps)
        energy = mel_for_frames(audio, n, fps).reshape(n, 4, 80).mean(axis=(1, 2))
        onset = int(np.flatnonzero(energy > energy.min() + 3.0)[0])
        assert abs(onset - 2.0 * fps) <= 1, f"{fps} fps: onset at frame {onset}, expected {2.0 * fps:.1f}"


def test_voice_activity_finds_speech_and_silence(speech):
    padded = np.concatenate([np.zeros(2 * SR, np.float32), speech, np.zeros(2 * SR, np.float32)])
    n = int(len(padded) / SR * 25)
    for backend in ("silero", "energy"):
        mask = voice_activity(padded, n, 25.0, backend=backend)
        assert mask.shape == (n,) and mask.dtype == bool
        assert not mask[:40].any() and not mask[-40:].any(), f"{backend}: speech in leading/trailing silence"
        assert mask[60:n - 60].mean() > 0.6, f"{backend}: too little speech found"


def test_voice_activity_edge_cases():
    assert voice_activity(np.zeros(0, np.float32), 10).sum() == 0
    assert voice_activity(np.zeros(SR, np.float32), 25).sum() == 0
    assert energy_voice_activity(np.zeros(SR, np.float32), 25).sum() == 0
    with pytest.raises(ValueError, match="VAD backend"):
        voice_activity(np.ones(SR, np.float32), 25, backend="magic")
