"""The placeholder motion stage, the in-process runner and the on-disk job store."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from backend.pipeline.base import GenerateJob
from backend.pipeline.local import decode_png, encode_png, run_generate_local
from backend.server.job_store import JobStore
from backend.subjects import SubjectStore
from bridge.client import SyncClient
from bridge.emotion_spec import spec_to_frames
from bridge.messages import EncodedBuffer, Message
from bridge.protocol import MessageType
from bridge.requests import frame_count_for
from placeholder_motion import loudness_per_frame, template_face
from test_server_support import PlaceholderStages, PlateStages, generate_request, speech, start_server


def _job(seconds=2.0, fps=25.0, emotion="neutral", audio=None, **kw) -> GenerateJob:
    audio = speech(seconds) if audio is None else audio
    frames = frame_count_for(len(audio) / 16000, fps)
    weights, intensity = spec_to_frames(emotion, frames, fps)
    return GenerateJob(job_id="a" * 32, audio=audio, fps=fps, frame_count=frames, emotion_weights=weights,
                       emotion_intensity=intensity, subject="default", landmarks_only=True, **kw)


def test_template_face_follows_the_canonical_contract():
    face = template_face()
    right, left = face[36:42].mean(0), face[42:48].mean(0)
    np.testing.assert_allclose((right + left) / 2, 0, atol=1e-6)         # origin between the eye centres
    assert np.linalg.norm(left - right) == pytest.approx(1.0)          # inter-ocular distance 1
    assert left[0] > right[0]                                            # +x toward the subject's left
    assert face[8, 1] < face[33, 1] < face[27, 1]                        # chin below nose below bridge: +y up
    assert face[30, 2] > face[0, 2]                                      # nose tip toward the viewer: +z


def test_placeholder_mouth_follows_loudness_and_emotion_is_additive():
    stages = PlaceholderStages("cpu", SubjectStore([]))
    silence_then_speech = np.concatenate([np.zeros(16000, np.float32), speech(1.0)])
    result = run_generate_local(_job(audio=silence_then_speech), stages)
    assert result.state == "done" and result.landmarks.shape == (50, 68, 3)
    assert not np.isnan(result.landmarks).any()
    gap = result.landmarks[:, 57, 1] - result.landmarks[:, 51, 1]       # lower lip minus upper lip (y up)
    assert np.ptp(gap[:20]) < 1e-6                                       # silent: mouth still
    assert gap[30:].min() < gap[:20].min() - 0.05                        # speech: mouth opens
    np.testing.assert_array_equal(result.stage_state["speech_mask"][:20], False)
    happy = run_generate_local(_job(audio=silence_then_speech, emotion="happy"), stages)
    zero = run_generate_local(_job(audio=silence_then_speech, emotion="happy:0"), stages)
    np.testing.assert_array_equal(zero.landmarks, result.landmarks)     # intensity 0: exactly no displacement
    corner_lift = happy.landmarks[:, 48, 1] - result.landmarks[:, 48, 1]
    assert corner_lift.min() > 0.05                                      # happy lifts the mouth corners
    np.testing.assert_allclose(np.linalg.det(result.rotation), 1.0, atol=1e-5)


def test_loudness_scale():
    audio = np.concatenate([np.zeros(8000), 0.5 * np.ones(8000)]).astype(np.float32)
    loud = loudness_per_frame(audio, 25, 25.0)
    assert loud[:10].max() == 0 and loud[15:].min() == pytest.approx(1.0)


def test_local_runner_reports_progress_and_can_be_cancelled():
    stages = PlaceholderStages("cpu", SubjectStore([]))
    seen = []
    result = run_generate_local(_job(seconds=3.0), stages, on_message=seen.append)
    kinds = [m.type for m in seen]
    assert kinds[0] == MessageType.PROGRESS and kinds[-1] == MessageType.DONE
    assert result.timings["motion"] >= 0
    cancel = threading.Event()
    cancel.set()
    assert run_generate_local(_job(), stages, cancel_event=cancel).state == "cancelled"


def test_local_runner_collects_plates():
    stages = PlateStages("cpu", SubjectStore([]))
    job = _job(seconds=0.4, resolution=(32, 24))
    job.landmarks_only = False
    result = run_generate_local(job, stages)
    assert result.state == "done" and sorted(result.plates) == list(range(10))
    assert result.plates[0].shape == (24, 32, 4) and result.plates[0].dtype == np.uint8


def test_png_round_trip_keeps_straight_alpha():
    rgba = np.random.default_rng(1).integers(0, 256, (17, 23, 4), dtype=np.uint8)
    np.testing.assert_array_equal(decode_png(encode_png(rgba)), rgba)


def test_job_store_round_trip_and_age_limit(tmp_path):
    store = JobStore(tmp_path)
    job_id = "b" * 32
    store.create(job_id, {"fps": 25})
    msg = Message("plate", {"frame": 3}, [EncodedBuffer(b"png-bytes", "image/png")], job_id=job_id)
    store.append(job_id, 0, msg)
    store.append(job_id, 1, Message("landmarks", {"start": 0}, [np.ones((2, 68, 3), np.float32)], job_id=job_id))
    back = list(store.messages(job_id))
    assert [m.msg_id for m in back] == [msg.msg_id, back[1].msg_id] and back[0].bytes(0) == b"png-bytes"
    assert back[1].array(0).shape == (2, 68, 3) and len(list(store.messages(job_id, count=1))) == 1
    assert store.purge(max_age_s=3600) == []
    meta = store.read_meta(job_id)
    (tmp_path / job_id / "job.json").write_text(json.dumps({**meta, "updated": time.time() - 7200}))
    assert store.purge(max_age_s=3600, keep={job_id}) == []
    assert store.purge(max_age_s=3600) == [job_id] and not (tmp_path / job_id).exists()
    with pytest.raises(KeyError):
        store.read_meta("../etc")


def test_heartbeat_keeps_a_long_silent_job_alive(tmp_path):
    server = start_server(tmp_path / "jobs", delay_s=0.6)   # longer silences than the client's timeout
    try:
        with SyncClient(server.address, timeout_s=0.25) as client:
            job_id = client.submit(generate_request(seconds=2.0))
            assert list(client.iter_job(job_id))[-1].type == MessageType.DONE
    finally:
        server.stop()
