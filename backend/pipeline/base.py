"""The contract between the server and the pipeline stages.

The server validates a client's ``generate`` message into a :class:`GenerateJob`,
then runs the stages listed by ``backend.composition.StageSet.for_job`` in order,
each with the same :class:`StageContext`. Stages talk to the outside world only
through the context: progress, cancellation, warnings, and streaming results
(landmark chunks, plates). Stages pass data to later stages through
``ctx.state`` (keys documented on :class:`StageContext`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bridge.camera import CameraSpec, CameraTrack  # noqa: F401  (the camera contract's home; re-exported)

#: Landmarks are generated at this rate internally and resampled to the job's fps.
INTERNAL_FPS = 25.0
AUDIO_SAMPLE_RATE = 16_000


class JobCancelled(Exception):
    """Raised by :meth:`StageContext.check_cancelled` once the client cancelled the job."""


class StageError(Exception):
    """A stage failed for a reason the client should read; ``code`` is a bridge error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class GenerateJob:
    """A validated ``generate`` request. Arrays are already checked for shape, dtype and finiteness."""
    job_id: str
    audio: np.ndarray               # float32 [samples], mono, AUDIO_SAMPLE_RATE
    fps: float                      # output frame rate (> 0; 23.976, 29.97 ... allowed)
    frame_count: int                # output frames = ceil(len(audio) / sr * fps)
    emotion_weights: np.ndarray     # float32 [frame_count, NUM_EMOTIONS], rows sum to 1 (bridge.emotions order)
    emotion_intensity: np.ndarray   # float32 [frame_count], in [0, 1]
    subject: str
    landmarks_only: bool = False
    resolution: tuple[int, int] | None = None   # plates (w, h); None = subject default
    camera: CameraSpec | CameraTrack | None = None  # None = the subject's own training camera; a track:
                                                    # one camera per output frame (frame_count of them)
    seed: int = 0
    temperature: float = 1.0                    # 0 = deterministic (z = mean)
    idle_pose: bool = True                      # pose sampling in silent spans
    frame_start: int = 0                        # echoed back: the client's first frame number
    options: dict[str, Any] = field(default_factory=dict)


class CancelFlag(Protocol):
    """What a stage context polls for cancellation: a ``threading.Event`` in the serving process, or one the
    job's Ray actor sets when the front forwards a ``cancel`` (``backend.runners``). Stages never see it."""

    def is_set(self) -> bool: ...


class StageContext(Protocol):
    """What a stage may do. Implemented by the server (and by a local runner for the CLI/demo).

    ``state`` keys written by the motion stage, all at the job's fps, ``frame_count`` rows:
      ``landmarks``          float32 [F, NUM_LANDMARKS, 3] emotional canonical landmarks
      ``neutral_landmarks``  float32 [F, NUM_LANDMARKS, 3] before the emotion deformer
      ``rotation``           float32 [F, 3, 3] head rotation (camera frame, OpenCV axes)
      ``translation``        float32 [F, 3]
      ``speech_mask``        bool [F] voice activity
    """
    device: Any                     # torch.device chosen once by the server
    state: dict[str, Any]

    def progress(self, fraction: float, message: str = "") -> None:
        """Report this stage's own progress in [0, 1]; the server maps it onto the whole job."""

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the client cancelled. Call between frames/chunks."""

    def warn(self, message: str) -> None:
        """A non-fatal problem the user should see (e.g. landmarks clamped)."""

    def emit_landmarks(self, start: int, landmarks: np.ndarray, rotation: np.ndarray,
                       translation: np.ndarray) -> None:
        """Stream a chunk of the final landmark track (frames ``start .. start+n``)."""

    def emit_plate(self, frame_index: int, rgba: np.ndarray) -> None:
        """Stream one plate: uint8 [H, W, 4], straight alpha. Encoded to PNG by the server."""


class Stage(Protocol):
    """One step of a generate job."""
    name: str
    #: share of the job's progress bar (relative to the other stages)
    weight: float

    def run(self, job: GenerateJob, ctx: StageContext) -> None: ...
