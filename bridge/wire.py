"""The only module that knows how a :class:`Message` is laid out in ZeroMQ frames (protocol v3).

Frames: ``[FRAME_TAG, head, signature, buffer 0, buffer 1, ...]``.

``head`` is a fixed binary part, little-endian (``struct`` format ``<BdHHHI``, 19 bytes), then variable parts::

    offset  size  field
    0       1     type code: the index of the message type in ``protocol.WIRE_TYPES``
    1       8     time: float64 seconds since 1970
    9       2     n_msg: bytes of msg_id (utf-8; 1-128 characters)
    11      2     n_parent: bytes of parent_id (0 = null)
    13      2     n_job: bytes of job_id (0 = null)
    15      4     n_content: bytes of the content JSON (0 = ``{}``)
    19      ...   msg_id, parent_id, job_id, content (compact JSON object), then the buffer
                  descriptors (compact JSON list, one ``{dtype, shape}`` or ``{media_type}`` per buffer;
                  the rest of the frame; empty = ``[]``)

The signature is the 32-byte keyed BLAKE2b (``digest_size=32``, personalised ``emogene-bridge3``; a key
over 64 bytes is first hashed to 64) over the head and, for every buffer, its SHA-256 digest; each part
is preceded by its length (the head's, each buffer's) as 8 bytes big-endian, so bytes cannot be shifted
between frames. It is empty without a key. Receiving checks,
in order: frame count, tag (a peer of another version gets ``version_mismatch``), sizes, the head's fixed
part and lengths, signature (before any JSON is parsed), type, ids, time, content, buffer descriptors vs.
bytes, and raises :class:`BridgeError` with a stable code. Arrays travel raw and little-endian with a
``{dtype, shape}`` descriptor; received arrays are read-only views of the frames (no copy). :func:`receive`
takes a message off a socket: the small fixed frames as bytes, the buffers as zero-copy frames; :func:`send`
puts one on (copied without buffers, zero-copy with).
"""
from __future__ import annotations

import hashlib
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
from bridge.messages import EncodedBuffer, Message, assemble
from bridge.protocol import (
    ARRAY_DTYPES, DEFAULT_LIMITS, FRAME_TAG, FRAME_TAG_PREFIX, MAX_ARRAY_DIMS, PROTOCOL_VERSION, WIRE_TYPES,
    ErrorCode, Limits,
)

_MEDIA_TYPE = re.compile(r"^[a-z]+/[A-Za-z0-9.+\-]{1,100}$")
_MAX_ID_LENGTH = 128
_FIXED_FRAMES = 3  # tag, head, signature
_MAX_TIME = 1e11   # seconds since 1970 (year ~5138)
_PREFIX = struct.Struct("<BdHHHI")   # type code, time, n_msg, n_parent, n_job, n_content
_PREFIX_SIZE = _PREFIX.size
_pack_prefix, _unpack_prefix = _PREFIX.pack, _PREFIX.unpack_from
_LENGTH = struct.Struct(">Q").pack   # each signed part's length: 8 bytes big-endian
_TYPE_CODES = {str(t): code for code, t in enumerate(WIRE_TYPES)}
_SIGNATURE_BYTES = 32
_MAC_PERSON = b"emogene-bridge3"
_MAX_MAC_KEY = hashlib.blake2b.MAX_KEY_SIZE   # 64
_TYPE_COUNT = len(WIRE_TYPES)
_TYPE_NAMES = tuple(str(t) for t in WIRE_TYPES)   # received types are plain str, as before v3
_compare_digest = hmac.compare_digest


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
_DECODER = json.JSONDecoder()
_scan_json = _DECODER.scan_once


def _view(frame: Any) -> memoryview:
    """A byte view of a frame given as bytes, memoryview, ``zmq.Frame`` or array (no copy)."""
    view = memoryview(frame)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


_KEYED: dict[bytes, Any] = {}


def _keyed(key: bytes):
    """The MAC state keyed once for ``key`` (keying costs as much as a small message); each message uses a copy."""
    if len(_KEYED) >= 8:
        _KEYED.clear()
    mac_key = key if len(key) <= _MAX_MAC_KEY else hashlib.blake2b(key, digest_size=_MAX_MAC_KEY,
                                                                   person=b"emogene-longkey").digest()
    base = _KEYED[key] = hashlib.blake2b(key=mac_key, digest_size=_SIGNATURE_BYTES, person=_MAC_PERSON)
    return base


