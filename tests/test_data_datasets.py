"""Clip discovery: MEAD (flat and tree), VoxCeleb2/HDTF folders, subject video + wav, splits."""
from __future__ import annotations

from pathlib import Path

import pytest

from backend.data.datasets import (VIDEO_SUFFIXES, describe_clip, discover_clips, safe_clip_id, speaker_from_stem,
                                   time_split_start, validation_speakers)


def _touch(root: Path, rel: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_mead_flat_names_give_speaker_emotion_level_and_intensity(tmp_path):
    clip = describe_clip(_touch(tmp_path, "W009_front_happy_level2_014.mp4"))
    assert (clip.corpus, clip.speaker, clip.emotion, clip.level, clip.take) == ("mead", "W009", "happy", 2, "014")
    assert clip.intensity == pytest.approx(2 / 3)
    assert clip.audio == clip.video  # its own track, if it has one (prepare finds out)


def test_mead_flat_with_suffix_and_no_front(tmp_path):
    clip = describe_clip(_touch(tmp_path, "M030_sad_level3_001_with_audio_1080p.mp4"))
    assert (clip.speaker, clip.emotion, clip.level) == ("M030", "sad", 3)
    not_mead = describe_clip(_touch(tmp_path, "M030_front_bored_level3_001.mp4"))
    assert not_mead.emotion is None and not_mead.corpus == "talking"


def test_mead_tree_pairs_video_with_its_m4a(tmp_path):
    video = _touch(tmp_path, "M003/video/front/angry/level_3/001.mp4")
    audio = _touch(tmp_path, "M003/audio/angry/level_3/001.m4a")
    _touch(tmp_path, "M003/video/front/neutral/level_1/002.mp4")  # no audio file for this one
    clips, problems = discover_clips([tmp_path])
    by_id = {c.clip_id: c for c in clips}
    angry = by_id["M003_front_angry_level3_001"]
    assert (angry.corpus, angry.speaker, angry.emotion, angry.level, angry.audio) == \
        ("mead_tree", "M003", "angry", 3, audio)
    assert by_id["M003_front_neutral_level1_002"].audio is None
    assert video == angry.video and not problems


def test_voxceleb2_layout_takes_the_speaker_folder(tmp_path):
    _touch(tmp_path, "id00012/abcDEF123/00001.mp4")
    _touch(tmp_path, "id00012/abcDEF123/00002.mp4")
    _touch(tmp_path, "id00345/xyz/00001.mp4")
    clips, _ = discover_clips([tmp_path])
    assert sorted(c.speaker for c in clips) == ["id00012", "id00012", "id00345"]
    assert len({c.clip_id for c in clips}) == 3 and all(c.emotion is None for c in clips)


def test_subject_video_with_a_same_stem_wav(tmp_path):
    video = _touch(tmp_path, "sun.mp4")
    wav = _touch(tmp_path, "sun.wav")
    clip = describe_clip(video)
    assert clip.corpus == "subject" and clip.audio == wav and clip.speaker == "sun"


@pytest.mark.parametrize("stem, speaker", [("Obama_clip1", "obama"), ("andrew_clip_2", "andrew"),
                                           ("German_20s", "german"), ("cnn2_25fps", "cnn2"),
                                           ("WDA_KatieHill_000", "wda_katiehill"), ("lieu_60s", "lieu"),
                                           ("reagan", "reagan")])
def test_speaker_from_stem(stem, speaker):
    assert speaker_from_stem(stem) == speaker


def test_unicode_and_spaces_get_safe_unique_ids(tmp_path):
    a = _touch(tmp_path, "a/Zoë talking 1.mp4")
    b = _touch(tmp_path, "b/Zoë talking 1.mp4")
    clips, _ = discover_clips([a, b])
    ids = [c.clip_id for c in clips]
    assert len(set(ids)) == 2 and all(i.isascii() and " " not in i for i in ids)
    assert safe_clip_id("plain_name-1") == "plain_name-1"


def test_problems_are_reported_not_raised(tmp_path):
    (tmp_path / "empty").mkdir()
    text = _touch(tmp_path, "notes.txt")
    clips, problems = discover_clips([tmp_path / "missing", tmp_path / "empty", text])
    assert clips == []
    assert any("no such file" in p for p in problems) and any("no video files" in p for p in problems)
    assert any("not a video file" in p for p in problems)


def test_speaker_split_is_deterministic_and_never_empty_or_total():
    speakers = [f"spk{i}" for i in range(13)]
    val = validation_speakers(speakers, 0.2)
    assert len(val) == 3 and val == validation_speakers(list(reversed(speakers)), 0.2)
    assert validation_speakers(["only"], 0.5) == set()
    assert len(validation_speakers(["a", "b"], 0.9)) == 1
    assert time_split_start(100, 0.2) == 80


def test_the_sample_corpus_is_discovered_completely(shared_data):
    clips, problems = discover_clips([shared_data])
    videos = [p for p in shared_data.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    assert not problems and len(clips) == len(videos) >= 77   # every video of the corpus (README), none twice
    mead = [c for c in clips if c.emotion is not None]
    assert len(mead) == 27 and {c.speaker for c in mead} == {"M003", "M026", "M030", "M901", "W009", "W023", "W901", "W902"}
    subjects = {c.video.stem: c for c in clips if c.corpus == "subject"}
    assert subjects["sun"].audio.name == "sun.wav" and len(subjects) == 8
    # file names alone cannot tell that obama_weekly_47s is the same man: backend/motion/lipsync_data.py
    # merges such people before its held-out split
    assert {c.speaker for c in clips if "obama" in c.video.stem.lower() and "weekly" not in c.video.stem} == {"obama"}
