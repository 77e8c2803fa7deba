"""The emotion-deformer seam: the shipped LDM is one EmotionDeformer, and another one handed to the
motion stage replaces it (a second LDM plugs in without touching the generator)."""
from __future__ import annotations

import numpy as np
import torch

from backend.motion.emotion_deformer import EmotionDeformer, deform_track, deformer_device
from backend.motion.ldm import LandmarkDeformationModel
from backend.motion.stage import MotionStage
from backend.pipeline.base import GenerateJob
from backend.pipeline.local import run_generate_local
from bridge.emotions import EMOTION_INDEX, NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS
from test_server_support import speech

LIFT = np.array([0.0, 0.1, 0.0], np.float32)


class LiftingDeformer:
    """A stand-in second emotion model: lifts every point by ``intensity * happy weight * LIFT``."""

    def deform(self, neutral, weights, intensity):
        amount = intensity * weights[:, EMOTION_INDEX["happy"]]
        return neutral + amount[:, None, None] * torch.as_tensor(LIFT)


class _Stages:
    device = "cpu"

    def __init__(self, stage):
        self.stage = stage

    def for_job(self, job):
        return [self.stage]


def test_the_shipped_ldm_is_an_emotion_deformer_and_intensity_zero_is_a_no_op():
    ldm = LandmarkDeformationModel()
    ldm.fields.normal_()
    assert isinstance(ldm, EmotionDeformer) and isinstance(LiftingDeformer(), EmotionDeformer)
    assert deformer_device(ldm) == torch.device("cpu") and deformer_device(LiftingDeformer()).type == "cpu"
    neutral = np.random.default_rng(0).normal(size=(5, NUM_LANDMARKS, 3)).astype(np.float32)
    weights = np.full((5, NUM_EMOTIONS), 1.0 / NUM_EMOTIONS, np.float32)
    assert np.array_equal(deform_track(ldm, neutral, weights, np.zeros(5, np.float32)), neutral)
    assert not np.allclose(deform_track(ldm, neutral, weights, np.ones(5, np.float32)), neutral)


def test_a_second_deformer_handed_to_the_motion_stage_replaces_the_ldm():
    audio = speech(1.0)
    frames = 25
    weights = np.zeros((frames, NUM_EMOTIONS), np.float32)
    weights[:, EMOTION_INDEX["happy"]] = 1.0
    intensity = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    job = GenerateJob("0" * 32, audio, 25.0, frames, weights, intensity, "default", landmarks_only=True)
    stage = MotionStage("cpu", None, emotion_deformer=LiftingDeformer(), vad_backend="energy")
    result = run_generate_local(job, _Stages(stage))
    assert result.state == "done", result.error
    lift = result.stage_state["landmarks"] - result.stage_state["neutral_landmarks"]
    expected = intensity[:, None, None] * LIFT
    np.testing.assert_allclose(lift, np.broadcast_to(expected, lift.shape), atol=1e-5)
