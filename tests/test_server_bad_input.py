"""Every kind of bad input from the issue gets an ``error`` reply with its stable code, and the server goes on."""
from __future__ import annotations

import io
import json
import time

import bridge_frames
import numpy as np
import pytest
import soundfile

from bridge.client import SyncClient
from bridge.errors import BridgeError
from bridge.messages import Message, new_id
from bridge.protocol import FRAME_TAG, ErrorCode, Limits, MessageType, MiB
from bridge.requests import build_cancel, build_generate
from bridge.wire import deserialize, serialize
from test_server_support import KEY, generate_request, raw_dealer, recv_frames, speech, start_server

pytestmark = pytest.mark.timeout(60)
LIMITS = Limits(max_message_bytes=1 * MiB, max_header_bytes=64 * 1024, max_audio_seconds=5.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    subjects = tmp_path_factory.mktemp("subjects")
    (subjects / "tester").mkdir()
    (subjects / "tester" / "subject.json").write_text('{"name": "tester", "version": 1}')
    srv = start_server(tmp_path_factory.mktemp("jobs"), key=KEY, limits=LIMITS, subjects_dir=subjects)
    yield srv
    srv.stop()


@pytest.fixture
def raw(server):
    socket = raw_dealer(server.address)
    yield socket
    socket.close(0)


def _reply(socket, frames) -> Message:
    socket.send_multipart(frames)
    return deserialize(recv_frames(socket), KEY)


def _still_serving(server) -> None:
    with SyncClient(server.address, key=KEY, timeout_s=5) as client:
        assert client.ping() < 1.0


def _signed(header: dict, buffers=()) -> list[bytes]:
    return bridge_frames.frames(header, buffers, KEY)


def _header(**over) -> dict:
    header = {"type": "ping", "msg_id": new_id(), "parent_id": None, "job_id": None, "time": time.time(),
              "content": {}, "buffers": []}
    header.update(over)
    return header


def frame_cases() -> dict:
    """Built when a test runs, not at import: a keyed backend refuses messages whose time is more than
    300 s old (replay window), and a full test run takes longer than that."""
    return {
    "garbage frames": ([b"\x00\xffgarbage", b"more"], ErrorCode.MALFORMED),
    "single empty frame": ([b""], ErrorCode.MALFORMED),
    "truncated multipart": ([FRAME_TAG, b"{}"], ErrorCode.MALFORMED),
    "head shorter than its fixed part": ([FRAME_TAG, b"{\"version\": 2,", b""], ErrorCode.MALFORMED),
    "bad content json": (_signed(_header(content=b"{\"fps\": 2,")), ErrorCode.MALFORMED),
    "unknown type": (_signed(_header(type="format_disk")), ErrorCode.UNKNOWN_TYPE),
    "v2 peer": ([b"EMOGENE2", json.dumps(_header()).encode(), b"ab" * 32], ErrorCode.VERSION_MISMATCH),
    "wrong protocol tag": ([b"EMOGENE9", b"{}", b""], ErrorCode.VERSION_MISMATCH),
    "missing signature": ([FRAME_TAG, bridge_frames.head(_header()), b""], ErrorCode.BAD_SIGNATURE),
    "wrong signature": ([FRAME_TAG, bridge_frames.head(_header()), b"ab" * 16], ErrorCode.BAD_SIGNATURE),
    "signed with another key": (serialize(Message("ping"), b"another-key-0123456789"), ErrorCode.BAD_SIGNATURE),
    "buffer size does not match shape": (
        _signed(_header(buffers=[{"dtype": "float32", "shape": [10]}]), [b"\0" * 12]), ErrorCode.BAD_BUFFER),
    "buffer count does not match header": (
        _signed(_header(buffers=[{"dtype": "uint8", "shape": [1]}])), ErrorCode.BAD_BUFFER),
    "oversize message": ([bytes(f) for f in serialize(Message("ping", buffers=[np.zeros(400_000, np.float32)]), KEY)],
                         ErrorCode.TOO_LARGE),
    "reply type sent to the server": (serialize(Message("welcome"), KEY), ErrorCode.BAD_REQUEST),
    }


FRAME_CASES = list(frame_cases())


@pytest.mark.parametrize("case", FRAME_CASES)
def test_bad_frames(server, raw, case):
    frames, code = frame_cases()[case]
    reply = _reply(raw, [bytes(f) for f in frames])
    assert reply.type == MessageType.ERROR and reply.content["code"] == code, reply.content
    assert reply.content["message"]
    _still_serving(server)


def _wav_bytes(seconds: float) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, speech(seconds), 16000, format="WAV")
    return out.getvalue()


