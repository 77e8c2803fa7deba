"""Bridge protocol v3: the version, frame tag, message types, error codes and size limits.

Everything here is plain data shared by the Blender add-on, the CLI and the backend.
``wire.py`` is the only module that knows how a message is laid out in frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: v2 (from v1): ``accepted`` carries a per-job secret ``token`` that ``fetch``/``ack``/``cancel`` must
#: send back; ``welcome``/``pong`` carry the server's ``instance`` id; keyed servers refuse replays.
#: v3 (from v2): the header frame is a fixed binary part (type code, time, id lengths) + the ids + JSON
#: only for content and buffer descriptors; the signature is a 32-byte keyed BLAKE2b (was hex HMAC-SHA256)
PROTOCOL_VERSION = 3
#: first frame of every message; the digit is the protocol's major version
FRAME_TAG = b"EMOGENE3"
FRAME_TAG_PREFIX = b"EMOGENE"

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"


class MessageType(StrEnum):
    """Message type names (the ``type`` field of a header); str-valued, so each is its wire string."""
    # client -> server
    HELLO = "hello"
    PING = "ping"
    GENERATE = "generate"
    CANCEL = "cancel"
    FETCH = "fetch"
    ACK = "ack"
    SUBJECTS = "subjects"
    # server -> client
    WELCOME = "welcome"
    PONG = "pong"
    ACCEPTED = "accepted"
    PROGRESS = "progress"
    LANDMARKS = "landmarks"
    PLATE = "plate"
    WARNING = "warning"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    ACKED = "acked"
    SUBJECT_LIST = "subject_list"


CLIENT_TYPES = frozenset({
    MessageType.HELLO, MessageType.PING, MessageType.GENERATE, MessageType.CANCEL,
    MessageType.FETCH, MessageType.ACK, MessageType.SUBJECTS,
})
SERVER_TYPES = frozenset({
    MessageType.WELCOME, MessageType.PONG, MessageType.ACCEPTED, MessageType.PROGRESS,
    MessageType.LANDMARKS, MessageType.PLATE, MessageType.WARNING, MessageType.DONE,
    MessageType.ERROR, MessageType.CANCELLED, MessageType.ACKED, MessageType.SUBJECT_LIST,
})
MESSAGE_TYPES = CLIENT_TYPES | SERVER_TYPES
#: a message type's code on the wire is its index here (append new types; never reorder)
WIRE_TYPES: tuple[MessageType, ...] = (
    MessageType.HELLO, MessageType.PING, MessageType.GENERATE, MessageType.CANCEL, MessageType.FETCH,
    MessageType.ACK, MessageType.SUBJECTS, MessageType.WELCOME, MessageType.PONG, MessageType.ACCEPTED,
    MessageType.PROGRESS, MessageType.LANDMARKS, MessageType.PLATE, MessageType.WARNING, MessageType.DONE,
    MessageType.ERROR, MessageType.CANCELLED, MessageType.ACKED, MessageType.SUBJECT_LIST,
)
#: the messages that end a job's stream
TERMINAL_TYPES = frozenset({MessageType.DONE, MessageType.ERROR, MessageType.CANCELLED})
#: the messages that belong to a job's stored result (replayed by ``fetch``)
JOB_RESULT_TYPES = frozenset({
    MessageType.LANDMARKS, MessageType.PLATE, MessageType.WARNING,
}) | TERMINAL_TYPES


class ErrorCode(StrEnum):
    """Stable error codes of ``error`` replies and :class:`bridge.errors.BridgeError` (str-valued: the wire string)."""
    MALFORMED = "malformed"              # not a bridge message: tag, frame count, JSON, header fields
    BAD_SIGNATURE = "bad_signature"      # missing or wrong signature (keyed MAC)
    VERSION_MISMATCH = "version_mismatch"
    UNKNOWN_TYPE = "unknown_type"
    TOO_LARGE = "too_large"              # a frame or the whole message is over the limit
    BAD_BUFFER = "bad_buffer"            # descriptor missing/invalid, size does not match shape
    BAD_REQUEST = "bad_request"          # content fields missing or of the wrong kind
    BAD_AUDIO = "bad_audio"              # empty, NaN/inf, undecodable
    AUDIO_TOO_LONG = "audio_too_long"
    UNKNOWN_SUBJECT = "unknown_subject"
    UNKNOWN_EMOTION = "unknown_emotion"
    BAD_EMOTION = "bad_emotion"          # weights/intensity shape or range
    BAD_FPS = "bad_fps"
    UNKNOWN_JOB = "unknown_job"
    BAD_TOKEN = "bad_token"              # fetch/ack/cancel without the job's token, or with a wrong one
    REPLAYED = "replayed"                # keyed server: a message id seen before, or a time outside the window
    STREAM_MOVED = "stream_moved"        # the job's stream went to a newer fetch of the same job
    BACKEND_RESTARTED = "backend_restarted"  # client side: the backend answering is a new instance
    UNSUPPORTED = "unsupported"          # e.g. plates asked of a backend without a renderer
    BUSY = "busy"                        # job queue full
    TIMEOUT = "timeout"                  # client side: no answer in time
    JOB_FAILED = "job_failed"
    INTERNAL = "internal"


ERROR_CODES = frozenset(ErrorCode)

#: dtypes an array buffer may declare (always little-endian on the wire)
ARRAY_DTYPES = frozenset({
    "bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64",
    "float16", "float32", "float64",
})
MAX_ARRAY_DIMS = 8

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Size limits checked on every received message (and set on the sockets).

    ``socket_max_frame_bytes`` is libzmq's ``MAXMSGSIZE`` (per frame): a frame over
    it makes libzmq drop the connection without a reply, so it sits above the
    protocol limits, which are answered with a ``too_large`` error.
    """
    max_message_bytes: int = 128 * MiB   # all frames together (600 s of 48 kHz float32 audio fits)
    max_header_bytes: int = 1 * MiB
    max_buffers: int = 16
    max_audio_seconds: float = 600.0
    max_fps: float = 240.0
    #: keyed servers refuse messages whose ``time`` is further than this from their clock (seconds)
    replay_window_s: float = 300.0
    #: message ids remembered for the replay check (oldest forgotten first beyond this)
    replay_history: int = 200_000

    @property
    def socket_max_frame_bytes(self) -> int:
        return self.max_message_bytes + self.max_header_bytes + MiB


DEFAULT_LIMITS = Limits()
