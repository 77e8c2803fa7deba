"""The backend server: one ROUTER socket thread, a job queue and a worker thread.

The socket thread owns the ROUTER socket and answers every message: requests it
can answer at once (``hello``, ``ping``, ``subjects``, ``cancel``, ``fetch``,
``ack``) and validation of ``generate`` happen here; stages run on the worker
thread, whose messages come back through a queue plus an inproc wake-up socket.
A bad message gets an ``error`` reply with a stable code and never stops the loop.

Jobs belong to whoever holds their token (``accepted`` returns it; ``fetch``, ``ack`` and ``cancel``
must present it); a keyed server refuses replays (``replay.py``). Each start has a new instance id
(in ``welcome``, ``pong``, ``accepted``) so clients notice a restart; unfinished jobs left in the store
are run again at start (their request is kept until they end).
"""
from __future__ import annotations

import importlib.metadata
import logging
import queue
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import zmq

from backend.pipeline.base import StageError
from backend.runners.base import STATE_OF_TERMINAL, JobRecorder, JobRunner
from backend.server.job_store import DEFAULT_JOBS_DIR, TERMINAL_STATES, JobStore, token_digest, token_matches
from backend.server.replay import ReplayGuard
from backend.server.validation import job_from_message
from backend.server.worker import Job, Outgoing
from bridge.camera import CAPABILITY as CAMERA_FRAMES
from bridge.errors import BridgeError
from bridge.messages import Message, error_from_exception, error_message, new_id
from bridge.protocol import (
    CLIENT_TYPES, DEFAULT_ADDRESS, DEFAULT_LIMITS, PROTOCOL_VERSION, TERMINAL_TYPES, ErrorCode, Limits,
    MessageType,
)
from bridge.wire import deserialize, receive, send, serialize

log = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    bind: str = DEFAULT_ADDRESS
    key: bytes | None = None
    curve_secret: bytes | None = None          # Z85 secret key: CURVE-encrypt the socket (see `emogene keys`)
    curve_clients: Path | None = None          # folder of allowed client public keys (CURVE handshake, ZAP)
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

    def __init__(self, config: ServerConfig, stage_set: Any, subjects: Any, device_name: str = "cpu",
                 runner: JobRunner | None = None):
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
        #: a new id each time the backend starts: clients notice a restart by it changing
        self.instance = new_id()
        self.replay_guard = ReplayGuard(config.limits.replay_window_s, config.limits.replay_history)
        if runner is None:   # the default: jobs run one at a time on a thread of this process
            from backend.runners.in_process import InProcessRunner
            runner = InProcessRunner(stage_set)
        #: runs the jobs (``backend.runners``); ``worker`` is its older name
        self.runner = self.worker = runner
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
        self.runner.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def serve_forever(self, on_bound: Callable[[str], None] | None = None) -> None:
        router = self._context.socket(zmq.ROUTER)
        wake = self._context.socket(zmq.PULL)
        authenticator = self._start_authenticator()
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
            self._recover_jobs()
            self.runner.start(JobRecorder(self.store, self._outbox, self._wake, self.config.key))
            self._purge()
            self._bound.set()
            if on_bound is not None:
                on_bound(self.address)
            self._loop(router, wake)
        finally:
            self.runner.stop()
            self._intake.shutdown(wait=False, cancel_futures=True)
            router.close(linger=0)
            wake.close(linger=0)
            if authenticator is not None:
                authenticator.stop()

    def _start_authenticator(self):
        """With ``curve_clients``: a ZAP handler admitting only the listed client keys. Unknown peers fail
        the CURVE handshake, so none of their frames is ever read (the only bound on unsigned multi-frame
        messages: libzmq's MAXMSGSIZE is per frame)."""
        if self.config.curve_clients is None:
            return None
        from zmq.auth.thread import ThreadAuthenticator

        authenticator = ThreadAuthenticator(self._context)
        authenticator.start()
        authenticator.configure_curve(domain="*", location=str(self.config.curve_clients))
        return authenticator

    def _configure(self, router: zmq.Socket) -> None:
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.MAXMSGSIZE, self.config.limits.socket_max_frame_bytes)
        router.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10000)
        # per client: a client more than this many messages behind loses live messages (bounded memory);
        # everything a job produces is on disk, so it can ``fetch`` them
        router.setsockopt(zmq.SNDHWM, 1000)
        if self.config.curve_secret is not None:
            router.curve_server = True
            router.curve_secretkey = self.config.curve_secret

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
                    frames = receive(router, zmq.NOBLOCK, routing_frames=1)
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
        if route is None:   # a recovered job nobody has fetched yet: its results are on disk
            return
        try:
            if frames is None:
                frames = serialize(msg, self.config.key)
            send(router, frames, route=route)
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
        route = frames[0]
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
            if self.config.key:
                self.replay_guard.check(msg)
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
        load = self.runner.status()
        content = {
            "backend_version": backend_version(), "protocol": PROTOCOL_VERSION, "device": self.device_name,
            "subjects": self._subject_names(),
            "capabilities": {
                "plates": bool(getattr(self.stage_set, "can_render", False)),
                "motion": type(getattr(self.stage_set, "motion", None)).__name__,
                "max_audio_seconds": self.config.limits.max_audio_seconds,
                "max_message_bytes": self.config.limits.max_message_bytes,
                "max_fps": self.config.limits.max_fps, "signed": bool(self.config.key),
                "runner": self.runner.name, "workers": load.workers,
                CAMERA_FRAMES: True,   # generate's camera may carry one camera per frame (bridge.camera)
            },
            # other clients' job ids are secret: only the jobs this connection started or fetched
            "queued": load.queued, "running": load.running > 0,
            "jobs": sorted(j.job_id for j in self.jobs.values() if j.route == route and not j.terminal_forwarded),
            "instance": self.instance, "encrypted": self.config.curve_secret is not None,
            **self.config.extra_welcome,
        }
        self._send(router, route, msg.reply(MessageType.WELCOME, content))

    def _on_ping(self, router, route, msg: Message) -> None:
        self._send(router, route, msg.reply(MessageType.PONG, {
            "time": time.time(), "queued": (load := self.runner.status()).queued, "running": load.running > 0,
            "instance": self.instance}))

    def _on_subjects(self, router, route, msg: Message) -> None:
        self._send(router, route, msg.reply(MessageType.SUBJECT_LIST, {"subjects": self._subject_names()}))

    def _on_generate(self, router, route, msg: Message) -> None:
        queued = self.runner.status().queued
        if queued + self._validating >= self.config.max_queued_jobs:
            raise BridgeError(ErrorCode.BUSY, f"{queued} jobs are waiting; try again later")
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
        token = secrets.token_urlsafe(24)   # 192 bits: fetch, ack and cancel need it
        self.store.create(job_id, {"subject": spec.subject, "fps": spec.fps, "frame_count": spec.frame_count,
                                   "landmarks_only": spec.landmarks_only, "request_id": msg.msg_id,
                                   "token_sha256": token_digest(token)})
        self.store.save_request(job_id, msg)
        job = Job(spec, route, msg.msg_id, token_digest=token_digest(token))
        self.jobs[job_id] = job
        self._send(router, route, msg.reply(MessageType.ACCEPTED, {
            "job_id": job_id, "token": token, "frames": spec.frame_count, "fps": spec.fps,
            "instance": self.instance,
            "queue_position": (load := self.runner.status()).queued + max(0, load.running - load.workers + 1)},
            job_id=job_id))
        self.runner.submit(job)
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

    def _authorize(self, msg: Message) -> tuple[str, Job | None]:
        """The job a fetch/ack/cancel names, after checking its token; raises unknown_job / bad_token."""
        job_id = self._job_id_of(msg)
        job = self.jobs.get(job_id)
        if job is not None:
            digest = job.token_digest
        elif self.store.exists(job_id):
            try:
                digest = self.store.read_meta(job_id).get("token_sha256")
            except (OSError, ValueError):
                digest = None
        else:
            raise self._unknown_job(job_id)
        token = msg.content.get("token")
        if not token_matches(token, digest):
            raise BridgeError(ErrorCode.BAD_TOKEN,
                              f"{msg.type} of job {job_id} needs the job's token (from its 'accepted' reply)"
                              + (", and this one is wrong" if token is not None else ""), job_id=job_id)
        return job_id, job

    def _on_cancel(self, router, route, msg: Message) -> None:
        job_id, job = self._authorize(msg)
        if job is None:
            state = self.store.read_meta(job_id).get("state", "failed")
            self._send(router, route, msg.reply(MessageType.CANCELLED, {"job_id": job_id, "state": state},
                                                job_id=job_id))
            return
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
            self.store.drop_request(job_id)
            self._outbox.put((job, terminal, True, None))
            job.cancel_waiters.append((route, msg.msg_id))
            self._drain_outbox(router)
            return
        self.runner.cancel(job)   # may cross to another process (Ray); the job ends with 'cancelled'
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

    def _replay(self, router, route, job_id: str, count: int | None) -> tuple[int, bool, str]:
        """Send the job's stored messages; (how many, whether the last was terminal, what went wrong)."""
        replayed, terminal, problem = 0, False, ""
        try:
            for stored in self.store.messages(job_id, count=count):
                self._send(router, route, stored)
                replayed += 1
                terminal = stored.type in TERMINAL_TYPES
        except (OSError, ValueError, BridgeError) as exc:
            problem = f"stored result {replayed} cannot be read ({exc})"
        return replayed, terminal, problem

    def _on_fetch(self, router, route, msg: Message) -> None:
        job_id, job = self._authorize(msg)
        if job is not None:
            # what was forwarded so far comes from disk; what the outbox still holds follows live
            replayed, _, problem = self._replay(router, route, job_id, job.forwarded)
            old_route = job.route
            job.route = route  # what the job produces from now on goes to this client
            if old_route is not None and old_route != route and not job.terminal_forwarded:
                self._send(router, old_route, error_message(
                    ErrorCode.STREAM_MOVED, f"job {job_id} is now streamed to a newer fetch of it "
                    "(another connection presented its token); this connection gets no more of it",
                    job_id=job_id))
            if job.terminal_forwarded and (problem or replayed < job.forwarded or job.store_failed):
                self._send(router, route, error_message(
                    ErrorCode.JOB_FAILED, f"job {job_id} finished but its results could not all be stored "
                    f"({problem or 'the disk may be full'}); {replayed} result message(s) were sent",
                    parent_id=msg.msg_id, job_id=job_id))
            return
        meta = self.store.read_meta(job_id)
        replayed, terminal, problem = self._replay(router, route, job_id, None)
        if not terminal:   # never leave a fetch without an end
            why = problem or ("the backend stopped before it finished" if meta.get("state") not in TERMINAL_STATES
                              else "its results could not all be stored (the disk may have been full)")
            self._send(router, route, error_message(
                ErrorCode.JOB_FAILED, f"job {job_id} is incomplete: {why}; {replayed} partial result "
                "message(s) were sent", parent_id=msg.msg_id, job_id=job_id))

    def _on_ack(self, router, route, msg: Message) -> None:
        job_id, job = self._authorize(msg)
        if job is not None and not job.terminal_forwarded:
            raise BridgeError(ErrorCode.BAD_REQUEST, f"job {job_id} is still {job.state}; cancel it first",
                              job_id=job_id)
        self.jobs.pop(job_id, None)
        self.store.delete(job_id)
        self._send(router, route, msg.reply(MessageType.ACKED, {"job_id": job_id}, job_id=job_id))

    # -- restart ---------------------------------------------------------------------
    def _recover_jobs(self) -> None:
        """Jobs a previous run of the backend left unfinished: queued ones run again from their stored
        request; one that was running is re-run from the start, with a warning saying so; one whose
        request is gone is marked failed with a stored ``error`` (fetch and cancel then tell the truth)."""
        try:
            ids = self.store.job_ids()
        except OSError:
            return
        pending = []
        for job_id in ids:
            try:
                meta = self.store.read_meta(job_id)
            except (OSError, ValueError):
                continue
            if meta.get("state") in TERMINAL_STATES:
                continue
            pending.append((float(meta.get("created", 0)), job_id, meta))
        for _, job_id, meta in sorted(pending):
            try:
                self._recover(job_id, meta)
            except Exception as exc:   # one bad folder must not stop the backend
                log.exception("could not recover job %s", job_id)
                self._fail_stored(job_id, meta, f"the backend restarted and could not run it again ({exc})")

    def _recover(self, job_id: str, meta: dict) -> None:
        was_running = meta.get("state") == "running"
        try:
            request = self.store.load_request(job_id)
        except (OSError, ValueError, BridgeError) as exc:
            self._fail_stored(job_id, meta, f"the backend restarted and its request is gone ({exc})")
            return
        try:
            spec = job_from_message(request, job_id, self.subjects, self.config.limits)
        except BridgeError as exc:
            self._fail_stored(job_id, meta, f"the backend restarted and its request is no longer valid ({exc})")
            return
        self.store.clear_messages(job_id)
        job = Job(spec, None, meta.get("request_id") or request.msg_id, token_digest=meta.get("token_sha256", ""))
        if was_running:
            warning = Message(MessageType.WARNING, {"message": "the backend restarted while this job ran; it was "
                                                    "run again from the start"}, job_id=job_id,
                              parent_id=job.request_id)
            self.store.append(job_id, 0, warning)
            job.stored = 1
            self._outbox.put((job, warning, True, None))
        self.store.update_meta(job_id, state="queued", stored=job.stored, restarted=True)
        self.jobs[job_id] = job
        self.runner.submit(job)
        log.info("job %s %s after a restart", job_id, "re-run" if was_running else "queued again")

    def _fail_stored(self, job_id: str, meta: dict, text: str) -> None:
        log.error("job %s: %s", job_id, text)
        try:
            self.store.clear_messages(job_id) if meta.get("state") == "queued" else None
            stored = len(list((self.store.root / job_id / "messages").glob("*.msg")))
            self.store.append(job_id, stored, Message(
                MessageType.ERROR, {"code": ErrorCode.JOB_FAILED, "message": text}, job_id=job_id,
                parent_id=meta.get("request_id")))
            self.store.update_meta(job_id, state="failed", stored=stored + 1, error=text)
            self.store.drop_request(job_id)
        except (OSError, ValueError, KeyError) as exc:
            log.error("job %s: cannot record its failure (%s)", job_id, exc)

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
