"""The compat layer on Blender 4.5 LTS (bpy 4.5.15: ``sequences``-era names, ``Action.fcurves``).

Runs the same scenarios as on 5.0.1 with a separate Python holding bpy 4.5.15;
skips when none is set up (see ``blender.support.bpy45_python``).
"""
from __future__ import annotations

import pytest

from blender.support import Backend, bpy45_python, build_test_zip, run_scenario

pytestmark = pytest.mark.bpy
PYTHON45 = bpy45_python()
needs_bpy45 = pytest.mark.skipif(PYTHON45 is None, reason="no bpy 4.5.15 Python (set EMOGENE_BPY45_PYTHON or "
                                                          "create cache/bpy45, see blender/support.py)")


@needs_bpy45
def test_units_on_blender_45(shared_data, tmp_path):
    zip_path = build_test_zip(tmp_path / "zip")
    out = run_scenario("scenario_units", zip_path, shared_data / "speech" / "eng_60s.wav", tmp_path / "out",
                       user_dir=tmp_path / "user", python=PYTHON45)
    assert out["ok"]


@needs_bpy45
def test_plates_flow_on_blender_45(shared_data, tmp_path):
    zip_path = build_test_zip(tmp_path / "zip")
    backend = Backend(tmp_path, test_plates=True)
    try:
        out = run_scenario("scenario_generate", zip_path, backend.address, shared_data / "speech" / "eng_60s.wav",
                           tmp_path / "out", "PLATES", 30, user_dir=tmp_path / "user", python=PYTHON45)
    finally:
        backend.stop()
    assert out["colour"]["Standard"] == 0 and out["status"].endswith("30 plates")


@needs_bpy45
def test_drive_shape_keys_on_blender_45(shared_data, tmp_path):
    zip_path = build_test_zip(tmp_path / "zip")
    backend = Backend(tmp_path, test_plates=True)
    try:
        out = run_scenario("scenario_arkit", zip_path, tmp_path / "out", 30, "generate", backend.address,
                           shared_data / "speech" / "eng_60s.wav", user_dir=tmp_path / "user", python=PYTHON45)
    finally:
        backend.stop()
    assert out["matched"] == 7 and out["jaw_open_edit_gain"] > 0.2
