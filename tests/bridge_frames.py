"""Bridge v3 frames made by hand from the head layout documented in bridge/wire.py (not with its encoder), so tests
can build what ``serialize`` refuses to make: unknown type codes, bad ids, times, content and descriptors.

A message is described like a v2 JSON header: ``type`` (a name, or an int code), ``time``, ``msg_id``,
``parent_id``, ``job_id``, ``content``, ``buffers`` (the descriptors).
"""
from __future__ import annotations

import json
import struct
from typing import Any

from bridge.protocol import FRAME_TAG, WIRE_TYPES
from bridge.wire import sign

PREFIX = struct.Struct("<BdHHHI")   # type code, time, n_msg, n_parent, n_job, n_content
UNKNOWN_CODE = 255


def _code(value: Any) -> int:
    if type(value) is int:
        return value & 0xFF
    return WIRE_TYPES.index(value) if isinstance(value, str) and value in WIRE_TYPES else UNKNOWN_CODE


def _time(value: Any) -> float:
    if type(value) in (int, float):
        try:
            return float(value)
        except OverflowError:
            return float("inf")
    return float("nan")


def _id(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value[:65535]
    text = value if isinstance(value, str) else json.dumps(value)   # not a str: its JSON text
    return text.encode("utf-8", "surrogatepass")[:65535]


def _json(value: Any, empty: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return b"" if value == empty and type(value) is type(empty) else json.dumps(value, separators=(",", ":")).encode()


def head(fields: dict) -> bytes:
    msg_id, parent_id, job_id = _id(fields.get("msg_id")), _id(fields.get("parent_id")), _id(fields.get("job_id"))
    content = _json(fields.get("content", {}), {})
    return b"".join((PREFIX.pack(_code(fields.get("type")), _time(fields.get("time", 0.0)), len(msg_id),
                                 len(parent_id), len(job_id), len(content)),
                     msg_id, parent_id, job_id, content, _json(fields.get("buffers", []), [])))


def frames(fields: dict, buffers=(), key: bytes | None = None) -> list[bytes]:
    """``[FRAME_TAG, head, signature, *buffers]``, signed with ``key`` (unsigned without)."""
    raw = head(fields)
    return [FRAME_TAG, raw, sign(key, [raw, *buffers]) if key else b"", *buffers]


def fields(raw: bytes) -> dict:
    """A head read back by the documented layout (ids as text, JSON parts parsed)."""
    raw = bytes(raw)
    code, stamp, n_msg, n_parent, n_job, n_content = PREFIX.unpack_from(raw)
    at = PREFIX.size
    parts = []
    for n in (n_msg, n_parent, n_job, n_content):
        parts.append(raw[at:at + n])
        at += n
    ids = [p.decode("utf-8", "surrogatepass") or None for p in parts[:3]]
    return {"type": WIRE_TYPES[code] if code < len(WIRE_TYPES) else code, "time": stamp, "msg_id": ids[0],
            "parent_id": ids[1], "job_id": ids[2], "content": json.loads(parts[3]) if parts[3] else {},
            "buffers": json.loads(raw[at:]) if raw[at:] else []}
