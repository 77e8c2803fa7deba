"""The backend server: one ROUTER socket thread, a job queue and a worker thread.

The socket thread owns the ROUTER socket and answers every message: requests it
can answer at once (``hello``, ``ping``, ``subjects``, ``cancel``, ``fetch``,
``ack``) and validation of ``generate`` happen here; stages run on the worker
thread, whose messages come back through a queue plus an inproc wake-up socket.
A bad message gets an ``error`` reply with a stable code and never stops the loop.
"""
from __future__ import annotations

import importlib.metadata
import logging
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import zmq

from backend.pipeline.base import StageError
from backend.server.job_store import DEFAULT_JOBS_DIR, TERMINAL_STATES, JobStore
from backend.server.validation import job_from_message
from backend.server.worker import STATE_OF_TERMINAL, Job, JobWorker, Outgoing
from bridge.errors import BridgeError
from bridge.messages import Message, error_from_exception, error_message
from bridge.protocol import (
    CLIENT_TYPES, DEFAULT_ADDRESS, DEFAULT_LIMITS, PROTOCOL_VERSION, TERMINAL_TYPES, ErrorCode, Limits,
    MessageType,
)
from bridge.wire import deserialize, serialize

log = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    bind: str = DEFAULT_ADDRESS
    key: bytes | None = None
    jobs_dir: Path = DEFAULT_JOBS_DIR
    limits: Limits = DEFAULT_LIMITS
    max_queued_jobs: int = 16
    job_max_age_s: float = 3 * 24 * 3600.0     # results nobody acknowledged are deleted after this
    purge_interval_s: float = 600.0
    poll_interval_ms: int = 200                 # how often the loop looks at the stop flag
    extra_welcome: dict = field(default_factory=dict)


