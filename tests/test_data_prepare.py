"""``emogene prepare`` end to end on real clips: outputs, resume/skip, and every kind of bad input."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from backend.cli import main as cli_main
from backend.data.prepare import PrepareConfig, prepare_paths
from backend.data.tracks import list_tracks, load_track

SECONDS = 2.0  # keep each clip short: these tests check behaviour, not throughput


def _ffmpeg(*args):
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    """A small corpus with good and bad clips, in a folder whose name has spaces and unicode."""
    root = tmp_path_factory.mktemp("corpus") / "clips ü dir"
    root.mkdir()
    mead = shared_data / "mead" / "W009_front_happy_level3_001.mp4"
    shutil.copy(mead, root / "W009_front_happy_level3_001.mp4")                # no audio stream
    shutil.copy(shared_data / "talking" / "WDA_KatieHill_000.mp4", root / "Katie Hill é.mp4")  # own audio
    speech, rate = sf.read(shared_data / "speech" / "German1.wav")
    for name, new_rate, channels in (("eight_k", 8_000, 1), ("ninety_six_k", 96_000, 2)):
        shutil.copy(shared_data / "talking" / "styletalk" / "feifeili_clip1.mp4", root / f"{name}.mp4")
        from scipy.signal import resample_poly
        audio = resample_poly(speech, new_rate, rate)
        sf.write(root / f"{name}.wav", np.stack([audio] * channels, 1) if channels > 1 else audio, new_rate)
    tree_video = root / "M030" / "video" / "front" / "sad" / "level_2" / "007.mp4"
    tree_video.parent.mkdir(parents=True)
    shutil.copy(shared_data / "mead" / "M030_front_sad_level3_001.mp4", tree_video)
    tree_audio = root / "M030" / "audio" / "sad" / "level_2" / "007.m4a"
    tree_audio.parent.mkdir(parents=True)
    _ffmpeg("-i", shared_data / "speech" / "German1.wav", "-t", "4", "-c:a", "aac", tree_audio)
    (root / "empty.mp4").write_bytes(b"")
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    _ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=256x256:d=1:r=25", "-pix_fmt", "yuv420p", root / "no_face.mp4")
    _ffmpeg("-i", mead, "-i", shared_data / "mead" / "M030_front_happy_level3_001.mp4", "-t", "2",
            "-filter_complex", "[0:v][1:v]hstack=inputs=2", "-pix_fmt", "yuv420p", root / "two_faces.mp4")
    return root


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracks")
    config = PrepareConfig(out_dir=out, preview=True, max_seconds=SECONDS)
    return out, config, prepare_paths([corpus], config, show_progress=False)


def _result(summary, name):
    return next(r for r in summary.results if name in r.source.name)


def test_good_clips_produce_complete_tracks(prepared):
    out, _, summary = prepared
    done = {r.source.name for r in summary.of("done")}
    assert {"W009_front_happy_level3_001.mp4", "Katie Hill é.mp4", "eight_k.mp4", "ninety_six_k.mp4",
            "two_faces.mp4"} <= done
    for path in list_tracks(out):
        track = load_track(path)
        assert track.frame_count == int(round(SECONDS * 25))
        assert track.mel.shape == (4 * track.frame_count, 80)
        assert (out / f"{path.stem}.preview.png").is_file()


def test_audio_less_mead_clip_is_kept_as_visual_only(prepared):
    out, _, summary = prepared
    result = _result(summary, "W009_front_happy")
    assert any("no audio stream" in w for w in result.warnings)
    track = load_track(out / "W009_front_happy_level3_001.npz")
    assert not track.has_audio and not track.speech.any() and not track.mel.any()
    assert track.meta["emotion"] == "happy" and track.meta["intensity"] == 1.0 and track.meta["speaker"] == "W009"


def test_mead_tree_clip_gets_its_m4a_and_labels(prepared):
    out, _, _ = prepared
    track = load_track(out / "M030_front_sad_level2_007.npz")
    assert track.has_audio and track.meta["audio_source"].endswith("007.m4a")
    assert (track.meta["corpus"], track.meta["emotion"], track.meta["level"]) == ("mead_tree", "sad", 2)
    assert track.meta["intensity"] == pytest.approx(2 / 3) and track.speech.any()


@pytest.mark.parametrize("name", ["eight_k", "ninety_six_k"])
def test_8k_and_96k_stereo_companion_audio_is_used(prepared, name):
    out, _, _ = prepared
    track = load_track(out / f"{name}.npz")
    assert track.has_audio and track.meta["audio_source"].endswith(f"{name}.wav")
    assert track.speech.mean() > 0.5 and track.mel.std() > 1.0


def test_unicode_path_with_spaces_gets_a_safe_id_and_its_own_audio(prepared):
    out, _, summary = prepared
    result = _result(summary, "Katie Hill")
    track = load_track(out / f"{result.clip_id}.npz")
    assert result.clip_id.isascii() and track.has_audio and "Katie Hill é.mp4" in track.meta["source"]


@pytest.mark.parametrize("name, message", [("empty.mp4", "zero-length"), ("corrupt.mp4", "not a readable video"),
                                           ("no_face.mp4", "no face found")])
def test_bad_videos_fail_with_a_message_naming_file_and_problem(prepared, name, message):
    _, _, summary = prepared
    result = _result(summary, name)
    assert result.status == "failed" and message in result.message and name in result.message
    assert any(name in line and "FAILED" in line for line in summary.lines())


def test_two_faces_are_reported_and_one_face_is_followed(prepared):
    out, _, summary = prepared
    result = _result(summary, "two_faces")
    assert any("more than one face" in w for w in result.warnings)
    track = load_track(out / "two_faces.npz")
    assert track.meta["multi_face_frames"] > 0
    centre_x = track.landmarks_image[..., 0].mean(axis=1)
    assert np.all(centre_x < 256) or np.all(centre_x > 256), "the tracker must not jump between faces"


def test_second_run_is_a_noop_and_an_interrupted_clip_is_redone(prepared, corpus):
    out, config, first = prepared
    again = prepare_paths([corpus], config, show_progress=False)
    assert not again.of("done") and len(again.of("skipped")) == len(first.of("done"))
    assert any("nothing to do" in line or "skipped" in line for line in again.lines())
    # an interruption between the npz and the json leaves no json: only that clip is redone
    (out / "eight_k.json").unlink()
    third = prepare_paths([corpus], config, show_progress=False)
    assert [r.clip_id for r in third.of("done")] == ["eight_k"]
    # other options (another --max-seconds) or --force redo the work
    forced = prepare_paths([corpus / "eight_k.mp4"], PrepareConfig(out_dir=out, force=True, max_seconds=SECONDS),
                           show_progress=False)
    assert [r.status for r in forced.results] == ["done"]


def test_cli_prints_a_summary_and_exits_1_when_a_clip_failed(corpus, tmp_path, capsys):
    code = cli_main(["prepare", str(corpus / "empty.mp4"), str(corpus / "eight_k.mp4"), "--out", str(tmp_path),
                     "--max-seconds", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 done" in out and "1 failed" in out and "empty.mp4: zero-length file" in out
    meta = json.loads((tmp_path / "eight_k.json").read_text())
    assert meta["frame_count"] == 25 and meta["split"] in ("train", "val")


def test_cli_rejects_a_missing_path_in_the_summary(tmp_path, capsys):
    code = cli_main(["prepare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 0 and "no such file or folder" in capsys.readouterr().out


def test_a_missing_preview_is_drawn_for_an_already_prepared_clip(prepared, corpus):
    out, config, _ = prepared
    (out / "eight_k.preview.png").unlink()
    again = prepare_paths([corpus / "eight_k.mp4"], config, show_progress=False)
    assert [r.status for r in again.results] == ["skipped"]
    assert (out / "eight_k.preview.png").is_file()


def test_an_unexpected_error_fails_only_that_clip(corpus, tmp_path, monkeypatch):
    import backend.data.prepare as prepare_module
    real = prepare_module.track_video

    def flaky(path, **kwargs):
        if "eight_k" in str(path):
            raise RuntimeError("simulated decoder crash")
        return real(path, **kwargs)

    monkeypatch.setattr(prepare_module, "track_video", flaky)
    summary = prepare_paths([corpus / "eight_k.mp4", corpus / "ninety_six_k.mp4"],
                            PrepareConfig(out_dir=tmp_path, max_seconds=1.0), show_progress=False)
    status = {r.clip_id: (r.status, r.message) for r in summary.results}
    assert status["ninety_six_k"][0] == "done"
    assert status["eight_k"][0] == "failed" and "RuntimeError: simulated decoder crash" in status["eight_k"][1]
    assert "eight_k.mp4" in status["eight_k"][1]


@pytest.mark.parametrize("signal_name", ["SIGINT", pytest.param("SIGTERM", marks=pytest.mark.slow)])
def test_an_interrupted_run_leaves_whole_clips_only_and_resumes(shared_data, tmp_path, signal_name):
    import signal
    import sys
    import time
    first = shared_data / "mead" / "W009_front_neutral_level1_001.mp4"
    second = shared_data / "talking" / "cnn2_25fps.mp4"
    cmd = [sys.executable, "-m", "backend.cli", "prepare", str(first), str(second), "--out", str(tmp_path),
           "--max-seconds", "10", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "W009_front_neutral_level1_001.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(getattr(signal, signal_name))
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["W009_front_neutral_level1_001.json", "W009_front_neutral_level1_001.npz"], names
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0 and "1 done, 1 skipped" in rerun.stdout
