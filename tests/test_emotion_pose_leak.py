"""Head pose and the emotion judge: the linear pose-leak model (backend/evaluation/pose_leak.py) recovers a known
leak and takes out exactly the pose part, and the pose sampler never leaves the subject's own real pose range (the
premise of S6-POSE's "option A: no clamp needed")."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.evaluation.pose_leak import INNER_LOWER, PoseLeak, fit_pose_leak, head_angles
from bridge.landmarks import NUM_LANDMARKS, REGIONS

REPO = Path(__file__).resolve().parents[1]
CHIN = REGIONS["jaw"][8]


def _synthetic_clips(leak: np.ndarray, nod_with_speech: float, clips: int = 6, frames: int = 300, seed: int = 0):
    """Talking clips: a face, speech opening the jaw and lips, a head that nods *with* the speech (pitch partly follows
    the opening) plus free yaw/roll, and the given leak of pose into the landmarks."""
    rng = np.random.default_rng(seed)
    jaw_open = np.zeros((NUM_LANDMARKS, 3))
    jaw_open[list(REGIONS["jaw"])[4:13], 1] = 0.3
    jaw_open[INNER_LOWER, 1] = 1.0
    out = []
    for _ in range(clips):
        face = rng.normal(0, 0.3, (NUM_LANDMARKS, 3))
        opening = np.abs(np.sin(np.arange(frames) / 3.0 + rng.uniform(0, 6))) * 0.2
        angles = rng.normal(0, 3, (frames, 3))
        angles[:, 0] += nod_with_speech * (opening - opening.mean()) / 0.2 * 4
        lm = (face + opening[:, None, None] * jaw_open + np.einsum("tk,kld->tld", angles, leak)
              + rng.normal(0, 0.002, (frames, NUM_LANDMARKS, 3)))
        out.append((lm.astype(np.float32), angles))
    return out


def test_the_fit_recovers_a_known_leak_even_when_the_head_nods_with_the_speech():
    leak = np.zeros((3, NUM_LANDMARKS, 3))
    leak[0, CHIN, 1] = 0.003          # chin down 0.003 per degree of pitch
    leak[2, list(REGIONS["jaw"]), 0] = 0.001
    clips = _synthetic_clips(leak, nod_with_speech=1.0)
    fitted = fit_pose_leak(clips).coefficients
    np.testing.assert_allclose(fitted, leak, atol=2e-4)
    # without the opening regressor the nod would take the speech's jaw motion with it: the covariate is needed
    naive = np.linalg.lstsq(np.concatenate([a - a.mean(0) for _, a in clips]),
                            np.concatenate([(l - l.mean(0)).reshape(len(l), -1) for l, _ in clips]), rcond=None)[0]
    assert abs(naive.reshape(3, NUM_LANDMARKS, 3)[0, CHIN, 1] - 0.003) > 5 * abs(fitted[0, CHIN, 1] - 0.003)


def test_remove_takes_out_the_pose_part_only():
    rng = np.random.default_rng(1)
    leak = PoseLeak(rng.normal(0, 0.002, (3, NUM_LANDMARKS, 3)))
    face = rng.normal(0, 0.3, (20, NUM_LANDMARKS, 3)).astype(np.float32)
    reference = np.array([7.0, -2.0, 0.5])
    angles = reference + rng.normal(0, 4, (20, 3))
    np.testing.assert_allclose(leak.remove(face + leak.predict(angles, reference), angles, reference), face, atol=1e-5)
    # a frame at the reference pose is left exactly as it is
    np.testing.assert_array_equal(leak.remove(face[:1], reference[None], reference), face[:1])


def test_head_angles_name_pitch_yaw_and_roll():
    for axis, k in (("x", 0), ("y", 1), ("z", 2)):
        angles = head_angles(Rotation.from_euler(axis, [[10.0], [-4.0]], degrees=True).as_matrix())
        np.testing.assert_allclose(angles[:, k], [10.0, -4.0], atol=1e-9)
        assert np.abs(np.delete(angles, k, axis=1)).max() < 1e-9


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="coefficients"):
        PoseLeak(np.zeros((3, 5, 3)))
    with pytest.raises(ValueError, match="rotations"):
        head_angles(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="one \\[pitch, yaw, roll\\] per frame"):
        PoseLeak(np.zeros((3, NUM_LANDMARKS, 3))).remove(np.zeros((4, NUM_LANDMARKS, 3)), np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="no clip"):
        fit_pose_leak([(np.full((20, NUM_LANDMARKS, 3), np.nan), np.zeros((20, 3)))])


@pytest.mark.parametrize("subject", ["default", "mead_m030"])
def test_the_sampled_pose_stays_inside_the_subjects_real_pose_range(subject):
    """The sampler replays the subject's real track (idle segments hold a real pose plus a real idle run's residual),
    so its pitch and roll stay inside what the subject showed on camera: no clamp is needed (S6-POSE, issue 10)."""
    from backend.motion.pose_sampling import PoseTrack, sample_pose

    path = REPO / "backend" / "assets" / "subjects" / subject / "track.npz"
    if not path.is_file():
        pytest.skip(f"no shipped track for {subject}")
    track = PoseTrack.from_npz(path)
    real = head_angles(track.rotation)
    speech = np.zeros(600, bool)
    for a in range(0, 600, 150):
        speech[a:a + 100] = True             # 4 s of speech, 2 s of silence (idle segments), repeated
    for seed in range(4):
        sampled = head_angles(sample_pose(track, 600, speech, seed=seed)[0])
        for k in (0, 2):                     # pitch, roll
            assert sampled[:, k].min() >= real[:, k].min() - 0.5
            assert sampled[:, k].max() <= real[:, k].max() + 0.5


@pytest.mark.usefixtures("prepared_tracks")
def test_plate_tracking_gives_the_head_pose_that_prepare_measured_on_real_frames():
    """``track_burst(with_rotation=True)``: the same landmarks, plus the fitted head pose, which agrees with the
    pose ``emogene prepare`` stored for the same real frames (so plates and real video are read alike)."""
    from backend.data.face_tracking import iter_frames_rgb
    from backend.evaluation.plate_emotion import track_burst

    clip = REPO.parent / "shared" / "data" / "mead" / "W009_front_happy_level3_001.mp4"
    frames = [f for _, f in zip(range(40), iter_frames_rgb(clip))][30:39]
    landmarks, found = track_burst(frames)
    again, found_again, rotation = track_burst(frames, with_rotation=True)
    np.testing.assert_array_equal(again, landmarks)
    assert found.all() and found_again.all()
    with np.load(REPO / "cache" / "tracks" / "W009_front_happy_level3_001.npz") as z:
        prepared = head_angles(z["rotation"][30:39])
    assert np.abs(head_angles(rotation) - prepared).max() < 1.5
    blank, none, no_rotation = track_burst([np.zeros((64, 64, 3), np.uint8)] * 3, with_rotation=True)
    assert not none.any() and np.isnan(no_rotation).all()
