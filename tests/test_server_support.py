"""Helpers shared by the server/CLI tests (no tests here): servers on real sockets with the placeholder stage."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import soundfile
import zmq

from backend.composition import StageSet
from backend.server import BackendServer, ServerConfig
from backend.subjects import SubjectStore
from bridge.emotion_spec import spec_to_frames
from bridge.protocol import Limits
from bridge.requests import build_generate, frame_count_for
from placeholder_motion import PlaceholderMotionStage

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
    """The composition root's stages, pinned to the placeholder motion stage (the trained one may be absent)."""

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


# -- `emogene serve` as a real process, with the stand-in stages ------------------------------------------
SERVE_WITH_STAND_INS = """
import os, sys
sys.path.insert(0, {tests!r})
import backend.composition as composition
import test_server_support as support
delay = float(os.environ.get("EMOGENE_TEST_DELAY", "0"))
stages = support.PlateStages if os.environ.get("EMOGENE_TEST_PLATES") else support.PlaceholderStages
composition.StageSet = lambda device, subjects: stages(device, subjects, delay)
from backend.cli import main
sys.exit(main(["serve", *sys.argv[1:]]))
"""


def serve_process(jobs_dir: Path, *args: str, delay_s: float = 0.0, plates: bool = False,
                  port: int | None = None, preexec_fn=None, timeout_s: float = 60.0):
    """`emogene serve` (the real command: arguments, signals, keys) in a subprocess, with the placeholder
    motion stage (``delay_s`` per landmark chunk) and, with ``plates``, the dot renderer.
    Returns (process, address) once it printed 'listening on'."""
    import os
    import subprocess
    import sys

    port = port or free_tcp_port()
    env = {**os.environ, "EMOGENE_TEST_DELAY": str(delay_s), "PYTHONUNBUFFERED": "1"}
    if plates:
        env["EMOGENE_TEST_PLATES"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_WITH_STAND_INS.format(tests=str(REPO / "tests")),
         "--bind", f"tcp://127.0.0.1:{port}", "--jobs-dir", str(jobs_dir), "--device", "cpu", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env, preexec_fn=preexec_fn)
    deadline = time.monotonic() + timeout_s
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on" in line:
            _drain_in_background(proc)
            return proc, line.split("listening on", 1)[1].split()[0]
    proc.kill()
    raise AssertionError("emogene serve did not start: " + "".join(lines) + proc.stdout.read())


def _drain_in_background(proc) -> None:
    """Keep reading the server's output so a chatty log never blocks it on a full pipe."""
    import threading

    proc.log = []

    def drain():
        for line in proc.stdout:
            proc.log.append(line)

    threading.Thread(target=drain, daemon=True).start()


def stop_process(proc, sig=None) -> None:
    import signal

    if proc.poll() is None:
        proc.send_signal(sig or signal.SIGTERM)
        try:
            proc.wait(20)
        except Exception:
            proc.kill()
            proc.wait(5)
