"""The in-memory form of a bridge message: type, content (JSON object) and binary buffers.

A buffer is either a numpy array (sent raw with its dtype and shape) or an
:class:`EncodedBuffer` (bytes with a media type, e.g. ``image/png``, ``audio/wav``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from bridge.errors import BridgeError
from bridge.protocol import PROTOCOL_VERSION, ErrorCode, MessageType


@dataclass
class EncodedBuffer:
    """Opaque bytes with their media type (``image/png``, ``audio/wav`` ...)."""
    data: bytes | memoryview
    media_type: str


Buffer = Union[np.ndarray, EncodedBuffer]


_ID_BATCH = 256
_ids = iter(())


def new_id() -> str:
    """A random 128-bit id as 32 hex digits (like ``uuid4().hex``), from ``os.urandom`` in batches of 256: one
    system call per batch (a forked child starts a batch of its own, so it never repeats its parent's ids)."""
    global _ids
    try:
        return next(_ids)   # a list iterator's next is atomic: threads never get the same id
    except StopIteration:
        digits = os.urandom(16 * _ID_BATCH).hex()
        batch = [digits[i:i + 32] for i in range(0, len(digits), 32)]
        _ids = iter(batch[1:])
        return batch[0]


def _forget_ids() -> None:
    global _ids
    _ids = iter(())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_ids)


@dataclass(slots=True)
class Message:
    type: str
    content: dict[str, Any] = field(default_factory=dict)
    buffers: list[Buffer] = field(default_factory=list)
    job_id: str | None = None
    parent_id: str | None = None
    msg_id: str = field(default_factory=new_id)
    version: int = PROTOCOL_VERSION
    time: float = field(default_factory=time.time)

    def _buffer(self, index: int) -> Buffer:
        if not 0 <= index < len(self.buffers):
            raise BridgeError(ErrorCode.BAD_BUFFER,
                              f"{self.type} message has {len(self.buffers)} buffer(s), asked for buffer {index}",
                              parent_id=self.msg_id)
        return self.buffers[index]

    def array(self, index: int) -> np.ndarray:
        """Buffer ``index`` as an array (read-only when it came off the wire)."""
        buf = self._buffer(index)
        if isinstance(buf, EncodedBuffer):
            raise BridgeError(ErrorCode.BAD_BUFFER,
                              f"buffer {index} of {self.type} is encoded {buf.media_type}, not an array",
                              parent_id=self.msg_id)
        return buf

    def bytes(self, index: int) -> bytes:
        """Buffer ``index`` as bytes (an encoded buffer's data, or an array's raw bytes)."""
        buf = self._buffer(index)
        if isinstance(buf, EncodedBuffer):
            return bytes(buf.data)
        return buf.tobytes()

    def media_type(self, index: int) -> str | None:
        """The media type of encoded buffer ``index``; None for an array."""
        buf = self._buffer(index)
        return buf.media_type if isinstance(buf, EncodedBuffer) else None

    def reply(self, type: str, content: dict[str, Any] | None = None,
              buffers: list[Buffer] | None = None, job_id: str | None = None) -> "Message":
        """A message answering this one (``parent_id`` set, ``job_id`` carried over)."""
        return assemble(type, content or {}, buffers or [], job_id or self.job_id, self.msg_id, new_id(),
                        PROTOCOL_VERSION, time.time())

    @property
    def is_error(self) -> bool:
        return self.type == MessageType.ERROR

    def raise_if_error(self) -> "Message":
        """Raise the :class:`BridgeError` an ``error`` message carries; else return self."""
        if self.type == MessageType.ERROR:
            raise BridgeError(str(self.content.get("code", ErrorCode.INTERNAL)),
                              str(self.content.get("message", "")),
                              parent_id=self.parent_id, job_id=self.job_id)
        return self

    def __repr__(self) -> str:
        bufs = ", ".join(
            b.media_type if isinstance(b, EncodedBuffer) else f"{b.dtype}{list(b.shape)}" for b in self.buffers)
        return (f"Message({str(self.type)!r}, job={self.job_id}, content={self.content!r}"
                + (f", buffers=[{bufs}]" if bufs else "") + ")")


def error_message(code: str, text: str, *, parent_id: str | None = None,
                  job_id: str | None = None) -> Message:
    """An ``error`` message with a stable code."""
    return Message(MessageType.ERROR, {"code": code, "message": text}, job_id=job_id, parent_id=parent_id)


def error_from_exception(exc: BridgeError) -> Message:
    return error_message(exc.code, exc.message, parent_id=exc.parent_id, job_id=exc.job_id)


def assemble(type: str, content: dict[str, Any], buffers: list[Buffer], job_id: str | None, parent_id: str | None,
             msg_id: str, version: int, time: float) -> Message:
    """A :class:`Message` with every field given, in field order, set one by one: calling the class with keywords
    costs twice as much in Python 3.11, and replies and received messages are on the bridge's hot path. Tests check
    it equals ``Message(...)`` field for field."""
    msg = object.__new__(Message)
    msg.type = type
    msg.content = content
    msg.buffers = buffers
    msg.job_id = job_id
    msg.parent_id = parent_id
    msg.msg_id = msg_id
    msg.version = version
    msg.time = time
    return msg
