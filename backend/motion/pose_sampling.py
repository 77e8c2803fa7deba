"""Head pose for a generated span, drawn from a real pose track, with the paper's idle method.

* Speaking motion: a contiguous piece of the real track, from a seeded start,
  read back and forth (ping-pong) so any length is covered without jumps; never
  across a clip of a capture session or an edit cut of the source video.
* Idle (EmoGene's pose sampling for idle state): *idle runs* are found in the
  real track (consecutive frames whose pose hardly changes); their shortest and
  longest lengths bound the random length of idle segments, separated by a fixed
  gap (12 frames by default; the paper's mean gap between runs is an option). In every silent span of the
  generated audio (detected per span, not per file) idle segments are inserted:
  the pose holds where it is plus the small residual motion of a real idle run,
  blended in and out with smoothstep transitions.
Rotations are blended as rotation vectors (head rotations stay far from 180 deg).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation


@dataclass
class PoseTrack:
    rotation: np.ndarray        # [N, 3, 3] camera frame, OpenCV axes
    translation: np.ndarray     # [N, 3]
    #: contiguous runs ``(start, stop)`` of the source footage when the track concatenates several clips (a capture
    #: session): sampling never crosses from one run into another. () = the whole track is one run.
    segments: tuple[tuple[int, int], ...] = ()
    #: indices into ``segments`` whose rows sampling starts from (a capture session's neutral clips: how the person
    #: moves when not emoting); () = every row
    drawn_segments: tuple[int, ...] = ()
    #: rows that start a new shot inside a run (edit cuts of the source video, ``track.npz``'s ``shot_starts``):
    #: sampling never replays across one either
    cuts: tuple[int, ...] = ()

    def __post_init__(self):
        self.rotation = np.asarray(self.rotation, np.float64)
        self.translation = np.asarray(self.translation, np.float64)
        if len(self.rotation) < 2 or self.rotation.shape[1:] != (3, 3) or self.translation.shape != (len(self.rotation), 3):
            raise ValueError(f"a pose track needs >= 2 frames of rotation [N,3,3] and translation [N,3], got "
                             f"{list(self.rotation.shape)} and {list(self.translation.shape)}")
        self.segments = tuple(sorted((int(a), int(b)) for a, b in self.segments))
        problem = _partition_problem(self.segments, len(self.rotation)) if self.segments else None
        if problem:
            raise ValueError(f"pose track segments: {problem}")
        self.drawn_segments = tuple(sorted({int(i) for i in self.drawn_segments}))
        if any(not 0 <= i < len(self.segments) for i in self.drawn_segments):
            raise ValueError(f"pose track drawn_segments {self.drawn_segments} must index its {len(self.segments)} "
                             "segments")
        self.cuts = tuple(sorted({int(c) for c in np.asarray(self.cuts, np.int64).reshape(-1)}))
        if any(not 0 < c < len(self.rotation) for c in self.cuts):
            raise ValueError(f"pose track cuts {list(self.cuts)} must lie inside its {len(self.rotation)} rows")

    def segment_of(self, row: int) -> tuple[int, int]:
        """The contiguous run ``(start, stop)`` holding ``row``: its clip, narrowed to its shot."""
        a, b = next(((a, b) for a, b in self.segments if a <= row < b), (0, len(self.rotation)))
        a = max([a] + [c for c in self.cuts if c <= row])
        b = min([b] + [c for c in self.cuts if c > row])
        return a, b

    def drawn_rows(self) -> np.ndarray:
        """The rows sampling starts from, ascending."""
        if not self.drawn_segments:
            return np.arange(len(self.rotation))
        return np.concatenate([np.arange(*self.segments[i]) for i in self.drawn_segments])

    @property
    def rotvec(self) -> np.ndarray:
        return Rotation.from_matrix(self.rotation).as_rotvec()

    @classmethod
    def from_npz(cls, path: str | Path) -> "PoseTrack":
        with np.load(path) as z:
            return cls(z["rotation"], z["translation"], cuts=tuple(z["shot_starts"]) if "shot_starts" in z else ())


@dataclass
class IdleConfig:
    still_fraction: float = 0.5      # a frame is "still" below this fraction of the median pose speed
    min_run: int = 6                 # frames; shorter still runs are not idle runs
    min_silence: int = 12            # frames; shorter silences get no idle segment (0.48 s)
    transition: int = 6              # frames of smoothstep blend into / out of an idle segment
    gap: int | None = 12             # fixed frames of ordinary motion between idle segments; None: the
                                     # track's mean gap between idle runs (the paper's choice, which in a
                                     # speaking track is long and leaves most of a silence moving)


@dataclass
class IdleStatistics:
    runs: list[tuple[int, int]]      # [start, end) idle runs in the source track
    min_length: int
    max_length: int
    gap: int


def _partition_problem(runs, rows: int) -> str | None:
    """Why ``runs`` ``(start, stop)`` are not a partition of ``rows`` rows into runs of >= 2 rows (None if they are)."""
    covered = np.zeros(rows, int)
    for a, b in runs:
        if not 0 <= a <= b - 2 or b > rows:
            return f"run ({a}, {b}) must hold >= 2 of the {rows} rows"
        covered[a:b] += 1
    return None if np.all(covered == 1) else "the runs must cover every row exactly once"


def clip_segments(clip_starts, rows: int) -> tuple[tuple[int, int], ...]:
    """Contiguous runs of a capture session's ``track.npz`` (its clips in filmed order, one after another) from its
    ``clip_starts``; () for one clip (the track is one run)."""
    bounds = [int(v) for v in np.asarray(clip_starts).reshape(-1)] + [int(rows)]
    runs = tuple(zip(bounds[:-1], bounds[1:]))
    if len(runs) < 2:
        return ()
    problem = _partition_problem(runs, rows)
    if problem:
        raise ValueError(f"clip_starts {bounds[:-1]} of a {rows}-row track: {problem}")
    return runs


def pose_speed(track: PoseTrack) -> np.ndarray:
    """Per-frame pose change ``[N]``: rotation and translation speed, each relative to its median
    (translation units differ between tracks), summed. The first frame repeats the second."""
    rot = np.linalg.norm(np.diff(track.rotvec, axis=0), axis=1)
    tra = np.linalg.norm(np.diff(track.translation, axis=0), axis=1)
    speed = rot / max(np.median(rot), 1e-9) + tra / max(np.median(tra), 1e-9)
    return np.r_[speed[:1], speed]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def idle_statistics(track: PoseTrack, config: IdleConfig | None = None) -> IdleStatistics:
    """Idle runs of the real track (each inside one clip: a still moment's residual motion, from any clip, since a
    short neutral clip may hold none), the bounds of idle-segment length and the mean gap between runs."""
    config = config or IdleConfig()
    runs, gaps = [], []
    for a, b in track.segments or [(0, len(track.rotation))]:
        speed = np.convolve(pose_speed(PoseTrack(track.rotation[a:b], track.translation[a:b])), np.ones(3) / 3, "same")
        still = speed <= config.still_fraction * np.median(speed)
        # close one- or two-frame interruptions (tracking jitter) before measuring runs
        still = np.convolve(still.astype(float), np.ones(5), "same") >= 3
        found = [(a + int(r0), a + int(r1)) for r0, r1 in _runs(still) if r1 - r0 >= config.min_run]
        runs += found
        gaps += [found[i + 1][0] - found[i][1] for i in range(len(found) - 1)]
    if not runs:
        return IdleStatistics([], config.min_run, 4 * config.min_run,
                              config.gap if config.gap is not None else 2 * config.min_run)
    lengths = [b - a for a, b in runs]
    gap = int(round(np.mean(gaps))) if gaps else 2 * config.min_run
    if config.gap is not None:
        gap = config.gap
    return IdleStatistics(runs, min(lengths), max(lengths), max(config.transition, gap))


def ping_pong(index: np.ndarray, n: int) -> np.ndarray:
    """Indices into a run of ``n`` frames played forward and back (reflected at its ends); all 0 when ``n`` is 1."""
    index = np.asarray(index)
    if n < 2:
        return np.zeros(index.shape, np.int64)
    period = 2 * (n - 1)
    i = np.mod(index, period)
    return np.where(i < n, i, period - i)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def silent_spans(speech: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """[start, end) spans of at least ``min_length`` non-speech frames."""
    return [(int(a), int(b)) for a, b in _runs(~np.asarray(speech, bool)) if b - a >= min_length]


def sample_pose(track: PoseTrack, frames: int, speech: np.ndarray | None = None, seed: int = 0,
                idle: bool = True, config: IdleConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rotation ``[frames, 3, 3]`` and translation ``[frames, 3]`` (float32) for a generated span."""
    config = config or IdleConfig()
    rng = np.random.default_rng(seed)
    drawn = track.drawn_rows()
    start = int(drawn[rng.integers(0, len(drawn))])
    a, b = track.segment_of(start)             # replay one stretch of real footage, never across a clip boundary
    src = a + ping_pong(start - a + np.arange(frames), b - a)
    rv, tr = track.rotvec[src], track.translation[src]
    if idle and speech is not None and frames > 0:
        stats = idle_statistics(track, config)
        full_rv, full_tr = track.rotvec, track.translation
        weight = np.zeros(frames)
        target_rv, target_tr = rv.copy(), tr.copy()
        for a, b in silent_spans(np.asarray(speech, bool)[:frames], config.min_silence):
            t = a
            while t < b:
                if b - t < min(2 * config.transition, b - a):
                    break
                length = max(int(rng.integers(stats.min_length, stats.max_length + 1)), 2 * config.transition)
                if b - (t + length) < stats.gap + 2 * config.transition:
                    length = b - t          # no room for another gap + segment: stay idle to the end
                length = min(length, b - t)
                seg = np.arange(t, t + length)
                if stats.runs:                      # residual motion of a real idle run
                    r0, r1 = stats.runs[int(rng.integers(len(stats.runs)))]
                    ridx = r0 + ping_pong(np.arange(length), max(2, r1 - r0))
                    res_rv = full_rv[ridx] - full_rv[r0:r1].mean(0)
                    res_tr = full_tr[ridx] - full_tr[r0:r1].mean(0)
                else:
                    res_rv, res_tr = 0.0, 0.0
                target_rv[seg] = rv[t] + res_rv
                target_tr[seg] = tr[t] + res_tr
                ramp = max(1, min(config.transition, length // 2))
                k = np.arange(length)
                # hold fully inside the silence; ramps only where the segment meets moving pose
                up = _smoothstep((k + 1) / ramp) if t > a or a > 0 else np.ones(length)
                down = _smoothstep((length - k) / ramp) if t + length < b or b < frames else np.ones(length)
                weight[seg] = np.minimum(up, down)
                t += length + stats.gap
        rv = rv + weight[:, None] * (target_rv - rv)
        tr = tr + weight[:, None] * (target_tr - tr)
    rotation = Rotation.from_rotvec(rv).as_matrix() if frames else np.zeros((0, 3, 3))
    return rotation.astype(np.float32), np.asarray(tr, np.float32).reshape(frames, 3)


def motion_statistics(values: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """Mean velocity and acceleration magnitude (per frame) of ``values [T, ...]`` inside ``mask`` spans."""
    v = np.asarray(values, np.float64).reshape(len(values), -1)
    vel = np.linalg.norm(np.diff(v, axis=0), axis=1)
    acc = np.linalg.norm(np.diff(v, n=2, axis=0), axis=1)
    if mask is not None:
        m = np.asarray(mask, bool)
        vel = vel[m[1:] & m[:-1]]
        acc = acc[m[2:] & m[1:-1] & m[:-2]]
    return (float(vel.mean()) if vel.size else float("nan"), float(acc.mean()) if acc.size else float("nan"))
