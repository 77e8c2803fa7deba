"""Face tracking: a video file -> per-frame iBUG points in pixels at the video's own fps.

mediapipe 0.10.14's legacy FaceMesh (``mediapipe.solutions.face_mesh``, models bundled
in the wheel, ``refine_landmarks=True``, tracking mode) gives 478 points per face;
``landmark_map`` picks the iBUG ones. Points are ``(u, v, d)``: pixel column, pixel
row and FaceMesh's relative depth scaled to pixels (mediapipe scales z like x, so
``d = z * width``; smaller = nearer the camera), i.e. a right-handed frame with OpenCV
axes. Frames are read with OpenCV (RGB after conversion).

Several faces: FaceMesh is asked for up to two; when two are seen the tracker keeps
the one nearest the face it followed in the previous frame (on the first frame, the
largest), and the count is reported so ``prepare`` can warn. Missing faces: short gaps
(``<= max_gap_seconds``) are linearly interpolated and count as found; longer gaps keep
``face_found = False`` and are listed in ``FaceTrack.long_gaps``.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.data.input_files import check_input_file
from backend.data.landmark_map import MEDIAPIPE_TO_IBUG68
from backend.data.shot_cuts import frame_changes, grey_thumbnail
from bridge.landmarks import NUM_LANDMARKS


class VideoError(RuntimeError):
    """A video cannot be read or holds no usable face; the message names the file."""


@dataclass
class TrackerConfig:
    max_faces: int = 2                  # 2 lets us notice a second face; 1 is faster
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    max_gap_seconds: float = 0.3        # interpolate gaps up to this long
    max_seconds: float | None = None    # read only the first N seconds (None = all)


@dataclass
class FaceTrack:
    """Per-frame tracking at the video's native rate."""
    points: np.ndarray          # float32 [T, NUM_LANDMARKS, 3] (u, v, d) pixels; NaN-free after gap filling
    face_found: np.ndarray      # bool [T]: detected, or inside a short interpolated gap
    detected: np.ndarray        # bool [T]: FaceMesh really saw a face in this frame
    face_count: np.ndarray      # int8 [T]: faces FaceMesh saw in this frame
    fps: float
    image_size: tuple[int, int]  # (width, height)
    long_gaps: list[tuple[int, int]] = field(default_factory=list)  # [start, end) frame ranges
    #: float32 [T]: mean grey change from the previous frame (``shot_cuts.frame_changes``; finds edit cuts)
    frame_change: np.ndarray | None = None

    @property
    def frame_count(self) -> int:
        return int(self.points.shape[0])

    @property
    def found_fraction(self) -> float:
        return float(self.face_found.mean()) if self.frame_count else 0.0

    @property
    def multi_face_frames(self) -> int:
        return int((self.face_count > 1).sum())