def _digest(key: bytes, head: Any, buffers: Sequence[Any] = ()) -> bytes:
    """Keyed BLAKE2b-256 over the head and, per buffer (bytes or 1-D byte views), its SHA-256; each part
    preceded by its length. BLAKE2b keys and finishes cheaply (small messages); SHA-256 runs in hardware (plates)."""
    mac = (_KEYED.get(key) or _keyed(key)).copy()
    mac.update(_LENGTH(len(head)) + head)   # one copy of a small head beats a second call
    for part in buffers:
        mac.update(_LENGTH(len(part)) + sha256(part).digest())
    return mac.digest()


def sign(key: bytes, frames: Sequence[Any]) -> bytes:
    """The signature over ``frames`` (head, buffers), each length-prefixed."""
    views = [_view(frame) for frame in frames]
    return _digest(key, bytes(views[0]), views[1:])


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


def _bad_request(msg: Message, text: str) -> BridgeError:
    return BridgeError(ErrorCode.BAD_REQUEST, f"{str(msg.type)[:64]} message: {text}")


def _is_id(value: Any) -> bool:
    """A message, parent or job id: a string of 1 to ``_MAX_ID_LENGTH`` characters."""
    return type(value) is str and 0 < len(value) <= _MAX_ID_LENGTH


def _refusal(msg: Message) -> BridgeError:
    """Why ``msg``'s fixed fields cannot be sent (called once the fast check in :func:`_head` failed)."""
    if msg.type not in _TYPE_CODES:
        return BridgeError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {str(msg.type)[:64]!r}; cannot send it")
    if type(msg.time) not in (float, int) or not -_MAX_TIME <= msg.time <= _MAX_TIME:   # NaN fails too
        return _bad_request(msg, f"time {msg.time!r} is not a number of seconds since 1970")
    for name, value in (("msg_id", msg.msg_id), ("parent_id", msg.parent_id), ("job_id", msg.job_id)):
        if not _is_id(value) and (value is not None or name == "msg_id"):
            return _bad_request(msg, f"{name} must be a string of 1-{_MAX_ID_LENGTH} characters"
                                + ("" if name == "msg_id" else " or None"))
    return _bad_request(msg, f"content must be a dict (a JSON object), got {type(msg.content).__name__}")


def _head(msg: Message, descriptors: bytes) -> bytes:
    """The head frame: the fixed binary part, the ids, the content JSON and the buffer descriptors."""
    code = _TYPE_CODES.get(msg.type)
    stamp, msg_id, parent_id, job_id, content = msg.time, msg.msg_id, msg.parent_id, msg.job_id, msg.content
    if type(stamp) is int:
        stamp = float(stamp) if -_MAX_TIME <= stamp <= _MAX_TIME else math.nan
    if (code is None or type(stamp) is not float or not -_MAX_TIME <= stamp <= _MAX_TIME
            or not _is_id(msg_id) or not (parent_id is None or _is_id(parent_id))
            or not (job_id is None or _is_id(job_id)) or type(content) is not dict):
        raise _refusal(msg)
    msg_id = msg_id.encode("utf-8", "surrogatepass")
    parent_id = b"" if parent_id is None else parent_id.encode("utf-8", "surrogatepass")
    job_id = b"" if job_id is None else job_id.encode("utf-8", "surrogatepass")
    if content:
        try:
            content = _encode_json(content).encode()   # ASCII: the encoder escapes the rest
        except (TypeError, ValueError, RecursionError) as exc:
            raise _bad_request(msg, f"content is not plain JSON: {exc}") from None
    else:
        content = b""
    return b"".join((_pack_prefix(code, stamp, len(msg_id), len(parent_id), len(job_id), len(content)),
                     msg_id, parent_id, job_id, content, descriptors))


def _tag(version: Any) -> bytes:
    """The tag of another protocol version (tests and version checks send one; its peer answers the mismatch)."""
    if type(version) is not int or not 0 <= version < 10**6:
        raise BridgeError(ErrorCode.BAD_REQUEST, f"protocol version {version!r} is not a small non-negative int")
    return FRAME_TAG_PREFIX + str(version).encode()


