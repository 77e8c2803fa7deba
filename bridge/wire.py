"""The only module that knows how a :class:`Message` is laid out in ZeroMQ frames.

Frames: ``[FRAME_TAG, header JSON (utf-8), signature, buffer 0, buffer 1, ...]``.
The signature is the hex HMAC-SHA256, keyed with the shared key, over the header
and every buffer, each preceded by its length as 8 bytes big-endian (so bytes
cannot be shifted between frames without breaking it); it is empty without a key.
Receiving checks, in order: frame count, tag, sizes, JSON, version, signature,
header fields, buffer descriptors vs. bytes, and raises :class:`BridgeError` with
a stable code. Arrays travel raw and little-endian with a ``{dtype, shape}``
descriptor; received arrays are read-only views of the frames (no copy). :func:`receive`
takes a message off a socket: the small fixed frames as bytes, the buffers as zero-copy frames.
"""
from __future__ import annotations

import hmac
import json
import math
import re
import struct
from hashlib import sha256
from typing import Any, Sequence

import numpy as np
import zmq

from bridge.errors import BridgeError
from bridge.messages import EncodedBuffer, Message
from bridge.protocol import (
    ARRAY_DTYPES, DEFAULT_LIMITS, FRAME_TAG, FRAME_TAG_PREFIX, MAX_ARRAY_DIMS, MESSAGE_TYPES,
    PROTOCOL_VERSION, ErrorCode, Limits,
)

_MEDIA_TYPE = re.compile(r"^[a-z]+/[A-Za-z0-9.+\-]{1,100}$")
_MAX_ID_LENGTH = 128
_FIXED_FRAMES = 3  # tag, header, signature
_MAX_TIME = 1e11   # seconds since 1970 (year ~5138): bounds 'time' before it becomes a float
_NUMBER_TYPES = (float, int)
_LENGTH = struct.Struct(">Q").pack   # each signed part's length: 8 bytes big-endian


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _json_encoder():
    """Compact JSON (no NaN) -> str. The C encoder is built once: ``JSONEncoder.encode`` rebuilds it per call."""
    standard = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    try:
        from json.encoder import c_make_encoder, encode_basestring_ascii
        # markers=None: no circular-reference bookkeeping (a cycle ends in RecursionError, caught as bad content)
        encode_chunks = c_make_encoder(None, _not_json, encode_basestring_ascii, None, ":", ",", False, False, False)

        def fast(value: Any) -> str:
            return "".join(encode_chunks(value, 0))

        sample = {"type": "ping", "time": 1.5, "content": {"a": [1, None, True, "\u00e9"]}, "buffers": []}
        return fast if fast(sample) == standard(sample) else standard
    except Exception:   # no C accelerator, or another signature in this Python: the standard encoder
        return standard


_encode_json = _json_encoder()
encode_basestring_ascii = json.encoder.encode_basestring_ascii   # C; what the encoder writes for a str
_DECODER = json.JSONDecoder()
_scan_json = _DECODER.scan_once


def _view(frame: Any) -> memoryview:
    """A byte view of a frame given as bytes, memoryview, ``zmq.Frame`` or array (no copy)."""
    view = memoryview(frame)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


_KEYED: dict[bytes, Any] = {}


def _new_keyed(key: bytes):
    try:   # OpenSSL's HMAC object itself: its copy() skips the Python wrapper's
        import _hashlib
        return _hashlib.hmac_new(key, digestmod="sha256")
    except (ImportError, AttributeError, ValueError, TypeError):
        return hmac.new(key, digestmod=sha256)


def _keyed(key: bytes):
    """The HMAC-SHA256 keyed once for ``key`` (keying costs half a small message); each message uses a copy."""
    if len(_KEYED) >= 8:
        _KEYED.clear()
    base = _KEYED[key] = _new_keyed(key)
    return base


def _digest(key: bytes, header: Any, buffers: Sequence[Any] = ()) -> bytes:
    """Hex HMAC-SHA256 over the header and each buffer (bytes or 1-D byte views), each preceded by its length."""
    mac = (_KEYED.get(key) or _keyed(key)).copy()
    mac.update(_LENGTH(len(header)) + header)   # one copy of a small header beats a second call
    if buffers:
        update = mac.update
        for part in buffers:
            update(_LENGTH(len(part)))
            update(part)
    return mac.hexdigest().encode("ascii")


