"""Framing, signing and validation of bridge messages (bridge/wire.py, messages.py)."""
import json

import numpy as np
import pytest

from bridge.errors import BridgeError
from bridge.messages import EncodedBuffer, Message
from bridge.protocol import FRAME_TAG, PROTOCOL_VERSION, ErrorCode, Limits, MessageType
from bridge.wire import deserialize, receive, serialize, sign

KEY = b"0123456789abcdef-test-key"


def _frames(msg, key=KEY):
    return [bytes(f) for f in serialize(msg, key)]


def _sample():
    return Message("landmarks", {"start": 0, "count": 2}, [
        np.arange(2 * 68 * 3, dtype=np.float32).reshape(2, 68, 3),
        EncodedBuffer(b"\x89PNG fake", "image/png"),
        np.array([True, False]),
        np.arange(4, dtype=">i4"),  # big-endian input is sent little-endian
    ], job_id="job1", parent_id="p1")


def test_round_trip_keeps_everything():
    msg = _sample()
    out = deserialize(_frames(msg), KEY)
    assert (out.type, out.content, out.job_id, out.parent_id, out.msg_id) == (
        msg.type, msg.content, "job1", "p1", msg.msg_id)
    np.testing.assert_array_equal(out.array(0), msg.buffers[0])
    assert out.media_type(1) == "image/png" and out.bytes(1) == b"\x89PNG fake"
    assert out.array(2).dtype == bool and out.array(2).tolist() == [True, False]
    assert out.array(3).tolist() == [0, 1, 2, 3] and out.array(3).dtype == np.int32
    assert out.media_type(0) is None
    with pytest.raises(BridgeError) as err:
        out.array(1)
    assert err.value.code == ErrorCode.BAD_BUFFER


def test_frame_layout_matches_contract():
    frames = _frames(Message("ping"))
    assert frames[0] == FRAME_TAG and len(frames) == 3
    header = json.loads(frames[1])
    assert header["version"] == PROTOCOL_VERSION and header["type"] == "ping" and header["buffers"] == []
    assert frames[2] == sign(KEY, [frames[1]])
    assert _frames(Message("ping"), key=None)[2] == b""


def _code(frames, key=KEY, limits=Limits()):
    with pytest.raises(BridgeError) as err:
        deserialize(frames, key, limits)
    return err.value


@pytest.mark.parametrize("mutate, code", [
    (lambda f: f[:2], ErrorCode.MALFORMED),
    (lambda f: [b"HELLO"] + f[1:], ErrorCode.MALFORMED),
    (lambda f: [b"EMOGENE1"] + f[1:], ErrorCode.VERSION_MISMATCH),
    (lambda f: [f[0], b"{not json", f[2]], ErrorCode.MALFORMED),
    (lambda f: [f[0], b"[1,2]", f[2]], ErrorCode.MALFORMED),
    (lambda f: [f[0], f[1], b""] + f[3:], ErrorCode.BAD_SIGNATURE),
    (lambda f: [f[0], f[1], b"0" * 64] + f[3:], ErrorCode.BAD_SIGNATURE),
    (lambda f: f[:3] + [f[3][:-4]] + f[4:], ErrorCode.BAD_SIGNATURE),   # tampered buffer
    (lambda f: f[:-1], ErrorCode.BAD_SIGNATURE),                          # dropped buffer
])
def test_bad_frames_get_their_code(mutate, code):
    assert _code(mutate(_frames(_sample()))).code == code


def _resigned(header: dict, buffers=(), key=KEY):
    raw = json.dumps(header).encode()
    return [FRAME_TAG, raw, sign(key, [raw, *buffers]), *buffers]


def _header(**over):
    header = {"version": PROTOCOL_VERSION, "type": "ping", "msg_id": "abc", "parent_id": None, "job_id": None,
              "time": 0.0, "content": {}, "buffers": []}
    header.update(over)
    return header


