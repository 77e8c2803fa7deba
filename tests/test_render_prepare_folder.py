"""Subject preparation from a capture session (a folder of clips of one person, one camera):
per-clip tracks and held-out tails, emotion labels from MEAD names, one background, clear
errors on bad folders; and the shipped emotional subject ``mead_m030`` renders."""
from __future__ import annotations

import json

import numpy as np
import pytest

from backend.cli import main

CLIPS = ["M030_front_happy_level3_001.mp4", "M030_front_sad_level3_001.mp4", "M030_front_neutral_level1_001.mp4"]
SECONDS = 1.0
RESOLUTION = 32


def _session(shared_data, folder, names=CLIPS):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(shared_data / "mead" / name)
    return folder


@pytest.fixture(scope="module")
def session_subject(shared_data, tmp_path_factory):
    from backend.render.prepare import PrepareConfig, prepare_subject
    root = tmp_path_factory.mktemp("session")
    clips = _session(shared_data, root / "clips")
    subject = prepare_subject(clips, root / "subject", config=PrepareConfig(resolution=RESOLUTION,
                                                                            max_seconds=SECONDS), progress=False)
    return subject, json.loads((subject / "subject.json").read_text())


def test_every_clip_is_listed_with_its_emotion_and_held_out_tail(session_subject):
    subject, info = session_subject
    clips = info["clips"]
    assert [c["video"].rsplit("/", 1)[-1] for c in clips] == sorted(CLIPS)
    assert [(c["emotion"], c["level"]) for c in clips] == [("happy", 3), ("neutral", 1), ("sad", 3)]
    assert info["source_video"] is None and len(info["source_clips"]) == 3
    track = np.load(subject / "prepared" / "track_native.npz")
    n_train, total = info["split"]["train"][1], info["frames"]
    assert info["split"]["heldout"] == [n_train, total]
    assert total == sum(c["frames"] for c in clips) == np.load(subject / "prepared" / "frames.npy").shape[0]
    for n, clip in enumerate(clips):
        rows = np.arange(*clip["heldout_rows"])
        held_frames = track["clip_frame"][rows]
        expected_held = clip["frames"] - clip["train_frames"]
        assert expected_held == max(1, round(0.1 * clip["frames"]))
        # the held-out rows are exactly the tail of this clip
        assert (track["clip_index"][rows] == n).all()
        assert held_frames.tolist() == list(range(clip["train_frames"], clip["frames"]))
        train_rows = np.arange(*clip["train_rows"])
        assert track["clip_frame"][train_rows].tolist() == list(range(clip["train_frames"]))
    from bridge.emotions import EMOTION_INDEX
    expected = np.array([EMOTION_INDEX[clips[c]["emotion"]] for c in track["clip_index"]])
    assert (track["emotion_index"] == expected).all()
    neutral_rows = np.arange(*clips[1]["train_rows"])   # the neutral clip's training frames
    np.testing.assert_allclose(info["neutral_landmarks"], track["landmarks"][neutral_rows].mean(0), atol=1e-5)


def test_tracks_are_not_smoothed_across_clips(session_subject, shared_data, tmp_path):
    """Each clip's rows equal the track of that clip prepared on its own."""
    from backend.render.prepare import PrepareConfig, prepare_subject
    subject, info = session_subject
    alone = prepare_subject(shared_data / "mead" / "M030_front_sad_level3_001.mp4", tmp_path / "alone",
                            config=PrepareConfig(resolution=RESOLUTION, max_seconds=SECONDS), progress=False)
    single = np.load(alone / "prepared" / "track_native.npz")["landmarks"]
    session = np.load(subject / "prepared" / "track_native.npz")
    sad = [n for n, c in enumerate(info["clips"]) if c["emotion"] == "sad"][0]
    rows = np.nonzero(session["clip_index"] == sad)[0]
    rows = rows[np.argsort(session["clip_frame"][rows])]
    np.testing.assert_allclose(session["landmarks"][rows], single, atol=1e-6)


def test_motion_track_keeps_clip_order_and_marks_the_cuts(session_subject):
    subject, info = session_subject
    track = np.load(subject / "track.npz")
    assert track["clip_starts"].tolist() == [0] + np.cumsum([c["frames"] for c in info["clips"]][:-1]).tolist()
    assert len(track["rotation"]) == info["frames"]   # 25 fps clips: one track row per frame
    assert track["shot_starts"].tolist() == []         # MEAD's studio takes hold no edit cut
    assert (subject / "background.png").is_file()


def test_folder_subject_trains_through_the_cli_pipeline_inputs(session_subject):
    """The prepared session loads as a training dataset with its conditions (rows line up)."""
    from backend.render.subject_dataset import SubjectDataset
    subject, info = session_subject
    data = SubjectDataset(subject)
    assert len(data.train_indices) + len(data.heldout_indices) == info["frames"]
    assert data.frames.shape[1:3] == (RESOLUTION, RESOLUTION)
    assert data.mouth_boxes.shape == (info["frames"], 4)