def sign(key: bytes, frames: Sequence[Any]) -> bytes:
    """Hex HMAC-SHA256 over ``frames`` (header, buffers), each length-prefixed."""
    views = [_view(frame) for frame in frames]
    return _digest(key, views[0], views[1:])


def _array_frame(index: int, array: np.ndarray) -> tuple[dict, memoryview]:
    dtype_name = array.dtype.name
    if dtype_name not in ARRAY_DTYPES:
        raise BridgeError(ErrorCode.BAD_BUFFER,
                          f"buffer {index}: dtype {array.dtype} cannot be sent; use one of {sorted(ARRAY_DTYPES)}")
    if array.ndim > MAX_ARRAY_DIMS:
        raise BridgeError(ErrorCode.BAD_BUFFER, f"buffer {index}: {array.ndim} dimensions, at most {MAX_ARRAY_DIMS}")
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    raw = little.reshape(-1).view(np.uint8)
    return {"dtype": dtype_name, "shape": list(array.shape)}, memoryview(raw)


def _buffer_frames(buffers: Sequence[Any]) -> tuple[list[dict], list[memoryview]]:
    """The descriptors and payload views of a message's buffers."""
    descriptors: list[dict] = []
    payloads: list[memoryview] = []
    for index, buf in enumerate(buffers):
        if isinstance(buf, EncodedBuffer):
            if not isinstance(buf.media_type, str) or not _MEDIA_TYPE.match(buf.media_type):
                raise BridgeError(ErrorCode.BAD_BUFFER, f"buffer {index}: invalid media type {buf.media_type!r}")
            descriptors.append({"media_type": buf.media_type})
            payloads.append(_view(buf.data))
        elif isinstance(buf, np.ndarray):
            descriptor, payload = _array_frame(index, buf)
            descriptors.append(descriptor)
            payloads.append(payload)
        else:
            raise BridgeError(ErrorCode.BAD_BUFFER,
                              f"buffer {index}: expected a numpy array or EncodedBuffer, got {type(buf).__name__}")
    return descriptors, payloads


#: the header's JSON for the usual field types; anything else goes through the JSON encoder (same bytes)
_HEADER = '{"version":%d,"type":%s,"msg_id":%s,"parent_id":%s,"job_id":%s,"time":%r,"content":%s,"buffers":%s}'
_QUOTED_TYPES = {str(t): _encode_json(str(t)) for t in MESSAGE_TYPES}


def _quoted_id(value: Any) -> str | None:
    return "null" if value is None else encode_basestring_ascii(value) if type(value) is str else None


def _header_json(msg: Message, descriptors: list[dict]) -> str:
    """The header as compact JSON, keys in contract order."""
    quoted_type, parent, job = _QUOTED_TYPES.get(msg.type), _quoted_id(msg.parent_id), _quoted_id(msg.job_id)
    stamp, content = msg.time, msg.content
    if (type(msg.version) is int and quoted_type and type(msg.msg_id) is str and parent and job
            and type(stamp) is float and -_MAX_TIME <= stamp <= _MAX_TIME):
        return _HEADER % (msg.version, quoted_type, encode_basestring_ascii(msg.msg_id), parent, job, stamp,
                          "{}" if type(content) is dict and not content else _encode_json(content),
                          _encode_json(descriptors) if descriptors else "[]")
    return _encode_json({
        "version": msg.version, "type": msg.type, "msg_id": msg.msg_id, "parent_id": msg.parent_id,
        "job_id": msg.job_id, "time": stamp, "content": content, "buffers": descriptors,
    })


def serialize(msg: Message, key: bytes | None = None) -> list[Any]:
    """The frames of ``msg`` (bytes and memoryviews: pass ``copy=False`` to ``send_multipart``)."""
    descriptors, payloads = _buffer_frames(msg.buffers) if msg.buffers else ([], [])
    try:
        header = _header_json(msg, descriptors).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise BridgeError(ErrorCode.BAD_REQUEST, f"{msg.type} content is not plain JSON: {exc}") from None
    return [FRAME_TAG, header, _digest(key, header, payloads) if key else b"", *payloads]