def _gen(*args, **options):
    options.setdefault("landmarks_only", True)
    return build_generate(*args, **options)


def _weights(frames):
    w = np.zeros((frames, 8), np.float32)
    w[:, 0] = 1
    return w, np.ones(frames, np.float32)


def _encoded(rate: int, seconds: float, fmt: str) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, np.zeros(int(rate * seconds), np.int16), rate, format=fmt, subtype="PCM_16")
    return out.getvalue()


def _big(name: str, digits: int = 4000) -> Message:
    return Message("generate", {**generate_request().content, name: 10 ** digits}, generate_request().buffers)


REQUEST_CASES = {
    "empty audio": (lambda: _gen(np.zeros(0, np.float32), 16000, 25, *_weights(1)), ErrorCode.BAD_AUDIO),
    "NaN audio": (lambda: _gen(np.full(16000, np.nan, np.float32), 16000, 25, *_weights(25)),
                  ErrorCode.BAD_AUDIO),
    "infinite audio": (lambda: _gen(np.r_[speech(0.5), np.inf].astype(np.float32), 16000, 25,
                                              *_weights(13)), ErrorCode.BAD_AUDIO),
    "audio too long": (lambda: _gen(np.zeros(8000 * 12, np.float32), 8000, 25, *_weights(300)),
                       ErrorCode.AUDIO_TOO_LONG),
    "undecodable audio": (lambda: _gen(b"RIFF this is not a wav file", None, 25, *_weights(1),
                                                 media_type="audio/wav"), ErrorCode.BAD_AUDIO),
    "stereo PCM": (lambda: Message("generate", {"fps": 25, "sample_rate": 16000, "landmarks_only": True},
                                   [np.zeros((100, 2), np.float32), *_weights(1)]), ErrorCode.BAD_AUDIO),
    "missing sample rate": (lambda: Message("generate", {"fps": 25, "landmarks_only": True},
                                            [speech(0.5), *_weights(13)]), ErrorCode.BAD_AUDIO),
    "unknown subject": (lambda: generate_request(subject="nobody"), ErrorCode.UNKNOWN_SUBJECT),
    "unknown emotion name": (lambda: _gen(speech(0.5), 16000, 25, "joyful:0.5", None),
                             ErrorCode.UNKNOWN_EMOTION),
    "emotion intensity over 1": (lambda: _gen(speech(1.0), 16000, 25, _weights(25)[0],
                                                        np.full(25, 1.5, np.float32)), ErrorCode.BAD_EMOTION),
    "negative emotion weights": (lambda: _gen(speech(1.0), 16000, 25, -_weights(25)[0], _weights(25)[1]),
                                 ErrorCode.BAD_EMOTION),
    "emotion frames do not fit the audio": (lambda: _gen(speech(1.0), 16000, 25, *_weights(80)),
                                            ErrorCode.BAD_EMOTION),
    "zero fps": (lambda: Message("generate", {**generate_request().content, "fps": 0},
                                 generate_request().buffers), ErrorCode.BAD_FPS),
    "negative fps": (lambda: Message("generate", {**generate_request().content, "fps": -24},
                                     generate_request().buffers), ErrorCode.BAD_FPS),
    "fps over 240": (lambda: Message("generate", {**generate_request().content, "fps": 1000},
                                     generate_request().buffers), ErrorCode.BAD_FPS),
    "fps as text": (lambda: Message("generate", {**generate_request().content, "fps": "25"},
                                    generate_request().buffers), ErrorCode.BAD_FPS),
    "plates without a renderer": (lambda: generate_request(landmarks_only=False, subject="tester"),
                                  ErrorCode.UNSUPPORTED),
    "too few buffers": (lambda: Message("generate", generate_request().content, generate_request().buffers[:2]),
                        ErrorCode.BAD_REQUEST),
    "bad camera": (lambda: generate_request(camera={"focal_length_mm": 50.0}), ErrorCode.BAD_REQUEST),
    # decode bombs: refused from the header, before decoding (was +1.47 GB / +497 MB of RSS)
    "WAV declaring 1 Hz": (lambda: _gen(_encoded(1, 16000, "WAV"), None, 25, "sad", None, media_type="audio/wav"),
                           ErrorCode.BAD_AUDIO),
    "FLAC of an hour": (lambda: _gen(_encoded(8000, 3600, "FLAC"), None, 25, "sad", None,
                                     media_type="audio/flac"), ErrorCode.AUDIO_TOO_LONG),
    # 4,000-digit integers (were 'internal' with a traceback)
    "4000-digit fps": (lambda: _big("fps"), ErrorCode.BAD_FPS),
    "4000-digit seed": (lambda: _big("seed"), ErrorCode.BAD_REQUEST),
    "4000-digit temperature": (lambda: _big("temperature"), ErrorCode.BAD_REQUEST),
    "4000-digit frame_start": (lambda: _big("frame_start"), ErrorCode.BAD_REQUEST),
    "4000-digit sample rate": (lambda: Message("generate", {**generate_request().content, "sample_rate": 10 ** 4000},
                                               generate_request().buffers), ErrorCode.BAD_AUDIO),
    "4000-digit camera value": (lambda: Message("generate", {**generate_request().content, "camera": {
        "focal_length_mm": 50.0, "sensor_width_mm": 36.0, "sensor_height_mm": 24.0, "resolution": [64, 64],
        "anchor_from_camera": [10 ** 4000] + [0] * 15}}, generate_request().buffers), ErrorCode.BAD_REQUEST),
    "cancel of an unknown job": (lambda: build_cancel("f" * 32, None), ErrorCode.UNKNOWN_JOB),
    "cancel without a job id": (lambda: Message("cancel"), ErrorCode.BAD_REQUEST),
    "fetch of an unknown job": (lambda: Message("fetch", {"job_id": "../../etc"}), ErrorCode.UNKNOWN_JOB),
}


