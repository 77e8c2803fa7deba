"""Writing and probing mp4 files with imageio-ffmpeg's bundled ffmpeg (H.264 + AAC).

OpenCV's pip wheels cannot encode H.264, so everything that writes video goes
through here. ``probe_media`` reads stream kinds and durations back with the same
ffmpeg binary (no ffprobe needed).
"""
from __future__ import annotations

import re
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import imageio_ffmpeg
import numpy as np


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Mono float audio in [-1, 1] as 16-bit PCM wav."""
    pcm = (np.clip(np.asarray(audio, np.float32), -1.0, 1.0) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return Path(path)


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float,
              audio: np.ndarray | None = None, sample_rate: int = 16_000) -> Path:
    """Encode RGB uint8 frames (all the same size, even width/height) as H.264, with AAC audio if given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        audio_path = None
        if audio is not None:
            audio_path = str(write_wav(Path(tmp) / "audio.wav", audio, sample_rate))
        writer = imageio_ffmpeg.write_frames(
            str(path), (width, height), fps=float(fps), codec="libx264", pix_fmt_out="yuv420p",
            quality=None, bitrate=None, output_params=["-crf", "20", "-preset", "veryfast"],
            audio_path=audio_path, audio_codec="aac" if audio_path else None, macro_block_size=2,
            ffmpeg_log_level="error")
        writer.send(None)
        writer.send(np.ascontiguousarray(first[..., :3]))
        for frame in frames:
            writer.send(np.ascontiguousarray(frame[..., :3]))
        writer.close()
    return path


@dataclass
class MediaInfo:
    video_streams: int
    audio_streams: int
    duration_s: float
    video_codec: str | None
    audio_codec: str | None


def probe_media(path: str | Path) -> MediaInfo:
    """Streams and container duration of a media file, read with the bundled ffmpeg."""
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                            capture_output=True, text=True)
    text = result.stderr
    dur = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", text)
    duration = int(dur[1]) * 3600 + int(dur[2]) * 60 + float(dur[3]) if dur else float("nan")
    video = re.findall(r"Stream #.*Video: (\w+)", text)
    audio = re.findall(r"Stream #.*Audio: (\w+)", text)
    return MediaInfo(len(video), len(audio), duration, video[0] if video else None, audio[0] if audio else None)


def stream_durations(path: str | Path) -> dict[str, float]:
    """Per-stream durations (video, audio) in seconds, by decoding the file with ffmpeg."""
    out: dict[str, float] = {}
    for kind, selector in (("video", "v:0"), ("audio", "a:0")):
        result = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", f"0:{selector}",
             "-f", "null", "-"], capture_output=True, text=True)
        times = re.findall(r"time=(\d+):(\d+):(\d+\.\d+)", result.stderr)
        if times:
            h, m, s = times[-1]
            out[kind] = int(h) * 3600 + int(m) * 60 + float(s)
    return out
