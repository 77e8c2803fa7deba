"""Landmarks -> ARKit 52 weights (bridge/arkit.py) on real tracks, and the Live Link Face files.

Real-track checks use speakers held out of everything trained or calibrated
(the track files' ``val`` split: andrew, KristiNoem, lieu, ...); the basis's two
calibrated numbers come from train-split tracks only (scripts/calibrate_arkit.py).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bridge import arkit
from bridge.arkit_basis import NOT_OBSERVABLE, build_basis
from bridge.arkit_names import ARKIT_INDEX, ARKIT_NAMES, BLEND_SHAPE_COUNT, LIVE_LINK_FACE_HEADER, NUM_SHAPES
from bridge.live_link_face import read_csv, timecode, write_csv, write_json

TRACKS = Path(__file__).resolve().parents[1] / "cache" / "tracks"
HELD_OUT = ("andrew_clip_1", "andrew_clip_2", "KristiNoem", "lieu_60s")
MEAD = ("M030_front_neutral_level1_001", "M030_front_happy_level3_001", *(
    f"{s}_front_{e}_level{1 if e == 'neutral' else 3}_001" for s in ("M030", "W009")
    for e in ("neutral", "angry", "surprised")))
#: round trip on held-out speakers: mean point error (canonical units; 1 = inter-ocular distance)
MAX_ROUND_TRIP_ERROR = 0.013
MAX_ROUND_TRIP_RATIO = 0.6    # of the error of the neutral face (with the same per-frame shift/scale)


@pytest.fixture(scope="module")
def tracks(request) -> Path:
    """The prepared tracks (prepared once if missing; see conftest.prepared_tracks)."""
    needed = [TRACKS / f"{c}.json" for c in (*HELD_OUT, *MEAD)]
    if all(p.is_file() for p in needed):
        return TRACKS
    return request.getfixturevalue("prepared_tracks")


def _load(folder: Path, clip: str) -> tuple[np.ndarray, dict]:
    with np.load(folder / f"{clip}.npz") as z:
        arrays = {k: z[k] for k in ("landmarks", "blink")}
    meta = json.loads((folder / f"{clip}.json").read_text())
    return arrays, meta


def _neutral_face(folder: Path) -> np.ndarray:
    """A real rest face: M030's neutral take."""
    return arkit.estimate_neutral(_load(folder, MEAD[0])[0]["landmarks"])


# -- vocabulary and files ----------------------------------------------------------------------------

def test_names_are_apples_52_in_live_link_face_order():
    assert NUM_SHAPES == 52 and len(set(ARKIT_NAMES)) == 52
    assert ARKIT_NAMES[0] == "eyeBlinkLeft" and ARKIT_NAMES[-1] == "tongueOut"
    assert ARKIT_NAMES[14:18] == ("jawForward", "jawRight", "jawLeft", "jawOpen")
    assert LIVE_LINK_FACE_HEADER[:3] == ("Timecode", "BlendShapeCount", "EyeBlinkLeft")
    assert LIVE_LINK_FACE_HEADER[-9:] == ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch",
                                          "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
    assert len(LIVE_LINK_FACE_HEADER) == 63 and BLEND_SHAPE_COUNT == 61


def test_timecode_is_hours_minutes_seconds_frames_subframe():
    assert timecode(0, 25) == "00:00:00:00.000"
    assert timecode(25 * 3661 + 7, 25) == "01:01:01:07.000"
    assert timecode(31, 29.97) == "00:00:01:01.000"      # nominal 30 fps
    with pytest.raises(ValueError, match="fps"):
        timecode(1, 0)