def backend_version() -> str:
    try:
        return importlib.metadata.version("emogene-blender")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class BackendServer:
    """``start()`` binds and serves on a background thread; ``serve_forever()`` serves on this one."""

    def __init__(self, config: ServerConfig, stage_set: Any, subjects: Any, device_name: str = "cpu"):
        self.config = config
        self.stage_set = stage_set
        self.subjects = subjects
        self.device_name = device_name
        self.store = JobStore(config.jobs_dir)
        self.jobs: dict[str, Job] = {}
        self._outbox: "queue.Queue[Outgoing]" = queue.Queue()
        self._wake_address = f"inproc://emogene-wake-{uuid.uuid4().hex}"
        self._context = zmq.Context.instance()
        self._stop = threading.Event()
        self._bound = threading.Event()
        self._bind_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._wake_local = threading.local()
        self.address: str | None = None
        self.worker = JobWorker(stage_set, self.store, self._outbox, self._wake, key=config.key)
        self._intake = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emogene-intake")
        self._validated: "queue.Queue[tuple[bytes, Message, Any]]" = queue.Queue()
        self._validating = 0
        self.messages_handled = 0

    # -- life cycle ------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> str:
        self._thread = threading.Thread(target=self.serve_forever, name="emogene-socket", daemon=True)
        self._thread.start()
        if not self._bound.wait(timeout_s):
            raise RuntimeError("server did not bind in time")
        if self._bind_error is not None:
            raise self._bind_error
        return self.address or ""

    def request_stop(self) -> None:
        """Ask the loop to end (safe from a signal handler); ``serve_forever`` then returns."""
        self._stop.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self.worker.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def serve_forever(self, on_bound: Callable[[str], None] | None = None) -> None:
        router = self._context.socket(zmq.ROUTER)
        wake = self._context.socket(zmq.PULL)
        try:
            self._configure(router)
            try:
                router.bind(self.config.bind)
            except zmq.ZMQError as exc:
                self._bind_error = OSError(f"cannot bind {self.config.bind}: {exc}")
                self._bound.set()
                raise self._bind_error from None
            wake.bind(self._wake_address)
            self.address = router.getsockopt_string(zmq.LAST_ENDPOINT)
            self.worker.start()
            self._purge()
            self._bound.set()
            if on_bound is not None:
                on_bound(self.address)
            self._loop(router, wake)
        finally:
            self.worker.stop()
            self._intake.shutdown(wait=False, cancel_futures=True)
            router.close(linger=0)
            wake.close(linger=0)

    def _configure(self, router: zmq.Socket) -> None:
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.MAXMSGSIZE, self.config.limits.socket_max_frame_bytes)
        router.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10000)
        # per client: a client more than this many messages behind loses live messages (bounded memory);
        # everything a job produces is on disk, so it can ``fetch`` them
        router.setsockopt(zmq.SNDHWM, 1000)

    def _wake(self) -> None:
        socket = getattr(self._wake_local, "socket", None)
        if socket is None:
            socket = self._context.socket(zmq.PUSH)
            socket.setsockopt(zmq.LINGER, 0)
            socket.connect(self._wake_address)
            self._wake_local.socket = socket
        try:
            socket.send(b"", zmq.NOBLOCK)
        except zmq.Again:
            pass  # the socket thread already has wake-ups pending

    # -- the loop -----------------------------------------------------------------
    def _loop(self, router: zmq.Socket, wake: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(wake, zmq.POLLIN)
        next_purge = time.monotonic() + self.config.purge_interval_s
        while not self._stop.is_set():
            try:
                next_purge = self._turn(router, wake, poller, next_purge)
            except Exception:  # the loop must outlive any bug in a handler
                log.exception("server loop: unexpected failure; serving on")

    def _turn(self, router: zmq.Socket, wake: zmq.Socket, poller: zmq.Poller, next_purge: float) -> float:
        """One pass of the loop: wake-ups, worker output, validated requests, incoming messages."""
        events = dict(poller.poll(self.config.poll_interval_ms))
        if wake in events:
            while True:
                try:
                    wake.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
        self._drain_outbox(router)
        self._drain_validated(router)
        if router in events:
            for _ in range(100):  # then give the outbox a turn
                try:
                    frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._handle_frames(router, frames)
                self._drain_outbox(router)
        if time.monotonic() > next_purge:
            next_purge = time.monotonic() + self.config.purge_interval_s
            self._purge()
        return next_purge

    def _send(self, router: zmq.Socket, route: bytes, msg: Message, frames: list | None = None) -> None:
        """Send ``msg`` to ``route``; ``frames`` is its serialized form when the worker already made it."""
        try:
            if frames is None:
                frames = serialize(msg, self.config.key)
            router.send_multipart([route, *frames], copy=False)
        except BridgeError as exc:
            log.error("could not serialize %s: %s", msg.type, exc)
        except zmq.ZMQError as exc:  # the client is gone: its job's results stay on disk
            log.debug("send to a departed client failed: %s", exc)

    def _drain_outbox(self, router: zmq.Socket) -> None:
        while True:
            try:
                job, msg, stored, frames = self._outbox.get_nowait()
            except queue.Empty:
                return
            if stored:
                job.forwarded += 1
            self._send(router, job.route, msg, frames)
            if msg.type in TERMINAL_TYPES:
                job.terminal_forwarded = True
                self._answer_cancel_waiters(router, job, STATE_OF_TERMINAL[msg.type])

    def _handle_frames(self, router: zmq.Socket, frames: list) -> None:
        self.messages_handled += 1
        route = frames[0].bytes
        try:
            msg = deserialize(frames[1:], self.config.key, self.config.limits)
        except BridgeError as exc:
            self._send(router, route, error_from_exception(exc))
            return
        except Exception as exc:  # never die of a client's bytes
            log.exception("unexpected failure decoding a message")
            self._send(router, route, error_message(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"))
            return
        try:
            self._dispatch(router, route, msg)
        except BridgeError as exc:
            self._send(router, route, error_message(exc.code, exc.message, parent_id=msg.msg_id,
                                                    job_id=exc.job_id or msg.job_id))
        except Exception as exc:
            log.exception("unexpected failure handling %s", msg.type)
            self._send(router, route, error_message(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}",
                                                    parent_id=msg.msg_id, job_id=msg.job_id))

    def _dispatch(self, router: zmq.Socket, route: bytes, msg: Message) -> None:
        handler = {
            MessageType.HELLO: self._on_hello, MessageType.PING: self._on_ping,
            MessageType.SUBJECTS: self._on_subjects, MessageType.GENERATE: self._on_generate,
            MessageType.CANCEL: self._on_cancel, MessageType.FETCH: self._on_fetch, MessageType.ACK: self._on_ack,
        }.get(msg.type)
        if handler is None:
            raise BridgeError(ErrorCode.BAD_REQUEST, f"{msg.type!r} is sent by the backend, not to it; "
                              f"requests are {', '.join(sorted(CLIENT_TYPES))}")
        handler(router, route, msg)

    # -- handlers -----------------------------------------------------------------
    def _subject_names(self) -> list[str]:
        try:
            return self.subjects.names()
        except Exception:
            return []

    def _on_hello(self, router, route, msg: Message) -> None:
        running = self.worker.current
        content = {
            "backend_version": backend_version(), "protocol": PROTOCOL_VERSION, "device": self.device_name,
            "subjects": self._subject_names(),
            "capabilities": {
                "plates": bool(getattr(self.stage_set, "can_render", False)),
                "motion": type(getattr(self.stage_set, "motion", None)).__name__,
                "max_audio_seconds": self.config.limits.max_audio_seconds,
                "max_message_bytes": self.config.limits.max_message_bytes,
                "max_fps": self.config.limits.max_fps, "signed": bool(self.config.key),
            },
            "queued": self.worker.queued(), "running": running.job_id if running else None,
            **self.config.extra_welcome,
        }
        self._send(router, route, msg.reply(MessageType.WELCOME, content))

    def _on_ping(self, router, route, msg: Message) -> None:
        self._send(router, route, msg.reply(MessageType.PONG, {
            "time": time.time(), "queued": self.worker.queued(), "running": self.worker.current is not None}))

    def _on_subjects(self, router, route, msg: Message) -> None:
        self._send(router, route, msg.reply(MessageType.SUBJECT_LIST, {"subjects": self._subject_names()}))

    def _on_generate(self, router, route, msg: Message) -> None:
        if self.worker.queued() + self._validating >= self.config.max_queued_jobs:
            raise BridgeError(ErrorCode.BUSY, f"{self.worker.queued()} jobs are waiting; try again later")
        # decoding and resampling long audio takes a while: do it off the socket thread
        self._validating += 1
        self._intake.submit(self._validate, route, msg)

    def _validate(self, route: bytes, msg: Message) -> None:
        """Intake thread: the request as a job spec, or the error to answer it with."""
        try:
            spec = job_from_message(msg, uuid.uuid4().hex, self.subjects, self.config.limits)
            try:
                self.stage_set.for_job(spec)
            except StageError as exc:
                raise BridgeError(exc.code, str(exc)) from None
            outcome: Any = spec
        except BridgeError as exc:
            outcome = exc
        except Exception as exc:
            log.exception("validating a generate request failed")
            outcome = BridgeError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        self._validated.put((route, msg, outcome))
        self._wake()

    def _drain_validated(self, router: zmq.Socket) -> None:
        while True:
            try:
                route, msg, outcome = self._validated.get_nowait()
            except queue.Empty:
                return
            self._validating -= 1
            if isinstance(outcome, BridgeError):
                self._send(router, route, error_message(outcome.code, outcome.message, parent_id=msg.msg_id))
                continue
            try:
                self._accept(router, route, msg, outcome)
            except Exception as exc:  # e.g. the jobs folder cannot be written
                log.exception("could not start job %s", outcome.job_id)
                self.jobs.pop(outcome.job_id, None)
                self._send(router, route, error_message(ErrorCode.INTERNAL, f"could not start the job: {exc}",
                                                        parent_id=msg.msg_id))

    def _accept(self, router, route: bytes, msg: Message, spec) -> None:
        job_id = spec.job_id
        self.store.create(job_id, {"subject": spec.subject, "fps": spec.fps, "frame_count": spec.frame_count,
                                   "landmarks_only": spec.landmarks_only, "request_id": msg.msg_id})
        job = Job(spec, route, msg.msg_id)
        self.jobs[job_id] = job
        self._send(router, route, msg.reply(MessageType.ACCEPTED, {
            "job_id": job_id, "frames": spec.frame_count, "fps": spec.fps,
            "queue_position": self.worker.queued() + (1 if self.worker.current else 0)}, job_id=job_id))
        self.worker.submit(job)
        log.info("job %s accepted: %d frames at %g fps, %s", job_id, spec.frame_count, spec.fps,
                 "landmarks" if spec.landmarks_only else "landmarks + plates")

    def _job_id_of(self, msg: Message) -> str:
        job_id = msg.job_id or msg.content.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise BridgeError(ErrorCode.BAD_REQUEST, f"{msg.type} needs a job_id")
        return job_id

    def _unknown_job(self, job_id: str) -> BridgeError:
        return BridgeError(ErrorCode.UNKNOWN_JOB, f"no job {job_id[:64]!r} on this backend "
                           "(never submitted, acknowledged, or expired)", job_id=job_id[:128])

    def _on_cancel(self, router, route, msg: Message) -> None:
        job_id = self._job_id_of(msg)
        job = self.jobs.get(job_id)
        if job is None:
            if self.store.exists(job_id):
                state = self.store.read_meta(job_id).get("state", "failed")
                self._send(router, route, msg.reply(MessageType.CANCELLED, {"job_id": job_id, "state": state},
                                                    job_id=job_id))
                return
            raise self._unknown_job(job_id)
        with job.lock:
            was_queued = job.state == "queued"
            if was_queued:
                job.state = "cancelled"
        if was_queued:
            terminal = Message(MessageType.CANCELLED, {"job_id": job_id, "state": "cancelled", "frames": 0,
                                                       "plates": 0}, job_id=job_id, parent_id=job.request_id)
            self.store.append(job_id, job.stored, terminal)
            job.stored += 1
            self.store.update_meta(job_id, state="cancelled", stored=job.stored)
            self._outbox.put((job, terminal, True, None))
            job.cancel_waiters.append((route, msg.msg_id))
            self._drain_outbox(router)
            return
        job.cancel_event.set()
        if job.terminal_forwarded:
            self._send(router, route, msg.reply(MessageType.CANCELLED, {"job_id": job_id, "state": job.state},
                                                job_id=job_id))
        else:
            job.cancel_waiters.append((route, msg.msg_id))  # answered once the job has stopped

    def _answer_cancel_waiters(self, router, job: Job, state: str) -> None:
        for route, cancel_id in job.cancel_waiters:
            self._send(router, route, Message(MessageType.CANCELLED, {"job_id": job.job_id, "state": state},
                                              job_id=job.job_id, parent_id=cancel_id))
        job.cancel_waiters.clear()

    def _on_fetch(self, router, route, msg: Message) -> None:
        job_id = self._job_id_of(msg)
        job = self.jobs.get(job_id)
        if job is not None:
            for stored in self.store.messages(job_id, count=job.forwarded):
                self._send(router, route, stored)
            job.route = route  # what the job produces from now on goes to this client
            return
        if not self.store.exists(job_id):
            raise self._unknown_job(job_id)
        meta = self.store.read_meta(job_id)
        replayed = 0
        for stored in self.store.messages(job_id):
            self._send(router, route, stored)
            replayed += 1
        if meta.get("state") not in TERMINAL_STATES:
            self._send(router, route, error_message(
                ErrorCode.JOB_FAILED, f"the backend stopped before job {job_id} finished; "
                f"{replayed} partial result message(s) were sent", parent_id=msg.msg_id, job_id=job_id))

    def _on_ack(self, router, route, msg: Message) -> None:
        job_id = self._job_id_of(msg)
        job = self.jobs.get(job_id)
        if job is None and not self.store.exists(job_id):
            raise self._unknown_job(job_id)
        if job is not None and not job.terminal_forwarded:
            raise BridgeError(ErrorCode.BAD_REQUEST, f"job {job_id} is still {job.state}; cancel it first",
                              job_id=job_id)
        self.jobs.pop(job_id, None)
        self.store.delete(job_id)
        self._send(router, route, msg.reply(MessageType.ACKED, {"job_id": job_id}, job_id=job_id))

    def _purge(self) -> None:
        try:
            self._purge_expired()
        except OSError as exc:
            log.error("could not purge old jobs in %s: %s", self.store.root, exc)

    def _purge_expired(self) -> None:
        active = {job_id for job_id, job in self.jobs.items() if not job.terminal_forwarded}
        removed = self.store.purge(self.config.job_max_age_s, keep=active)
        for job_id in removed:
            self.jobs.pop(job_id, None)
        if removed:
            log.info("deleted %d expired job(s) from %s", len(removed), self.store.root)
        # finished jobs need not stay in memory: fetch reads them from disk
        cutoff = time.time() - 60.0
        for job_id in [j for j, job in self.jobs.items() if job.terminal_forwarded and job.created < cutoff]:
            del self.jobs[job_id]
