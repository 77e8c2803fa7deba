"""Clients of the backend: :class:`SyncClient` (blocking, for the CLI and scripts) and
:class:`PollingClient` (never blocks more than a few ms, for Blender's timers).

Both are ZeroMQ DEALER sockets; the backend is a ROUTER. Addresses are ZeroMQ
endpoints: ``tcp://127.0.0.1:5555`` or ``ipc:///tmp/emogene.sock``.
"""
from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Callable, Iterator

import zmq

from bridge import requests
from bridge.endpoints import check_client_endpoint
from bridge.errors import BridgeError
from bridge.messages import Message, error_from_exception
from bridge.protocol import DEFAULT_LIMITS, TERMINAL_TYPES, ErrorCode, Limits, MessageType
from bridge.wire import deserialize, receive, send, serialize

MIN_KEY_BYTES = 16
#: types a job streams after ``accepted`` (and that ``fetch`` replays)
JOB_STREAM_TYPES = frozenset({
    MessageType.PROGRESS, MessageType.LANDMARKS, MessageType.PLATE, MessageType.WARNING,
    MessageType.DONE, MessageType.CANCELLED, MessageType.ERROR,
})
_INBOX_LIMIT = 100_000
#: during a job, silence longer than this sends a ping
HEARTBEAT_S = 2.0
#: a backend that answers nothing (not even pings) for this long is reported gone
LIVENESS_S = 8.0


class KeyFileError(ValueError):
    """A key file that is missing, empty or too short."""


def load_key(path: str | Path) -> bytes:
    """The shared secret in ``path`` (surrounding whitespace removed), at least 16 bytes."""
    path = Path(path).expanduser()
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except IsADirectoryError:
        raise KeyFileError(f"key file {path} is a directory") from None
    except PermissionError:
        raise KeyFileError(f"key file {path} cannot be read (permission denied)") from None
    if not key:
        raise KeyFileError(f"key file {path} is empty")
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(
            f"key in {path} is {len(key)} bytes; use at least {MIN_KEY_BYTES} bytes, e.g. "
            f"python -c \"import secrets; print(secrets.token_hex(32))\" > {path}")
    return key


class CurveKeyError(ValueError):
    """A CURVE key file that is missing or not a ZeroMQ certificate."""


def load_curve_key(path: str | Path, secret: bool = False) -> bytes:
    """The Z85 public key (or, with ``secret``, the secret key) in a certificate from ``emogene keys``."""
    import zmq.auth

    path = Path(path).expanduser()
    if not path.is_file():
        raise CurveKeyError(f"CURVE key file {path} does not exist")
    try:
        public, secret_key = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise CurveKeyError(f"{path} is not a ZeroMQ certificate made by `emogene keys`: {exc}") from None
    if secret and not secret_key:
        raise CurveKeyError(f"{path} holds no secret key (use the .key_secret file on the backend)")
    key = secret_key if secret else public
    if not key or len(key) != 40:
        raise CurveKeyError(f"{path}: a CURVE key is 40 Z85 characters")
    return key


def load_curve_pair(path: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) from a client's secret certificate (``emogene keys --client NAME``: NAME.key_secret)."""
    return load_curve_key(path), load_curve_key(path, secret=True)


def _connect_dealer(address: str, limits: Limits, context: zmq.Context | None,
                    server_key: bytes | None = None, client_pair: tuple[bytes, bytes] | None = None) -> zmq.Socket:
    check_client_endpoint(address)
    socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.MAXMSGSIZE, limits.socket_max_frame_bytes)
    socket.setsockopt(zmq.RECONNECT_IVL, 100)
    socket.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
    # No libzmq heartbeats (ZMQ_HEARTBEAT_*) here: a client that stops reading with a full receive
    # pipe cannot see them, the connection is dropped, and libzmq 4.3.x then aborts the whole process
    # (`_input_stopped`, stream_engine_base.cpp) on reconnect. Liveness is checked with bridge pings.
    if server_key is not None:   # CURVE: encrypted, and only the holder of the server's secret can answer
        # the client's own pair: a backend with an allow-list (serve --curve-clients) admits only known ones
        public, secret = client_pair or zmq.curve_keypair()
        socket.curve_serverkey = server_key
        socket.curve_publickey = public
        socket.curve_secretkey = secret
    try:
        socket.connect(address)
    except zmq.ZMQError as exc:
        socket.close(linger=0)
        raise ValueError(f"cannot connect to {address}: {exc}") from None
    return socket


