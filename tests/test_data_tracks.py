"""Track files: round trip, validation, versioning, atomic writes, resampling to 25 fps."""
from __future__ import annotations

import json

import numpy as np
import pytest

from backend.data.tracks import (EXTRACTOR_VERSION, Track, TrackError, list_tracks, load_track, resample_rotations,
                                 resample_track, resample_times, save_track)


def _track(n=10, seed=0) -> Track:
    rng = np.random.default_rng(seed)
    return Track(landmarks=rng.normal(size=(n, 68, 3)).astype(np.float32),
                 landmarks_image=rng.uniform(0, 256, (n, 68, 2)).astype(np.float32),
                 rotation=np.repeat(np.eye(3, dtype=np.float32)[None], n, 0),
                 translation=rng.normal(size=(n, 3)).astype(np.float32), scale=np.ones(n, np.float32),
                 face_found=np.ones(n, bool), mel=rng.normal(size=(4 * n, 80)).astype(np.float32),
                 speech=rng.uniform(size=n) > 0.5, blink=rng.uniform(0.1, 0.3, n).astype(np.float32),
                 meta={"speaker": "ö speaker", "has_audio": True, "emotion": None})


def test_round_trip_keeps_arrays_and_metadata(tmp_path):
    track = _track()
    path = save_track(track, tmp_path / "out dir ü", "clip_1")
    loaded = load_track(path)
    for key in ("landmarks", "rotation", "mel", "speech", "blink", "face_found"):
        assert np.array_equal(getattr(loaded, key), getattr(track, key))
    assert loaded.meta["speaker"] == "ö speaker" and loaded.meta["fps"] == 25.0
    assert loaded.meta["frame_count"] == 10 and loaded.meta["extractor_version"] == EXTRACTOR_VERSION
    assert loaded.has_audio and list_tracks(tmp_path / "out dir ü") == [path]
    assert not list(path.parent.glob(".*tmp*")), "no temporary files left behind"


def test_load_accepts_json_path_and_rejects_other_versions(tmp_path):
    path = save_track(_track(), tmp_path, "c")
    assert load_track(path.with_suffix(".json")).frame_count == 10
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["extractor_version"] = EXTRACTOR_VERSION - 1
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(TrackError, match="extractor version"):
        load_track(path)


@pytest.mark.parametrize("field, bad", [("mel", np.zeros((39, 80), np.float32)),
                                        ("landmarks", np.zeros((10, 68, 2), np.float32)),
                                        ("speech", np.zeros(10, np.float32)),
                                        ("blink", np.full(10, np.nan, np.float32))])
def test_validation_rejects_wrong_shapes_dtypes_and_nan(tmp_path, field, bad):
    track = _track()
    setattr(track, field, bad)
    with pytest.raises(TrackError, match=field):
        save_track(track, tmp_path, "bad")
    assert not (tmp_path / "bad.npz").exists()


def test_a_track_without_json_is_incomplete_and_not_listed(tmp_path):
    path = save_track(_track(), tmp_path, "a")
    save_track(_track(), tmp_path, "b")
    (tmp_path / "b.json").unlink()  # as if interrupted between the two writes
    assert list_tracks(tmp_path) == [path]
    with pytest.raises(TrackError, match="not found"):
        load_track(tmp_path / "b.npz")
    assert list_tracks(tmp_path / "missing") == []


def test_resampling_30_fps_to_25_interpolates_points_and_takes_nearest_flags():
    n = 30  # one second at 30 fps
    values = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    out = resample_track(values, 30.0)
    assert out.shape == (25, 2)
    assert np.allclose(out[:, 0], np.arange(25) * 30 / 25)  # the source time of each 25 fps frame
    flags = np.zeros(n, bool)
    flags[12] = True  # 0.4 s: 25 fps frame 10 sits exactly there
    assert np.flatnonzero(resample_track(flags, 30.0)).tolist() == [10]
    assert resample_track(values, 25.0).shape == (30, 2)


def test_resample_times_cover_the_same_duration():
    for fps, n in ((30.0, 902), (29.97, 112), (22.131, 135), (50.0, 100)):
        pos = resample_times(n, fps)
        assert abs(len(pos) / 25.0 - n / fps) <= 0.5 / 25.0 + 1e-9
        assert pos.max() <= n - 1


def test_rotations_resample_by_slerp():
    from scipy.spatial.transform import Rotation
    rots = Rotation.from_euler("y", np.linspace(0, 29, 30)[:, None], degrees=True).as_matrix().astype(np.float32)
    out = resample_rotations(rots, 30.0)
    angles = Rotation.from_matrix(out).as_euler("yxz", degrees=True)[:, 0]
    assert np.allclose(angles, np.arange(25) * 30 / 25, atol=1e-3)
