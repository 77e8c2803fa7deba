"""Track files: one ``<clip>.npz`` (arrays) + ``<clip>.json`` (metadata) per clip, always 25 fps.

Arrays (``T`` frames at 25 fps): ``landmarks [T,NUM_LANDMARKS,3]`` canonical, ``landmarks_image [T,NUM_LANDMARKS,2]``
pixels of the source video, ``rotation [T,3,3]``, ``translation [T,3]``, ``scale [T]`` (pose in
the camera frame, OpenCV axes; see ``canonical``), ``face_found bool [T]``, ``mel [4T,80]``
(log-mel, rows ``4t..4t+3`` belong to frame ``t``; all zeros when ``has_audio`` is false),
``speech bool [T]`` (voice activity), ``blink [T]`` (eye openness: mean eye aspect ratio
of both eyes in canonical space, ~0.25-0.35 open, < ~0.1 closed).

JSON: ``extractor_version``, ``clip_id``, ``source`` (video), ``audio_source``, ``corpus``,
``speaker``, ``emotion`` (a ``bridge.emotions`` name or null), ``level`` (MEAD 1-3 or null),
``intensity`` (MEAD level / 3 or null), ``take``, ``fps`` (25), ``source_fps``, ``frame_count``,
``image_size`` [w, h], ``intrinsics`` [fx, fy, cx, cy], ``has_audio``, ``split`` ("train" or
"val", by speaker), ``val_start_frame`` (for a split by time: frames from here on are the
clip's held-out tail), and QC fields (``face_found_fraction``, ``long_gaps``,
``multi_face_frames``, ``shot_starts`` (edit cuts, 25 fps rows), ``fit_residual``, ``reprojection_px``,
``av_sync_lag_frames`` and
``av_sync_corr`` (peak of mouth opening vs audio energy cross-correlation),
``lip_sync_usable`` (false when the audio does not seem to be the clip's own, in sync:
leave such clips out of lip-sync training), ``warnings``).

Writing is atomic (temporary file + rename; the JSON goes last), so a file set whose JSON
exists is complete. Tracks from other frame rates are resampled by :func:`resample_track`
(points interpolated linearly, booleans from the nearest source frame).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bridge.landmarks import NUM_LANDMARKS

#: bump when the extraction changes in a way that makes old tracks stale
EXTRACTOR_VERSION = 3
TRACK_FPS = 25.0

ARRAY_SPECS: dict[str, tuple[str, tuple]] = {
    # name: (dtype, shape with "T"/"4T" for frame-dependent axes)
    "landmarks": ("float32", ("T", NUM_LANDMARKS, 3)),
    "landmarks_image": ("float32", ("T", NUM_LANDMARKS, 2)),
    "rotation": ("float32", ("T", 3, 3)),
    "translation": ("float32", ("T", 3)),
    "scale": ("float32", ("T",)),
    "face_found": ("bool", ("T",)),
    "mel": ("float32", ("4T", 80)),
    "speech": ("bool", ("T",)),
    "blink": ("float32", ("T",)),
}


class TrackError(RuntimeError):
    """A track file is missing, malformed, or of another extractor version."""


@dataclass
class Track:
    landmarks: np.ndarray
    landmarks_image: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    scale: np.ndarray
    face_found: np.ndarray
    mel: np.ndarray
    speech: np.ndarray
    blink: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_count(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def has_audio(self) -> bool:
        return bool(self.meta.get("has_audio", False))

    def validate(self, name: str = "track") -> None:
        """Check dtypes and shapes against :data:`ARRAY_SPECS`; raise :class:`TrackError`."""
        t = self.frame_count
        for key, (dtype, shape) in ARRAY_SPECS.items():
            arr = getattr(self, key)
            want = tuple(t if d == "T" else 4 * t if d == "4T" else d for d in shape)
            if arr.shape != want:
                raise TrackError(f"{name}: {key} has shape {list(arr.shape)}, expected {list(want)}")
            if arr.dtype != np.dtype(dtype):
                raise TrackError(f"{name}: {key} has dtype {arr.dtype}, expected {dtype}")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise TrackError(f"{name}: {key} contains NaN or infinity")


def track_paths(directory: str | Path, clip_id: str) -> tuple[Path, Path]:
    directory = Path(directory)
    return directory / f"{clip_id}.npz", directory / f"{clip_id}.json"


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_track(track: Track, directory: str | Path, clip_id: str) -> Path:
    """Write ``<clip_id>.npz`` then ``<clip_id>.json`` atomically; returns the npz path."""
    track.validate(clip_id)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    npz_path, json_path = track_paths(directory, clip_id)
    arrays = {key: getattr(track, key) for key in ARRAY_SPECS}
    meta = {"extractor_version": EXTRACTOR_VERSION, "clip_id": clip_id, "fps": TRACK_FPS,
            **track.meta, "frame_count": track.frame_count}
    _atomic_write_bytes(npz_path, lambda f: np.savez_compressed(f, **arrays))
    text = json.dumps(meta, indent=2, sort_keys=True, default=_json_default).encode("utf-8")
    _atomic_write_bytes(json_path, lambda f: f.write(text))
    return npz_path


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_track_meta(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a track (``path`` may name the .npz or the .json)."""
    json_path = Path(path).with_suffix(".json")
    if not json_path.is_file():
        raise TrackError(f"{json_path}: track metadata not found")
    try:
        return json.loads(json_path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise TrackError(f"{json_path}: not valid JSON ({exc})") from exc


def load_track(path: str | Path, check_version: bool = True) -> Track:
    """Load a track (``path`` = the .npz or the .json); refuses another extractor version."""
    npz_path = Path(path).with_suffix(".npz")
    meta = read_track_meta(npz_path)
    version = meta.get("extractor_version")
    if check_version and version != EXTRACTOR_VERSION:
        raise TrackError(f"{npz_path}: extractor version {version}, this code reads version "
                         f"{EXTRACTOR_VERSION}: run `emogene prepare --force` again")
    if not npz_path.is_file():
        raise TrackError(f"{npz_path}: track arrays not found")
    with np.load(npz_path) as data:
        missing = [k for k in ARRAY_SPECS if k not in data]
        if missing:
            raise TrackError(f"{npz_path}: missing arrays {missing}")
        track = Track(**{k: data[k] for k in ARRAY_SPECS}, meta=meta)
    track.validate(str(npz_path))
    return track


def list_tracks(directory: str | Path) -> list[Path]:
    """Sorted ``.npz`` paths of the complete tracks (JSON present) in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.npz") if p.with_suffix(".json").is_file()
                  and not p.name.startswith("."))


def resample_times(n_source: int, source_fps: float, target_fps: float = TRACK_FPS) -> np.ndarray:
    """Source-frame positions (fractional) of the target frames covering the same duration."""
    n_target = max(1, int(round(n_source * target_fps / source_fps)))
    return np.minimum(np.arange(n_target) * source_fps / target_fps, n_source - 1)


def resample_track(values: np.ndarray, source_fps: float, target_fps: float = TRACK_FPS) -> np.ndarray:
    """Resample ``[T, ...]`` to ``target_fps``: floats linearly interpolated, bools/ints nearest frame."""
    values = np.asarray(values)
    if abs(source_fps - target_fps) < 1e-9:
        return values.copy()
    pos = resample_times(values.shape[0], source_fps, target_fps)
    if values.dtype.kind in "biu":
        return values[np.minimum(np.round(pos).astype(int), values.shape[0] - 1)]
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, values.shape[0] - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (values.ndim - 1))
    return ((1 - w) * values[lo] + w * values[hi]).astype(values.dtype)


def resample_rotations(rotations: np.ndarray, source_fps: float, target_fps: float = TRACK_FPS) -> np.ndarray:
    """Rotation matrices ``[T,3,3]`` resampled by slerp (scipy) between neighbouring frames."""
    if abs(source_fps - target_fps) < 1e-9:
        return rotations.copy()
    from scipy.spatial.transform import Rotation, Slerp
    times = np.arange(rotations.shape[0], dtype=np.float64)
    if len(times) == 1:
        return np.repeat(rotations, len(resample_times(1, source_fps, target_fps)), axis=0)
    slerp = Slerp(times, Rotation.from_matrix(rotations))
    return slerp(resample_times(rotations.shape[0], source_fps, target_fps)).as_matrix().astype(rotations.dtype)
