"""Fuzz: thousands of random and mutated multipart messages at a live server; it must answer each and stay healthy."""
from __future__ import annotations

import bridge_frames
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from bridge.client import SyncClient
from bridge.messages import EncodedBuffer, Message
from bridge.protocol import FRAME_TAG, MESSAGE_TYPES, PROTOCOL_VERSION, ErrorCode, Limits, MiB
from bridge.wire import deserialize, serialize, sign
from test_server_support import KEY, generate_request, raw_dealer, recv_frames, start_server

pytestmark = pytest.mark.timeout(300)

RANDOM_MESSAGES = 1200
MUTATED_MESSAGES = 1000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.integers(1, 3).map(lambda k: 10 ** (1300 * k) + 7),   # 1,300-3,900-digit integers
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)

random_frames = st.lists(st.binary(max_size=96), min_size=1, max_size=7)
tagged_frames = st.tuples(st.just(FRAME_TAG), st.lists(st.binary(max_size=64), min_size=0, max_size=5)).map(
    lambda t: [t[0], *t[1]])


def _valid_messages() -> list[Message]:
    return [
        Message("ping"), Message("hello", {"client": "fuzz"}), Message("subjects"),
        Message("cancel", {"job_id": "a" * 32, "token": "t" * 32}, job_id="a" * 32),
        Message("fetch", {"job_id": "b" * 32}), Message("ack", {"job_id": "c" * 32, "token": None}),
        generate_request(seconds=0.2),
        Message("plate", {"frame": 1}, [EncodedBuffer(b"\x89PNG", "image/png")]),
    ]


@st.composite
def mutated_messages(draw):
    """A valid, signed message with one thing changed (so it gets past the outer checks)."""
    msg = draw(st.sampled_from(_valid_messages()))
    frames = [bytes(f) for f in serialize(msg, KEY)]
    header = bridge_frames.fields(frames[1])
    how = draw(st.sampled_from(["field", "drop_field", "content", "buffer_desc", "bytes", "frames", "resign_raw"]))
    if how == "field":
        header[draw(st.sampled_from(sorted(header)))] = draw(json_values)
    elif how == "drop_field":
        header.pop(draw(st.sampled_from(sorted(header))), None)
    elif how == "content":
        header["content"] = draw(st.dictionaries(
            st.sampled_from(["fps", "sample_rate", "subject", "landmarks_only", "job_id", "resolution", "camera",
                             "seed", "temperature", "emotion", "frame_start"]), json_values, max_size=6))
        header["type"] = draw(st.sampled_from(sorted(MESSAGE_TYPES)))
    elif how == "buffer_desc":
        header["buffers"] = draw(st.lists(st.fixed_dictionaries({
            "dtype": st.sampled_from(["float32", "uint8", "int64", "bool", "complex64", "U4", ""]),
            "shape": st.lists(st.integers(-2, 40), max_size=3)}), max_size=4))
    raw_header = bridge_frames.head(header)
    buffers = frames[3:]
    if how == "bytes" and buffers:
        i = draw(st.integers(0, len(buffers) - 1))
        buffers[i] = draw(st.binary(max_size=64))
    if how == "frames":
        buffers = draw(st.lists(st.binary(max_size=32), max_size=4))
    if how == "resign_raw":
        raw_header = draw(st.binary(max_size=64))
    return [FRAME_TAG, raw_header, sign(KEY, [raw_header, *buffers]), *buffers]


def test_fuzz_live_server(tmp_path):
    _fuzz(tmp_path, RANDOM_MESSAGES, MUTATED_MESSAGES, None)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("seed_value", [13, 2026])
def test_fuzz_live_server_long(tmp_path, seed_value):
    """The issue-13 re-run: 5,500 messages per seed; 0 crashes, 0 hangs (5 s per reply), 0 'internal'."""
    counts = _fuzz(tmp_path, 3000, 2500, seed_value)
    print(f"seed {seed_value}: {counts}")


def _fuzz(tmp_path, random_count: int, mutated_count: int, seed_value: int | None) -> dict:
    server = start_server(tmp_path / "jobs", key=KEY, limits=Limits(max_message_bytes=4 * MiB))
    socket = raw_dealer(server.address)
    counts = {"sent": 0, "errors": 0}

    def exchange(frames: list[bytes]) -> None:
        socket.send_multipart(frames)
        counts["sent"] += 1
        while True:   # a job that slipped through may stream more than one reply: read until quiet
            reply = deserialize(recv_frames(socket, timeout_s=5), KEY)
            if reply.type == "error":
                counts["errors"] += 1
                counts[reply.content["code"]] = counts.get(reply.content["code"], 0) + 1
                assert reply.content["code"] in {v for k, v in vars(ErrorCode).items() if k.isupper()}
                assert reply.content["code"] != ErrorCode.INTERNAL, reply.content
            if not socket.poll(2):
                return

    def fuzz_settings(examples: int) -> settings:
        return settings(max_examples=examples, deadline=None, database=None, derandomize=seed_value is None,
                        suppress_health_check=list(HealthCheck))

    def seeded(test):
        return test if seed_value is None else seed(seed_value)(test)

    @seeded
    @fuzz_settings(random_count)
    @given(st.one_of(random_frames, tagged_frames))
    def fuzz_random(frames):
        exchange(frames)

    @seeded
    @fuzz_settings(mutated_count)
    @given(mutated_messages())
    def fuzz_mutated(frames):
        exchange(frames)

    try:
        fuzz_random()
        fuzz_mutated()
        assert counts["sent"] >= 0.95 * (random_count + mutated_count)
        assert counts["errors"] >= 0.7 * counts["sent"]   # most of it is rejected, each with a reply
        with SyncClient(server.address, key=KEY, timeout_s=10) as client:
            assert client.hello().content["protocol"] == PROTOCOL_VERSION
            job_id = client.submit(generate_request(seconds=1.0))
            assert list(client.iter_job(job_id))[-1].type == "done"
        assert server._thread.is_alive() and server.worker.is_alive()
    finally:
        socket.close(0)
        server.stop()
    return counts
