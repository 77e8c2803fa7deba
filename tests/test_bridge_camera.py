"""The camera contract (bridge/camera.py): wire round trips, per-frame cameras, validation that names the
field, old clients' still camera unchanged, and the one plate-size rule."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.camera import (CAPABILITY, FRAME_COLUMNS, CameraError, CameraSpec, CameraTrack, PlateSizeError,
                           frame_camera, plate_size)
from bridge.errors import BridgeError
from bridge.messages import Message
from bridge.protocol import DEFAULT_LIMITS
from bridge.requests import build_generate, frame_count_for
from bridge.wire import deserialize, serialize

FPS = 25.0
SECONDS = 0.4
FRAMES = frame_count_for(SECONDS, FPS)


def _spec(**over) -> CameraSpec:
    pose = np.eye(4)
    pose[:3, 3] = [0.0, -0.6, 0.0]
    return CameraSpec(**{"focal_length_mm": 50.0, "sensor_width_mm": 36.0, "sensor_height_mm": 24.0,
                         "sensor_fit": "AUTO", "resolution": (64, 48), "anchor_from_camera": pose, **over})


def _dolly(frames: int = FRAMES) -> CameraTrack:
    specs = []
    for i in range(frames):
        pose = np.eye(4)
        pose[:3, 3] = [0.01 * i, -0.6 + 0.02 * i, 0.0]
        specs.append(_spec(anchor_from_camera=pose, focal_length_mm=50.0 + i, shift_x=0.01 * i))
    return CameraTrack.from_specs(specs)


def _request(camera, frames: int = FRAMES) -> Message:
    weights = np.tile(np.eye(8, dtype=np.float32)[:1], (frames, 1))
    return build_generate(np.zeros(int(SECONDS * 16000), np.float32), 16000, FPS, weights,
                          np.zeros(frames, np.float32), landmarks_only=False, camera=camera)


def _job(msg: Message):
    from backend.server.validation import job_from_message

    class Subjects:
        def path(self, name):
            return name

    return job_from_message(deserialize(serialize(msg)), "j" * 32, Subjects(), DEFAULT_LIMITS)


def test_still_camera_round_trips_through_the_wire():
    spec = _spec(shift_x=0.1, sensor_fit="VERTICAL")
    back = CameraSpec.from_content(spec.to_content())
    assert back.to_content() == spec.to_content()


def test_old_clients_still_camera_is_accepted_unchanged():
    """The camera exactly as main's add-on spelled it (a dict of fields, no ``frames``) gives a still camera."""
    old = {"focal_length_mm": 35.0, "sensor_width_mm": 36.0, "sensor_height_mm": 24.0, "sensor_fit": "AUTO",
           "resolution": [128, 96], "shift_x": 0.0, "shift_y": 0.05,
           "anchor_from_camera": [1.0, 0, 0, 0, 0, 0, -1.0, -0.7, 0, 1.0, 0, 0.02, 0, 0, 0, 1.0],
           "clip_start": 0.1, "clip_end": 100.0}
    msg = _request(old)
    assert len(msg.buffers) == 3 and "frames" not in msg.content["camera"]
    job = _job(msg)
    assert isinstance(job.camera, CameraSpec) and job.camera.resolution == (128, 96)
    np.testing.assert_array_equal(job.camera.anchor_from_camera.reshape(16), old["anchor_from_camera"])


def test_per_frame_cameras_ride_as_the_last_buffer_and_come_back_per_frame():
    track = _dolly()
    msg = _request(track)
    assert len(msg.buffers) == 4 and msg.buffers[3].shape == (FRAMES, FRAME_COLUMNS)
    assert msg.content["camera"]["frames"]["buffer"] == 3
    job = _job(msg)
    assert isinstance(job.camera, CameraTrack) and len(job.camera) == FRAMES
    for i in (0, FRAMES - 1):
        assert frame_camera(job.camera, i).to_content() == track.at(i).to_content()
    # an emotion spec string: one buffer before the camera rows
    spec_msg = build_generate(np.zeros(int(SECONDS * 16000), np.float32), 16000, FPS, "happy", None,
                              landmarks_only=False, camera=track)
    assert spec_msg.content["camera"]["frames"]["buffer"] == 1
    assert len(_job(spec_msg).camera) == FRAMES
    # a job travels to a Ray actor by pickle
    again = __import__("pickle").loads(__import__("pickle").dumps(job))
    np.testing.assert_array_equal(again.camera.rows, job.camera.rows)