def receive(socket: zmq.Socket, flags: int = 0, routing_frames: int = 0) -> list[Any]:
    """One message's frames off ``socket``: the routing frames and the tag, header and signature as bytes,
    the buffers as zero-copy ``zmq.Frame`` (for small frames a Frame costs more than the copy)."""
    small = routing_frames + _FIXED_FRAMES
    frames = [socket.recv(flags)]
    more = socket.getsockopt
    while more(zmq.RCVMORE):
        frames.append(socket.recv(flags, copy=len(frames) < small))
    return frames


def deserialize(frames: Sequence[Any], key: bytes | None = None,
                limits: Limits = DEFAULT_LIMITS) -> Message:
    """Check and decode received frames; raises :class:`BridgeError` naming what is wrong.

    With ``key`` set, a missing or wrong signature is rejected; without a key,
    signatures are not checked.
    """
    if len(frames) < _FIXED_FRAMES:
        raise BridgeError(ErrorCode.MALFORMED,
                          f"truncated message: {len(frames)} frame(s), a bridge message has at least {_FIXED_FRAMES}")
    views = list(map(_view, frames))
    if views[0] != FRAME_TAG:
        raise _bad_tag(views[0])
    buffer_views = views[_FIXED_FRAMES:]
    if len(buffer_views) > limits.max_buffers:
        raise BridgeError(ErrorCode.TOO_LARGE, f"{len(buffer_views)} buffers, at most {limits.max_buffers}")
    total = sum(map(len, views))
    if total > limits.max_message_bytes:
        raise BridgeError(ErrorCode.TOO_LARGE,
                          f"message of {total} bytes is over the limit of {limits.max_message_bytes} bytes")
    header_view = views[1]
    if len(header_view) > limits.max_header_bytes:
        raise BridgeError(ErrorCode.TOO_LARGE,
                          f"header of {len(header_view)} bytes is over the limit of {limits.max_header_bytes}")
    header = _parse_header(header_view)
    msg_id = header.get("msg_id")
    if not _is_id(msg_id):
        msg_id = None
    if header.get("version") != PROTOCOL_VERSION:
        raise BridgeError(ErrorCode.VERSION_MISMATCH,
                          f"message has protocol version {header.get('version')!r}, this side speaks "
                          f"{PROTOCOL_VERSION}", parent_id=msg_id)
    if key:
        signature = views[2]
        if not len(signature):
            raise BridgeError(ErrorCode.BAD_SIGNATURE, "message is not signed and this side requires a key",
                              parent_id=msg_id)
        if not hmac.compare_digest(_digest(key, header_view, buffer_views), signature):
            raise BridgeError(ErrorCode.BAD_SIGNATURE, "signature does not match (wrong key or altered message)",
                              parent_id=msg_id)
    return _build_message(header, buffer_views, msg_id)


def _bad_tag(tag_view: memoryview) -> BridgeError:
    tag = tag_view.tobytes() if len(tag_view) <= 32 else b""
    if tag.startswith(FRAME_TAG_PREFIX) and tag[len(FRAME_TAG_PREFIX):].isdigit():
        return BridgeError(ErrorCode.VERSION_MISMATCH,
                           f"peer speaks bridge protocol v{tag[len(FRAME_TAG_PREFIX):].decode()}, "
                           f"this side speaks v{PROTOCOL_VERSION}")
    return BridgeError(ErrorCode.MALFORMED, "not a bridge message (first frame is not the EMOGENE tag)")


def _parse_header(view: memoryview) -> dict:
    try:
        text = str(view, "utf-8")
        try:   # the common case, one compact object: the scanner alone (decode() adds two regex passes)
            header, end = _scan_json(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):   # leading/trailing whitespace, extra data or not JSON: the full decoder decides
            header = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BridgeError(ErrorCode.MALFORMED, "header is not valid UTF-8 JSON") from None
    if type(header) is not dict:
        raise BridgeError(ErrorCode.MALFORMED, f"header must be a JSON object, got {type(header).__name__}")
    return header