def test_csv_and_json_layout(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.uniform(0, 1, (5, NUM_SHAPES))
    angles = rng.normal(0, 0.1, (5, 3))
    write_csv(tmp_path / "a.csv", weights, np.arange(10, 15), 25, angles)
    header, codes, values = read_csv(tmp_path / "a.csv")
    assert tuple(header) == LIVE_LINK_FACE_HEADER
    assert codes[0] == "00:00:00:10.000" and all(re.fullmatch(r"\d\d:\d\d:\d\d:\d\d\.\d{3}", c) for c in codes)
    assert values.shape == (5, 61)
    np.testing.assert_allclose(values[:, :52], weights, atol=1e-6)
    np.testing.assert_allclose(values[:, 52:55], angles, atol=1e-6)
    assert np.all(values[:, 55:] == 0)
    write_json(tmp_path / "a.json", weights, np.arange(10, 15), 25, angles)
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["names"] == list(ARKIT_NAMES) and doc["frames"] == list(range(10, 15))
    np.testing.assert_allclose(doc["weights"], weights, atol=1e-6)
    with pytest.raises(ValueError, match="weights must be"):
        write_csv(tmp_path / "b.csv", weights[:, :10], np.arange(5), 25)


def test_bad_landmarks_are_named():
    with pytest.raises(ValueError, match=r"\[frames, 68, 3\]"):
        arkit.solve(np.zeros((4, 67, 3)))
    with pytest.raises(ValueError, match="NaN"):
        arkit.solve(np.full((4, 68, 3), np.nan))
    with pytest.raises(ValueError, match="no frames"):
        arkit.solve(np.zeros((0, 68, 3)))


def test_head_angles_signs():
    def about_y(a):   # canonical axes: +y up, turning the face (+z) toward +x, the subject's left
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    flip = np.diag([1.0, -1.0, -1.0])
    rotation = np.stack([flip @ about_y(a) @ flip for a in (0.0, 0.3, -0.2)])   # to OpenCV camera axes
    np.testing.assert_allclose(arkit.head_angles(rotation)[:, 0], [0.0, 0.3, -0.2], atol=1e-9)
    np.testing.assert_allclose(arkit.head_angles(rotation)[:, 1:], 0.0, atol=1e-9)


# -- solver ----------------------------------------------------------------------------------------

def test_synthetic_weights_come_back(tracks):
    """Weights applied to the basis are recovered by the solver (no noise, no smoothing)."""
    neutral = _neutral_face(tracks)
    rng = np.random.default_rng(1)
    truth = np.zeros((40, NUM_SHAPES))
    for name in ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "browInnerUp"):
        truth[:, ARKIT_INDEX[name]] = rng.uniform(0, 1, 40)
    points = arkit.reconstruct(truth, neutral)
    result = arkit.solve(points, neutral, arkit.SolveConfig(ridge=1e-4, sparsity=0, iterations=3000,
                                                             smooth_sigma_frames=0))
    assert np.abs(result.reconstruct() - points).mean() < 2e-3
    for name in ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft"):
        k = ARKIT_INDEX[name]
        assert np.corrcoef(result.weights[:, k], truth[:, k])[0, 1] > 0.95, name
    assert result.weights.min() >= 0 and result.weights.max() <= 1


def test_unobservable_shapes_stay_zero(tracks):
    neutral = _neutral_face(tracks)
    basis = build_basis(neutral)
    for name in NOT_OBSERVABLE:
        assert not basis[ARKIT_INDEX[name]].any(), name
    arrays, _ = _load(tracks, "lieu_60s")
    weights = arkit.solve(arrays["landmarks"][:200]).weights
    assert not weights[:, [ARKIT_INDEX[n] for n in NOT_OBSERVABLE]].any()


def test_round_trip_on_held_out_speakers(tracks):
    """Weights -> basis -> landmarks gives back the tracked landmarks much better than the neutral face."""
    errors, baselines = [], []
    for clip in HELD_OUT:
        arrays, meta = _load(tracks, clip)
        assert meta["split"] == "val", clip
        points = arrays["landmarks"].astype(np.float64)
        result = arkit.solve(points)
        errors.append(np.linalg.norm(result.reconstruct() - points, axis=2).mean())
        still = arkit.SolveResult(np.zeros_like(result.weights), result.neutral, result.offsets)
        baselines.append(np.linalg.norm(still.reconstruct() - points, axis=2).mean())
    error, baseline = float(np.mean(errors)), float(np.mean(baselines))
    print(f"round trip mean point error {error:.4f} vs neutral {baseline:.4f} (per clip {np.round(errors, 4)})")
    assert error < MAX_ROUND_TRIP_ERROR
    assert error < MAX_ROUND_TRIP_RATIO * baseline


