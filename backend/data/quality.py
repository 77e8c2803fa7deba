"""Quality checks of extracted tracks, used by the tests and by ``python -m backend.data.quality``.

* :func:`jitter` - frame-to-frame noise: RMS second difference of points, in inter-ocular
  units (IOD), on the least-moving window of a track.
* :func:`canonical_spread` - how far canonical landmarks of the same face under different
  head poses lie from each other (IOD).
* :func:`lip_audio_lag` - lag (frames) of the peak cross-correlation between mouth
  opening and audio energy; positive = the mouth moves after the sound.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from backend.data.canonical import STABLE_POINTS
from backend.data.smoothing import inter_ocular_pixels


def still_window(points: np.ndarray, fps: float, seconds: float = 1.0) -> slice:
    """The ``seconds``-long window whose stable points move least (sum of frame-to-frame motion)."""
    n = points.shape[0]
    w = max(3, int(round(seconds * fps)))
    if n <= w:
        return slice(0, n)
    motion = np.linalg.norm(np.diff(points[:, STABLE_POINTS, :2], axis=0), axis=-1).mean(axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(motion)])
    totals = cumulative[w - 1:] - cumulative[: len(cumulative) - w + 1]
    start = int(np.argmin(totals))
    return slice(start, start + w)


def jitter(points: np.ndarray, iod: float | None = None) -> float:
    """RMS second temporal difference of ``[T, N, >=2]`` image points (x, y), in IOD units."""
    iod = inter_ocular_pixels(points) if iod is None else iod
    acc = np.diff(points[..., :2], n=2, axis=0) / iod
    return float(np.sqrt((acc ** 2).sum(-1).mean()))


def canonical_spread(landmarks: np.ndarray, points: list[int] | np.ndarray | None = None) -> float:
    """RMS distance of each frame's canonical landmarks ``[T, NUM_LANDMARKS, 3]`` from their mean shape (IOD)."""
    sel = landmarks if points is None else landmarks[:, points]
    return float(np.sqrt(((sel - sel.mean(axis=0)) ** 2).sum(-1).mean()))


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap (iBUG 62 to 66, plus 61-67 and 63-65), canonical units, ``[T]``."""
    pairs = ((61, 67), (62, 66), (63, 65))
    return np.mean([np.linalg.norm(landmarks[:, a] - landmarks[:, b], axis=-1) for a, b in pairs], axis=0)


def mel_energy(mel: np.ndarray, rows_per_frame: int = 4) -> np.ndarray:
    """Per-video-frame loudness: mean log-mel over bands and the frame's 4 rows, ``[T]``."""
    return mel.reshape(-1, rows_per_frame, mel.shape[-1]).mean(axis=(1, 2))


def lip_audio_lag(landmarks: np.ndarray, mel: np.ndarray, max_lag: int = 10) -> tuple[int, float]:
    """(lag in frames, correlation) maximising corr(mouth_opening[t + lag], energy[t])."""
    def norm(x):
        x = x - np.convolve(x, np.ones(25) / 25, mode="same")  # remove slow drifts (1 s)
        return (x - x.mean()) / (x.std() + 1e-9)
    mouth, energy = norm(mouth_opening(landmarks)), norm(mel_energy(mel))
    n = len(mouth)
    best = (0, -np.inf)
    for lag in range(-max_lag, max_lag + 1):
        a = mouth[max(lag, 0): n + min(lag, 0)]
        b = energy[max(-lag, 0): n - max(lag, 0)]
        c = float(np.mean(a * b))
        if c > best[1]:
            best = (lag, c)
    return best


def report(tracks_dir: Path, data_dir: Path) -> None:  # pragma: no cover - a printing helper
    """Print the per-clip numbers asked for in issue 3."""
    from backend.data.face_tracking import TrackerConfig, track_video
    from backend.data.smoothing import smooth_points
    from backend.data.tracks import TRACK_FPS, list_tracks, load_track, resample_track
    print(f"{'clip':42s} {'found':>6s} {'resid':>6s} {'lag':>4s} {'corr':>5s}")
    for path in list_tracks(tracks_dir):
        t = load_track(path)
        lag = lip_audio_lag(t.landmarks, t.mel) if t.has_audio else (None, float("nan"))
        print(f"{path.stem:42s} {t.face_found.mean():6.3f} {t.meta['fit_residual']:6.3f} "
              f"{str(lag[0]):>4s} {lag[1]:5.2f}")
    for name in ("talking/cnn2_25fps.mp4", "mead/W009_front_neutral_level1_001.mp4", "talking/obama_20s.mp4"):
        t0 = time.perf_counter()
        face = track_video(data_dir / name, config=TrackerConfig(max_faces=1))
        ms = (time.perf_counter() - t0) / face.frame_count * 1000
        raw = resample_track(face.points, face.fps, TRACK_FPS)
        smooth = smooth_points(raw, TRACK_FPS)
        win = still_window(raw, TRACK_FPS)
        print(f"{name}: {ms:.2f} ms/frame (max_faces=1); jitter on still 1 s window {win.start}: "
              f"raw {jitter(raw[win]):.4f} IOD, smoothed {jitter(smooth[win]):.4f} IOD")


if __name__ == "__main__":  # pragma: no cover
    report(Path(sys.argv[1]), Path(sys.argv[2]))