def serialize(msg: Message, key: bytes | None = None) -> list[Any]:
    """The frames of ``msg``: bytes, and memoryviews of the buffers (:func:`send` sends them zero-copy).
    The tag is ``msg.version``'s (normally this side's, :data:`FRAME_TAG`)."""
    tag = FRAME_TAG if msg.version == PROTOCOL_VERSION and type(msg.version) is int else _tag(msg.version)
    if msg.buffers:
        descriptor_list, payloads = _buffer_frames(msg.buffers)
        head = _head(msg, _encode_json(descriptor_list).encode("ascii"))
        return [tag, head, _digest(key, head, payloads) if key else b"", *payloads]
    head = _head(msg, b"")
    return [tag, head, _digest(key, head) if key else b""]


def send(socket: zmq.Socket, frames: list[Any], flags: int = 0, route: bytes | None = None) -> None:
    """Send a message's ``frames`` (from :func:`serialize`), after the ``route`` frame on a ROUTER. A message
    without buffers is copied (pyzmq copies frames under 64 KiB anyway; ``copy=False`` adds a view per frame),
    one with buffers goes zero-copy."""
    socket.send_multipart(frames if route is None else [route, *frames], flags, copy=len(frames) <= _FIXED_FRAMES)


def receive(socket: zmq.Socket, flags: int = 0, routing_frames: int = 0) -> list[Any]:
    """One message's frames off ``socket``: the routing frames and the tag, head and signature as bytes,
    the buffers as zero-copy ``zmq.Frame`` (for small frames a Frame costs more than the copy)."""
    small = routing_frames + _FIXED_FRAMES
    frames = [socket.recv(flags)]
    more = socket.getsockopt
    while more(zmq.RCVMORE):
        frames.append(socket.recv(flags, copy=len(frames) < small))
    return frames


def _as_bytes(frame: Any) -> bytes:
    return frame if type(frame) is bytes else bytes(_view(frame))


