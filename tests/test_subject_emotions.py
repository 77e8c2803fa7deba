"""A capture subject's own emotions: a subject filmed in emotions drives each of them with its own displacement
(its emotion clips' mean shape minus its neutral clips'), the LDM's field for the rest; other subjects get the LDM."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.motion.generator import SubjectMotion
from backend.motion.landmarks import INNER_LIP_PAIRS
from backend.motion.ldm import LandmarkDeformationModel
from backend.motion.stage import MotionStage
from backend.motion.subject_emotions import own_emotion_fields, with_own_fields
from backend.pipeline.base import GenerateJob
from backend.pipeline.local import run_generate_local
from backend.subjects import SHIPPED_SUBJECTS, SubjectStore
from bridge.emotions import EMOTION_INDEX, EMOTIONS, NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS
from test_server_support import speech

UPPER_FACE = np.arange(17, 36)      # brows and nose: no inner-lip pair, no blink


def _session(rng, offsets: dict[str, np.ndarray], lengths=(40, 30, 50)):
    """A capture session's landmarks: each clip a rest face moved by its offset, plus talking noise of mean 0."""
    rest = rng.normal(size=(NUM_LANDMARKS, 3))
    parts = []
    for offset, n in zip(offsets.values(), lengths):
        noise = 0.01 * rng.normal(size=(n, NUM_LANDMARKS, 3))
        parts.append(rest + offset + noise - noise.mean(0))
    ends = np.cumsum(lengths)
    return np.concatenate(parts), tuple(zip((ends - lengths).tolist(), ends.tolist()))


def test_own_fields_are_the_clip_means_relative_to_the_neutral_clip_at_the_clips_intensity():
    rng = np.random.default_rng(0)
    happy, sad = rng.normal(size=(2, NUM_LANDMARKS, 3)) * 0.05
    landmarks, segments = _session(rng, {"neutral": np.zeros((NUM_LANDMARKS, 3)), "happy": happy, "sad": sad})
    clips = [{"emotion": "neutral", "level": 1}, {"emotion": "happy", "level": 3}, {"emotion": "sad", "level": 1}]
    fields = own_emotion_fields(landmarks, segments, clips)
    assert sorted(fields) == ["happy", "sad"]
    keep = np.setdiff1d(np.arange(NUM_LANDMARKS), np.ravel(INNER_LIP_PAIRS))
    assert np.allclose(fields["happy"][keep], happy[keep], atol=1e-5)
    assert np.allclose(fields["sad"][keep], 3 * sad[keep], atol=1e-5)       # a level-1 clip shows a third of it
    for upper, lower in INNER_LIP_PAIRS:                                     # the mouth opening is never changed
        assert np.allclose(fields["happy"][upper, 1], fields["happy"][lower, 1])
    # no neutral clip to measure from, or labels that do not match the clips: the LDM's fields stay
    assert own_emotion_fields(landmarks, segments, [{"emotion": "happy"}, {"emotion": "sad"}, {}]) == {}
    assert own_emotion_fields(landmarks, segments, clips[:2]) == {}
    assert own_emotion_fields(landmarks, (), clips) == {}


def test_with_own_fields_replaces_only_the_filmed_emotions_and_leaves_the_ldm_alone():
    ldm = LandmarkDeformationModel()
    ldm.fields.normal_()
    before = ldm.fields.clone()
    own_angry = np.full((NUM_LANDMARKS, 3), 0.25, np.float32)
    own = with_own_fields(ldm, {"angry": own_angry})
    assert torch.equal(ldm.fields, before)
    assert np.allclose(own.fields[EMOTION_INDEX["angry"] - 1].numpy(), own_angry)
    others = [k for k in range(NUM_EMOTIONS - 1) if k != EMOTION_INDEX["angry"] - 1]
    assert torch.equal(own.fields[others], before[others])
    assert with_own_fields(ldm, {}) is ldm


def _keyed(subject: str, emotion: str, frames: int = 50) -> np.ndarray:
    weights = np.zeros((frames, NUM_EMOTIONS), np.float32)
    weights[:, EMOTION_INDEX[emotion]] = 1.0
    job = GenerateJob("0" * 32, speech(frames / 25), 25.0, frames, weights, np.ones(frames, np.float32), subject,
                      landmarks_only=True)

    class _Stages:
        device = "cpu"

        def for_job(self, job):
            return [MotionStage("cpu", SubjectStore(), vad_backend="energy")]

    result = run_generate_local(job, _Stages())
    assert result.state == "done", result.error
    return result.stage_state["landmarks"] - result.stage_state["neutral_landmarks"]


@pytest.mark.skipif(not (SHIPPED_SUBJECTS / "mead_m030" / "track.npz").is_file(), reason="no shipped mead_m030")
def test_the_shipped_emotional_subject_shows_its_own_filmed_emotions_and_the_default_the_ldm():
    import json

    folder = SHIPPED_SUBJECTS / "mead_m030"
    motion = SubjectMotion.from_track(folder / "track.npz", json.loads((folder / "subject.json").read_text())["clips"])
    assert sorted(motion.emotion_fields) == sorted(EMOTIONS[1:])              # filmed in all eight
    from backend.motion.model_io import load_motion_models
    ldm_fields = load_motion_models(None, "cpu").ldm.fields.numpy()
    for emotion in ("angry", "sad"):
        k = EMOTION_INDEX[emotion]
        own = _keyed("mead_m030", emotion)[:, UPPER_FACE]
        assert np.allclose(own, motion.emotion_fields[emotion][UPPER_FACE], atol=1e-5)
        assert not np.allclose(own, ldm_fields[k - 1][UPPER_FACE], atol=1e-3)
        default = _keyed("default", emotion)[:, UPPER_FACE]
        assert np.allclose(default, ldm_fields[k - 1][UPPER_FACE], atol=1e-5)
