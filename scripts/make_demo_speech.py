"""Synthesise the demo's bundled speech clip with espeak-ng (run once; the wav is committed).

The clip is our own (no third-party recording): about 11 s of English with two
pauses, so the demo shows lip sync, emotion keys and idle motion in silence.
Needs `espeak-ng` (Debian package) only when regenerating.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

TEXT = (
    '<speak>Hello! This is EmoGene for Blender. <break time="900ms"/> '
    'Today the sun is shining, and I feel wonderful. <break time="1200ms"/> '
    'But now the story turns sad, and the light fades away.</speak>'
)
OUT = Path(__file__).resolve().parents[1] / "backend" / "assets" / "demo_speech.wav"
SAMPLE_RATE = 16_000


def synthesise(out: Path = OUT) -> Path:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-m", "-v", "en-us", "-s", "145", "-w", str(raw), TEXT], check=True)
        with wave.open(str(raw)) as w:
            rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    audio = pcm.astype(np.float32) / 32768.0
    # resample to 16 kHz by linear interpolation (speech band is far below both Nyquists)
    t_out = np.arange(int(len(audio) * SAMPLE_RATE / rate)) / SAMPLE_RATE
    audio = np.interp(t_out, np.arange(len(audio)) / rate, audio)
    pad = np.zeros(int(0.4 * SAMPLE_RATE))
    audio = np.concatenate([pad, audio, pad])
    audio = 0.9 * audio / max(1e-6, np.abs(audio).max())
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((audio * 32767).astype(np.int16).tobytes())
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    path = synthesise(parser.parse_args().out)
    print(f"wrote {path}")
