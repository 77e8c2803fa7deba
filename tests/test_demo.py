"""The main job: `emogene demo` writes a playable mp4 whose video and audio durations match."""
from __future__ import annotations

import cv2
import numpy as np

from backend.demo import DemoConfig, run_demo
from backend.media.video import probe_media, stream_durations, write_wav


def test_demo_writes_playable_videos_with_matching_streams(tmp_path):
    from backend.data.audio import load_audio
    from backend.demo import DEMO_SPEECH

    speech = load_audio(DEMO_SPEECH)[: 16000 * 3]          # the first 3 s keep the test short
    clip = write_wav(tmp_path / "speech.wav", speech, 16000)
    out = tmp_path / "demo_out"
    summary = run_demo(DemoConfig(audio=clip, emotion="neutral@0,happy@1.5", out=out, landmarks_only=True))

    assert summary["frames"] == 75
    for name in ("demo.mp4", "landmarks_side_by_side.mp4"):
        info = probe_media(out / name)
        assert (info.video_streams, info.audio_streams) == (1, 1)
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
        durations = stream_durations(out / name)
        assert abs(durations["video"] - durations["audio"]) <= 0.1, durations
        assert abs(durations["video"] - 3.0) <= 0.1
    track = np.load(out / "landmarks.npz")
    assert track["landmarks"].shape == (75, 68, 3)
    assert (out / "landmarks.csv").read_text().count("\n") == 75 * 68 + 1
    assert (out / "timing.json").is_file()
    # the emotion comparison: the same stretch as neutral | happy | sad, with its speech
    info = probe_media(out / "emotions_side_by_side.mp4")
    assert (info.video_streams, info.audio_streams) == (1, 1)
    still = cv2.imread(str(out / "emotions_side_by_side.png"))
    assert still.shape[1] == 3 * 256
    neutral, happy = np.load(out / "emotion_takes/neutral/landmarks.npz"), np.load(out / "emotion_takes/happy/landmarks.npz")
    assert neutral["landmarks"].shape == happy["landmarks"].shape
    assert np.abs(neutral["landmarks"] - happy["landmarks"]).max() > 0.01   # the emotion moved the face
