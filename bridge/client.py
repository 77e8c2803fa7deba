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
from bridge.errors import BridgeError
from bridge.messages import Message, error_from_exception
from bridge.protocol import DEFAULT_LIMITS, TERMINAL_TYPES, ErrorCode, Limits, MessageType
from bridge.wire import deserialize, serialize

MIN_KEY_BYTES = 16
#: types a job streams after ``accepted`` (and that ``fetch`` replays)
JOB_STREAM_TYPES = frozenset({
    MessageType.PROGRESS, MessageType.LANDMARKS, MessageType.PLATE, MessageType.WARNING,
    MessageType.DONE, MessageType.CANCELLED, MessageType.ERROR,
})
_INBOX_LIMIT = 100_000


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


def _connect_dealer(address: str, limits: Limits, context: zmq.Context | None) -> zmq.Socket:
    if not isinstance(address, str) or not address.startswith(("tcp://", "ipc://", "inproc://")):
        raise ValueError(f"backend address {address!r} must start with tcp://, ipc:// or inproc://")
    socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.MAXMSGSIZE, limits.socket_max_frame_bytes)
    socket.setsockopt(zmq.RECONNECT_IVL, 100)
    socket.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
    # libzmq-level heartbeats notice a dead peer and reconnect
    socket.setsockopt(zmq.HEARTBEAT_IVL, 2000)
    socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10000)
    try:
        socket.connect(address)
    except zmq.ZMQError as exc:
        socket.close(linger=0)
        raise ValueError(f"cannot connect to {address}: {exc}") from None
    return socket


class SyncClient:
    """A blocking client: one request at a time, job streams as iterators.

    ``timeout_s`` bounds each wait for an answer; during a job, silence longer
    than that triggers a ``ping``, and the job only times out if the backend
    stops answering pings too.
    """

    def __init__(self, address: str, key: bytes | None = None, timeout_s: float = 10.0,
                 limits: Limits = DEFAULT_LIMITS, context: zmq.Context | None = None):
        self.address = address
        self.key = key
        self.timeout_s = timeout_s
        self.limits = limits
        self._socket = _connect_dealer(address, limits, context)
        self._inbox: collections.deque[Message] = collections.deque(maxlen=_INBOX_LIMIT)

    # -- plumbing -----------------------------------------------------------------
    def send(self, msg: Message) -> str:
        self._socket.send_multipart(serialize(msg, self.key), copy=False)
        return msg.msg_id

    def _receive(self, timeout_s: float) -> Message | None:
        if not self._socket.poll(max(0, int(timeout_s * 1000))):
            return None
        frames = self._socket.recv_multipart(copy=False)
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
        return self.request(requests.build_hello())

    def ping(self) -> float:
        """Round-trip time of a ``ping`` in seconds."""
        start = time.perf_counter()
        self.request(requests.build_ping())
        return time.perf_counter() - start

    def subjects(self) -> list[str]:
        return list(self.request(requests.build_subjects()).content.get("subjects", []))

    def submit(self, msg: Message) -> str:
        """Send a ``generate`` request; returns the job id once the backend accepted it."""
        reply = self.request(msg)
        if reply.type != MessageType.ACCEPTED or not reply.job_id:
            raise BridgeError(ErrorCode.INTERNAL, f"expected 'accepted', got {reply.type!r}")
        return reply.job_id

    def iter_job(self, job_id: str) -> Iterator[Message]:
        """The job's messages until ``done`` or ``cancelled``; an ``error`` raises :class:`BridgeError`."""
        while True:
            msg = self._wait(lambda m: m.job_id == job_id and m.type in JOB_STREAM_TYPES, self.timeout_s)
            if msg is None:
                self._heartbeat(job_id)
                continue
            if msg.type == MessageType.ERROR:
                msg.raise_if_error()
            yield msg
            if msg.type in TERMINAL_TYPES:
                return

    def _heartbeat(self, job_id: str) -> None:
        try:
            self.request(requests.build_ping())
        except BridgeError as exc:
            if exc.code == ErrorCode.TIMEOUT:
                raise BridgeError(ErrorCode.TIMEOUT,
                                  f"backend {self.address} stopped answering during job {job_id}; "
                                  "its results stay on the backend: reconnect and fetch them", job_id=job_id) from None
            raise

    def cancel(self, job_id: str) -> Message:
        """Ask the backend to cancel; the job's own stream then ends with ``cancelled``."""
        return self.request(requests.build_cancel(job_id))

    def fetch(self, job_id: str) -> Iterator[Message]:
        """Replay a job's stored results (and follow it live if it still runs)."""
        self.send(requests.build_fetch(job_id))
        yield from self.iter_job(job_id)

    def ack(self, job_id: str) -> Message:
        """Tell the backend the results arrived; it deletes them."""
        return self.request(requests.build_ack(job_id))

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PollingClient:
    """A client for an event loop that must never wait (Blender's ``bpy.app.timers``).

    ``send`` queues a message; ``poll`` returns what has arrived, spending at most
    about ``MAX_POLL_S``. Frames that fail validation come back as local ``error``
    messages (``content['local'] = True``), never as exceptions.
    """
    MAX_POLL_S = 0.005

    def __init__(self, address: str, key: bytes | None = None, limits: Limits = DEFAULT_LIMITS,
                 context: zmq.Context | None = None):
        self.address = address
        self.key = key
        self.limits = limits
        self._socket = _connect_dealer(address, limits, context)
        #: ``time.monotonic()`` of the last message received (None before the first)
        self.last_heard: float | None = None

    def send(self, msg: Message) -> str:
        """Queue ``msg`` for sending (never blocks); returns its ``msg_id``."""
        try:
            self._socket.send_multipart(serialize(msg, self.key), flags=zmq.NOBLOCK, copy=False)
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
                frames = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
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

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> "PollingClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