def test_track_refuses_changing_sensor_fit_or_resolution():
    with pytest.raises(CameraError, match="camera.resolution changes at frame 1"):
        CameraTrack.from_specs([_spec(), _spec(resolution=(32, 32))])
    assert CameraTrack.from_specs([_spec(), _spec()]).is_still and not _dolly().is_still


def _bad_rows(edit) -> Message:
    msg = _request(_dolly())
    rows = np.array(msg.buffers[3])
    edit(rows)
    msg.buffers[3] = rows
    return msg


@pytest.mark.parametrize("make, text", [
    (lambda: _request(_dolly(FRAMES - 1), FRAMES), f"camera.frames has {FRAMES - 1} frames; .* makes {FRAMES}"),
    (lambda: _bad_rows(lambda r: r.__setitem__((2, 7), np.nan)), "frame 2 holds NaN"),
    (lambda: _bad_rows(lambda r: r.__setitem__((1, 0), -5.0)), "camera.frames.focal_length_mm = -5.0 at frame 1"),
    (lambda: _bad_rows(lambda r: r.__setitem__((3, slice(5, 21)), 0.0)),
     "camera.frames.anchor_from_camera at frame 3"),
    (lambda: Message("generate", {**_request(_dolly()).content},
                     _request(_dolly()).buffers[:3]), "generate needs 3 buffers"),
    (lambda: Message("generate", {**_request(_dolly()).content, "camera": {
        **_request(_dolly()).content["camera"], "frames": {"buffer": 0, "layout": []}}}, _request(_dolly()).buffers),
     "camera.frames.buffer"),
    (lambda: Message("generate", {**_request(_dolly()).content, "camera": {
        **_request(_dolly()).content["camera"], "frames": {"buffer": 3, "layout": ["x"]}}},
        _request(_dolly()).buffers), "camera.frames.layout"),
    (lambda: _request({"focal_length_mm": 50.0, "sensor_width_mm": 36.0, "resolution": [64, 64]}),
     "camera.sensor_height_mm is missing"),
    (lambda: _request({**_spec().to_content(), "sensor_fit": "DIAGONAL"}), "camera.sensor_fit must be one of"),
    (lambda: _request({**_spec().to_content(), "shift_x": 1e9}), r"camera.shift_x = 1000000000.0 is outside"),
    (lambda: _request({**_spec().to_content(), "resolution": [0, 64]}), "camera.resolution must be"),
    (lambda: Message("generate", {**_request(_spec()).content, "camera": {**_spec().to_content(), "fov": 1.0}},
                     _request(_spec()).buffers), r"camera has unknown field\(s\) \['fov'\]"),
])
def test_bad_cameras_are_refused_naming_the_field(make, text):
    with pytest.raises(BridgeError) as err:
        _job(make())
    assert err.value.code == "bad_request"
    assert __import__("re").search(text, err.value.message), err.value.message


def test_payload_is_bounded_by_the_frame_count():
    """Rows must equal the job's frames, so the longest job (600 s at 240 fps) carries at most 24 MiB of
    camera rows, within the message limit."""
    rows = DEFAULT_LIMITS.max_audio_seconds * DEFAULT_LIMITS.max_fps
    assert rows * FRAME_COLUMNS * 8 < DEFAULT_LIMITS.max_message_bytes / 4


def test_plate_size_is_decided_by_one_rule():
    still = _spec(resolution=(1920, 1080))
    assert plate_size((128, 96), still, (128, 128), 512).size == (128, 96)             # explicit wins
    fitted = plate_size(None, still, (128, 128), 512)
    assert fitted.size == (512, 288) and fitted.fitted_from == (1920, 1080)          # camera, fitted
    assert plate_size(None, _dolly(), (128, 128), 512).size == (64, 48)              # a track's base
    assert plate_size(None, None, (128, 128), 512).size == (128, 128)                # subject's own
    with pytest.raises(PlateSizeError, match="above"):
        plate_size((1024, 1024), None, (128, 128), 512)


def test_server_welcome_announces_per_frame_cameras(tmp_path):
    """How a new client learns that a server renders a camera per frame (older ones lack the key)."""
    from bridge.client import SyncClient
    from test_server_support import start_server
    server = start_server(tmp_path)
    client = SyncClient(server.address, timeout_s=5.0)
    try:
        assert client.hello().content["capabilities"][CAPABILITY] is True
    finally:
        client.close()
        server.stop()
