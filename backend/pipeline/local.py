"""Running a generate job's stages: the message-producing StageContext and the in-process runner.

:class:`MessageStageContext` turns the stage calls of ``backend.pipeline.base``
(progress, warnings, landmark chunks, plates) into bridge messages and hands each
to a *sink*; the server's sink stores and forwards them, the local runner's sink
collects them. :func:`run_stages` runs a job's stages with that context and
always ends with exactly one terminal message (``done``, ``cancelled`` or
``error``). :func:`run_generate_local` is the in-process entry point used by the
demo, evaluation and tests.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from backend.pipeline.base import CancelFlag, GenerateJob, JobCancelled, Stage, StageError
from bridge.landmarks import NUM_LANDMARKS
from bridge.messages import EncodedBuffer, Message
from bridge.protocol import ErrorCode, MessageType
from bridge.results import JobAssembler

log = logging.getLogger(__name__)

#: ``sink(message, stored)``: ``stored`` is True for messages that belong to the job's result
MessageSink = Callable[[Message, bool], None]
PROGRESS_INTERVAL_S = 0.1


def encode_png(rgba: np.ndarray, compression: int = 1) -> bytes:
    """uint8 ``[H, W, 4]`` straight-alpha RGBA as PNG bytes (fast compression by default)."""
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA),
                            [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:
        raise StageError(ErrorCode.INTERNAL, "PNG encoding failed")
    return data.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes back to uint8 ``[H, W, 4]`` RGBA."""
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        raise ValueError("not an RGBA PNG")
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


class MessageStageContext:
    """A :class:`backend.pipeline.base.StageContext` whose effects are bridge messages."""

    def __init__(self, job: GenerateJob, stages: list[Stage], device: Any, sink: MessageSink,
                 cancel_event: CancelFlag | None = None, parent_id: str | None = None,
                 encode_plates: bool = True):
        self.job = job
        self.device = device
        self.state: dict[str, Any] = {}
        self.cancel_event = cancel_event or threading.Event()
        self._sink = sink
        self._parent_id = parent_id
        self._encode_plates = encode_plates
        weights = [max(float(getattr(s, "weight", 1.0)), 0.0) for s in stages]
        total = sum(weights) or 1.0
        self._starts = [sum(weights[:i]) / total for i in range(len(stages))]
        self._shares = [w / total for w in weights]
        self._names = [getattr(s, "name", type(s).__name__) for s in stages]
        self._stage = 0
        self._last_progress = -1.0
        self.frames_emitted = 0
        self.plates_emitted = 0
        self.warnings: list[str] = []

    def _emit(self, msg_type: str, content: dict, buffers: list | None = None, stored: bool = True) -> None:
        self._sink(Message(msg_type, content, buffers or [], job_id=self.job.job_id, parent_id=self._parent_id),
                   stored)

    # -- StageContext -------------------------------------------------------------
    def begin_stage(self, index: int) -> None:
        self._stage = index
        self._last_progress = -1.0
        self.progress(0.0, "started")

    def progress(self, fraction: float, message: str = "") -> None:
        fraction = float(min(max(fraction, 0.0), 1.0)) if np.isfinite(fraction) else 0.0
        now = time.monotonic()
        if fraction < 1.0 and fraction > 0.0 and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        overall = self._starts[self._stage] + self._shares[self._stage] * fraction
        self._emit(MessageType.PROGRESS, {"stage": self._names[self._stage], "fraction": round(overall, 4),
                                          "stage_fraction": round(fraction, 4), "message": str(message)},
                   stored=False)

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled(self.job.job_id)

    def warn(self, message: str) -> None:
        self.warnings.append(str(message))
        self._emit(MessageType.WARNING, {"message": str(message)})

    def emit_landmarks(self, start: int, landmarks: np.ndarray, rotation: np.ndarray,
                       translation: np.ndarray) -> None:
        landmarks = np.ascontiguousarray(landmarks, dtype=np.float32)
        count = landmarks.shape[0] if landmarks.ndim == 3 else -1
        if landmarks.shape[1:] != (NUM_LANDMARKS, 3) or count < 0:
            raise StageError(ErrorCode.INTERNAL, f"landmark chunk must be [n, {NUM_LANDMARKS}, 3], got {list(landmarks.shape)}")
        rotation = np.ascontiguousarray(rotation, dtype=np.float32)
        translation = np.ascontiguousarray(translation, dtype=np.float32)
        if rotation.shape != (count, 3, 3) or translation.shape != (count, 3):
            raise StageError(ErrorCode.INTERNAL, f"pose chunk must be [{count}, 3, 3] and [{count}, 3], got "
                             f"{list(rotation.shape)} and {list(translation.shape)}")
        if not (0 <= start and start + count <= self.job.frame_count):
            raise StageError(ErrorCode.INTERNAL,
                             f"landmark chunk {start}..{start + count} is outside 0..{self.job.frame_count}")
        self._emit(MessageType.LANDMARKS, {"start": int(start), "count": count, "total": self.job.frame_count,
                                           "fps": self.job.fps, "frame_start": self.job.frame_start},
                   [landmarks, rotation, translation])
        self.frames_emitted += count

    def emit_plate(self, frame_index: int, rgba: np.ndarray) -> None:
        rgba = np.asarray(rgba)
        if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
            raise StageError(ErrorCode.INTERNAL, f"plate must be uint8 [H, W, 4], got {rgba.dtype} {list(rgba.shape)}")
        buffer = EncodedBuffer(encode_png(rgba), "image/png") if self._encode_plates else np.ascontiguousarray(rgba)
        self._emit(MessageType.PLATE, {"frame": int(frame_index), "total": self.job.frame_count,
                                       "frame_start": self.job.frame_start}, [buffer])
        self.plates_emitted += 1


