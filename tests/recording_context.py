"""A stage context for tests: records what a stage emits, and can cancel after a number of plates."""
from __future__ import annotations

import numpy as np

from backend.pipeline.base import JobCancelled


class RecordingContext:
    """A StageContext that records what a stage emits (cancels after ``cancel_after`` plates)."""

    def __init__(self, state: dict, cancel_after: int | None = None):
        self.device = "cpu"
        self.state = state
        self.plates: dict[int, np.ndarray] = {}
        self.warnings: list[str] = []
        self.progress_values: list[float] = []
        self.cancel_after = cancel_after

    def progress(self, fraction, message=""):
        self.progress_values.append(fraction)

    def check_cancelled(self):
        if self.cancel_after is not None and len(self.plates) >= self.cancel_after:
            raise JobCancelled("test")

    def warn(self, message):
        self.warnings.append(message)

    def emit_landmarks(self, *a):
        pass

    def emit_plate(self, frame_index, rgba):
        self.plates[frame_index] = rgba
