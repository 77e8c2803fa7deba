"""The contracts bridge/ owns for everybody: emotion normalisation, the result assembler, the endpoint
policy and the str-valued enums (issue 16)."""
from __future__ import annotations

import bridge_frames
import numpy as np
import pytest

from bridge import endpoints
from bridge.emotions import EMOTIONS, NEUTRAL, NUM_EMOTIONS, normalise_emotion
from bridge.errors import BridgeError
from bridge.landmarks import NUM_LANDMARKS
from bridge.messages import Message
from bridge.protocol import ERROR_CODES, ErrorCode, MessageType
from bridge.results import JobAssembler, LandmarkAssembler, write_landmark_files
from bridge.wire import deserialize, serialize


def test_strict_normalisation_blends_and_names_bad_input():
    weights = np.zeros((3, NUM_EMOTIONS), np.float32)
    weights[0, EMOTIONS.index("happy")] = 2.0
    weights[1, [1, 2]] = [1.0, 3.0]
    out, intensity, notes = normalise_emotion(weights, np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-6)
    assert out[1, 2] == pytest.approx(0.75) and out[2, NEUTRAL] == 1.0 and notes == []
    assert intensity.dtype == np.float32 and intensity.tolist() == [0.0, 0.5, 1.0]
    for bad_weights, bad_intensity, text in (
            (-weights, None, ">= 0"), (weights * np.nan, None, "NaN"),
            (weights, np.array([0.5, 1.5, 0.0]), "within [0, 1]"), (weights, np.array([0.5, np.inf, 0.0]), "[0, 1]"),
            (weights[:, :4], None, f"[frames, {NUM_EMOTIONS}]")):
        with pytest.raises(ValueError, match=text.replace("[", r"\[").replace("]", r"\]")):
            normalise_emotion(bad_weights, bad_intensity)
    with pytest.raises(ValueError, match="rows for 5 frames"):
        normalise_emotion(weights, None, frames=5)


def test_repairing_normalisation_fixes_and_says_what_it_did():
    weights = np.zeros((2, NUM_EMOTIONS), np.float32)
    weights[0, 3], weights[1, 4] = -1.0, np.nan
    out, intensity, notes = normalise_emotion(weights, np.array([2.0, -1.0]), frames=4, repair=True)
    assert out.shape == (4, NUM_EMOTIONS) and (out[:, NEUTRAL] == 1).all()
    assert intensity.tolist() == [1.0, 0.0, 0.0, 0.0] and len(notes) == 4


def _chunk(start: int, n: int, total: int, job_id: str = "J") -> Message:
    return Message(MessageType.LANDMARKS, {"start": start, "count": n, "total": total, "fps": 30.0},
                   [np.full((n, NUM_LANDMARKS, 3), start, np.float32), np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)),
                    np.full((n, 3), start, np.float32)], job_id=job_id)


def test_landmark_chunks_assemble_in_any_order_and_bad_chunks_are_refused():
    track = LandmarkAssembler()
    for start, n in ((10, 5), (0, 10)):
        track.add(_chunk(start, n, 20))
    assert track.frame_count == 20 and track.missing == 5 and track.fps == 30.0
    assert track.landmarks[12, 0, 0] == 10 and track.landmarks[3, 0, 0] == 0 and not track.received[15:].any()
    bad = _chunk(18, 5, 20)   # runs past the end
    with pytest.raises(BridgeError) as err:
        track.add(bad)
    assert err.value.code == ErrorCode.BAD_BUFFER
    wrong = Message(MessageType.LANDMARKS, {"start": 0, "total": 20},
                    [np.zeros((2, NUM_LANDMARKS - 1, 3), np.float32), np.zeros((2, 3, 3), np.float32),
                     np.zeros((2, 3), np.float32)])
    with pytest.raises(BridgeError, match="unexpected shapes"):
        track.add(wrong)
    nan_filled = LandmarkAssembler(4, fill=np.nan)
    nan_filled.add(_chunk(0, 2, 4))
    assert np.isnan(nan_filled.landmarks[2:]).all() and not np.isnan(nan_filled.landmarks[:2]).any()


def test_job_assembler_keeps_plates_warnings_and_the_terminal_message(tmp_path):
    results = JobAssembler(on_plate=lambda msg: msg.bytes(0)[::-1])
    results.add(_chunk(0, 3, 3))
    results.add(Message(MessageType.PLATE, {"frame": 2}, [np.frombuffer(b"abc", np.uint8)]))
    results.add(Message(MessageType.WARNING, {"message": "careful"}))
    results.add(Message(MessageType.DONE, {}))
    assert results.plates == {2: b"cba"} and results.warnings == ["careful"]
    assert results.terminal.type == MessageType.DONE and results.track.missing == 0
    weights = np.eye(NUM_EMOTIONS, dtype=np.float32)[[NEUTRAL] * 3]
    track = results.track
    write_landmark_files(tmp_path, track.landmarks, track.rotation, track.translation, 30.0, weights,
                         np.ones(3, np.float32))
    with np.load(tmp_path / "landmarks.npz") as saved:
        assert saved["landmarks"].shape == (3, NUM_LANDMARKS, 3) and float(saved["fps"]) == 30.0
    rows = (tmp_path / "landmarks.csv").read_text().splitlines()
    assert rows[0] == "frame,index,name,x,y,z" and len(rows) == 1 + 3 * NUM_LANDMARKS
    assert (tmp_path / "arkit.csv").is_file() and (tmp_path / "arkit.json").is_file()


@pytest.mark.parametrize("address,loopback", [
    ("tcp://127.0.0.1:5555", True), ("tcp://localhost:1", True), ("tcp://[::1]:5555", True),
    ("ipc:///tmp/emogene.sock", True), ("inproc://x", True), ("tcp://0.0.0.0:5555", False),
    ("tcp://*:5555", False), ("tcp://eth0:5555", False), ("tcp://10.0.0.2:5555", False), ("udp://127.0.0.1:1", False),
    ("127.0.0.1:5555", False)])
def test_one_loopback_policy_for_serve_and_the_addon(address, loopback):
    assert endpoints.is_loopback_endpoint(address) is loopback
    check = endpoints.check_address(address, online_access=False)
    assert check.allowed is loopback and check.is_loopback is loopback


def test_client_endpoint_needs_a_transport():
    endpoints.check_client_endpoint("tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="must start with tcp://"):
        endpoints.check_client_endpoint("127.0.0.1:5555")


def test_enums_are_their_wire_strings():
    assert MessageType.PING == "ping" and f"{ErrorCode.BUSY}" == "busy" and "busy" in ERROR_CODES
    frames = serialize(Message(MessageType.PING), b"k" * 16)
    assert bridge_frames.fields(frames[1])["type"] == "ping"
    assert deserialize(frames, b"k" * 16).type == MessageType.PING


def test_content_that_is_not_plain_json_is_a_bad_request():
    cyclic: dict = {}
    cyclic["self"] = cyclic
    for content in ({"x": object()}, {"x": float("nan")}, cyclic):
        with pytest.raises(BridgeError) as err:
            serialize(Message(MessageType.PING, content))
        assert err.value.code == ErrorCode.BAD_REQUEST and "not plain JSON" in err.value.message
