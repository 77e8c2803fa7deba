"""Face tracking on real video: shapes, progress, gaps without a face, errors, face choice."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from backend.data.face_tracking import TrackerConfig, VideoError, _pick_face, fill_gaps, track_video


def _ffmpeg(*args):
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True)


def test_track_a_real_clip(shared_data):
    calls = []
    track = track_video(shared_data / "mead" / "W009_front_angry_level3_001.mp4",
                        progress=lambda done, total: calls.append((done, total)))
    assert track.points.shape == (107, 68, 3) and track.points.dtype == np.float32
    assert track.fps == 25.0 and track.image_size == (256, 256)
    assert track.found_fraction == 1.0 and track.multi_face_frames == 0 and not track.long_gaps
    assert calls[-1] == (107, 107) and len(calls) == 107
    u, v = track.points[..., 0], track.points[..., 1]
    assert 0 < u.min() and u.max() < 256 and 0 < v.min() and v.max() < 256
    # jaw point 0 is on the image left, 16 on the right; the chin below the nose
    assert np.all(track.points[:, 0, 0] < track.points[:, 16, 0])
    assert np.all(track.points[:, 8, 1] > track.points[:, 30, 1])


def test_max_seconds_limits_the_frames_read(shared_data):
    track = track_video(shared_data / "talking" / "styletalk" / "KristiNoem.mp4",
                        config=TrackerConfig(max_seconds=1.0))
    assert track.fps == 30.0 and track.frame_count == 30


@pytest.fixture(scope="module")
def gappy_video(shared_data, tmp_path_factory):
    """2 s of face, 0.2 s gray, 1 s of face, 1 s gray, 1 s of face (25 fps)."""
    path = tmp_path_factory.mktemp("gaps") / "gappy.mp4"
    mead = shared_data / "mead" / "M030_front_neutral_level1_001.mp4"
    _ffmpeg("-i", mead, "-f", "lavfi", "-i", "color=c=gray:s=256x256:r=25:d=1", "-filter_complex",
            "[0:v]split=3[a][b][c];[1:v]split=2[g1][g2];"
            "[a]trim=0:2,setpts=PTS-STARTPTS[f1];[g1]trim=0:0.2,setpts=PTS-STARTPTS[s];"
            "[b]trim=2:3,setpts=PTS-STARTPTS[f2];[g2]trim=0:1,setpts=PTS-STARTPTS[l];"
            "[c]trim=0:1,setpts=PTS-STARTPTS[f3];[f1][s][f2][l][f3]concat=n=5:v=1:a=0,fps=25",
            "-pix_fmt", "yuv420p", path)
    return path


def test_short_gaps_are_interpolated_and_long_ones_flagged(gappy_video):
    track = track_video(gappy_video)
    assert track.frame_count == 130
    assert not track.detected[50:55].any() and not track.detected[80:105].any()
    assert track.face_found[50:55].all(), "a 0.2 s gap is interpolated"
    assert not track.face_found[80:105].any(), "a 1 s gap is not"
    assert track.long_gaps == [(80, 105)]
    assert np.all(np.isfinite(track.points))
    # interpolation lies between the neighbouring detections
    a, b = track.points[49, 30, 0], track.points[55, 30, 0]
    assert min(a, b) - 1 <= track.points[52, 30, 0] <= max(a, b) + 1


def test_fill_gaps_rules():
    pts = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 68, 3), np.float32)
    detected = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 1], bool)
    out, found, long_gaps = fill_gaps(pts, detected, max_gap=2)
    assert found.tolist() == [False, True, True, True, True, True, False, False, False, True]
    assert long_gaps == [(0, 1), (6, 9)]  # leading gaps are never interpolated
    assert np.allclose(out[3:5, 0, 0], [3, 4]) and out[0, 0, 0] == 1 and np.all(out[6:9, 0, 0] >= 5)


def test_the_followed_face_is_the_largest_first_then_the_nearest():
    def face(cx, size):
        pts = np.zeros((68, 3), np.float32)
        pts[:, 0] = cx + np.linspace(-size, size, 68)
        pts[:, 1] = 100 + np.linspace(-size, size, 68)
        return pts
    small_left, big_right = face(50, 10), face(200, 40)
    assert _pick_face([small_left, big_right], None) is big_right
    # once following the left face, a bigger face elsewhere does not steal the track
    assert _pick_face([big_right, small_left], np.array([52.0, 100.0])) is small_left


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "file not found"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b""), "zero-length"),
    (lambda p: p.write_bytes(b"not a video" * 100), "not a readable video"),
])
def test_bad_files_raise_video_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad clip ß.mp4"
    make(path)
    with pytest.raises(VideoError, match=message) as info:
        track_video(path)
    assert "bad clip ß.mp4" in str(info.value)
