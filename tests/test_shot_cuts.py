"""Edit cuts: found in synthetic and real footage, carried into pose tracks, never replayed across."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.data.shot_cuts import (detect_shot_cuts, frame_changes, grey_thumbnail, resampled_cuts,
                                    shot_spans)
from backend.motion.pose_sampling import PoseTrack, sample_pose

SUBJECTS = Path(__file__).resolve().parents[1] / "backend" / "assets" / "subjects"
#: the default subject's news clip: 4 jump cuts (looked at, session 16), as 25 fps rows
CNN2_CUTS = [176, 702, 953, 1429]


def _scene(frames: int, speed: float, seed: int, phase: float = 0.0) -> np.ndarray:
    """A textured picture panning by ``speed`` pixels a frame (uint8 RGB), with sensor noise."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (96, 400)).astype(np.float32), (0, 0), 6)
    texture = (texture - texture.mean()) / texture.std() * 40 + 128          # smooth blobs, like a face and a room
    out = []
    for t in range(frames):
        x = int(phase + speed * t) % 300
        picture = texture[:, x:x + 96] + rng.normal(0, 1.0, (96, 96))
        out.append(np.repeat(np.clip(picture, 0, 255).astype(np.uint8)[..., None], 3, -1))
    return np.stack(out)


def test_a_jump_cut_is_found_and_fast_motion_or_a_still_shot_is_not():
    first, second = _scene(40, 1.0, seed=0), _scene(30, 1.0, seed=1)
    video = np.concatenate([first, second])
    changes = frame_changes(np.stack([grey_thumbnail(f) for f in video]))
    assert changes[0] == 0 and len(changes) == 70
    assert detect_shot_cuts(changes).tolist() == [40]
    fast = _scene(30, 9.0, seed=2)                         # a quick pan: every frame changes a lot, no spike
    assert detect_shot_cuts(frame_changes(np.stack([grey_thumbnail(f) for f in fast]))).tolist() == []
    still = np.repeat(first[:1], 30, 0)                     # nothing moves: noise floor, no cut
    assert detect_shot_cuts(frame_changes(np.stack([grey_thumbnail(f) for f in still]))).tolist() == []
    assert shot_spans(np.array([40]), 70) == [(0, 40), (40, 70)]
    assert shot_spans(np.array([], int), 70) == [(0, 70)]


def test_cuts_move_to_the_first_resampled_frame_of_their_shot():
    index = np.round(np.arange(25) * 30 / 25).astype(int)    # 30 fps -> 25 fps, nearest frame
    out = resampled_cuts(np.array([13]), index)
    j = int(out[0])
    assert index[j] >= 13 > index[j - 1]
    assert resampled_cuts(np.array([0, 10_000]), index).tolist() == []   # nothing outside the track


def _largest_step(rotation: np.ndarray) -> float:
    """Largest frame-to-frame head rotation (degrees) of ``[T, 3, 3]``."""
    rot = Rotation.from_matrix(rotation)
    return float(np.degrees((rot[1:] * rot[:-1].inv()).magnitude()).max())


def test_pose_sampling_never_replays_across_an_edit_cut():
    """A one-video track with a cut (the head jumps 8 deg, as across cnn2's cuts): every draw stays in one shot; the
    same draws without the cut do cross it."""
    n = 200
    pitch = np.where(np.arange(n) >= 90, 8.0, 0.0) + 0.01 * np.arange(n)
    rotation = Rotation.from_euler("x", pitch[:, None], degrees=True).as_matrix()
    translation = np.zeros((n, 3))
    cut, joined = PoseTrack(rotation, translation, cuts=(90,)), PoseTrack(rotation, translation)
    assert cut.segment_of(89) == (0, 90) and cut.segment_of(90) == (90, n)
    crossed = 0
    for seed in range(40):
        steps = [_largest_step(sample_pose(track, 150, seed=seed, idle=False)[0]) for track in (cut, joined)]
        assert steps[0] < 1.0
        crossed += steps[1] > 5.0
    assert crossed > 0
    with pytest.raises(ValueError, match="cuts"):
        PoseTrack(rotation, translation, cuts=(n,))


