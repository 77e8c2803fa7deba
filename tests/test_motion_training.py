"""The four motion models train from the prepared real tracks through the CLI and beat their
trivial baselines on held-out data (slow: several minutes on one CPU thread)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.cli import main as emogene
from backend.motion.model_io import load_model
from backend.motion.tracks_data import load_clips, split_clips

torch.set_num_threads(1)   # small models; on a shared CPU a second thread mostly waits


@pytest.mark.slow
def test_cli_training_beats_baselines(prepared_tracks, tmp_path):
    from backend.motion.evaluate import ldm_landmark_error, vae_neutral
    from backend.motion.emotion_classifier import classify_track
    from backend.motion.metrics import landmark_distance
    from backend.motion.landmarks import MOUTH
    from backend.motion.model_io import MotionModels
    from backend.motion.syncnet import sync_profile
    out = str(tmp_path)
    common = ["--tracks", str(prepared_tracks), "--out", out]
    assert emogene(["train", "syncnet", *common, "--steps", "800"]) == 0
    assert emogene(["train", "audio2motion", *common, "--steps", "400"]) == 0
    assert emogene(["train", "ldm", *common, "--steps", "1500"]) == 0
    assert emogene(["train", "emotion", *common, "--steps", "800"]) == 0
    for stem in ("syncnet", "audio2motion", "ldm", "emotion_classifier"):
        assert (tmp_path / f"{stem}.safetensors").is_file() and (tmp_path / f"{stem}_loss.png").is_file()
    s = split_clips(load_clips(prepared_tracks))
    syncnet = load_model(out, "syncnet")
    shifts = [sync_profile(syncnet, c.mel[20:], c.landmarks[:-5], speech=c.speech[5:]).offset
              - sync_profile(syncnet, c.mel, c.landmarks, speech=c.speech).offset for c in s.talking_test]
    assert all(abs(d - 5) <= 1 for d in shifts), shifts                      # baseline: no model finds no shift
    models = MotionModels(load_model(out, "audio2motion"), load_model(out, "ldm"))
    m_model = np.mean([landmark_distance(vae_neutral(models, c), c.landmarks, MOUTH) for c in s.talking_test])
    from backend.motion.lipsync_eval import other_motion
    donor = max(s.talking_train, key=lambda c: c.frames)
    m_base = np.mean([landmark_distance(other_motion(c, donor), c.landmarks, MOUTH) for c in s.talking_test])
    assert m_model < m_base, (m_model, m_base)        # baseline: equally lively real motion, not in sync
    err = ldm_landmark_error(models.ldm, s.mead_test, [c for c in s.mead_full if c.emotion == "neutral"])
    assert err["ldm"] < err["no_deformation"], err                             # baseline: no deformation
    clf = load_model(out, "emotion_classifier")
    acc = np.mean([np.mean(classify_track(clf, c.landmarks)[0] == c.emotion_label) for c in s.mead_test])
    assert acc > 0.25, acc                                                     # baseline: chance 1/8