def _frames_within_limits(msg: Message, key: bytes | None, limits: Limits) -> list:
    """``msg`` serialized; too big for the backend -> ``too_large`` here (libzmq would drop it silently)."""
    frames = serialize(msg, key)
    total = sum(map(len, frames))   # bytes and 1-D byte views: len is the size
    if total > limits.max_message_bytes:
        raise BridgeError(ErrorCode.TOO_LARGE, f"{msg.type} of {total} bytes is over the bridge's limit of "
                          f"{limits.max_message_bytes} bytes (audio longer than {limits.max_audio_seconds:g} s?)")
    return frames


class InstanceTracker:
    """The backend instance a client talks to (from welcome/accepted/pong); another one answering means the
    backend restarted."""

    def __init__(self) -> None:
        self.instance: str | None = None

    def note(self, instance) -> str | None:
        """Remember ``instance``; returns ``'instance OLD -> NEW'`` when it differs from the known one."""
        if not isinstance(instance, str) or instance == self.instance:
            return None
        old, self.instance = self.instance, instance
        return None if old is None else f"instance {old[:8]} -> {instance[:8]}"


class _Closing:
    """The socket's end, shared by both clients (usable as a context manager)."""
    _socket: zmq.Socket

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SyncClient(_Closing):
    """A blocking client: one request at a time, job streams as iterators.

    ``timeout_s`` bounds each wait for an answer. During a job, silence longer
    than ``HEARTBEAT_S`` sends a ``ping``; a backend that answers nothing for
    ``liveness_s`` is reported gone (``timeout``), and a pong from a different
    server instance (the backend restarted) raises ``backend_restarted``.
    The tokens of jobs this client submitted are kept in :attr:`tokens`.
    """

    def __init__(self, address: str, key: bytes | None = None, timeout_s: float = 10.0,
                 limits: Limits = DEFAULT_LIMITS, context: zmq.Context | None = None,
                 server_key: bytes | None = None, liveness_s: float = LIVENESS_S,
                 client_pair: tuple[bytes, bytes] | None = None):
        self.address = address
        self.key = key
        self.timeout_s = timeout_s
        self.liveness_s = min(liveness_s, timeout_s) if timeout_s > 0 else liveness_s
        self.limits = limits
        self._socket = _connect_dealer(address, limits, context, server_key, client_pair)
        if timeout_s > 0:   # a send that cannot be queued fails instead of waiting forever
            self._socket.setsockopt(zmq.SNDTIMEO, max(1, int(timeout_s * 1000)))
        self._inbox: collections.deque[Message] = collections.deque(maxlen=_INBOX_LIMIT)
        #: job id -> the secret token ``accepted`` returned (needed by fetch, ack, cancel)
        self.tokens: dict[str, str] = {}
        #: the backend instance this client talks to (from welcome/accepted/pong)
        self._instances = InstanceTracker()
        self._last_heard = time.monotonic()

    # -- plumbing -----------------------------------------------------------------
    def send(self, msg: Message) -> str:
        """Send ``msg``; ``timeout`` when it cannot leave within ``timeout_s`` (normally it never waits: libzmq
        queues it, but a peer that refused the CURVE handshake leaves the socket no connection to queue on)."""
        try:
            send(self._socket, _frames_within_limits(msg, self.key, self.limits))
        except zmq.Again:
            raise BridgeError(ErrorCode.TIMEOUT,
                              f"{msg.type} could not be sent to {self.address} within {self.timeout_s:g} s: the "
                              "connection was refused (wrong --server-key, or this client is not on the backend's "
                              "--curve-clients list?)") from None
        return msg.msg_id

    def _receive(self, timeout_s: float) -> Message | None:
        if not self._socket.poll(max(0, int(timeout_s * 1000))):
            return None
        frames = receive(self._socket)
        self._last_heard = time.monotonic()
        return deserialize(frames, self.key, self.limits)

    def _wait(self, wanted: Callable[[Message], bool], timeout_s: float) -> Message | None:
        """The first message (inbox first) that ``wanted`` accepts; others are kept for later."""
        for i, msg in enumerate(self._inbox):
            if wanted(msg):
                del self._inbox[i]
                return msg
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self._receive(max(0.0, deadline - time.monotonic()))
            if msg is None:
                return None
            if wanted(msg):
                return msg
            self._inbox.append(msg)

    @property
    def instance(self) -> str | None:
        """The backend instance this client talks to (None before the first welcome/accepted/pong)."""
        return self._instances.instance

    def _note_instance(self, msg: Message) -> None:
        """Remember the backend's instance id; a different one means it restarted."""
        change = self._instances.note(msg.content.get("instance"))
        if change:
            raise BridgeError(ErrorCode.BACKEND_RESTARTED, f"the backend at {self.address} restarted ({change})")

    # -- requests -----------------------------------------------------------------
    def request(self, msg: Message, timeout_s: float | None = None) -> Message:
        """Send ``msg`` and return the first reply; an ``error`` reply raises :class:`BridgeError`."""
        self.send(msg)
        timeout_s = self.timeout_s if timeout_s is None else timeout_s

        def answers(reply: Message) -> bool:
            return reply.parent_id == msg.msg_id or (reply.is_error and reply.parent_id is None)

        reply = self._wait(answers, timeout_s)
        if reply is None:
            raise BridgeError(ErrorCode.TIMEOUT,
                              f"no answer from {self.address} to {msg.type!r} within {timeout_s:g} s "
                              "(is `emogene serve` running there, with the same key?)")
        return reply.raise_if_error()

    def hello(self) -> Message:
        welcome = self.request(requests.build_hello())
        self._note_instance(welcome)
        return welcome

    def ping(self) -> float:
        """Round-trip time of a ``ping`` in seconds."""
        start = time.perf_counter()
        pong = self.request(requests.build_ping())
        self._note_instance(pong)
        return time.perf_counter() - start

    def subjects(self) -> list[str]:
        return list(self.request(requests.build_subjects()).content.get("subjects", []))

    def submit(self, msg: Message) -> str:
        """Send a ``generate`` request; returns the job id once the backend accepted it
        (its token is then in :attr:`tokens`)."""
        reply = self.request(msg)
        if reply.type != MessageType.ACCEPTED or not reply.job_id:
            raise BridgeError(ErrorCode.INTERNAL, f"expected 'accepted', got {reply.type!r}")
        token = reply.content.get("token")
        if isinstance(token, str):
            self.tokens[reply.job_id] = token
        self._note_instance(reply)
        return reply.job_id

    def _token(self, job_id: str, token: str | None) -> str | None:
        return token if token is not None else self.tokens.get(job_id)

    def iter_job(self, job_id: str) -> Iterator[Message]:
        """The job's messages until ``done`` or ``cancelled``; an ``error`` raises :class:`BridgeError`.

        Raises ``timeout`` when the backend answers nothing (not even pings) for ``liveness_s``
        while this client waits, and ``backend_restarted`` when a different backend instance answers.
        Time the caller spends between two messages does not count as the backend's silence.
        """
        pings: set[str] = set()
        ping_every = min(HEARTBEAT_S, self.liveness_s / 3)
        last_ping = time.monotonic()
        self._last_heard = time.monotonic()
        waiting_since = self._last_heard   # when the caller last asked for the next message

        def wanted(m: Message) -> bool:
            return (m.job_id == job_id and m.type in JOB_STREAM_TYPES) or (
                m.type == MessageType.PONG and m.parent_id in pings)

        while True:
            now = time.monotonic()
            heard = max(self._last_heard, waiting_since)
            wait = max(0.01, min(ping_every - (now - last_ping), self.liveness_s - (now - heard)))
            msg = self._wait(wanted, wait)
            now = time.monotonic()
            if msg is None:
                if now - max(self._last_heard, waiting_since) >= self.liveness_s:
                    raise BridgeError(ErrorCode.TIMEOUT,
                                      f"backend {self.address} stopped answering during job {job_id} (nothing, "
                                      f"not even pings, for {self.liveness_s:g} s); its results stay on the "
                                      "backend if it comes back: fetch them with the job's token", job_id=job_id)
                if now - last_ping >= ping_every:
                    pings.add(self.send(requests.build_ping()))
                    last_ping = now
                continue
            if msg.type == MessageType.PONG:
                pings.discard(msg.parent_id)
                try:
                    self._note_instance(msg)
                except BridgeError as exc:
                    raise BridgeError(exc.code, f"{exc.message}; job {job_id} was on the old instance: "
                                      "fetch it with its token (queued jobs are run again, a running one "
                                      "is re-run or reported)", job_id=job_id) from None
                continue
            if msg.type == MessageType.ERROR:
                msg.raise_if_error()
            yield msg
            if msg.type in TERMINAL_TYPES:
                return
            waiting_since = time.monotonic()

    def cancel(self, job_id: str, token: str | None = None) -> Message:
        """Ask the backend to cancel; the job's own stream then ends with ``cancelled``."""
        return self.request(requests.build_cancel(job_id, self._token(job_id, token)))

    def fetch(self, job_id: str, token: str | None = None) -> Iterator[Message]:
        """Replay a job's stored results (and follow it live if it still runs). The request leaves
        at once; iterate the result for the job's messages."""
        token = self._token(job_id, token)
        if token is not None:
            self.tokens[job_id] = token
        self.send(requests.build_fetch(job_id, token))
        return self.iter_job(job_id)

    def ack(self, job_id: str, token: str | None = None) -> Message:
        """Tell the backend the results arrived; it deletes them."""
        return self.request(requests.build_ack(job_id, self._token(job_id, token)))



