"""A stand-in motion stage for tests: a template face whose mouth opens with the audio's loudness.

Server, CLI and add-on tests use it where the trained ``backend.motion.stage.MotionStage`` is
not the unit under test (it is fast and needs no models); production never serves it
(``backend.composition`` fails at start-up instead). Numpy only. It follows the canonical-space contract
(origin between the eye centres, inter-ocular distance 1, +y up, +z toward the
viewer), honours the emotion arrays with a small hand-made displacement per
emotion (intensity 0 gives exactly none), blinks, and keeps a neutral head pose
(with a faint seeded sway when ``idle_pose`` is set).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from backend.pipeline.base import AUDIO_SAMPLE_RATE, GenerateJob, StageContext
from bridge.emotions import EMOTION_INDEX, NUM_EMOTIONS

CHUNK_FRAMES = 25
#: head 8 inter-ocular distances (about 50 cm) in front of the camera, OpenCV axes
DEFAULT_TRANSLATION = np.array([0.0, 0.0, 8.0], np.float32)
MAX_MOUTH_OPEN = 0.35   # canonical units at full loudness


def template_face() -> np.ndarray:
    """A plausible neutral face, float32 [68, 3], canonical space (hand-placed, symmetric)."""
    t = np.linspace(0.0, np.pi, 17)
    jaw = np.stack([-1.05 * np.cos(t), -0.1 - 1.65 * np.sin(t), -0.9 + 0.75 * np.sin(t)], axis=1)
    brow_x = np.linspace(0.95, 0.2, 5)
    brow_y = 0.45 + 0.1 * np.sin(np.linspace(0.3, 2.8, 5))
    brow_r = np.stack([-brow_x, brow_y, np.full(5, 0.15)], axis=1)
    brow_l = brow_r[::-1] * np.array([-1.0, 1.0, 1.0])
    nose_bridge = np.stack([np.zeros(4), [0.1, -0.2, -0.5, -0.8], [0.15, 0.3, 0.45, 0.6]], axis=1)
    nose_base = np.stack([[-0.3, -0.15, 0.0, 0.15, 0.3], [-0.85, -0.9, -0.93, -0.9, -0.85],
                          [0.3, 0.36, 0.4, 0.36, 0.3]], axis=1)
    eye_offsets = np.array([[-0.22, 0.0], [-0.08, 0.08], [0.08, 0.08], [0.22, 0.0], [0.08, -0.08], [-0.08, -0.08]])
    eye_r = np.column_stack([eye_offsets[:, 0] - 0.5, eye_offsets[:, 1], np.full(6, 0.05)])
    # left eye in iBUG order starts at its inner corner: mirror of the right eye's order
    eye_l = eye_r[[3, 2, 1, 0, 5, 4]] * np.array([-1.0, 1.0, 1.0])
    lip_outer = np.array([[-0.45, -1.25], [-0.3, -1.15], [-0.12, -1.1], [0.0, -1.12], [0.12, -1.1], [0.3, -1.15],
                          [0.45, -1.25], [0.3, -1.36], [0.12, -1.41], [0.0, -1.42], [-0.12, -1.41], [-0.3, -1.36]])
    lip_inner = np.array([[-0.38, -1.25], [-0.12, -1.24], [0.0, -1.24], [0.12, -1.24], [0.38, -1.25],
                          [0.12, -1.26], [0.0, -1.26], [-0.12, -1.26]])
    lips = np.vstack([lip_outer, lip_inner])
    lips_z = 0.35 - 0.25 * np.abs(lips[:, 0])
    face = np.vstack([jaw, brow_r, brow_l, nose_bridge, nose_base, eye_r, eye_l,
                      np.column_stack([lips, lips_z])])
    face -= np.concatenate([(face[36:42].mean(0) + face[42:48].mean(0)) / 2])
    return face.astype(np.float32)


def _mouth_open_direction() -> np.ndarray:
    """Per-point downward motion (0..1) when the jaw opens: lower lips fully, chin partly."""
    d = np.zeros((68, 3), np.float32)
    d[[55, 56, 57, 58, 59, 65, 66, 67], 1] = -1.0
    d[[54, 48, 60, 64], 1] = -0.45
    d[5:12, 1] = -np.array([0.2, 0.45, 0.7, 0.8, 0.7, 0.45, 0.2])
    d[[50, 51, 52, 61, 62, 63], 1] = 0.1
    return d


def _emotion_displacements(face: np.ndarray) -> np.ndarray:
    """[8, 68, 3] displacement per emotion at full intensity (neutral: none)."""
    disp = np.zeros((NUM_EMOTIONS, 68, 3), np.float32)
    corners, brows_inner, brows = [48, 54, 60, 64], [20, 21, 22, 23], list(range(17, 27))
    side = np.sign(face[:, 0])

    def put(name, points, dx=0.0, dy=0.0, dz=0.0, outward=False):
        idx = EMOTION_INDEX[name]
        for p in points:
            disp[idx, p] += [dx * (side[p] if outward else 1.0), dy, dz]

    put("happy", corners, dx=0.08, dy=0.1, outward=True)
    put("happy", [41, 40, 46, 47], dy=0.03)
    put("sad", corners, dy=-0.08)
    put("sad", brows_inner, dy=0.1)
    put("angry", brows_inner, dx=-0.05, dy=-0.1, outward=True)
    put("angry", [37, 38, 43, 44], dy=-0.03)
    put("surprised", brows, dy=0.15)
    put("surprised", [37, 38, 43, 44], dy=0.04)
    put("surprised", [55, 56, 57, 58, 59, 65, 66, 67], dy=-0.12)
    put("fear", brows_inner, dy=0.12)
    put("fear", corners, dx=0.06, outward=True)
    put("disgusted", [49, 50, 51, 52, 53, 61, 62, 63], dy=0.07)
    put("disgusted", [31, 32, 33, 34, 35], dy=0.03)
    put("contempt", [54, 64], dx=0.05, dy=0.07)
    return disp


def loudness_per_frame(audio: np.ndarray, frame_count: int, fps: float) -> np.ndarray:
    """RMS of the audio under each output frame, scaled to about [0, 1] (95th percentile = 1)."""
    if frame_count == 0:
        return np.zeros(0, np.float32)
    centres = (np.arange(frame_count) + 0.5) / fps * AUDIO_SAMPLE_RATE
    half = max(1, int(AUDIO_SAMPLE_RATE / fps / 2))
    squared = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    lo = np.clip(centres.astype(np.int64) - half, 0, len(audio))
    hi = np.clip(centres.astype(np.int64) + half, 0, len(audio))
    rms = np.sqrt((squared[hi] - squared[lo]) / np.maximum(hi - lo, 1))
    reference = np.percentile(rms, 95) if np.any(rms > 0) else 1.0
    return np.clip(rms / max(reference, 1e-6), 0.0, 1.2).astype(np.float32)


def _smooth(values: np.ndarray, frames: int) -> np.ndarray:
    if frames <= 1 or len(values) < 2:
        return values
    kernel = np.hanning(frames + 2)[1:-1]
    kernel /= kernel.sum()
    padded = np.pad(values, (frames // 2, frames - 1 - frames // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid").astype(np.float32)


class PlaceholderMotionStage:
    """Landmarks from loudness and the emotion arrays; writes the ``ctx.state`` keys of the motion stage."""
    name = "motion"
    weight = 1.0

    def __init__(self, device: Any = None, subjects: Any = None):
        self.device = device
        self.subjects = subjects
        self.face = template_face()
        self.open_direction = _mouth_open_direction()
        self.emotion_displacement = _emotion_displacements(self.face)

    def _base_translation(self, job: GenerateJob) -> np.ndarray:
        """The subject's median head position when its track exists, else a default in front of the camera."""
        try:
            track = np.load(self.subjects.path(job.subject) / "track.npz")
            return np.median(np.asarray(track["translation"], np.float32), axis=0)
        except Exception:  # no subject assets yet: placeholder defaults
            return DEFAULT_TRANSLATION.copy()

    def run(self, job: GenerateJob, ctx: StageContext) -> None:
        frames, fps = job.frame_count, job.fps
        rng = np.random.default_rng(job.seed)
        loudness = _smooth(loudness_per_frame(job.audio, frames, fps), max(1, int(round(fps * 0.08))))
        speech = loudness > 0.15
        opening = MAX_MOUTH_OPEN * loudness
        neutral = self.face[None] + opening[:, None, None] * self.open_direction[None]
        neutral = neutral + self._blinks(frames, fps, rng)
        emotion = np.einsum("fe,epc->fpc", job.emotion_weights * job.emotion_intensity[:, None],
                            self.emotion_displacement)
        landmarks = (neutral + emotion).astype(np.float32)
        rotation, translation = self._pose(job, rng)
        ctx.state.update(landmarks=landmarks, neutral_landmarks=neutral.astype(np.float32),
                         rotation=rotation, translation=translation, speech_mask=speech)
        for start in range(0, frames, CHUNK_FRAMES):
            ctx.check_cancelled()
            stop = min(start + CHUNK_FRAMES, frames)
            ctx.emit_landmarks(start, landmarks[start:stop], rotation[start:stop], translation[start:stop])
            ctx.progress(stop / frames, f"{stop}/{frames} frames")

    def _blinks(self, frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
        """Eyelid closure: upper lids down to the lower ones for ~0.15 s every 2-5 s."""
        offsets = np.zeros((frames, 68, 3), np.float32)
        closure = np.zeros(frames, np.float32)
        t = rng.uniform(0.5, 2.5)
        duration = max(1, int(round(0.15 * fps)))
        while int(t * fps) < frames:
            start = int(t * fps)
            shape = np.sin(np.linspace(0, np.pi, duration + 2)[1:-1])
            closure[start:start + duration] = shape[:max(0, min(duration, frames - start))]
            t += rng.uniform(2.0, 5.0)
        for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
            offsets[:, upper, 1] = closure * (self.face[lower, 1] - self.face[upper, 1]) * 0.9
        return offsets

    def _pose(self, job: GenerateJob, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        frames = job.frame_count
        translation = np.tile(self._base_translation(job), (frames, 1)).astype(np.float32)
        rotation = np.tile(np.eye(3, dtype=np.float32), (frames, 1, 1))
        if job.idle_pose and frames:
            t = np.arange(frames) / job.fps
            phase = rng.uniform(0, 2 * np.pi, 2)
            yaw = np.radians(1.5) * np.sin(2 * np.pi * 0.11 * t + phase[0]) * max(job.temperature, 0.0)
            pitch = np.radians(1.0) * np.sin(2 * np.pi * 0.07 * t + phase[1]) * max(job.temperature, 0.0)
            cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
            rotation[:, 0, 0], rotation[:, 0, 2], rotation[:, 2, 0], rotation[:, 2, 2] = cy, sy, -sy, cy
            pitch_m = np.zeros((frames, 3, 3), np.float32)
            pitch_m[:, 0, 0] = 1
            pitch_m[:, 1, 1], pitch_m[:, 1, 2], pitch_m[:, 2, 1], pitch_m[:, 2, 2] = cp, -sp, sp, cp
            rotation = np.einsum("fij,fjk->fik", pitch_m, rotation).astype(np.float32)
        return rotation, translation
