"""Emotion text, landmark names and request building (bridge/emotion_spec.py, landmarks.py, requests.py)."""
import numpy as np
import pytest

from bridge.emotion_spec import EmotionSpecError, keys_to_frames, parse_emotion_spec, spec_to_frames
from bridge.emotions import EMOTION_INDEX, UnknownEmotionError
from bridge.landmarks import LANDMARK_NAMES, MOUTH, REGIONS, region_of
from bridge.requests import build_generate, frame_count_for


def test_spec_forms():
    (key,) = parse_emotion_spec("happy")
    assert (key.emotion, key.intensity, key.time_s) == ("happy", 1.0, 0.0)
    (key,) = parse_emotion_spec(" Sad:0.25 ")
    assert (key.emotion, key.intensity) == ("sad", 0.25)
    keys = parse_emotion_spec("neutral@0,happy:0.8@1.5,sad@4")
    assert [(k.emotion, k.intensity, k.time_s) for k in keys] == [
        ("neutral", 1.0, 0.0), ("happy", 0.8, 1.5), ("sad", 1.0, 4.0)]


@pytest.mark.parametrize("spec, error, words", [
    ("joyful", UnknownEmotionError, "joyful"),
    ("happy:1.5", EmotionSpecError, "outside [0, 1]"),
    ("happy:-0.1", EmotionSpecError, "outside [0, 1]"),
    ("happy:abc", EmotionSpecError, "not a number"),
    ("happy@2,sad@1", EmotionSpecError, "increase"),
    ("happy@1,sad@1", EmotionSpecError, "increase"),
    ("happy,sad", EmotionSpecError, "no time"),
    ("happy@x", EmotionSpecError, "seconds"),
    ("happy@-1", EmotionSpecError, ">= 0"),
    ("happy@0,,sad@1", EmotionSpecError, "empty"),
    ("", EmotionSpecError, "empty"),
])
def test_spec_errors_are_clear(spec, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_emotion_spec(spec)


def test_keys_cross_fade_and_hold():
    weights, intensity = spec_to_frames("neutral@1,happy:0.5@2", frame_count=31, fps=10)
    happy, neutral = EMOTION_INDEX["happy"], EMOTION_INDEX["neutral"]
    assert weights.shape == (31, 8) and intensity.shape == (31,) and weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-6)
    assert weights[0, neutral] == 1 and weights[10, neutral] == 1           # hold before / at first key
    assert weights[15, happy] == pytest.approx(0.5) and intensity[15] == pytest.approx(0.75)
    assert weights[20, happy] == 1 and weights[30, happy] == 1             # at / after last key
    assert intensity[30] == pytest.approx(0.5)
    w, i = keys_to_frames(parse_emotion_spec("fear:0.3"), 5, 24.0)
    assert np.all(w[:, EMOTION_INDEX["fear"]] == 1) and np.allclose(i, 0.3)
    assert keys_to_frames(parse_emotion_spec("fear"), 0, 24.0)[0].shape == (0, 8)


def test_landmark_names_and_regions():
    assert len(LANDMARK_NAMES) == 68 and len(set(LANDMARK_NAMES)) == 68
    assert LANDMARK_NAMES[0] == "jaw_00" and LANDMARK_NAMES[16] == "jaw_16"
    assert LANDMARK_NAMES[17] == "brow_r_0" and LANDMARK_NAMES[26] == "brow_l_4"
    assert LANDMARK_NAMES[27] == "nose_bridge_0" and LANDMARK_NAMES[35] == "nose_base_4"
    assert LANDMARK_NAMES[36] == "eye_r_0" and LANDMARK_NAMES[47] == "eye_l_5"
    assert LANDMARK_NAMES[48] == "lip_outer_00" and LANDMARK_NAMES[59] == "lip_outer_11"
    assert LANDMARK_NAMES[60] == "lip_inner_0" and LANDMARK_NAMES[67] == "lip_inner_7"
    assert sum(len(r) for r in REGIONS.values()) == 68 and list(MOUTH) == list(range(48, 68))
    assert region_of(50) == "lip_outer"
    with pytest.raises(IndexError):
        region_of(68)


def test_frame_count_and_build_generate():
    assert frame_count_for(2.0, 25) == 50 and frame_count_for(2.01, 25) == 51
    assert frame_count_for(1.0, 29.97) == 30 and frame_count_for(0, 24) == 0
    with pytest.raises(ValueError):
        frame_count_for(1.0, 0)
    w, i = spec_to_frames("happy", 3, 25)
    msg = build_generate(np.zeros(1000, np.float64), 16000, 25, w, i, camera={
        "focal_length_mm": 50.0, "anchor_from_camera": np.eye(4), "resolution": (512, 512)})
    assert msg.type == "generate" and msg.content["sample_rate"] == 16000
    assert msg.buffers[0].dtype == np.float32 and len(msg.content["camera"]["anchor_from_camera"]) == 16
    enc = build_generate(b"RIFF....", None, 25, w, i, media_type="audio/wav")
    assert enc.media_type(0) == "audio/wav" and "sample_rate" not in enc.content
    with pytest.raises(ValueError, match="media_type"):
        build_generate(b"RIFF", None, 25, w, i)
    with pytest.raises(ValueError, match="intensity"):
        build_generate(np.zeros(10), 16000, 25, w, i[:2])
    with pytest.raises(ValueError, match="camera"):
        build_generate(np.zeros(10), 16000, 25, w, i, camera={"fov": 1})


def test_mead_levels_map_to_intensities_and_odd_levels_are_named():
    from bridge.emotions import level_intensity

    assert [level_intensity(n) for n in (1, 2, 3, "3")] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    assert level_intensity(None) is None and level_intensity(None, 1.0) == 1.0
    assert np.isnan(level_intensity(0, np.nan))
    for bad in (4, -1, "high"):
        with pytest.raises(ValueError, match=repr(bad)):
            level_intensity(bad)
