"""Edit cuts in a video: the frames where a new shot starts.

Edited footage (news, interviews) jumps between takes: from one frame to the next the head, the eyes and the
framing change at once. A pose track must not be replayed, smoothed or interpolated across such a cut. A cut is a
frame whose picture differs from the previous one far more than its neighbours differ from theirs: the mean
absolute change of a small grey thumbnail, against the median change of the frames around it (a fast head turn
moves many consecutive frames; a cut is one isolated spike). Settings were chosen on every real video in
``../shared/data`` (session 16): the default subject's news clip has 4 cuts at 13-54x its local change, three
other true cuts (looked at) lie at 10.9-21.6x, and no other frame of any clip reaches 9x.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class ShotCutConfig:
    thumbnail: int = 64          # the change is measured on a thumbnail this many pixels square (grey)
    window: int = 6              # frames either side whose changes make the local baseline
    min_ratio: float = 10.0      # a cut changes this many times more than the median of its neighbourhood ...
    min_change: float = 5.0      # ... and at least this many grey levels (0-255) on average
    noise_floor: float = 0.3     # grey levels: a still video's baseline is at least this (compression noise)
    min_shot: int = 2            # frames; a cut closer than this to the previous one (or the start) is ignored


def grey_thumbnail(rgb: np.ndarray, config: ShotCutConfig | None = None) -> np.ndarray:
    """``rgb [H, W, 3]`` uint8 -> float32 ``[n, n]`` grey thumbnail (area average)."""
    import cv2

    n = (config or ShotCutConfig()).thumbnail
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (n, n), interpolation=cv2.INTER_AREA).astype(np.float32)


def frame_changes(thumbnails: np.ndarray) -> np.ndarray:
    """Mean absolute change ``[T]`` of each thumbnail from the previous one (0 for the first frame)."""
    thumbnails = np.asarray(thumbnails, np.float32)
    if len(thumbnails) < 2:
        return np.zeros(len(thumbnails), np.float32)
    diff = np.abs(np.diff(thumbnails, axis=0)).reshape(len(thumbnails) - 1, -1).mean(1)
    return np.r_[0.0, diff].astype(np.float32)


def detect_shot_cuts(changes: np.ndarray, config: ShotCutConfig | None = None) -> np.ndarray:
    """Frame indices (int32, ascending) that start a new shot, from :func:`frame_changes`' ``[T]`` output."""
    config = config or ShotCutConfig()
    changes = np.asarray(changes, np.float64).reshape(-1)
    cuts: list[int] = []
    for t in range(1, len(changes)):
        around = np.r_[changes[max(1, t - config.window):t], changes[t + 1:t + 1 + config.window]]
        baseline = max(float(np.median(around)) if len(around) else 0.0, config.noise_floor)
        if changes[t] < config.min_change or changes[t] < config.min_ratio * baseline:
            continue
        if t - (cuts[-1] if cuts else 0) >= config.min_shot and len(changes) - t >= config.min_shot:
            cuts.append(t)
    return np.asarray(cuts, np.int32)


def shot_spans(cuts: np.ndarray, frames: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each shot of a ``frames``-long video cut at ``cuts``."""
    bounds = [0] + [int(c) for c in np.asarray(cuts).reshape(-1) if 0 < int(c) < frames] + [int(frames)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def resampled_cuts(cuts: np.ndarray, source_index: np.ndarray) -> np.ndarray:
    """Cut frames of a video after resampling, where resampled frame ``j`` shows source frame ``source_index[j]``
    (ascending): each cut moves to the first resampled frame that shows its shot."""
    source_index = np.asarray(source_index).reshape(-1)
    out = np.searchsorted(source_index, np.asarray(cuts).reshape(-1), side="left")
    return np.unique(out[(out > 0) & (out < len(source_index))]).astype(np.int32)


def track_shot_starts(changes: np.ndarray, fps: float) -> tuple[np.ndarray, int]:
    """The cuts in a video's per-frame :func:`frame_changes` as rows of its 25 fps track (each row shows the nearest
    source frame, as ``tracks.resample_times`` samples it), and that track's length."""
    from backend.data.tracks import TRACK_FPS, resample_times

    index = np.round(resample_times(len(changes), fps, TRACK_FPS)).astype(int)
    return resampled_cuts(detect_shot_cuts(changes), index), len(index)


def video_shot_starts(video: str | Path, progress: bool = True) -> tuple[np.ndarray, int]:
    """A video's cuts as rows of its 25 fps track, and that track's length (:func:`track_shot_starts`)."""
    from tqdm import tqdm

    from backend.data.face_tracking import iter_frames_rgb, read_video_info

    video = Path(video)
    fps, count, _ = read_video_info(video)
    thumbs = np.stack([grey_thumbnail(rgb) for rgb in tqdm(iter_frames_rgb(video), total=count, unit="frame",
                                                            desc=f"cuts in {video.name}", disable=not progress)])
    return track_shot_starts(frame_changes(thumbs), fps)


def add_shot_starts(video: str | Path, tracks: list[str | Path], progress: bool = True) -> np.ndarray:
    """Write ``video``'s cuts as ``shot_starts`` into pose-track ``.npz`` files of it (25 fps rows; every other array
    is written back unchanged); refuses a track whose length is not the video's. Returns the cuts."""
    cuts, rows = video_shot_starts(video, progress)
    for path in tracks:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if len(arrays["rotation"]) != rows:
            raise ValueError(f"{path}: {len(arrays['rotation'])} rows, but {Path(video).name} has {rows} frames at "
                             "25 fps: not a track of this video")
        arrays["shot_starts"] = cuts.astype(np.int32)
        np.savez_compressed(path, **arrays)
    return cuts
