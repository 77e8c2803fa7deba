#!/usr/bin/env python
"""Benchmark: audio -> emotional landmarks (+ pose, blinks) on CPU with 2 threads.

Runs the MotionStage on a 60 s speech clip (../shared/data/speech/eng_60s.wav) with a
minimal in-process context, reports the real-time factor against the >= 50x target,
the time per step, and peak memory (process RSS); then 10 minutes of audio to show
that memory stays bounded.

    .venv/bin/python scripts/bench_motion.py [--audio FILE] [--repeats 3] [--long-minutes 10]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_RTF = 50.0


class BenchContext:
    """The smallest StageContext: keeps state, ignores progress, never cancels."""

    def __init__(self, frames):
        self.device, self.state, self.frames, self.warnings = "cpu", {}, frames, []

    def progress(self, fraction, message=""):
        pass

    def check_cancelled(self):
        pass

    def warn(self, message):
        self.warnings.append(message)

    def emit_landmarks(self, start, landmarks, rotation, translation):
        pass

    def emit_plate(self, frame_index, rgba):
        pass


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_job(audio, fps=25.0):
    import numpy as np
    from backend.pipeline.base import GenerateJob
    frames = int(np.ceil(len(audio) / 16000 * fps))
    t = np.linspace(0, 1, frames)
    w = np.zeros((frames, 8), np.float32)
    w[:, 5], w[:, 6] = 1 - t, t                          # a happy -> sad blend over the clip
    return GenerateJob("bench", audio, fps, frames, w, np.ones(frames, np.float32), "default", landmarks_only=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", default=str(REPO.parent / "shared" / "data" / "speech" / "eng_60s.wav"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--long-minutes", type=float, default=10.0, help="0 skips the long-audio run")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    from backend.data.audio import VadConfig, load_audio, voice_activity
    from backend.motion.features import frame_log_mel, frames_for_audio
    from backend.motion.model_io import load_motion_models
    from backend.motion.stage import MotionStage
    from bridge.landmarks import NUM_LANDMARKS

    audio = load_audio(args.audio)[: 16000 * 60]
    seconds = len(audio) / 16000
    stage = MotionStage("cpu", None)
    stage.run(make_job(audio[:16000]), BenchContext(25))        # load models, warm caches
    rss_before = rss_mb()
    times = []
    for _ in range(args.repeats):
        job = make_job(audio)
        t = time.perf_counter()
        stage.run(job, BenchContext(job.frame_count))
        times.append(time.perf_counter() - t)
    best = min(times)
    frames = frames_for_audio(len(audio))
    t = time.perf_counter(); frame_log_mel(audio, frames); t_mel = time.perf_counter() - t
    # the VAD before (silero one window at a time) and now (segments side by side), alternated, best of each
    seq_config = VadConfig(segment_windows=10 ** 9)
    vad_old, vad_new = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        voice_activity(audio, frames, config=seq_config)
        vad_old.append(time.perf_counter() - t)
        t = time.perf_counter(); voice_activity(audio, frames); vad_new.append(time.perf_counter() - t)
    t_vad, t_vad_old = min(vad_new), min(vad_old)
    models = load_motion_models(None, "cpu")
    mel = torch.from_numpy(frame_log_mel(audio, frames))
    t = time.perf_counter()
    with torch.inference_mode():
        models.audio2motion.generate(mel, 1.0, 0)
    t_vae = time.perf_counter() - t
    print(f"audio: {seconds:.1f} s ({args.audio}), CPU threads: {args.threads}, repeats: {args.repeats}")
    print(f"{'measure':34s} {'value':>10s} {'target':>10s} {'ratio':>8s}")
    print(f"{'real-time factor (best)':34s} {seconds / best:>9.1f}x {TARGET_RTF:>9.0f}x {seconds / best / TARGET_RTF:>7.2f}")
    print(f"{'wall time per 60 s clip (best)':34s} {best:>9.3f}s {seconds / TARGET_RTF:>9.3f}s")
    print(f"{'  of which log-mel':34s} {t_mel:>9.3f}s")
    print(f"{'  of which VAD (silero, batched)':34s} {t_vad:>9.3f}s")
    print(f"{'  of which speech-motion model':34s} {t_vae:>9.3f}s")
    print(f"{'  rest (LDM, pose, blinks, resample)':34s} {max(0.0, best - t_mel - t_vad - t_vae):>9.3f}s")
    print(f"{'VAD before: silero one window/step':34s} {t_vad_old:>9.3f}s {'':>10s} {t_vad_old / t_vad:>7.2f}x slower")
    print(f"{'real-time factor with that VAD':34s} {seconds / (best - t_vad + t_vad_old):>9.1f}x {TARGET_RTF:>9.0f}x "
          f"{seconds / (best - t_vad + t_vad_old) / TARGET_RTF:>7.2f}")
    print(f"{'peak RSS after 60 s runs':34s} {rss_mb():>8.0f}MB (before timed runs {rss_before:.0f} MB)")
    if args.long_minutes > 0:
        reps = int(np.ceil(args.long_minutes * 60 / seconds))
        long_audio = np.tile(audio, reps)[: int(args.long_minutes * 60 * 16000)]
        job = make_job(long_audio)
        t = time.perf_counter()
        stage.run(job, BenchContext(job.frame_count))
        dt = time.perf_counter() - t
        print(f"{f'{args.long_minutes:g} min of audio':34s} {dt:>9.2f}s  RTF {len(long_audio) / 16000 / dt:.1f}x, "
              f"peak RSS {rss_mb():.0f} MB (output arrays {job.frame_count * NUM_LANDMARKS * 3 * 4 * 2 / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