def read_video_info(path: str | Path) -> tuple[float, int, tuple[int, int]]:
    """(fps, frame count estimate, (width, height)) or :class:`VideoError`."""
    import cv2
    path = Path(path)
    _check_file(path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoError(f"{path}: not a readable video (OpenCV/ffmpeg could not open it)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()
    if not (fps > 0 and np.isfinite(fps)):
        raise VideoError(f"{path}: video reports no frame rate")
    return fps, count, size


def iter_frames_rgb(path: str | Path, max_frames: int | None = None):
    """Yield RGB uint8 frames of a video."""
    import cv2
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"{path}: not a readable video (OpenCV/ffmpeg could not open it)")
    try:
        n = 0
        while max_frames is None or n < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def _check_file(path: Path) -> None:
    check_input_file(path, VideoError, "video")


@contextlib.contextmanager
def _quiet_native_logs():
    """mediapipe/TFLite print info lines on the C-level stderr while the graph starts; send
    fd 2 to /dev/null for those moments only, so progress bars stay readable."""
    import sys
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _face_bbox_area(points: np.ndarray) -> float:
    span = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
    return float(span[0] * span[1])


def _pick_face(faces: list[np.ndarray], previous_centre: np.ndarray | None) -> np.ndarray:
    if len(faces) == 1:
        return faces[0]
    if previous_centre is None:
        return max(faces, key=_face_bbox_area)
    return min(faces, key=lambda f: float(np.linalg.norm(f[:, :2].mean(axis=0) - previous_centre)))


def track_video(path: str | Path, progress: Callable[[int, int], None] | None = None,
                config: TrackerConfig | None = None) -> FaceTrack:
    """Track the face through a video; ``progress(done, total)`` is called per frame.

    Raises :class:`VideoError` (naming the file) for a missing, empty, unreadable or
    face-less video.
    """
    config = config or TrackerConfig()
    path = Path(path)
    fps, count_estimate, (width, height) = read_video_info(path)
    max_frames = None if config.max_seconds is None else max(1, int(round(config.max_seconds * fps)))
    total = count_estimate if max_frames is None else min(count_estimate, max_frames)
    return _track(path, fps, (width, height), max_frames, total, progress, config)


def _track(path: Path, fps: float, size: tuple[int, int], max_frames: int | None, total: int,
           progress: Callable[[int, int], None] | None, config: TrackerConfig) -> FaceTrack:
    width, height = size
    # mediapipe's graph threads log while it starts (until the first frames are through)
    quiet = contextlib.ExitStack()
    quiet.enter_context(_quiet_native_logs())
    rows: list[np.ndarray | None] = []
    counts: list[int] = []
    changes: list[float] = []           # picture change from the previous frame (finds edit cuts; O(1) memory)
    previous_thumb = None
    previous_centre = None
    mesh = None
    try:
        from mediapipe.python.solutions import face_mesh
        mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=config.max_faces, refine_landmarks=True,
                                  min_detection_confidence=config.min_detection_confidence,
                                  min_tracking_confidence=config.min_tracking_confidence)
        for i, rgb in enumerate(iter_frames_rgb(path, max_frames)):
            h, w = rgb.shape[:2]
            thumb = grey_thumbnail(rgb)
            step = 0.0 if previous_thumb is None else frame_changes(np.stack([previous_thumb, thumb]))[1]
            changes.append(float(step))
            previous_thumb = thumb
            with warnings.catch_warnings():  # protobuf's GetPrototype deprecation, every call
                warnings.simplefilter("ignore", UserWarning)
                result = mesh.process(rgb)
            if i == 1:
                quiet.close()
            faces = []
            for lm in (result.multi_face_landmarks or []):
                arr = np.array([(p.x * w, p.y * h, p.z * w) for p in lm.landmark], dtype=np.float32)
                faces.append(arr[MEDIAPIPE_TO_IBUG68])
            counts.append(len(faces))
            if faces:
                chosen = _pick_face(faces, previous_centre)
                previous_centre = chosen[:, :2].mean(axis=0)
                rows.append(chosen)
            else:
                rows.append(None)
            if progress is not None:
                progress(i + 1, max(total, i + 1))
    finally:
        quiet.close()
        if mesh is not None:
            mesh.close()
    if not rows:
        raise VideoError(f"{path}: no frames could be decoded (corrupt or truncated video?)")
    detected = np.array([r is not None for r in rows], dtype=bool)
    if not detected.any():
        raise VideoError(f"{path}: no face found in any of its {len(rows)} frames")
    points = np.stack([r if r is not None else np.full((NUM_LANDMARKS, 3), np.nan, np.float32) for r in rows])
    max_gap = max(1, int(round(config.max_gap_seconds * fps)))
    points, face_found, long_gaps = fill_gaps(points, detected, max_gap)
    return FaceTrack(points=points, face_found=face_found, detected=detected,
                     face_count=np.array(counts, dtype=np.int8), fps=fps,
                     image_size=(width, height), long_gaps=long_gaps, frame_change=np.asarray(changes, np.float32))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) ranges where ``mask`` is True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def fill_gaps(points: np.ndarray, detected: np.ndarray, max_gap: int
              ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Fill frames without a face: interpolate gaps of ``<= max_gap`` frames between two
    detections (they count as found); hold the nearest detection elsewhere (not found).

    Returns (points without NaN, face_found, long gaps as [start, end) ranges).
    """
    points = points.copy()
    found = detected.copy()
    valid = np.flatnonzero(detected)
    long_gaps = []
    for start, end in _runs(~detected):
        inner = start > 0 and end < len(detected)
        if inner and end - start <= max_gap:
            a, b = points[start - 1], points[end]
            for k in range(start, end):
                w = (k - start + 1) / (end - start + 1)
                points[k] = (1 - w) * a + w * b
            found[start:end] = True
        else:
            long_gaps.append((int(start), int(end)))
            for k in range(start, end):
                nearest = valid[np.argmin(np.abs(valid - k))]
                points[k] = points[nearest]
    return points, found, long_gaps