def test_the_default_subjects_cuts_are_found_in_its_video_and_shipped_in_its_tracks(shared_data):
    """The detector finds cnn2's four jump cuts, and nothing in a MEAD studio clip; the shipped pose tracks carry
    exactly those cuts, so no draw of the default subject snaps its head."""
    from backend.data.shot_cuts import video_shot_starts
    from backend.motion.generator import DEFAULT_POSE_TRACK, SubjectMotion

    cuts, rows = video_shot_starts(shared_data / "talking" / "cnn2_25fps.mp4", progress=False)
    assert cuts.tolist() == CNN2_CUTS and rows == 1779
    assert video_shot_starts(shared_data / "mead" / "M030_front_neutral_level1_001.mp4", progress=False)[0].size == 0
    for path in (SUBJECTS / "default" / "track.npz", DEFAULT_POSE_TRACK):
        with np.load(path) as z:
            assert z["shot_starts"].tolist() == CNN2_CUTS, path
    pose = SubjectMotion.from_track(SUBJECTS / "default" / "track.npz").pose
    for seed in range(12):
        assert _largest_step(sample_pose(pose, 300, seed=seed, idle=False)[0]) < 3.0, seed   # cuts jump 3-7 deg


@pytest.fixture
def spliced_video(shared_data, tmp_path) -> Path:
    """Two real takes spliced into one 25 fps video: a jump cut after 1 s (frame 25)."""
    frames = []
    for name in ("M030_front_happy_level3_001.mp4", "W009_front_neutral_level1_001.mp4"):
        capture = cv2.VideoCapture(str(shared_data / "mead" / name))
        for _ in range(25):
            ok, frame = capture.read()
            assert ok, name
            frames.append(frame)
        capture.release()
    video = tmp_path / "spliced.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    return video


def test_a_prepared_subject_marks_an_edit_cut_and_does_not_smooth_across_it(spliced_video, tmp_path, capsys):
    """prepare-subject reports the cut, stores it as ``shot_starts`` and smooths each shot on its own, so the first
    shot's track equals that shot prepared alone (a zero-lag filter run across the cut would pull its last frames
    towards the next shot)."""
    from backend.cli import main
    from backend.render.prepare import PrepareConfig, prepare_subject

    assert main(["prepare-subject", str(spliced_video), "--out", str(tmp_path / "whole"), "--resolution", "32"]) == 0
    assert "edit cuts: 1 found in the footage (track at 1.00 s)" in capsys.readouterr().out
    first = prepare_subject(spliced_video, tmp_path / "first", config=PrepareConfig(resolution=32, max_seconds=1.0),
                            progress=False)
    with np.load(tmp_path / "whole" / "track.npz") as z:
        assert z["shot_starts"].tolist() == [25]
        spliced = z["landmarks"][:25]
    with np.load(first / "track.npz") as z:
        assert z["shot_starts"].tolist() == []
        np.testing.assert_allclose(spliced, z["landmarks"], atol=1e-5)


def test_motion_data_preparation_warns_of_an_edit_cut(spliced_video, tmp_path):
    """``emogene prepare`` keeps a clip with a cut but says so and lists it (a later retrain can split there)."""
    import json

    from backend.data.prepare import PrepareConfig, prepare_paths

    summary = prepare_paths([spliced_video], PrepareConfig(out_dir=tmp_path / "tracks", vad_backend="energy"),
                            show_progress=False)
    assert not summary.of("failed")
    meta = json.loads(next((tmp_path / "tracks").glob("*.json")).read_text())
    assert meta["shot_starts"] == [25]
    assert any("edit cut" in w and "1.00" in w for w in meta["warnings"])