def test_mouth_opening_drives_jaw_open(tracks):
    for clip in HELD_OUT:
        points = _load(tracks, clip)[0]["landmarks"]
        jaw = arkit.solve(points).weights[:, ARKIT_INDEX["jawOpen"]]
        opening = arkit.mouth_opening(points)
        wide, shut = opening >= np.percentile(opening, 90), opening <= np.percentile(opening, 10)
        assert np.corrcoef(opening, jaw)[0, 1] > 0.5, clip
        assert jaw[wide].mean() > jaw[shut].mean() + 0.1, clip


def test_happy_take_smiles_more_than_neutral(tracks):
    """M030 happy vs M030 neutral, both against the neutral take's rest face."""
    neutral_points = _load(tracks, MEAD[0])[0]["landmarks"]
    happy_points = _load(tracks, MEAD[1])[0]["landmarks"]
    rest = arkit.estimate_neutral(neutral_points)
    calm, happy = arkit.solve(neutral_points, rest).weights, arkit.solve(happy_points, rest).weights
    for name in ("mouthSmileLeft", "mouthSmileRight"):
        k = ARKIT_INDEX[name]
        assert happy[:, k].mean() > calm[:, k].mean() + 0.3, (name, happy[:, k].mean(), calm[:, k].mean())


@pytest.mark.parametrize("speaker", ["M030", "W009"])
def test_brows_follow_angry_and_surprised_takes(tracks, speaker):
    """MEAD: angry lowers the brows, surprised raises them, vs the speaker's neutral take."""
    calm = _load(tracks, f"{speaker}_front_neutral_level1_001")[0]["landmarks"]
    rest = arkit.estimate_neutral(calm)
    base = arkit.solve(calm, rest).weights.mean(axis=0)
    for emotion, shapes in (("angry", ("browDownLeft", "browDownRight")),
                            ("surprised", ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"))):
        mean = arkit.solve(_load(tracks, f"{speaker}_front_{emotion}_level3_001")[0]["landmarks"], rest).weights.mean(0)
        for name in shapes:
            assert mean[ARKIT_INDEX[name]] > base[ARKIT_INDEX[name]] + 0.25, (emotion, name)


def test_real_blinks_close_the_eyes(tracks):
    """At the bottom of every real blink of the held-out tracks (eye openness < 0.1) eyeBlink reaches >= 0.8
    for most blinks, and never stays low."""
    at_trough = []
    for path in sorted(tracks.glob("*.json")):
        meta = json.loads(path.read_text())
        if meta.get("split") != "val":
            continue
        arrays, _ = _load(tracks, meta["clip_id"])
        openness = arrays["blink"]
        troughs = [t for t in range(1, len(openness) - 1) if openness[t] < 0.1
                   and openness[t] <= openness[t - 1] and openness[t] <= openness[t + 1]]
        points = arrays["landmarks"]
        rest = arkit.estimate_neutral(points)
        for t in troughs:   # solved in a window around each blink (as fast, same weights at the trough)
            lo = max(0, t - 12)
            weights = arkit.solve(points[lo:t + 13], rest).weights
            at_trough.append(weights[t - lo][[ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"]]][None])
    values = np.concatenate(at_trough)
    print(f"{len(values)} blink troughs: median {np.median(values, axis=0)}, "
          f">= 0.8: {(values >= 0.8).mean(axis=0)}, min {values.min(axis=0)}")
    assert len(values) >= 20
    assert np.all(np.median(values, axis=0) >= 0.9)
    assert np.all((values >= 0.8).mean(axis=0) >= 0.85)
    assert values.min() > 0.4


def test_neutral_candidates_restrict_the_rest_face(tracks):
    points = _load(tracks, MEAD[1])[0]["landmarks"]
    mask = np.zeros(len(points), bool)
    mask[:10] = True
    np.testing.assert_allclose(arkit.estimate_neutral(points, mask), arkit.estimate_neutral(points[:10]))
    np.testing.assert_allclose(arkit.estimate_neutral(points, np.zeros(len(points), bool)),
                               arkit.estimate_neutral(points))
    with pytest.raises(ValueError, match="candidates"):
        arkit.estimate_neutral(points, mask[:5])


# -- emogene generate ------------------------------------------------------------------------------

def test_generate_writes_arkit_csv_and_json(tmp_path, capsys):
    import soundfile

    from backend.cli import main
    from test_server_support import make_subject, speech, start_plate_server

    server = start_plate_server(tmp_path / "jobs", make_subject(tmp_path / "subjects"))
    try:
        wav = tmp_path / "speech.wav"
        soundfile.write(wav, speech(1.0), 16000)
        out = tmp_path / "out"
        code = main(["generate", "--connect", server.address, "--audio", str(wav), "--emotion", "happy:0.5",
                     "--fps", "25", "--landmarks-only", "--out", str(out)])
        assert code == 0, capsys.readouterr().err
    finally:
        server.stop()
    frames = len(np.load(out / "landmarks.npz")["landmarks"])
    header, codes, values = read_csv(out / "arkit.csv")
    assert tuple(header) == LIVE_LINK_FACE_HEADER and len(codes) == frames and codes[0] == "00:00:00:00.000"
    assert values[:, :52].min() >= 0 and values[:, :52].max() <= 1
    doc = json.loads((out / "arkit.json").read_text())
    assert doc["names"] == list(ARKIT_NAMES) and len(doc["weights"]) == frames


# -- shape key names (the add-on's bpy-free matcher) -----------------------------------------------

def _shape_key_names():
    import importlib.util
    import sys
    path = Path(__file__).resolve().parents[1] / "blender_addon" / "shape_key_names.py"
    spec = importlib.util.spec_from_file_location("addon_shape_key_names", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("key, arkit_name", [
    ("eyeBlinkLeft", "eyeBlinkLeft"), ("EyeBlinkLeft", "eyeBlinkLeft"), ("eyeblinkleft", "eyeBlinkLeft"),
    ("EyeBlink_L", "eyeBlinkLeft"), ("eyeBlink.R", "eyeBlinkRight"), ("eye_blink_right", "eyeBlinkRight"),
    ("bs_jawOpen", "jawOpen"), ("ARKit_mouthSmile_L", "mouthSmileLeft"), ("blendShape1.browInnerUp", "browInnerUp"),
    ("SK_cheekSquint.R", "cheekSquintRight"), ("noseSneerL", "noseSneerLeft"), ("mouth_roll_lower", "mouthRollLower"),
    ("MouthRollUpper", "mouthRollUpper"), ("tongue_out", "tongueOut"), ("JawRight", "jawRight"),
])
def test_shape_key_spellings_match(key, arkit_name):
    matched, unmatched, _ = _shape_key_names().match_shape_keys([key], ARKIT_NAMES)
    assert matched == {key: arkit_name} and unmatched == []


def test_shape_key_report_lists_unmatched_and_missing():
    keys = ["Basis", "jawOpen", "JawOpen", "Smile", "myCustomShape", "eyeBlink_L"]
    matched, unmatched, missing = _shape_key_names().match_shape_keys(keys, ARKIT_NAMES)
    assert matched == {"jawOpen": "jawOpen", "eyeBlink_L": "eyeBlinkLeft"}
    assert unmatched == ["JawOpen", "Smile", "myCustomShape"]       # a second jawOpen is not keyed twice
    assert len(missing) == 50 and "jawOpen" not in missing and "tongueOut" in missing


def test_rest_frames_from_the_emotion_track():
    weights = np.zeros((4, 8))
    weights[0, 0] = 1.0                 # neutral
    weights[1, 5] = 1.0                 # happy
    weights[2, [0, 5]] = [0.6, 0.4]     # mostly neutral
    weights[3, 5] = 1.0                 # happy at intensity 0
    mask = arkit.rest_frames_from_emotion(weights, [1.0, 1.0, 1.0, 0.0])
    assert mask.tolist() == [True, False, True, True]
    assert arkit.rest_frames_from_emotion(np.zeros((2, 8)), [1, 1]).all()   # all-zero rows are neutral
