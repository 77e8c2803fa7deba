"""A job's results on the receiving side: landmark chunks -> whole arrays -> files (numpy only).

One implementation for every receiver: the CLI (``emogene generate``/``fetch``),
the Blender add-on's job session and the in-process pipeline
(``backend.pipeline.local``). :class:`LandmarkAssembler` checks each
``landmarks`` chunk and writes it into ``[F, NUM_LANDMARKS, 3]`` arrays;
:class:`JobAssembler` adds plates (through a caller's ``on_plate``), warnings
and the terminal message; :func:`write_landmark_files` writes the files the CLI
promises (``landmarks.npz``, ``landmarks.csv``, ``arkit.csv``, ``arkit.json``).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bridge.emotions import NEUTRAL
from bridge.errors import BridgeError
from bridge.landmarks import LANDMARK_NAMES, NUM_LANDMARKS
from bridge.messages import Message
from bridge.protocol import TERMINAL_TYPES, ErrorCode, MessageType


class LandmarkAssembler:
    """Landmark chunks of one job written into whole arrays.

    ``frame_count`` may be left None: the first chunk's ``total`` sets it.
    Frames no chunk reached keep ``fill`` (landmarks), identity (rotation) and
    zero (translation); :attr:`received` says which arrived.
    """

    def __init__(self, frame_count: int | None = None, fill: float = 0.0):
        self.fill = fill
        self.fps = 0.0
        self.landmarks: np.ndarray | None = None     # float32 [F, NUM_LANDMARKS, 3]
        self.rotation: np.ndarray | None = None      # float32 [F, 3, 3]
        self.translation: np.ndarray | None = None   # float32 [F, 3]
        self.received: np.ndarray | None = None      # bool [F]
        if frame_count is not None:
            self._allocate(frame_count)

    def _allocate(self, frames: int) -> None:
        self.landmarks = np.full((frames, NUM_LANDMARKS, 3), self.fill, np.float32)
        self.rotation = np.tile(np.eye(3, dtype=np.float32), (frames, 1, 1))
        self.translation = np.zeros((frames, 3), np.float32)
        self.received = np.zeros(frames, bool)

    @property
    def frame_count(self) -> int:
        return 0 if self.landmarks is None else len(self.landmarks)

    @property
    def missing(self) -> int | None:
        """Frames not received yet (None before the first chunk)."""
        return None if self.received is None else int((~self.received).sum())

    def add(self, msg: Message) -> None:
        """Write one ``landmarks`` message; a chunk of the wrong shape or place raises ``bad_buffer``."""
        content = msg.content
        try:
            start, total = int(content["start"]), int(content.get("total", self.frame_count))
            self.fps = float(content.get("fps", self.fps))
        except (KeyError, TypeError, ValueError) as exc:
            raise BridgeError(ErrorCode.BAD_BUFFER, f"landmark chunk without a usable start/total: {exc}",
                              job_id=msg.job_id) from None
        landmarks, rotation, translation = msg.array(0), msg.array(1), msg.array(2)
        n = len(landmarks)
        if self.landmarks is None:
            self._allocate(max(total, 0))
        if (landmarks.shape != (n, NUM_LANDMARKS, 3) or rotation.shape != (n, 3, 3)
                or translation.shape != (n, 3) or start < 0 or start + n > self.frame_count):
            raise BridgeError(ErrorCode.BAD_BUFFER,
                              f"landmark chunk {start}+{n} of {total} has unexpected shapes "
                              f"{landmarks.shape}, {rotation.shape}, {translation.shape}", job_id=msg.job_id)
        self.landmarks[start:start + n] = landmarks
        self.rotation[start:start + n] = rotation
        self.translation[start:start + n] = translation
        self.received[start:start + n] = True


def _keep_bytes(msg: Message) -> Any:
    return msg.bytes(0)


class JobAssembler:
    """Everything a job streams, gathered: landmark arrays, plates, warnings, the terminal message.

    ``on_plate(msg)`` stores one ``plate`` message and returns what to keep for
    its frame (a path, a decoded image; default: the PNG bytes). It may raise
    :class:`BridgeError` to refuse a plate.
    """

    def __init__(self, frame_count: int | None = None, *, fill: float = 0.0,
                 on_plate: Callable[[Message], Any] = _keep_bytes):
        self.track = LandmarkAssembler(frame_count, fill)
        self.on_plate = on_plate
        self.plates: dict[int, Any] = {}
        self.warnings: list[str] = []
        self.terminal: Message | None = None

    def add(self, msg: Message) -> None:
        kind = msg.type
        if kind == MessageType.LANDMARKS:
            self.track.add(msg)
        elif kind == MessageType.PLATE:
            self.plates[int(msg.content["frame"])] = self.on_plate(msg)
        elif kind == MessageType.WARNING:
            self.warnings.append(str(msg.content.get("message", "")))
        elif kind in TERMINAL_TYPES:
            self.terminal = msg


def write_landmark_files(out: str | Path, landmarks: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                         fps: float, weights: np.ndarray | None = None, intensity: np.ndarray | None = None) -> None:
    """``landmarks.npz`` (+ the emotion track when given), ``landmarks.csv`` and the ARKit files in ``out``."""
    from bridge.live_link_face import write_take

    out = Path(out)
    emotion = {} if weights is None else {"emotion_weights": weights, "emotion_intensity": intensity}
    np.savez(out / "landmarks.npz", landmarks=landmarks, rotation=rotation, translation=translation,
             fps=np.float64(fps), **emotion)
    with open(out / "landmarks.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "index", "name", "x", "y", "z"])
        for frame, points in enumerate(landmarks):
            for index, (x, y, z) in enumerate(points.tolist()):
                writer.writerow([frame, index, LANDMARK_NAMES[index], f"{x:.6f}", f"{y:.6f}", f"{z:.6f}"])
    # the rest face is looked for among frames keyed neutral (an all-emotional take uses them all)
    rest = None if weights is None else (np.asarray(weights)[:, NEUTRAL] >= 0.5) | (np.asarray(intensity) <= 0)
    write_take(out, landmarks, rotation, fps, rest)