def _is_id(value: Any) -> bool:
    """A message, parent or job id: a string of 1 to ``_MAX_ID_LENGTH`` characters."""
    return type(value) is str and 0 < len(value) <= _MAX_ID_LENGTH


def _id_error(name: str, msg_id: str | None) -> BridgeError:
    return BridgeError(ErrorCode.MALFORMED, f"header field {name!r} must be a string of 1-{_MAX_ID_LENGTH} "
                       f"characters or null", parent_id=msg_id)


def _build_message(header: dict, buffer_views: list[memoryview], msg_id: str | None) -> Message:
    get = header.get
    msg_type = get("type")
    if type(msg_type) is not str:
        raise BridgeError(ErrorCode.MALFORMED, "header field 'type' is missing or not a string", parent_id=msg_id)
    if msg_type not in MESSAGE_TYPES:
        raise BridgeError(ErrorCode.UNKNOWN_TYPE,
                          f"unknown message type {msg_type[:64]!r}; known: {', '.join(sorted(MESSAGE_TYPES))}",
                          parent_id=msg_id)
    if msg_id is None:
        raise BridgeError(ErrorCode.MALFORMED, "header field 'msg_id' is missing or not a short string")
    parent_id, job_id = get("parent_id"), get("job_id")
    if parent_id is not None and not _is_id(parent_id):
        raise _id_error("parent_id", msg_id)
    if job_id is not None and not _is_id(job_id):
        raise _id_error("job_id", msg_id)
    timestamp = get("time", 0.0)
    if type(timestamp) not in _NUMBER_TYPES or not -_MAX_TIME <= timestamp <= _MAX_TIME:   # NaN fails too
        raise BridgeError(ErrorCode.MALFORMED, "header field 'time' must be a number of seconds since 1970",
                          parent_id=msg_id)
    content = get("content", {})
    if type(content) is not dict:
        raise BridgeError(ErrorCode.MALFORMED, "header field 'content' must be a JSON object", parent_id=msg_id)
    descriptors = get("buffers", [])
    if type(descriptors) is not list:
        raise BridgeError(ErrorCode.BAD_BUFFER, "header field 'buffers' must be a list", parent_id=msg_id)
    if len(descriptors) != len(buffer_views):
        raise BridgeError(ErrorCode.BAD_BUFFER,
                          f"header describes {len(descriptors)} buffer(s) but {len(buffer_views)} were sent",
                          parent_id=msg_id)
    buffers = ([_decode_buffer(i, d, v, msg_id) for i, (d, v) in enumerate(zip(descriptors, buffer_views))]
               if descriptors else [])
    return Message(msg_type, content, buffers, job_id=job_id, parent_id=parent_id, msg_id=msg_id,
                   version=PROTOCOL_VERSION, time=float(timestamp))


def _decode_buffer(index: int, descriptor: Any, view: memoryview, msg_id: str | None):
    def bad(text: str) -> BridgeError:
        return BridgeError(ErrorCode.BAD_BUFFER, f"buffer {index}: {text}", parent_id=msg_id)

    if not isinstance(descriptor, dict):
        raise bad("descriptor must be a JSON object")
    if "media_type" in descriptor:
        media_type = descriptor["media_type"]
        if not isinstance(media_type, str) or not _MEDIA_TYPE.match(media_type):
            raise bad(f"invalid media type {str(media_type)[:64]!r}")
        return EncodedBuffer(view, media_type)
    dtype_name, shape = descriptor.get("dtype"), descriptor.get("shape")
    if not isinstance(dtype_name, str) or dtype_name not in ARRAY_DTYPES:
        raise bad(f"dtype {str(dtype_name)[:32]!r} is not one of {sorted(ARRAY_DTYPES)}")
    if (not isinstance(shape, list) or len(shape) > MAX_ARRAY_DIMS
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise bad(f"shape must be a list of at most {MAX_ARRAY_DIMS} non-negative integers")
    dtype = np.dtype(dtype_name).newbyteorder("<")
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(view):
        raise bad(f"{dtype_name}{shape} needs {expected} bytes, got {len(view)}")
    array = np.frombuffer(view, dtype=dtype).reshape(shape)
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    array.flags.writeable = False  # a view of the received frame: copy before changing it
    return array
