"""Data-preparation speed on the real sample clips: ``python scripts/bench_data.py [DATA] [--seconds S]``.

Prints per stage the cost per video frame (or x real time for audio) on this machine, and
side-by-side ratios: FaceMesh with max_faces=2 (notices a second face) vs 1, and each
stage against the 40 ms a frame lasts at 25 fps. Pin it to one core for the "one core"
number: ``taskset -c 0 .venv/bin/python scripts/bench_data.py``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

CLIPS = ("talking/cnn2_25fps.mp4", "mead/W009_front_angry_level3_001.mp4", "talking/sun.mp4")


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    import torch

    from backend.data.audio import load_audio, mel_for_frames, voice_activity
    from backend.data.canonical import fit_canonical
    from backend.data.face_tracking import TrackerConfig, iter_frames_rgb, track_video
    from backend.data.smoothing import smooth_points
    from backend.data.tracks import resample_track

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of each clip to use")
    args = parser.parse_args()
    torch.set_num_threads(1)

    totals = []
    print(f"{'clip':40s} {'decode':>8s} {'mesh x1':>8s} {'mesh x2':>8s} {'x2/x1':>6s} {'smooth':>8s} "
          f"{'fit':>8s}  (ms per frame; mesh includes decode)")
    for name in CLIPS:
        path = args.data / name
        frames = int(args.seconds * 30)
        n, t_dec = _timed(lambda: sum(1 for _ in iter_frames_rgb(path, frames)))
        one, t1 = _timed(lambda: track_video(path, config=TrackerConfig(max_faces=1, max_seconds=args.seconds)))
        _, t2 = _timed(lambda: track_video(path, config=TrackerConfig(max_faces=2, max_seconds=args.seconds)))
        pts = resample_track(one.points, one.fps)
        smooth, t_s = _timed(lambda: smooth_points(pts, 25.0))
        _, t_f = _timed(lambda: fit_canonical(smooth, one.image_size))
        per = lambda t, k=one.frame_count: 1000 * t / k  # noqa: E731
        print(f"{name:40s} {per(t_dec, n):8.2f} {per(t1):8.2f} {per(t2):8.2f} {t2 / t1:6.2f} "
              f"{per(t_s, len(pts)):8.2f} {per(t_f, len(pts)):8.2f}")
        totals.append(per(t2) + per(t_s, len(pts)) + per(t_f, len(pts)))

    speech = args.data / "speech" / "eng_60s.wav"
    audio, t_load = _timed(lambda: load_audio(speech))
    seconds = len(audio) / 16_000
    n = int(seconds * 25)
    mel_for_frames(audio[:16_000], 25)  # warm: imports and the mel filter bank
    _, t_mel = _timed(lambda: mel_for_frames(audio, n))
    _, t_vad = _timed(lambda: voice_activity(audio, n, backend="silero"))
    _, t_vad = _timed(lambda: voice_activity(audio, n, backend="silero"))  # warm
    _, t_energy = _timed(lambda: voice_activity(audio, n, backend="energy"))
    print(f"audio ({seconds:.0f} s): decode {seconds / t_load:.0f}x real time, log-mel {seconds / t_mel:.0f}x, "
          f"silero VAD {seconds / t_vad:.0f}x, energy VAD {seconds / t_energy:.0f}x")
    worst = max(totals)
    print(f"video: {worst:.1f} ms/frame at worst (tracking incl. decode + smoothing + fit) vs 40 ms per 25 fps frame: "
          f"{40 / worst:.1f}x faster than real time")


if __name__ == "__main__":
    main()
