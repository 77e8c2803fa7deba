"""Inference glue: audio -> neutral landmarks (25 fps) -> resampled -> emotional landmarks + pose + blinks.

Pure computation on already-loaded models (:mod:`model_io`), shared by the pipeline
stage, the evaluation and the benchmark. Everything long is chunked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from backend.motion.audio2motion import gate_pauses
from backend.motion.emotion_deformer import EmotionDeformer, deform_track
from backend.motion.features import FPS, frame_log_mel, frames_for_audio, speech_mask
from backend.motion.model_io import SHIPPED_MODELS, MotionModels
from backend.motion.pose_sampling import PoseTrack, clip_segments
from backend.motion.subject_emotions import own_emotion_fields
from bridge.emotions import normalise_emotion

DEFAULT_POSE_TRACK = SHIPPED_MODELS / "default_pose.npz"


@dataclass
class SubjectMotion:
    """What the motion models need of a subject: its identity face, its real pose track and, for a capture session
    filmed in emotions, its own emotion fields (:mod:`subject_emotions`)."""
    face: np.ndarray | None       # [landmarks, 3] canonical mean face; None = the models' mean face
    pose: PoseTrack
    source: str
    #: emotion -> its own field ``[landmarks, 3]`` at intensity 1 (emotions it was filmed in); {} = the LDM's
    emotion_fields: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_track(cls, path: str | Path, clips: list[dict] | None = None) -> "SubjectMotion":
        """From a ``track.npz``: a capture session's holds its clips one after another (``clip_starts``); pose is
        never sampled across a clip or an edit cut inside one (``shot_starts``); ``clips`` (``subject.json``'s, same
        order) label them: its neutral clips are where head motion is drawn from and the reference its own emotion
        fields are measured from."""
        with np.load(path) as z:
            landmarks = np.asarray(z["landmarks"], np.float32) if "landmarks" in z else None
            rows = len(z["rotation"])
            segments = clip_segments(z["clip_starts"], rows) if "clip_starts" in z else ()
            labelled = bool(segments and clips and len(clips) == len(segments))
            neutral = tuple(i for i, c in enumerate(clips) if c.get("emotion") == "neutral") if labelled else ()
            fields = own_emotion_fields(landmarks, segments, clips) if labelled and landmarks is not None else {}
            cuts = tuple(z["shot_starts"]) if "shot_starts" in z else ()
            return cls(None if landmarks is None else landmarks.mean(0),
                       PoseTrack(z["rotation"], z["translation"], segments, neutral, cuts), str(path), fields)

    @classmethod
    def shipped(cls, models_folder: str | Path | None = None) -> "SubjectMotion":
        """The pose track shipped beside the models (``default_pose.npz``: rotation, translation, landmarks)."""
        path = Path(models_folder) / DEFAULT_POSE_TRACK.name if models_folder else DEFAULT_POSE_TRACK
        return cls.from_track(path if path.is_file() else DEFAULT_POSE_TRACK)


@dataclass
class NeutralMotion:
    neutral: np.ndarray      # float32 [T, landmarks, 3] at 25 fps
    speech: np.ndarray       # bool [T]
    mel: np.ndarray          # float32 [4T, 80]


def neutral_motion(models: MotionModels, audio: np.ndarray, face: np.ndarray | None = None,
                   temperature: float = 1.0, seed: int = 0, vad_backend: str = "silero",
                   on_chunk: Callable[[int, int], None] | None = None) -> NeutralMotion:
    """Speech (16 kHz mono) -> neutral canonical landmarks at 25 fps, lips closed in silence."""
    vae = models.audio2motion
    frames = frames_for_audio(len(audio))
    mel = frame_log_mel(audio, frames)
    speech = speech_mask(audio, frames, vad_backend) if len(audio) else np.zeros(frames, bool)
    disp = vae.generate(torch.from_numpy(mel), temperature=max(0.0, float(temperature)), seed=seed,
                        on_chunk=on_chunk)
    base = torch.as_tensor(face, dtype=torch.float32, device=disp.device) if face is not None else vae.mean_face
    disp = gate_pauses(disp, vae.rest_displacement, speech, base)
    return NeutralMotion((disp + base).cpu().numpy(), speech, mel)


def resample_times(frames_out: int, fps_out: float, frames_in: int, fps_in: float = FPS):
    """Source index (floor) and blend weight for each output frame, sampling at ``i / fps_out`` seconds."""
    src = np.arange(frames_out) * (fps_in / fps_out)
    src = np.clip(src, 0, frames_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, frames_in - 1)
    return lo, hi, (src - lo).astype(np.float32)


def resample_linear(values: np.ndarray, frames_out: int, fps_out: float, fps_in: float = FPS) -> np.ndarray:
    lo, hi, w = resample_times(frames_out, fps_out, len(values), fps_in)
    w = w.reshape(-1, *([1] * (values.ndim - 1)))
    return ((1 - w) * values[lo] + w * values[hi]).astype(values.dtype)


def resample_rotation(rotation: np.ndarray, frames_out: int, fps_out: float, fps_in: float = FPS) -> np.ndarray:
    rv = Rotation.from_matrix(rotation).as_rotvec()
    return Rotation.from_rotvec(resample_linear(rv, frames_out, fps_out, fps_in)).as_matrix().astype(np.float32)


def resample_mask(mask: np.ndarray, frames_out: int, fps_out: float, fps_in: float = FPS) -> np.ndarray:
    lo, hi, w = resample_times(frames_out, fps_out, len(mask), fps_in)
    return np.where(w < 0.5, mask[lo], mask[hi])


def sanitise_emotion(weights: np.ndarray, intensity: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Weights ``[frames, NUM_EMOTIONS]`` with rows summing to 1 and intensity in [0, 1], plus warnings.

    The server already rejects negative / non-finite weights and normalises rows;
    here anything that slips through is repaired, not fatal: non-finite -> 0,
    negative -> 0, all-zero rows -> neutral, intensity clipped to [0, 1], and a
    length mismatch is padded with the last row (or neutral) / cut.
    """
    return normalise_emotion(weights, intensity, frames=frames, repair=True)


def apply_emotion(models: MotionModels, neutral: np.ndarray, weights: np.ndarray, intensity: np.ndarray,
                  deformer: EmotionDeformer | None = None) -> np.ndarray:
    """The emotion deformer (``deformer``, else the models' LDM) over a track (weights already sanitised)."""
    return deform_track(deformer if deformer is not None else models.ldm, neutral, weights, intensity)
