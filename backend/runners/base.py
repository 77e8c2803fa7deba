"""The runner seam: what the server asks of whatever runs its jobs, and how results come back.

The server validates a request into a ``Job`` (``backend.server.worker.Job``),
then hands it to a :class:`JobRunner`. The runner runs the job's stages
somewhere (a thread here, a Ray actor on another machine) and gives every
message the stages produce to the :class:`JobRecorder`, which writes it to the
job store and passes it to the socket thread. Cancellation is a request to the
runner (``cancel``), not a shared ``threading.Event``: a runner whose stages run
in another process forwards it there, where the stage context's
``check_cancelled`` sees it.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from backend.pipeline.base import CancelFlag  # noqa: F401  (re-exported: part of the seam)
from bridge.messages import Message
from bridge.protocol import ErrorCode, MessageType
from bridge.wire import serialize

if TYPE_CHECKING:
    from backend.server.job_store import JobStore
    from backend.server.worker import Job

log = logging.getLogger(__name__)

STATE_OF_TERMINAL = {MessageType.DONE: "done", MessageType.CANCELLED: "cancelled", MessageType.ERROR: "failed"}


@dataclass(frozen=True)
class RunnerStatus:
    """A runner's load, as ``hello``/``ping`` report it."""
    queued: int          # accepted jobs not started yet
    running: int         # jobs running now
    workers: int         # how many jobs can run at once


class JobRunner(Protocol):
    """Runs the server's jobs. All methods are called from the server's threads and must not block long."""
    name: str

    def start(self, recorder: "JobRecorder") -> None:
        """Begin running jobs; every message they produce goes to ``recorder``. Jobs submitted before
        ``start`` (those recovered after a restart) wait until then."""

    def submit(self, job: "Job") -> None:
        """Queue ``job`` (state ``queued``). The runner sets it ``running`` when it starts and skips it
        if the server cancelled it meanwhile (its state is then no longer ``queued``)."""

    def cancel(self, job: "Job") -> None:
        """Ask a running job to stop; it ends with a ``cancelled`` message once it has."""

    def status(self) -> RunnerStatus: ...

    def is_alive(self) -> bool:
        """False once the runner can no longer run jobs (its thread or its connection is gone)."""

    def stop(self) -> None:
        """Stop taking jobs, cancel the running ones and release workers. Safe to call twice."""


@dataclass
class _Run:
    """What the recorder keeps of one running job until its terminal message."""
    started: float = field(default_factory=time.perf_counter)
    counts: dict = field(default_factory=lambda: {"frames": 0, "plates": 0})


class JobRecorder:
    """The server side of every runner: stores a job's result messages and forwards them to the socket thread.

    ``record`` is called from one thread per job at a time (the runner's thread for
    that job). Each message is written to the job store first (when ``stored``), then
    serialized (and signed) here, off the socket thread, and put on ``outbox``.
    """

    def __init__(self, store: "JobStore", outbox: "queue.Queue", wake: Callable[[], None],
                 key: bytes | None = None):
        self.store = store
        self.outbox = outbox
        self.wake = wake
        self.key = key
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def _run_of(self, job: "Job") -> "_Run":
        with self._lock:
            return self._runs.setdefault(job.job_id, _Run())

    def begin(self, job: "Job") -> None:
        """The job starts running (``job.state`` is already ``running``)."""
        with self._lock:
            self._runs[job.job_id] = _Run()
        try:
            self.store.update_meta(job.job_id, state="running", started=time.time())
        except (OSError, ValueError) as exc:
            log.error("job %s: cannot record its state (%s)", job.job_id, exc)

    def record(self, job: "Job", msg: Message, stored: bool) -> None:
        """One message of ``job``: to disk (when ``stored``), then to its client."""
        run = self._run_of(job)
        started, counts = run.started, run.counts
        if stored and not job.store_failed:
            try:
                self.store.append(job.job_id, job.stored, msg)
                job.stored += 1
            except OSError as exc:   # e.g. disk full: keep streaming, the client still gets it live
                job.store_failed = True
                log.error("job %s: cannot store results any more (%s); streaming only", job.job_id, exc)
                stored = False
        if msg.type in STATE_OF_TERMINAL:
            state = STATE_OF_TERMINAL[msg.type]
            with job.lock:
                job.state = state
            job.terminal_sent = True
            try:   # final on disk before any client can see the end (and ack it)
                self.store.update_meta(job.job_id, state=state, stored=job.stored,
                                       seconds=round(time.perf_counter() - started, 3),
                                       error=msg.content.get("message") if state == "failed" else None,
                                       **counts)
            except (OSError, ValueError) as exc:
                log.error("job %s: cannot record its final state (%s)", job.job_id, exc)
            try:
                self.store.drop_request(job.job_id)   # the audio is not needed any more
            except OSError:
                pass
            with self._lock:
                self._runs.pop(job.job_id, None)
            log.info("job %s %s: %d frames, %d plates in %.2f s", job.job_id, state, counts["frames"],
                     counts["plates"], time.perf_counter() - started)
        elif msg.type == MessageType.LANDMARKS:
            counts["frames"] += int(msg.content["count"])
        elif msg.type == MessageType.PLATE:
            counts["plates"] += 1
        self.outbox.put((job, msg, stored, serialize(msg, self.key)))
        self.wake()

    def warn(self, job: "Job", text: str) -> None:
        """A stored warning from the runner itself (e.g. a worker died and the job runs again)."""
        self.record(job, Message(MessageType.WARNING, {"message": text}, job_id=job.job_id,
                                 parent_id=job.request_id), True)

    def fail(self, job: "Job", text: str) -> None:
        """End ``job`` with a stored ``job_failed`` error (the runner could not finish it)."""
        if job.terminal_sent:
            return
        self.record(job, Message(MessageType.ERROR, {"code": ErrorCode.JOB_FAILED, "message": text},
                                 job_id=job.job_id, parent_id=job.request_id), True)

    def cancelled(self, job: "Job") -> None:
        """End ``job`` with a stored ``cancelled`` message (cancelled where its stages could not say so)."""
        if job.terminal_sent:
            return
        counts = self._run_of(job).counts
        self.record(job, Message(MessageType.CANCELLED, {"job_id": job.job_id, "state": "cancelled",
                                                         "frames": counts["frames"], "plates": counts["plates"]},
                                 job_id=job.job_id, parent_id=job.request_id), True)


def take_queued(job: "Job") -> bool:
    """Move ``job`` from ``queued`` to ``running``; False when it was cancelled while it waited."""
    with job.lock:
        if job.state != "queued":
            return False
        job.state = "running"
        return True


def describe(value: Any) -> str:
    return f"{type(value).__name__}: {value}"
