"""Worst-case memory of the backend's audio intake, against the size of the message that carried it.

Each case runs ``backend.server.audio_input.request_audio`` (what the intake thread does with a
``generate`` request's audio) in a fresh process and reports its peak RSS growth:
decode bombs (a WAV that declares 1 Hz, a FLAC of an hour), the largest accepted requests (600 s of
48 kHz FLAC, silence and noise; 128 MiB of PCM at 384 kHz).

    .venv/bin/python scripts/bench_intake.py
"""
from __future__ import annotations

import io
import resource
import subprocess
import sys
import time

import numpy as np

CASES = ("wav_declaring_1hz", "flac_1h", "flac_600s_48k_silence", "flac_600s_48k_noise", "pcm_128mib_384k")


def _payload(case: str):
    import soundfile

    def encoded(samples, rate, fmt):
        buf = io.BytesIO()
        soundfile.write(buf, samples, rate, format=fmt)
        return buf.getvalue()

    if case == "wav_declaring_1hz":
        return encoded(np.zeros(8000, np.int16), 1, "WAV"), "audio/wav"
    if case == "flac_1h":
        return encoded(np.zeros(3600 * 16000, np.int16), 16000, "FLAC"), "audio/flac"
    if case == "flac_600s_48k_silence":
        return encoded(np.zeros(599 * 48000, np.int16), 48000, "FLAC"), "audio/flac"
    if case == "flac_600s_48k_noise":
        noise = (np.random.default_rng(0).standard_normal(599 * 48000) * 3000).astype(np.int16)
        return encoded(noise, 48000, "FLAC"), "audio/flac"
    return np.zeros(32 * 1024 * 1024 - 1024, np.float32), None


def _run_case(case: str) -> None:
    from backend.server.audio_input import request_audio
    from bridge.errors import BridgeError
    from bridge.messages import EncodedBuffer
    from bridge.protocol import Limits

    data, media_type = _payload(case)
    size = data.nbytes if isinstance(data, np.ndarray) else len(data)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        if media_type:
            _, seconds = request_audio(EncodedBuffer(memoryview(data), media_type), None, Limits())
        else:
            _, seconds = request_audio(data, 384_000, Limits())
        outcome = f"accepted ({seconds:.0f} s)"
    except BridgeError as exc:
        outcome = exc.code
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(f"{case:<24}{size / 2**20:>12.2f}{outcome:>20}{time.perf_counter() - started:>9.2f}{grown:>14.0f}", flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--case":
        _run_case(sys.argv[2])
        return
    print(f"{'case':<24}{'message MiB':>12}{'outcome':>20}{'seconds':>9}{'peak RSS +MiB':>14}")
    for case in CASES:
        subprocess.run([sys.executable, __file__, "--case", case], check=True)


if __name__ == "__main__":
    main()
