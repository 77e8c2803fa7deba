"""The end-to-end demo: an in-process backend, a bundled speech clip, emotion keys, results on disk.

It drives the real path a user's client takes: a ZeroMQ server on an ipc socket,
``emogene generate`` as the client, then composes what a person wants to look at:
``demo.mp4`` (plates over the subject's background, with the speech as AAC),
``landmarks_side_by_side.mp4`` (plate | landmark track), the landmark CSV/NPZ and
``timing.json``.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_SPEECH = ASSETS / "demo_speech.wav"
#: neutral at the start, happy through the middle sentence, sad for the last one (seconds)
DEMO_EMOTION = "neutral@0,neutral@2.4,happy:0.9@3.4,happy:0.9@6.8,sad:1.0@8.2"
#: the paper's plate size: one 128² NeRF pass + the subject's x4 super-resolution network per plate
DEMO_RESOLUTION = (512, 512)


@dataclass
class DemoConfig:
    audio: Path = DEMO_SPEECH
    emotion: str = DEMO_EMOTION
    out: Path = Path("demo_out")
    fps: float = 25.0
    subject: str = "default"
    resolution: tuple[int, int] | None = DEMO_RESOLUTION
    landmarks_only: bool = False
    device: str = "auto"
    seed: int = 0
    emotion_comparison: bool = True   # also render a stretch as neutral | happy | sad (demo_emotions.py)
    timings: dict[str, float] = field(default_factory=dict)


def _generate_options(config: DemoConfig, address: str, landmarks_only: bool):
    """What ``emogene generate`` would be asked, as the client library's options."""
    from backend.commands._connection import Connection
    from backend.commands.generate import GenerateOptions

    return GenerateOptions(audio=Path(config.audio), emotion=config.emotion, fps=config.fps, out=Path(config.out),
                           connection=Connection(address), subject=config.subject, landmarks_only=landmarks_only,
                           resolution=config.resolution or None, seed=config.seed)


def run_demo(config: DemoConfig) -> dict:
    """Run the whole demo; returns the timing/summary dict also written to ``timing.json``."""
    from backend.commands.generate import generate_to_folder
    from backend.device import resolve_device
    from backend.composition import StageSet
    from backend.server import BackendServer, ServerConfig
    from backend.subjects import SubjectStore

    t0 = time.perf_counter()
    out = Path(config.out)
    if out.exists():
        for old in list(out.glob("plates/*.png")):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    subjects = SubjectStore()
    stage_set = StageSet(device=device, subjects=subjects)
    landmarks_only = config.landmarks_only or not stage_set.can_render
    if landmarks_only and not config.landmarks_only:
        print("demo: this build has no plate renderer; writing landmarks only")
    with tempfile.TemporaryDirectory(prefix="emogene-demo-") as tmp:
        server = BackendServer(ServerConfig(bind=f"ipc://{tmp}/backend.sock", jobs_dir=Path(tmp) / "jobs"),
                               stage_set, subjects, device_name=str(device))
        address = server.start()
        config.timings["backend_start_s"] = time.perf_counter() - t0
        print(f"demo: backend on {address} (device {device}, motion {type(stage_set.motion).__name__})")
        try:
            t1 = time.perf_counter()
            code = generate_to_folder(_generate_options(config, address, landmarks_only))
            config.timings["generate_s"] = time.perf_counter() - t1
            if code == 0 and config.emotion_comparison:
                t3 = time.perf_counter()
                comparison = _emotion_comparison(config, address, landmarks_only, subjects)
                config.timings["emotion_comparison_s"] = time.perf_counter() - t3
        finally:
            server.stop()
    if code != 0:
        raise RuntimeError(f"generate failed with exit code {code}")
    t2 = time.perf_counter()
    summary = compose_videos(config, subjects)
    if config.emotion_comparison:
        summary.update(comparison)
        summary["files"] += comparison["emotion_comparison"]["files"]
    config.timings["compose_videos_s"] = time.perf_counter() - t2
    config.timings["total_s"] = time.perf_counter() - t0
    summary.update(timings={k: round(v, 2) for k, v in config.timings.items()}, device=str(device),
                   emotion_spec=config.emotion, audio=str(config.audio), fps=config.fps)
    (out / "timing.json").write_text(json.dumps(summary, indent=2))
    return summary


def _emotion_comparison(config: DemoConfig, address: str, landmarks_only: bool, subjects) -> dict:
    """The same stretch of speech once per emotion, side by side (see backend/demo_emotions.py)."""
    from backend.data.audio import load_audio
    from backend.demo_emotions import ComparisonSpan, generate_take_via, render_comparison

    base = _generate_options(config, address, landmarks_only)
    print("demo: rendering the emotion comparison (neutral | happy | sad)")
    return render_comparison(ComparisonSpan(), load_audio(config.audio), Path(config.out), config.fps,
                             generate_take_via(base),
                             lambda size: _background(subjects, config.subject, size))


def _background(subjects, name: str, size: tuple[int, int]) -> np.ndarray:
    """The subject's clean background plate if it has one, else a neutral grey gradient."""
    import cv2

    try:
        folder = subjects.path(name)
        for candidate in ("background.png", "background.jpg"):
            if (folder / candidate).is_file():
                image = cv2.cvtColor(cv2.imread(str(folder / candidate), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    except LookupError:
        pass
    ramp = np.linspace(70, 40, size[1], dtype=np.float32)[:, None, None]
    return np.broadcast_to(ramp, (size[1], size[0], 3)).astype(np.uint8).copy()


def compose_videos(config: DemoConfig, subjects) -> dict:
    """Write demo.mp4 and landmarks_side_by_side.mp4 from the files ``generate`` wrote."""
    import cv2
    from tqdm import tqdm

    from backend.data.audio import load_audio
    from backend.media.compositing import composite_over, draw_landmarks
    from backend.media.video import write_mp4

    out = Path(config.out)
    track = np.load(out / "landmarks.npz")
    landmarks, intensity, weights = track["landmarks"], track["emotion_intensity"], track["emotion_weights"]
    frames = landmarks.shape[0]
    plate_paths = sorted((out / "plates").glob("frame_*.png"))
    audio = load_audio(config.audio)
    if plate_paths:
        first = cv2.imread(str(plate_paths[0]), cv2.IMREAD_UNCHANGED)
        size = (first.shape[1], first.shape[0])
    else:
        size = (256, 256)
    background = _background(subjects, config.subject, size)
    from bridge.emotions import EMOTIONS

    def composited():
        for i in range(frames):
            if i < len(plate_paths):
                rgba = cv2.cvtColor(cv2.imread(str(plate_paths[i]), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
                yield composite_over(rgba, background)
            else:
                yield background

    def side_by_side():
        for i, plate in enumerate(composited()):
            label = f"{EMOTIONS[int(weights[i].argmax())]} {intensity[i]:.2f}  f{i}"
            drawing = draw_landmarks(landmarks[i], size=size[1], title=label)
            yield np.concatenate([plate, drawing], axis=1)

    demo_mp4 = write_mp4(out / "demo.mp4", tqdm(composited(), total=frames, desc="demo.mp4"), config.fps, audio)
    sbs_mp4 = write_mp4(out / "landmarks_side_by_side.mp4",
                        tqdm(side_by_side(), total=frames, desc="side-by-side"), config.fps, audio)
    return {"frames": int(frames), "plates": len(plate_paths), "audio_seconds": round(len(audio) / 16000, 3),
            "files": [p.name for p in (demo_mp4, sbs_mp4, out / "landmarks.npz", out / "landmarks.csv")]}
