"""Synthetic track clips for unit tests: a procedural face whose mouth opens with a fake audio envelope.

Not training data for shipped models: it only lets the models and loops be
tested for behaviour (learnable sync, emotion offsets) before or without real tracks.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from backend.motion.tracks_data import MEL_BINS, MEL_PER_FRAME, TrackClip
from bridge.emotions import EMOTIONS
from bridge.landmarks import INNER_LIP, MOUTH, NUM_LANDMARKS, REGIONS, as_slice


def procedural_face() -> np.ndarray:
    """A plausible iBUG canonical face (eyes at x = +-0.5, y up), float32 [NUM_LANDMARKS, 3]."""
    p = np.zeros((NUM_LANDMARKS, 3), np.float64)
    a = np.pi * np.arange(17) / 16
    r = {name: as_slice(indices) for name, indices in REGIONS.items()}
    jaw = r["jaw"]
    p[jaw, 0], p[jaw, 1], p[jaw, 2] = -0.95 * np.cos(a), -0.35 - 1.2 * np.sin(a), -0.3 * np.abs(np.cos(a))
    bx = np.linspace(-0.85, -0.15, 5)
    p[r["brow_r"], 0], p[r["brow_r"], 1] = bx, 0.35 + 0.08 * np.sin(np.linspace(0, np.pi, 5))
    p[r["brow_l"], 0], p[r["brow_l"], 1] = -bx[::-1], p[r["brow_r"], 1][::-1]
    p[r["nose_bridge"], 1], p[r["nose_bridge"], 2] = np.linspace(-0.05, -0.6, 4), np.linspace(0.1, 0.4, 4)
    p[r["nose_base"], 0], p[r["nose_base"], 1], p[r["nose_base"], 2] = np.linspace(-0.2, 0.2, 5), -0.7, 0.25
    eye = np.array([[-0.2, 0], [-0.07, 0.07], [0.07, 0.07], [0.2, 0], [0.07, -0.07], [-0.07, -0.07]])
    p[r["eye_r"], :2] = eye + [-0.5, 0]
    p[r["eye_l"], :2] = eye + [0.5, 0]
    p[r["lip_outer"], :2] = [[-.4, -1.05], [-.25, -.95], [-.1, -.92], [0, -.93], [.1, -.92], [.25, -.95],
                    [.4, -1.05], [.25, -1.17], [.1, -1.2], [0, -1.21], [-.1, -1.2], [-.25, -1.17]]
    p[r["lip_inner"], :2] = [[-.32, -1.05], [-.12, -1.03], [0, -1.03], [.12, -1.03], [.32, -1.05],
                    [.12, -1.035], [0, -1.035], [-.12, -1.035]]
    p[as_slice(MOUTH), 2] = 0.2
    return p.astype(np.float32)


LOWER_FACE = np.r_[np.arange(5, 12), np.arange(55, 60), np.arange(65, INNER_LIP.stop)]
#: a fixed, recognisable displacement per emotion (neutral = 0) for synthetic MEAD-like clips
_EMOTION_OFFSETS = np.random.default_rng(123).normal(0, 0.04, (len(EMOTIONS), NUM_LANDMARKS, 3)).astype(np.float32)
_EMOTION_OFFSETS[0] = 0


def synthetic_envelope(frames: int, rng: np.random.Generator) -> np.ndarray:
    """Syllable-like energy in [0, 1] per frame with silent gaps."""
    env = np.zeros(frames)
    t = 0
    while t < frames:
        if rng.random() < 0.25:
            t += rng.integers(8, 30)          # pause
            continue
        n = int(rng.integers(3, 9))           # syllable
        env[t:t + n] = np.sin(np.linspace(0, np.pi, n + 2)[1:-1])[: frames - t] * rng.uniform(0.4, 1.0)
        t += n
    return env


def synthetic_clip(name: str, frames: int = 250, seed: int = 0, speaker: str = "synth",
                   emotion: str | None = None, with_audio: bool = True) -> TrackClip:
    rng = np.random.default_rng(seed)
    identity = np.random.default_rng(zlib.crc32(speaker.encode()))
    face = procedural_face() + identity.normal(0, 0.02, (NUM_LANDMARKS, 3)).astype(np.float32)   # one face per speaker
    env = synthetic_envelope(frames, rng)
    lms = np.repeat(face[None], frames, 0)
    lms[:, LOWER_FACE, 1] -= 0.18 * env[:, None].astype(np.float32)
    if emotion is not None:
        lms += _EMOTION_OFFSETS[EMOTIONS.index(emotion)]
    lms += rng.normal(0, 0.003, lms.shape).astype(np.float32)
    mel = None
    if with_audio:
        env_rows = np.repeat(env, MEL_PER_FRAME)
        shape = np.exp(-np.linspace(0, 3, MEL_BINS))
        mel = np.log(1e-4 + env_rows[:, None] * shape[None] * rng.uniform(0.5, 1.5, (len(env_rows), MEL_BINS)))
        mel = mel.astype(np.float32)
    ang = 0.05 * np.sin(np.arange(frames) / 20.0)
    rot = np.stack([np.array([[np.cos(x), 0, np.sin(x)], [0, 1, 0], [-np.sin(x), 0, np.cos(x)]]) for x in ang])
    trans = np.stack([0.01 * np.sin(np.arange(frames) / 30.0), np.zeros(frames), np.full(frames, 0.6)], 1)
    return TrackClip(name=name, landmarks=lms.astype(np.float32), rotation=rot.astype(np.float32),
                     translation=trans.astype(np.float32), mel=mel, speech=env > 0.05,
                     speaker=speaker, emotion=emotion, level=3 if emotion not in (None, "neutral") else 1)


def write_clip(clip: TrackClip, folder: str | Path) -> Path:
    """Write a clip in the track-file layout (npz + json), as the data module does."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(landmarks=clip.landmarks, rotation=clip.rotation, translation=clip.translation,
                  scale=np.ones(clip.frames, np.float32), speech=clip.speech)
    if clip.mel is not None:
        arrays["mel"] = clip.mel
    np.savez(folder / f"{clip.name}.npz", **arrays)
    meta = dict(speaker=clip.speaker, emotion=clip.emotion, level=clip.level, split=clip.split,
                has_audio=clip.mel is not None, fps=25.0, frames=clip.frames)
    (folder / f"{clip.name}.json").write_text(json.dumps(meta))
    return folder / f"{clip.name}.npz"


def synthetic_dataset(folder: str | Path, talking: int = 6, frames: int = 250) -> Path:
    """A folder of synthetic talking clips (with audio) and two MEAD-like speakers x 8 emotions."""
    for i in range(talking):
        c = synthetic_clip(f"talk_{i}", frames, seed=i, speaker=f"s{i}")
        c.split = "test" if i == talking - 1 else "train"
        write_clip(c, folder)
    for s, spk in enumerate(("M030", "W009")):
        for e, emo in enumerate(EMOTIONS):
            write_clip(synthetic_clip(f"{spk}_{emo}", 95, seed=100 + 10 * s + e, speaker=spk,
                                      emotion=emo, with_audio=False), folder)
    return Path(folder)
