"""Helpers shared by the server/CLI tests (no tests here): servers on real sockets with the placeholder stage."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import soundfile
import zmq

from backend.pipeline.placeholder import PlaceholderMotionStage
from backend.pipeline.registry import StageSet
from backend.server import BackendServer, ServerConfig
from backend.subjects import SubjectStore
from bridge.emotion_spec import spec_to_frames
from bridge.protocol import Limits
from bridge.requests import build_generate, frame_count_for

REPO = Path(__file__).resolve().parents[1]
SPEECH_WAV = REPO / "backend" / "assets" / "demo_speech.wav"
KEY = b"test-key-0123456789abcdef"


class SlowPlaceholder(PlaceholderMotionStage):
    """The placeholder, waiting ``delay_s`` before each landmark chunk (so jobs last long enough to cancel)."""

    def __init__(self, device=None, subjects=None, delay_s: float = 0.0):
        super().__init__(device, subjects)
        self.delay_s = delay_s

    def run(self, job, ctx):
        emit = ctx.emit_landmarks

        def slow_emit(*args):
            time.sleep(self.delay_s)
            emit(*args)

        ctx.emit_landmarks = slow_emit
        super().run(job, ctx)


class PlaceholderStages(StageSet):
    """The registry, pinned to the placeholder motion stage (the trained one may be absent)."""

    def __init__(self, device, subjects, delay_s: float = 0.0):
        self.delay_s = delay_s
        super().__init__(device, subjects)

    def _motion_stage(self):
        return SlowPlaceholder(self.device, self.subjects, self.delay_s)

    def _render_stage(self):
        return None


def start_server(jobs_dir: Path, *, key: bytes | None = None, limits: Limits = Limits(), delay_s: float = 0.0,
                 bind: str = "tcp://127.0.0.1:*", subjects_dir: Path | None = None) -> BackendServer:
    subjects = SubjectStore([subjects_dir] if subjects_dir else None)
    config = ServerConfig(bind=bind, key=key, jobs_dir=jobs_dir, limits=limits)
    server = BackendServer(config, PlaceholderStages("cpu", subjects, delay_s), subjects)
    server.start()
    return server


def speech(seconds: float, rate: int = 16000) -> np.ndarray:
    """The first ``seconds`` of the shipped demo speech (real recorded speech), at ``rate``."""
    audio, source_rate = soundfile.read(str(SPEECH_WAV), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if source_rate != rate:
        from backend.server.audio_input import resample
        audio = resample(audio, source_rate, rate)
    return np.ascontiguousarray(audio[: int(seconds * rate)], dtype=np.float32)


def generate_request(seconds: float = 1.0, fps: float = 25.0, emotion: str = "happy:0.8", rate: int = 16000,
                     **options):
    audio = speech(seconds, rate)
    frames = frame_count_for(len(audio) / rate, fps)
    weights, intensity = spec_to_frames(emotion, frames, fps)
    options.setdefault("landmarks_only", True)
    return build_generate(audio, rate, fps, weights, intensity, **options)


def raw_dealer(address: str) -> zmq.Socket:
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(address)
    return socket


def recv_frames(socket: zmq.Socket, timeout_s: float = 5.0) -> list[bytes]:
    assert socket.poll(int(timeout_s * 1000)), "no reply from the server"
    return socket.recv_multipart()


class DotRenderStage:
    """A stand-in renderer for CLI/server tests: draws the landmarks as opaque dots on a transparent plate."""
    name = "render"
    weight = 1.0

    def __init__(self, device=None, subjects=None):
        self.device = device

    def run(self, job, ctx):
        width, height = job.resolution or (64, 64)
        landmarks = ctx.state["landmarks"]
        for frame in range(job.frame_count):
            ctx.check_cancelled()
            plate = np.zeros((height, width, 4), np.uint8)
            # noise under zero alpha: realistic PNG sizes (straight alpha keeps colour where alpha is 0)
            plate[..., :3] = np.random.default_rng(frame).integers(0, 256, (height, width, 3), dtype=np.uint8)
            xy = landmarks[frame, :, :2] * np.array([1.0, -1.0]) * (width / 4) + np.array([width / 2, height / 3])
            cols = np.clip(xy[:, 0].astype(int), 0, width - 1)
            rows = np.clip(xy[:, 1].astype(int), 0, height - 1)
            plate[rows, cols] = (255, 200, 150, 255)
            ctx.emit_plate(frame, plate)
            ctx.progress((frame + 1) / job.frame_count)


class PlateStages(PlaceholderStages):
    def _render_stage(self):
        return DotRenderStage(self.device, self.subjects)


def start_plate_server(jobs_dir: Path, subjects_dir: Path, **kwargs) -> BackendServer:
    subjects = SubjectStore([subjects_dir])
    config = ServerConfig(bind="tcp://127.0.0.1:*", jobs_dir=jobs_dir, **kwargs)
    server = BackendServer(config, PlateStages("cpu", subjects), subjects)
    server.start()
    return server


def make_subject(root: Path, name: str = "tester") -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "subject.json").write_text(json.dumps({"name": name, "version": 1}))
    return root


def free_tcp_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