def deserialize(frames: Sequence[Any], key: bytes | None = None,
                limits: Limits = DEFAULT_LIMITS) -> Message:
    """Check and decode received frames; raises :class:`BridgeError` naming what is wrong.

    With ``key`` set, a missing or wrong signature is rejected; without a key,
    signatures are not checked.
    """
    count = len(frames)
    if count < _FIXED_FRAMES:
        raise BridgeError(ErrorCode.MALFORMED,
                          f"truncated message: {count} frame(s), a bridge message has at least {_FIXED_FRAMES}")
    tag, head, signature = frames[0], frames[1], frames[2]
    if type(tag) is not bytes:
        tag = _view(tag)
    if tag != FRAME_TAG:
        raise _bad_tag(tag)
    if type(head) is not bytes:   # a zmq.Frame or view: bytes, unless it is too large (refused below)
        head = _view(head)
        if len(head) <= limits.max_header_bytes:
            head = bytes(head)
    if type(signature) is not bytes:
        signature = _view(signature)
    head_size = len(head)
    size = len(tag) + head_size + len(signature)
    if count > _FIXED_FRAMES:
        buffer_views = [_view(frame) for frame in frames[_FIXED_FRAMES:]]
        if len(buffer_views) > limits.max_buffers:
            raise BridgeError(ErrorCode.TOO_LARGE, f"{len(buffer_views)} buffers, at most {limits.max_buffers}")
        size += sum(map(len, buffer_views))
    else:
        buffer_views = []
    if size > limits.max_message_bytes:
        raise BridgeError(ErrorCode.TOO_LARGE,
                          f"message of {size} bytes is over the limit of {limits.max_message_bytes} bytes")
    if head_size > limits.max_header_bytes:
        raise BridgeError(ErrorCode.TOO_LARGE,
                          f"header of {head_size} bytes is over the limit of {limits.max_header_bytes}")
    if head_size < _PREFIX_SIZE:
        raise BridgeError(ErrorCode.MALFORMED,
                          f"header of {head_size} bytes is shorter than its fixed part ({_PREFIX_SIZE} bytes)")
    code, stamp, n_msg, n_parent, n_job, n_content = _unpack_prefix(head)
    parent_start = _PREFIX_SIZE + n_msg
    job_start = parent_start + n_parent
    ids_end = job_start + n_job
    content_end = ids_end + n_content
    if content_end > head_size:
        raise BridgeError(ErrorCode.MALFORMED, f"header's parts need {content_end} bytes, the header has {head_size}")
    msg_id = _text_id(head[_PREFIX_SIZE:parent_start])
    if key:
        if not len(signature):
            raise BridgeError(ErrorCode.BAD_SIGNATURE, "message is not signed and this side requires a key",
                              parent_id=msg_id)
        if not _compare_digest(_digest(key, head, buffer_views), signature):
            raise BridgeError(ErrorCode.BAD_SIGNATURE, "signature does not match (wrong key or altered message)",
                              parent_id=msg_id)
    if code >= _TYPE_COUNT:
        raise BridgeError(ErrorCode.UNKNOWN_TYPE,
                          f"unknown message type code {code}; this side knows codes 0-{_TYPE_COUNT - 1} "
                          f"({', '.join(WIRE_TYPES)})", parent_id=msg_id)
    if msg_id is None:
        raise _id_error("msg_id", None, required=True)
    parent_id = job_id = None
    if n_parent and (parent_id := _text_id(head[parent_start:job_start])) is None:
        raise _id_error("parent_id", msg_id)
    if n_job and (job_id := _text_id(head[job_start:ids_end])) is None:
        raise _id_error("job_id", msg_id)
    if not -_MAX_TIME <= stamp <= _MAX_TIME:   # NaN fails too
        raise BridgeError(ErrorCode.MALFORMED, "header field 'time' must be a number of seconds since 1970",
                          parent_id=msg_id)
    if n_content:
        content = _json_part(head[ids_end:content_end], msg_id, "content")
        if type(content) is not dict:
            raise BridgeError(ErrorCode.MALFORMED, "header field 'content' must be a JSON object", parent_id=msg_id)
    else:
        content = {}
    if content_end < head_size:
        descriptors = _json_part(head[content_end:], msg_id, "buffer descriptors")
        if type(descriptors) is not list:
            raise BridgeError(ErrorCode.BAD_BUFFER, "header field 'buffers' must be a list", parent_id=msg_id)
    else:
        descriptors = ()
    if len(descriptors) != len(buffer_views):
        raise BridgeError(ErrorCode.BAD_BUFFER,
                          f"header describes {len(descriptors)} buffer(s) but {len(buffer_views)} were sent",
                          parent_id=msg_id)
    buffers = ([_decode_buffer(i, d, v, msg_id) for i, (d, v) in enumerate(zip(descriptors, buffer_views))]
               if descriptors else [])
    return assemble(_TYPE_NAMES[code], content, buffers, job_id, parent_id, msg_id, PROTOCOL_VERSION, stamp)


def _bad_tag(tag_view: Any) -> BridgeError:
    tag = bytes(tag_view[:32])
    if tag.startswith(FRAME_TAG_PREFIX) and tag[len(FRAME_TAG_PREFIX):].isdigit():
        return BridgeError(ErrorCode.VERSION_MISMATCH,
                           f"peer speaks bridge protocol v{tag[len(FRAME_TAG_PREFIX):].decode()}, "
                           f"this side speaks v{PROTOCOL_VERSION}")
    return BridgeError(ErrorCode.MALFORMED, "not a bridge message (first frame is not the EMOGENE tag)")


def _text_id(part: bytes) -> str | None:
    """An id: utf-8 text of 1 to ``_MAX_ID_LENGTH`` characters, else None."""
    try:
        text = part.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
    return text if 0 < len(text) <= _MAX_ID_LENGTH else None


def _id_error(name: str, msg_id: str | None, required: bool = False) -> BridgeError:
    return BridgeError(ErrorCode.MALFORMED, f"header field {name!r} must be a string of 1-{_MAX_ID_LENGTH} "
                       f"characters" + ("" if required else " or null"), parent_id=msg_id)


def _json_part(part: bytes, msg_id: str | None, name: str) -> Any:
    try:
        text = part.decode("utf-8")
        try:   # the common case, one compact value: the scanner alone (decode() adds two regex passes)
            value, stop = _scan_json(text, 0)
        except StopIteration:
            stop = -1
        if stop != len(text):   # whitespace, extra data or not JSON: the full decoder decides
            value = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BridgeError(ErrorCode.MALFORMED, f"header's {name} is not valid UTF-8 JSON",
                          parent_id=msg_id) from None
    return value


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
