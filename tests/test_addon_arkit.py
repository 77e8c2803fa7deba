"""ARKit shape keys in Blender, each scenario in its own bpy process.

A take drives a mesh made in the test (ARKit names in several spellings, plus
names that are no ARKit shape); edits of the landmark curves and a new take
replace the keys cleanly; the ARKit CSV export has the Live Link Face columns.
Takes come from a real ``emogene serve``, from the real server with stand-in
stages, or straight from a held-out speaker's real track (blinks included).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from blender.support import Backend, build_test_zip, run_scenario

pytestmark = pytest.mark.bpy
FRAMES = 40
TRACKS = Path(__file__).resolve().parents[1] / "cache" / "tracks"


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory):
    return build_test_zip(tmp_path_factory.mktemp("addon_zip"))


def held_out_track(request) -> Path:
    """lieu_60s (a held-out speaker; blinks at frames 27, 52, 91 of its first 100)."""
    path = TRACKS / "lieu_60s.npz"
    if not path.is_file():
        path = request.getfixturevalue("prepared_tracks") / "lieu_60s.npz"
    return path


def _check(out: dict) -> None:
    assert out["matched"] == 7 and sorted(out["unmatched"]) == ["Frown", "myCustomShape"]
    assert out["header"] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft"]
    assert out["jaw_open_edit_gain"] > 0.2


@pytest.mark.parametrize("stand_in", [False, True], ids=["emogene_serve", "stand_in_stages"])
def test_drive_shape_keys_from_generated_takes(addon_zip, shared_data, tmp_path, stand_in):
    backend = Backend(tmp_path, test_plates=stand_in)
    try:
        out = run_scenario("scenario_arkit", addon_zip, tmp_path / "out", FRAMES, "generate", backend.address,
                           shared_data / "speech" / "eng_60s.wav", user_dir=tmp_path / "user", timeout=300)
    finally:
        backend.stop()
    _check(out)


def test_drive_shape_keys_from_a_real_track(addon_zip, request, tmp_path):
    out = run_scenario("scenario_arkit", addon_zip, tmp_path / "out", 100, "track", held_out_track(request),
                       user_dir=tmp_path / "user")
    _check(out)
    assert out["first"]["blink_max"] >= 0.8   # the real blinks close the character's eyes
