"""The render module's one door to the face-tracking API (backend.data).

``track_subject_video`` turns a talking video into the arrays subject preparation needs:
canonical landmarks, head pose in the camera frame (OpenCV axes, canonical units, so the
mean face scale is 1), landmarks in pixels and the (estimated) intrinsics. Adapting to a
change of the data API happens here and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass
class SubjectTrack:
    landmarks: np.ndarray        # float32 [T, NUM_LANDMARKS, 3] canonical
    landmarks_image: np.ndarray  # float32 [T, NUM_LANDMARKS, 2] pixels of the source video
    rotation: np.ndarray         # float32 [T, 3, 3] camera frame, OpenCV axes
    translation: np.ndarray      # float32 [T, 3]
    scale: np.ndarray            # float32 [T]
    face_found: np.ndarray       # bool [T]
    intrinsics: np.ndarray       # float32 [4] fx, fy, cx, cy (source pixels)
    fps: float
    image_size: tuple[int, int]  # source (width, height)
    #: int32 [K] frames that start a new shot (edit cuts; ``backend.data.shot_cuts``); pose never runs across one
    shot_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    @property
    def frame_count(self) -> int:
        return int(self.landmarks.shape[0])

    def shot_starts_in(self, source_index: np.ndarray) -> np.ndarray:
        """``shot_starts`` as frames of a resampling whose frame ``j`` shows source frame ``source_index[j]``."""
        from backend.data.shot_cuts import resampled_cuts
        return resampled_cuts(self.shot_starts, source_index)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"landmarks": self.landmarks, "landmarks_image": self.landmarks_image, "rotation": self.rotation,
                "translation": self.translation, "scale": self.scale, "face_found": self.face_found,
                "intrinsics": self.intrinsics}


def track_subject_video(path: str | Path, progress: Callable[[int, int], None] | None = None,
                        max_seconds: float | None = None) -> SubjectTrack:
    """Track, smooth (each shot on its own: edit cuts are found and kept sharp) and fit one talking video (raises
    the data module's VideoError on bad input)."""
    from backend.data.canonical import fit_canonical
    from backend.data.face_tracking import TrackerConfig, track_video
    from backend.data.shot_cuts import detect_shot_cuts, shot_spans
    from backend.data.smoothing import smooth_points

    track = track_video(path, progress=progress, config=TrackerConfig(max_faces=1, max_seconds=max_seconds))
    cuts = detect_shot_cuts(track.frame_change) if track.frame_change is not None else np.zeros(0, np.int32)
    points = np.concatenate([smooth_points(track.points[a:b], track.fps)
                             for a, b in shot_spans(cuts, track.frame_count)])
    fit = fit_canonical(points, track.image_size)
    return SubjectTrack(landmarks=fit.landmarks.astype(np.float32), landmarks_image=points[..., :2].astype(np.float32),
                        rotation=fit.rotation.astype(np.float32), translation=fit.translation.astype(np.float32),
                        scale=np.asarray(fit.scale, np.float32), face_found=track.face_found.astype(bool),
                        intrinsics=np.asarray(fit.intrinsics, np.float32), fps=float(track.fps),
                        image_size=tuple(int(v) for v in track.image_size), shot_starts=cuts)


def iter_video_frames(path: str | Path, max_frames: int | None = None):
    """RGB uint8 frames of a video (the data module's reader)."""
    from backend.data.face_tracking import iter_frames_rgb
    yield from iter_frames_rgb(path, max_frames)