def test_cli_accepts_several_videos(shared_data, tmp_path, capsys):
    videos = [str(shared_data / "mead" / name) for name in CLIPS[:2]]
    out = tmp_path / "s"
    assert main(["prepare-subject", *videos, "--out", str(out), "--resolution", "24", "--max-seconds", "0.6"]) == 0
    assert len(json.loads((out / "subject.json").read_text())["clips"]) == 2


def test_empty_folder_is_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["prepare-subject", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]) == 2
    assert "is empty" in capsys.readouterr().out


def test_folder_without_video_is_named(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "shot_list.txt").write_text("happy, sad")
    assert main(["prepare-subject", str(tmp_path / "notes"), "--out", str(tmp_path / "s")]) == 2
    out = capsys.readouterr().out
    assert "holds no video" in out and "shot_list.txt" in out


def test_clips_of_different_sizes_are_named(shared_data, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "M030_front_happy_level3_001.mp4").symlink_to(shared_data / "mead" / "M030_front_happy_level3_001.mp4")
    (folder / "cnn2_25fps.mp4").symlink_to(shared_data / "talking" / "cnn2_25fps.mp4")
    assert main(["prepare-subject", str(folder), "--out", str(tmp_path / "s")]) == 2
    out = capsys.readouterr().out
    assert "256x256: M030_front_happy_level3_001.mp4" in out and "512x512: cnn2_25fps.mp4" in out


def test_clips_of_two_mead_speakers_are_refused(shared_data, tmp_path, capsys):
    folder = _session(shared_data, tmp_path / "two", ["M030_front_happy_level3_001.mp4",
                                                      "W009_front_happy_level3_001.mp4"])
    assert main(["prepare-subject", str(folder), "--out", str(tmp_path / "s")]) == 2
    assert "M030, W009" in capsys.readouterr().out


def test_clip_without_a_face_is_named(shared_data, tmp_path, capsys):
    import cv2
    folder = _session(shared_data, tmp_path / "faceless", ["M030_front_happy_level3_001.mp4"])
    writer = cv2.VideoWriter(str(folder / "M030_front_sad_level3_002.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25,
                             (256, 256))
    rng = np.random.default_rng(0)
    for _ in range(10):   # a plain wall: no face anywhere
        writer.write(np.full((256, 256, 3), 90, np.uint8) + rng.integers(0, 8, (256, 256, 3), dtype=np.uint8))
    writer.release()
    assert main(["prepare-subject", str(folder), "--out", str(tmp_path / "s"), "--resolution", "24",
                 "--max-seconds", "0.4"]) == 2
    out = capsys.readouterr().out
    assert "M030_front_sad_level3_002.mp4" in out and "face" in out


def test_shipped_emotional_subject_renders_a_plate_covering_the_face():
    """``mead_m030`` (8 emotions of MEAD M030) loads and renders at once; its alpha covers the face."""
    from backend.render.inference import SubjectRenderer
    from backend.subjects import SHIPPED_SUBJECTS
    path = SHIPPED_SUBJECTS / "mead_m030"
    if not (path / "nerf.json").is_file():
        pytest.skip("mead_m030 weights not built yet (scripts/train_emotional_subject.py)")
    renderer = SubjectRenderer(path)
    info = renderer.info
    assert info.get("expression") in ("code", "warp")
    assert sorted({c["emotion"] for c in info["clips"]}) == sorted(
        ["neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised"])
    track = np.load(path / "track.npz")
    i = int(track["clip_starts"][-1]) + 5
    sl = slice(i, i + 1)
    cond = renderer.conditions(track["landmarks"][sl], track["rotation"][sl], track["translation"][sl])
    size = 40
    plate = renderer.render(renderer.camera_for(None, (size, size)), cond.conditions, 0)
    assert plate.shape == (size, size, 4)
    # the face: the tracked landmarks' box, scaled from the source video to the plate
    src_w, src_h = info["source_size"]
    face = track["landmarks_image"][i] * np.array([size / src_w, size / src_h])
    x0, y0 = np.floor(face.min(0)).astype(int)
    x1, y1 = np.ceil(face.max(0)).astype(int)
    assert (plate[y0:y1, x0:x1, 3] > 128).mean() > 0.9


@pytest.mark.slow
def test_eval_all_re_prepares_a_shipped_session_subject_from_its_clips(shared_data, tmp_path):
    """Shipped subjects carry no frames: `eval all` prepares them again, here from the 8 clips."""
    from backend.evaluation.report import evaluation_subject_dir
    from backend.subjects import SHIPPED_SUBJECTS
    if not (SHIPPED_SUBJECTS / "mead_m030" / "nerf.json").is_file():
        pytest.skip("mead_m030 weights not built yet (scripts/train_emotional_subject.py)")
    shipped = json.loads((SHIPPED_SUBJECTS / "mead_m030" / "subject.json").read_text())
    folder = evaluation_subject_dir("mead_m030", tmp_path)
    info = json.loads((folder / "subject.json").read_text())
    assert info["split"] == shipped["split"] and len(info["clips"]) == 8
    assert (folder / "nerf.safetensors").is_file()