@pytest.mark.parametrize("case", list(REQUEST_CASES))
def test_bad_requests(server, case):
    build, code = REQUEST_CASES[case]
    with SyncClient(server.address, key=KEY, timeout_s=5) as client:
        with pytest.raises(BridgeError) as err:
            client.request(build())
        assert err.value.code == code, err.value
        assert err.value.message
    _still_serving(server)


def test_encoded_wav_is_decoded_by_the_server(server):
    with SyncClient(server.address, key=KEY, timeout_s=10) as client:
        job_id = client.submit(_gen(_wav_bytes(1.0), None, 25, "sad:0.5", None, media_type="audio/wav"))
        messages = list(client.iter_job(job_id))
    assert messages[-1].type == MessageType.DONE and messages[-1].content["frames"] == 25


def test_frame_over_the_socket_limit_drops_only_that_connection(server, raw):
    huge = b"\0" * (LIMITS.socket_max_frame_bytes + 1)
    raw.send_multipart([FRAME_TAG, b"{}", b"", huge])
    assert not raw.poll(300)   # libzmq closes that connection without a reply ...
    _still_serving(server)     # ... and everyone else is served


def test_unsigned_client_is_told_why(server):
    with SyncClient(server.address, key=None, timeout_s=5) as client:
        with pytest.raises(BridgeError) as err:
            client.ping()
        assert err.value.code == ErrorCode.BAD_SIGNATURE and "not signed" in err.value.message