def run_stages(job: GenerateJob, stages: list[Stage], ctx: MessageStageContext) -> Message:
    """Run ``stages`` in order; emits and returns the one terminal message."""
    timings: dict[str, float] = {}
    try:
        for index, stage in enumerate(stages):
            ctx.check_cancelled()
            ctx.begin_stage(index)
            started = time.perf_counter()
            stage.run(job, ctx)
            timings[getattr(stage, "name", type(stage).__name__)] = round(time.perf_counter() - started, 4)
            ctx.progress(1.0, "finished")
        terminal = Message(MessageType.DONE, {"frames": ctx.frames_emitted, "plates": ctx.plates_emitted,
                                              "timings": timings, "warnings": len(ctx.warnings)})
    except JobCancelled:
        terminal = Message(MessageType.CANCELLED, {"job_id": job.job_id, "state": "cancelled",
                                                   "frames": ctx.frames_emitted, "plates": ctx.plates_emitted})
    except StageError as exc:
        terminal = Message(MessageType.ERROR, {"code": exc.code, "message": str(exc)})
    except Exception as exc:  # a stage bug must not take the worker down
        log.error("job %s failed:\n%s", job.job_id, traceback.format_exc())
        terminal = Message(MessageType.ERROR, {"code": ErrorCode.JOB_FAILED,
                                               "message": f"{type(exc).__name__}: {exc}"})
    ctx._emit(terminal.type, terminal.content)
    return Message(terminal.type, terminal.content, job_id=job.job_id)


@dataclass
class LocalResult:
    """What a job produced, assembled from its messages."""
    state: str                                   # "done" | "cancelled" | "failed"
    landmarks: np.ndarray                        # float32 [F, NUM_LANDMARKS, 3]
    rotation: np.ndarray                         # float32 [F, 3, 3]
    translation: np.ndarray                      # float32 [F, 3]
    fps: float
    plates: dict[int, np.ndarray] = field(default_factory=dict)   # frame -> uint8 [H, W, 4]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    stage_state: dict[str, Any] = field(default_factory=dict)     # ctx.state after the run


def _plate_image(msg: Message) -> np.ndarray:
    return decode_png(msg.bytes(0)) if msg.media_type(0) else np.array(msg.array(0))


class ResultAssembler(JobAssembler):
    """Collects landmark chunks (``bridge.results``), plates (decoded) and the terminal message of one job
    into a :class:`LocalResult`."""

    def __init__(self, frame_count: int, fps: float):
        super().__init__(frame_count, fill=np.nan, on_plate=_plate_image)
        self.fps = fps

    def result(self, stage_state: dict | None = None) -> LocalResult:
        terminal = self.terminal
        state = {MessageType.DONE: "done", MessageType.CANCELLED: "cancelled"}.get(
            terminal.type if terminal else "", "failed")
        error = None
        if terminal is not None and terminal.type == MessageType.ERROR:
            error = f"{terminal.content.get('code')}: {terminal.content.get('message')}"
        timings = dict(terminal.content.get("timings", {})) if terminal and state == "done" else {}
        track = self.track
        return LocalResult(state, track.landmarks, track.rotation, track.translation, self.fps, self.plates,
                           self.warnings, timings, error, dict(stage_state or {}))


def run_generate_local(job: GenerateJob, stage_set: Any, on_message: Callable[[Message], None] | None = None,
                       cancel_event: threading.Event | None = None, show_progress: bool = False) -> LocalResult:
    """Run ``job`` in this process with the stages of ``stage_set`` (a ``backend.composition.StageSet``).

    ``on_message`` sees every message (progress included) as the server would
    send it; ``show_progress`` draws a tqdm bar. Plates stay raw arrays (no PNG).
    """
    stages = stage_set.for_job(job)
    assembler = ResultAssembler(job.frame_count, job.fps)
    bar = None
    if show_progress:
        from tqdm import tqdm
        bar = tqdm(total=100, unit="%", desc=f"generate {job.frame_count} frames")

    def sink(msg: Message, stored: bool) -> None:
        assembler.add(msg)
        if bar is not None and msg.type == MessageType.PROGRESS:
            bar.n = int(round(100 * float(msg.content["fraction"])))
            bar.set_postfix_str(str(msg.content.get("stage", "")))
            bar.refresh()
        if on_message is not None:
            on_message(msg)

    ctx = MessageStageContext(job, stages, stage_set.device, sink, cancel_event=cancel_event,
                              encode_plates=False)
    try:
        run_stages(job, stages, ctx)
    finally:
        if bar is not None:
            bar.close()
    return assembler.result(ctx.state)
