"""``eval emotion``'s own-footage reference (backend/evaluation/own_footage.py): per motion draw, the subject's own
neutral real frames nearest to the draw's head poses, read like the plates, beside the plates' keyed neutral."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.evaluation.emotion_judge import JudgeConfig
from backend.evaluation.emotion_report import REPO, keyed_per_draw, own_footage_markdown
from backend.evaluation.own_footage import (NoNeutralFootage, load_neutral_footage, nearest_frames, neutral_rows,
                                            own_footage_report)
from backend.evaluation.plate_emotion import SubjectPlates, Take
from bridge.emotions import EMOTION_INDEX
from bridge.landmarks import NUM_LANDMARKS, REGIONS

SUBJECTS = REPO / "backend" / "assets" / "subjects"
BROW = list(REGIONS["brow_r"]) + list(REGIONS["brow_l"])


class _BrowJudge:
    """Says neutral unless some landmark moved more than 0.3 from the reference (then surprised)."""
    config = JudgeConfig(window=9, use_depth=False)

    def predict(self, features):
        moved = np.abs(np.asarray(features)).max(1) > 0.3
        return np.where(moved, EMOTION_INDEX["surprised"], EMOTION_INDEX["neutral"])


def _pitch(degrees) -> np.ndarray:
    angles = np.asarray(degrees, np.float64)[:, None]
    return Rotation.from_euler("x", angles, degrees=True).as_matrix().astype(np.float32)


def _subject(tmp_path, clips, rotation, landmarks, clip_starts=None):
    (tmp_path / "subject.json").write_text(json.dumps({"name": "t", "track": "track.npz", "clips": clips}))
    starts = {} if clip_starts is None else {"clip_starts": np.asarray(clip_starts)}
    np.savez(tmp_path / "track.npz", landmarks=landmarks, rotation=rotation,
             face_found=np.ones(len(rotation), bool), **starts)
    return tmp_path


def _draw(seed: int, frames: np.ndarray, bursts: np.ndarray) -> SubjectPlates:
    n = len(frames)
    take = Take("neutral", 0.0, np.zeros((n, 2, 2, 3), np.uint8), np.zeros((n, NUM_LANDMARKS, 3), np.float32),
                np.ones(n, bool), np.zeros((n, NUM_LANDMARKS, 3), np.float32), bursts)
    return SubjectPlates("t", frames, [take], seed=seed)


def test_nearest_frame_is_the_exact_frame_when_the_draw_replays_the_track():
    """The default's own track (one unlabelled video: all frames count as neutral): asking for its own tracked
    rotations finds exactly those frames at 0°, and a pose 1.5° off is 1.5° or less from its nearest frame."""
    footage = load_neutral_footage(SUBJECTS / "default")
    assert "all" in footage.source and "no clip carries an emotion label" in footage.source
    picked = np.array([5, 300, 301, 900, len(footage.rows) - 1])
    index, mismatch = nearest_frames(footage, footage.rotation[picked])
    assert np.array_equal(index, picked)
    assert mismatch.max() < 1e-3
    off = (Rotation.from_euler("x", 1.5, degrees=True) * Rotation.from_matrix(footage.rotation[picked])).as_matrix()
    _, mismatch = nearest_frames(footage, off)
    assert 0 < mismatch.max() <= 1.5 + 1e-6
    with pytest.raises(ValueError, match="rotations must be"):
        nearest_frames(footage, footage.rotation[0])


def test_labelled_clips_restrict_the_reference_to_the_neutral_ones():
    """The neutral clip's rows of track.npz, which holds the clips one after another (clip_starts), not the rows
    subject.json's train_rows / heldout_rows give (those index prepared/, every clip's training rows first)."""
    info = {"clips": [{"emotion": "angry", "train_rows": [0, 10], "heldout_rows": [30, 32]},
                      {"emotion": "neutral", "train_rows": [10, 20], "heldout_rows": [32, 34]},
                      {"emotion": "sad", "train_rows": [20, 30], "heldout_rows": [34, 36]}]}
    rows, source = neutral_rows(info, 36, np.array([0, 12, 24]))
    assert rows.tolist() == list(range(12, 24))
    assert "1 clip(s) labelled neutral" in source
    rows, _ = neutral_rows({}, 7)                                   # no labels: every frame
    assert rows.tolist() == list(range(7))
    with pytest.raises(ValueError, match="marks 2 clip"):
        neutral_rows(info, 36, np.array([0, 12]))
    with pytest.raises(ValueError, match="marks 1 clip"):
        neutral_rows(info, 36)
    # the shipped MEAD subject: its neutral clip's rows, where its track.npz says that clip lies
    footage = load_neutral_footage(SUBJECTS / "mead_m030")
    info = json.loads((SUBJECTS / "mead_m030" / "subject.json").read_text())
    starts = np.load(SUBJECTS / "mead_m030" / "track.npz")["clip_starts"].tolist() + [info["frames"]]
    n = next(i for i, c in enumerate(info["clips"]) if c["emotion"] == "neutral")
    assert footage.rows.tolist() == list(range(starts[n], starts[n + 1]))
    assert len(footage.rows) == info["clips"][n]["frames"]


def test_a_subject_without_neutral_footage_is_skipped_with_the_reason(tmp_path):
    with pytest.raises(NoNeutralFootage, match="no neutral footage: its clips are labelled angry, sad"):
        neutral_rows({"clips": [{"emotion": "sad", "train_rows": [0, 5]}, {"emotion": "angry"}]}, 5)
    subject = _subject(tmp_path, [{"emotion": "angry", "train_rows": [0, 4]}], _pitch(np.zeros(4)),
                       np.zeros((4, NUM_LANDMARKS, 3), np.float32))
    bursts = np.zeros(4, np.int64)
    out = own_footage_report(_BrowJudge(), subject, [_draw(0, np.arange(4), bursts)], {0: _pitch(np.zeros(4))},
                             {0: 1.0})
    assert out == {"skipped": "no neutral footage: its clips are labelled angry"}
    text = "\n".join(own_footage_markdown({"subjects": {"t": {"own_footage": out}}}))
    assert "| t | – | | skipped: no neutral footage" in text and text.count("| t |") == 1
    assert "t: no own-footage reference" in text


def test_the_report_reads_the_own_footage_per_draw_beside_the_plates(tmp_path):
    """Neutral clip: pitch 0.5° per frame, brows raised by 0.6 above 20° of pitch; an angry clip holds seed 1's exact
    poses with the brows far off, and must not be used. Seed 0 replays frames 0-8, 10-18, 50-58 (a third raised:
    reference = their mean, so the raised burst reads surprised, the rest neutral); seed 1 asks those poses + 0.2°."""
    pitch = np.arange(60) * 0.5
    bursts = np.repeat(np.arange(3), 9)
    replay = np.concatenate([np.arange(0, 9), np.arange(10, 19), np.arange(50, 59)])
    landmarks = np.zeros((80, NUM_LANDMARKS, 3), np.float32)
    landmarks[:60][pitch > 20, BROW[0], 1] = 0.6
    landmarks[60:, :, 1] = np.linspace(-5, 5, 20)[:, None]          # the angry clip: nothing like neutral
    rotation = np.concatenate([_pitch(pitch), _pitch(pitch[replay[:20]] + 0.2)])
    clips = [{"emotion": "neutral", "train_rows": [0, 55], "heldout_rows": [55, 60]},
             {"emotion": "angry", "train_rows": [60, 80]}]
    subject = _subject(tmp_path, clips, rotation, landmarks, clip_starts=[0, 60])
    job_frames = np.arange(100, 127)
    draws = [_draw(0, job_frames, bursts), _draw(1, job_frames, bursts)]
    rotations = {0: _pitch(pitch[replay]), 1: _pitch(pitch[replay] + 0.2)}
    keyed = keyed_per_draw({"seeds": [0, 1], "draws": [{"seed": 0, "neutral_stays_neutral": 0.9},
                                                       {"seed": 1, "neutral_stays_neutral": 0.5}]})
    out = own_footage_report(_BrowJudge(), subject, draws, rotations, keyed)
    assert "1 clip(s) labelled neutral" in out["source"] and out["neutral_frames"] == 60
    first, second = out["draws"]
    assert first["read_neutral"] == pytest.approx(2 / 3) and first["pose_mismatch_deg_max"] == 0.0
    assert first["plates_keyed_neutral"] == 0.9 and first["distinct_real_frames"] == 27
    assert second["pose_mismatch_deg_max"] == pytest.approx(0.2, abs=0.01)      # not the angry clip's 0°
    assert second["read_neutral"] == pytest.approx(2 / 3)
    assert out["read_neutral"] == pytest.approx(2 / 3) and out["plates_keyed_neutral"] == pytest.approx(0.7)
    assert out["frames"] == 54 and out["read_neutral_ci95"][0] <= 2 / 3 <= out["read_neutral_ci95"][1]
    text = "\n".join(own_footage_markdown({"subjects": {"t": {"own_footage": out}, "u": {}}}))
    assert "| t | 0 | 90.0 % | 66.7 % | 0.0° / 0.0° | 27 of 27 |" in text
    assert "approximate reference" not in text                      # every pose within 0.2°
    assert "| **t** | **pooled, 2 draws** | **70.0 %** | **66.7 %**" in text
    assert "t: keyed neutral on the plates 70.0 % vs the subject's own real footage at the same poses 66.7 %" in text
    assert "at least as neutral as the person's own face" in text and "| u |" not in text
    far = dict(out, pose_mismatch_deg_max=3.0, plates_keyed_neutral=0.5)
    text = "\n".join(own_footage_markdown({"subjects": {"t": {"own_footage": far}}}))
    assert "less neutral than the person's own face" in text and "up to 3.0° away" in text
    with pytest.raises(ValueError, match="rotations for 27 judged job frames"):
        own_footage_report(_BrowJudge(), subject, draws[:1], {0: rotations[0][:5]}, keyed)
