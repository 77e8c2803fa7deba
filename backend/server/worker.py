"""Jobs in memory and the worker thread that runs them, one at a time, off the socket thread.

A job moves ``queued -> running -> done | failed | cancelled`` (or straight from
``queued`` to ``cancelled``). The worker writes each result message to the job
store, then hands it to the socket thread through ``outbox`` and wakes it; the
socket thread alone talks to clients.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from backend.pipeline.base import GenerateJob, StageError
from backend.pipeline.local import MessageStageContext, run_stages
from backend.runners.base import JobRecorder
from backend.server.job_store import JobStore
from bridge.messages import Message

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    spec: GenerateJob
    route: bytes | None          # ROUTER identity of the client its messages go to (changes on fetch;
                                 # None for a job recovered after a restart, until someone fetches it)
    request_id: str              # msg_id of the generate request (parent_id of the job's messages)
    token_digest: str = ""       # sha256 of the job's secret token (fetch/ack/cancel must present it)
    state: str = "queued"
    cancel_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stored: int = 0              # result messages written to the store
    forwarded: int = 0           # of those, handed to the socket (a fetch replays these from disk)
    terminal_forwarded: bool = False    # socket thread: the terminal message went out
    terminal_sent: bool = False         # worker: the terminal message was handed over
    store_failed: bool = False
    cancel_waiters: list[tuple[bytes, str]] = field(default_factory=list)   # (route, cancel msg_id)
    created: float = field(default_factory=time.time)

    @property
    def job_id(self) -> str:
        return self.spec.job_id


#: what the worker hands the socket thread: (job, message, stored, its frames or None)
Outgoing = tuple[Job, Message, bool, "list | None"]


class JobWorker(threading.Thread):
    """Runs queued jobs with the stage set, one at a time."""

    def __init__(self, stage_set: Any, store: JobStore, outbox: "queue.Queue[Outgoing]",
                 wake: Callable[[], None], key: bytes | None = None):
        super().__init__(name="emogene-worker", daemon=True)
        self.stage_set = stage_set
        self.store = store
        self.outbox = outbox
        self.wake = wake
        self.key = key
        self.recorder = JobRecorder(store, outbox, wake, key)
        self._queue: "queue.Queue[Job | None]" = queue.Queue()
        self.current: Job | None = None

    def submit(self, job: Job) -> None:
        self._queue.put(job)

    def queued(self) -> int:
        return self._queue.qsize()

    def stop(self) -> None:
        if self.current is not None:
            self.current.cancel_event.set()
        self._queue.put(None)

    def run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with job.lock:
                if job.state != "queued":   # cancelled while it waited
                    continue
                job.state = "running"
            self.current = job
            try:
                self._run(job)
            except Exception as exc:  # never let one job end the worker, nor leave its client waiting
                log.exception("worker failed on job %s", job.job_id)
                if not job.terminal_sent:
                    self._send_failure(job, f"{type(exc).__name__}: {exc}")
            finally:
                self.current = None

    def _send_failure(self, job: Job, text: str) -> None:
        self.recorder.fail(job, text)   # stored too, so a later fetch (or a restarted backend) tells the same story

    def _run(self, job: Job) -> None:
        self.recorder.begin(job)

        def sink(msg: Message, stored: bool) -> None:
            self.recorder.record(job, msg, stored)

        try:
            stages = self.stage_set.for_job(job.spec)
        except StageError as exc:
            stages = [_FailingStage(exc)]
        ctx = MessageStageContext(job.spec, stages, self.stage_set.device, sink,
                                  cancel_event=job.cancel_event, parent_id=job.request_id)
        run_stages(job.spec, stages, ctx)


class _FailingStage:
    """Stands in for the stage list when the job cannot run at all, so it still ends with an ``error``."""
    name = "setup"
    weight = 1.0

    def __init__(self, error: StageError):
        self.error = error

    def run(self, job: GenerateJob, ctx: Any) -> None:
        raise self.error