@pytest.mark.parametrize("header, buffers, code", [
    (_header(version=1), [], ErrorCode.VERSION_MISMATCH),
    (_header(type="launch_missiles"), [], ErrorCode.UNKNOWN_TYPE),
    (_header(type=None), [], ErrorCode.MALFORMED),
    (_header(msg_id=None), [], ErrorCode.MALFORMED),
    (_header(content=[1]), [], ErrorCode.MALFORMED),
    (_header(job_id=5), [], ErrorCode.MALFORMED),
    (_header(time="now"), [], ErrorCode.MALFORMED),
    (_header(buffers=[{"dtype": "float32", "shape": [3]}]), [b"\0" * 8], ErrorCode.BAD_BUFFER),
    (_header(buffers=[{"dtype": "object", "shape": [1]}]), [b"\0" * 8], ErrorCode.BAD_BUFFER),
    (_header(buffers=[{"dtype": "float32", "shape": [-1]}]), [b""], ErrorCode.BAD_BUFFER),
    (_header(buffers=[{"media_type": "not a type"}]), [b"x"], ErrorCode.BAD_BUFFER),
    (_header(buffers=[]), [b"x"], ErrorCode.BAD_BUFFER),
    (_header(buffers=[5]), [b"x"], ErrorCode.BAD_BUFFER),
])
def test_bad_headers_get_their_code(header, buffers, code):
    err = _code(_resigned(header, buffers))
    assert err.code == code
    if header.get("msg_id") == "abc" and code != ErrorCode.MALFORMED:
        assert err.parent_id == "abc"  # the error reply can name the request


def test_version_mismatch_names_both_versions():
    err = _code(_resigned(_header(version=7)))
    assert "7" in err.message and str(PROTOCOL_VERSION) in err.message


def test_size_limits():
    small = Limits(max_message_bytes=1000, max_header_bytes=500, max_buffers=2)
    assert _code(_frames(Message("ping", buffers=[np.zeros(300, np.float32)])), limits=small).code == ErrorCode.TOO_LARGE
    assert _code(_frames(Message("ping", {"x": "y" * 600})), limits=small).code == ErrorCode.TOO_LARGE
    three = Message("ping", buffers=[np.zeros(1, np.uint8)] * 3)
    assert _code(_frames(three), limits=small).code == ErrorCode.TOO_LARGE


def test_no_key_skips_signature_and_serialize_rejects_bad_input():
    msg = deserialize(_frames(Message("ping"), key=b"other-key-0123456"), key=None)
    assert msg.type == "ping"
    with pytest.raises(BridgeError) as err:
        serialize(Message("ping", buffers=[np.array(["a"])]))
    assert err.value.code == ErrorCode.BAD_BUFFER
    with pytest.raises(BridgeError) as err:
        serialize(Message("ping", {"x": float("nan")}))
    assert err.value.code == ErrorCode.BAD_REQUEST


def test_received_arrays_are_zero_copy_views():
    import zmq
    ctx = zmq.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://wire-test")
    b.connect("inproc://wire-test")
    try:
        big = np.random.default_rng(0).integers(0, 255, (256, 256, 4), dtype=np.uint8)
        a.send_multipart(serialize(Message("plate", {"frame": 0}, [big]), KEY), copy=False)
        frames = receive(b)
        assert [type(f) for f in frames[:3]] == [bytes] * 3 and isinstance(frames[3], zmq.Frame)
        out = deserialize(frames, KEY)
        np.testing.assert_array_equal(out.array(0), big)
        arr = out.array(0)
        assert not arr.flags.writeable and not arr.flags.owndata  # a view of the received frame
    finally:
        a.close(0)
        b.close(0)


@pytest.mark.parametrize("msg", [
    Message("ping"),
    Message(MessageType.PROGRESS, {"stage": "render", "done": 3, "é": [1.5, None, True]}, job_id="j", parent_id="p"),
    Message("ping", time=1_800_000_000),                  # an int time
    Message("ping", time=float("inf")),                   # not JSON: refused as before
    Message("launch_missiles", msg_id='quote " and \\ and \u00e9'),
    Message("ping", content=[]), Message("ping", content=None),
    Message("ping", version=True), Message("ping", job_id=5),
])
def test_header_is_the_json_encoders_output(msg):
    """The header's direct layout writes the same bytes as the JSON encoder (or refuses the same messages)."""
    try:
        expected = json.dumps({"version": msg.version, "type": msg.type, "msg_id": msg.msg_id,
                               "parent_id": msg.parent_id, "job_id": msg.job_id, "time": msg.time,
                               "content": msg.content, "buffers": []}, separators=(",", ":"), allow_nan=False)
    except ValueError:
        with pytest.raises(BridgeError) as err:
            serialize(msg)
        assert err.value.code == ErrorCode.BAD_REQUEST
        return
    assert serialize(msg)[1] == expected.encode()


def test_new_ids_are_unique_across_threads_and_forks():
    import os
    import threading

    from bridge.messages import new_id
    seen: list[str] = []
    threads = [threading.Thread(target=lambda: seen.extend(new_id() for _ in range(2000))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == len(seen) == 8000 and all(len(i) == 32 and int(i, 16) >= 0 for i in seen)
    if not hasattr(os, "fork"):
        return
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child's next id must not be the parent's next one
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 64).decode() != new_id()