class PollingClient(_Closing):
    """A client for an event loop that must never wait (Blender's ``bpy.app.timers``).

    ``send`` queues a message; ``poll`` returns what has arrived, spending at most
    about ``MAX_POLL_S``. Frames that fail validation come back as local ``error``
    messages (``content['local'] = True``), never as exceptions.
    """
    MAX_POLL_S = 0.005

    def __init__(self, address: str, key: bytes | None = None, limits: Limits = DEFAULT_LIMITS,
                 context: zmq.Context | None = None, server_key: bytes | None = None,
                 client_pair: tuple[bytes, bytes] | None = None):
        self.address = address
        self.key = key
        self.limits = limits
        self._socket = _connect_dealer(address, limits, context, server_key, client_pair)
        #: ``time.monotonic()`` of the last message received (None before the first)
        self.last_heard: float | None = None

    def send(self, msg: Message) -> str:
        """Queue ``msg`` for sending (never blocks); returns its ``msg_id``."""
        try:
            send(self._socket, _frames_within_limits(msg, self.key, self.limits), zmq.NOBLOCK)
        except zmq.Again:
            raise BridgeError(ErrorCode.BUSY, "send queue to the backend is full (is it running?)") from None
        return msg.msg_id

    def poll(self, max_wait_ms: float = 0, max_messages: int = 100) -> list[Message]:
        """Messages received so far (up to ``max_messages``); waits at most ``min(max_wait_ms, 5)`` ms."""
        start = time.monotonic()
        budget = min(max(max_wait_ms, 0.0) / 1000.0, self.MAX_POLL_S)
        received: list[Message] = []
        while len(received) < max_messages:
            elapsed = time.monotonic() - start
            wait_ms = 0 if received else int(max(0.0, budget - elapsed) * 1000)
            if received and elapsed >= self.MAX_POLL_S:
                break
            try:
                if not self._socket.poll(wait_ms):
                    break
                frames = receive(self._socket, zmq.NOBLOCK)
            except zmq.Again:
                break
            self.last_heard = time.monotonic()
            try:
                received.append(deserialize(frames, self.key, self.limits))
            except BridgeError as exc:
                local = error_from_exception(exc)
                local.content["local"] = True
                received.append(local)
        return received
