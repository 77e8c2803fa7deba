"""Framing, signing and validation of bridge messages (bridge/wire.py, messages.py)."""
import dataclasses
import json

import bridge_frames
import numpy as np
import pytest

from bridge.errors import BridgeError
from bridge.messages import EncodedBuffer, Message
from bridge.protocol import FRAME_TAG, PROTOCOL_VERSION, WIRE_TYPES, ErrorCode, Limits, MessageType
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
    msg = Message("ping")
    frames = _frames(msg)
    assert frames[0] == FRAME_TAG == b"EMOGENE%d" % PROTOCOL_VERSION and len(frames) == 3
    assert bridge_frames.fields(frames[1]) == {"type": "ping", "time": msg.time, "msg_id": msg.msg_id,
                                               "parent_id": None, "job_id": None, "content": {}, "buffers": []}
    assert len(frames[1]) == bridge_frames.PREFIX.size + 32   # a ping: the fixed part and its id, no JSON
    assert frames[2] == sign(KEY, [frames[1]]) and len(frames[2]) == 32
    assert _frames(Message("ping"), key=None)[2] == b""
    sample = _sample()
    frames = _frames(sample)
    assert bridge_frames.fields(frames[1])["buffers"] == [
        {"dtype": "float32", "shape": [2, 68, 3]}, {"media_type": "image/png"}, {"dtype": "bool", "shape": [2]},
        {"dtype": "int32", "shape": [4]}]
    assert frames[2] == sign(KEY, frames[1:2] + frames[3:])
    assert bridge_frames.frames(bridge_frames.fields(frames[1]), frames[3:], KEY) == frames   # hand-made = encoder


def test_every_message_type_has_a_code():
    assert sorted(WIRE_TYPES) == sorted(MessageType) and len(set(WIRE_TYPES)) == len(WIRE_TYPES)
    for code, name in enumerate(WIRE_TYPES):
        frames = _frames(Message(name))
        assert frames[1][0] == code and deserialize(frames, KEY).type == name


def _code(frames, key=KEY, limits=Limits()):
    with pytest.raises(BridgeError) as err:
        deserialize(frames, key, limits)
    return err.value


@pytest.mark.parametrize("mutate, code", [
    (lambda f: f[:2], ErrorCode.MALFORMED),
    (lambda f: [b"HELLO"] + f[1:], ErrorCode.MALFORMED),
    (lambda f: [b"EMOGENE1"] + f[1:], ErrorCode.VERSION_MISMATCH),
    (lambda f: [b"EMOGENE2"] + f[1:], ErrorCode.VERSION_MISMATCH),                # a v2 peer
    (lambda f: [f[0], b"{not json", f[2]], ErrorCode.MALFORMED),                  # shorter than the fixed part
    (lambda f: [f[0], f[1][:30], f[2]], ErrorCode.MALFORMED),                     # lengths beyond the head
    (lambda f: [f[0], f[1], b""] + f[3:], ErrorCode.BAD_SIGNATURE),
    (lambda f: [f[0], f[1], b"0" * 64] + f[3:], ErrorCode.BAD_SIGNATURE),
    (lambda f: f[:3] + [f[3][:-4]] + f[4:], ErrorCode.BAD_SIGNATURE),   # tampered buffer
    (lambda f: f[:-1], ErrorCode.BAD_SIGNATURE),                          # dropped buffer
])
def test_bad_frames_get_their_code(mutate, code):
    assert _code(mutate(_frames(_sample()))).code == code


def _resigned(header: dict, buffers=(), key=KEY):
    return bridge_frames.frames(header, buffers, key)


def _header(**over):
    header = {"type": "ping", "msg_id": "abc", "parent_id": None, "job_id": None,
              "time": 0.0, "content": {}, "buffers": []}
    header.update(over)
    return header


@pytest.mark.parametrize("header, buffers, code", [
    (_header(type="launch_missiles"), [], ErrorCode.UNKNOWN_TYPE),
    (_header(type=len(WIRE_TYPES)), [], ErrorCode.UNKNOWN_TYPE),
    (_header(msg_id=None), [], ErrorCode.MALFORMED),
    (_header(msg_id="m" * 129), [], ErrorCode.MALFORMED),
    (_header(content=[1]), [], ErrorCode.MALFORMED),
    (_header(content=b"{not json"), [], ErrorCode.MALFORMED),
    (_header(job_id="j" * 129), [], ErrorCode.MALFORMED),
    (_header(parent_id=b"\xff\xfe"), [], ErrorCode.MALFORMED),                  # not utf-8
    (_header(time="now"), [], ErrorCode.MALFORMED),
    (_header(time=float("inf")), [], ErrorCode.MALFORMED),
    (_header(time=2e11), [], ErrorCode.MALFORMED),
    (_header(buffers=[{"dtype": "float32", "shape": [3]}]), [b"\0" * 8], ErrorCode.BAD_BUFFER),
    (_header(buffers=[{"dtype": "object", "shape": [1]}]), [b"\0" * 8], ErrorCode.BAD_BUFFER),
    (_header(buffers=[{"dtype": "float32", "shape": [-1]}]), [b""], ErrorCode.BAD_BUFFER),
    (_header(buffers=[{"media_type": "not a type"}]), [b"x"], ErrorCode.BAD_BUFFER),
    (_header(buffers=[]), [b"x"], ErrorCode.BAD_BUFFER),
    (_header(buffers=[5]), [b"x"], ErrorCode.BAD_BUFFER),
    (_header(buffers={"dtype": "uint8"}), [b"x"], ErrorCode.BAD_BUFFER),
    (_header(buffers=b"[{"), [b"x"], ErrorCode.MALFORMED),
])
def test_bad_headers_get_their_code(header, buffers, code):
    err = _code(_resigned(header, buffers))
    assert err.code == code
    if header.get("msg_id") == "abc" and code != ErrorCode.MALFORMED:
        assert err.parent_id == "abc"  # the error reply can name the request


