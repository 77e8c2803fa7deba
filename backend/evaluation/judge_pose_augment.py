"""Pose augmentation of the emotion judge's training frames (``JudgeConfig.augment_pose``).

A turning head moves FaceMesh's canonical landmarks a little (brows, eyes, face oval: a few thousandths of the
inter-ocular distance per degree), and a judge trained on MEAD's nearly still heads reads that as expression. Here
the leak (:func:`backend.evaluation.pose_leak.fit_pose_leak`) and a pool of real head-angle deviations come from real
talking-head video; a training copy of a MEAD clip adds ``leak @ d`` to its landmarks, ``d`` a contiguous run of one
real clip's (pitch, yaw, roll) deviations from that clip's mean (reflected at its ends) times a scale. The judge so
learns to ignore the directions head motion moves the landmarks, and still judges from landmarks alone.
:func:`selection_pose_augmentation` builds it from the selection half of the real talking heads only
(:func:`backend.evaluation.judge_talking_heads.split_speakers`; the reported clip is never loaded).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.evaluation.pose_leak import PoseLeak, fit_pose_leak
from backend.motion.pose_sampling import ping_pong


@dataclass
class PoseAugmentation:
    """The leak and the real angle-deviation pool (``deviations``: per real clip ``[T, 3]`` degrees, its mean
    removed) that pose-shifted training copies are drawn from."""
    leak: PoseLeak
    deviations: list[np.ndarray]

    def __post_init__(self) -> None:
        self.deviations = [np.asarray(d, np.float32) for d in self.deviations]
        if not self.deviations or any(d.ndim != 2 or d.shape[1] != 3 or len(d) == 0 for d in self.deviations):
            raise ValueError("pose augmentation needs at least one [T, 3] clip of angle deviations")

    def draw(self, frames: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        """``[frames, 3]`` angle deviations: a contiguous run of one pool clip from a random start (the clip
        reflected at its ends when shorter), times ``scale``."""
        clip = self.deviations[int(rng.integers(len(self.deviations)))]
        t = ping_pong(int(rng.integers(len(clip))) + np.arange(frames), len(clip))
        return (float(scale) * clip[t]).astype(np.float32)

    def shift(self, landmarks: np.ndarray, deviations: np.ndarray) -> np.ndarray:
        """``landmarks [T, NUM_LANDMARKS, 3]`` as the leak moves them at ``deviations [T, 3]`` (degrees)."""
        landmarks = np.asarray(landmarks, np.float32)
        return landmarks + self.leak.predict(deviations, np.zeros(3, np.float32))


def pose_augmentation(clips: list) -> PoseAugmentation:
    """Leak and angle pool from real clips (:class:`~backend.evaluation.judge_talking_heads.TalkingClip`s)."""
    usable = [c for c in clips if len(c.angles) >= 2 and np.isfinite(c.angles).all()]
    if not usable:
        raise ValueError("no real clip with head angles to build the pose augmentation from")
    leak = fit_pose_leak([(c.landmarks, c.angles) for c in usable])
    return PoseAugmentation(leak, [c.angles - c.angles.mean(0) for c in usable])


def selection_pose_augmentation(tracks_dir: str | Path) -> PoseAugmentation:
    """:func:`pose_augmentation` of the real talking heads' selection-half speakers (never the confirmation half,
    never the reported clip, no MEAD, no video-only footage)."""
    from backend.evaluation.judge_talking_heads import load_talking_clips, split_speakers

    clips = load_talking_clips(tracks_dir)
    if not clips:
        raise FileNotFoundError(f"no talking-head track files (../shared/data/talking) in {tracks_dir}")
    selection, _ = split_speakers(clips)
    return pose_augmentation([c for c in clips if c.speaker in set(selection)])