def test_version_mismatch_names_both_versions():
    frames = _frames(Message("ping", version=7))   # the version travels in the tag
    assert frames[0] == b"EMOGENE7"
    err = _code(frames)
    assert err.code == ErrorCode.VERSION_MISMATCH and "v7" in err.message and f"v{PROTOCOL_VERSION}" in err.message


def test_signature_is_checked_before_any_json_is_parsed():
    frames = _resigned(_header(content=b"{not json"), key=b"another-key-0123456789")
    assert _code(frames).code == ErrorCode.BAD_SIGNATURE
    assert _code(frames).parent_id == "abc"   # the error reply can still name the request
    assert _code(frames, key=None).code == ErrorCode.MALFORMED


def test_long_keys_are_hashed_not_cut():
    long_key, other = b"k" * 64 + b"tail-1", b"k" * 64 + b"tail-2"
    frames = _frames(Message("ping"), key=long_key)
    assert deserialize(frames, long_key).type == "ping"
    assert _code(frames, key=other).code == ErrorCode.BAD_SIGNATURE


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
    Message("ping", msg_id='quote " and \\ and \u00e9 and \U0001f600', parent_id="\udc80"),
])
def test_head_round_trips_the_fixed_fields(msg):
    frames = serialize(msg)
    assert bridge_frames.fields(frames[1]) == {"type": msg.type, "time": msg.time, "msg_id": msg.msg_id,
                                               "parent_id": msg.parent_id, "job_id": msg.job_id,
                                               "content": msg.content, "buffers": []}
    if msg.content:   # the content part is the compact JSON encoder's output
        assert json.dumps(msg.content, separators=(",", ":")).encode() in frames[1]
    out = deserialize(frames)
    assert (out.type, out.time, out.msg_id, out.parent_id, out.job_id, out.content) == (
        msg.type, msg.time, msg.msg_id, msg.parent_id, msg.job_id, msg.content)


@pytest.mark.parametrize("msg, code", [
    (Message("launch_missiles"), ErrorCode.UNKNOWN_TYPE),
    (Message("ping", time=float("inf")), ErrorCode.BAD_REQUEST),
    (Message("ping", time=float("nan")), ErrorCode.BAD_REQUEST),
    (Message("ping", time=True), ErrorCode.BAD_REQUEST),
    (Message("ping", content=[]), ErrorCode.BAD_REQUEST), (Message("ping", content=None), ErrorCode.BAD_REQUEST),
    (Message("ping", version=True), ErrorCode.BAD_REQUEST), (Message("ping", version=-1), ErrorCode.BAD_REQUEST),
    (Message("ping", job_id=5), ErrorCode.BAD_REQUEST), (Message("ping", msg_id=""), ErrorCode.BAD_REQUEST),
    (Message("ping", parent_id="p" * 129), ErrorCode.BAD_REQUEST),
])
def test_serialize_refuses_what_the_head_cannot_carry(msg, code):
    with pytest.raises(BridgeError) as err:
        serialize(msg)
    assert err.value.code == code


def test_received_and_reply_messages_equal_constructed_ones():
    """deserialize() and reply() build Message field by field (fast path): every dataclass field must be set."""
    msg = Message(MessageType.PROGRESS, {"done": 1}, job_id="job", parent_id="parent")
    out = deserialize(_frames(msg), KEY)
    assert out == msg and type(out.type) is str
    reply = msg.reply("pong", {"x": 1})
    expected = Message("pong", {"x": 1}, [], job_id="job", parent_id=msg.msg_id, msg_id=reply.msg_id,
                       time=reply.time)
    assert reply == expected
    for made in (out, reply):
        assert all(hasattr(made, f.name) for f in dataclasses.fields(Message))
    assert msg.reply("pong").content is not msg.reply("pong").content   # fresh containers per reply


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
