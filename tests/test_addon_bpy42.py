"""The add-on on Blender 4.2 LTS, the oldest it supports (bpy 4.2.23: ``sequences``, actions without slots).

bpy's PyPI build of 4.2 has no Audaspace (no ``aud``, no sound strips), so the
scenarios that decode audio cannot run on it; this runs the extension install,
take import, landmark and ARKit export and Drive Shape Keys with a take from a
real track. A separate Python holds bpy 4.2.23 (``scripts/setup_bpy42.sh``);
skips when none is set up.
"""
from __future__ import annotations

import pytest

from blender.support import bpy42_python, build_test_zip, run_scenario
from test_addon_arkit import held_out_track

pytestmark = pytest.mark.bpy
PYTHON42 = bpy42_python()


@pytest.mark.skipif(PYTHON42 is None, reason="no bpy 4.2.23 Python (run scripts/setup_bpy42.sh or set "
                                             "EMOGENE_BPY42_PYTHON)")
def test_takes_export_and_shape_keys_on_blender_42(request, tmp_path):
    zip_path = build_test_zip(tmp_path / "zip")
    out = run_scenario("scenario_arkit", zip_path, tmp_path / "out", 100, "track", held_out_track(request),
                       user_dir=tmp_path / "user", python=PYTHON42)
    assert out["matched"] == 7 and out["jaw_open_edit_gain"] > 0.2 and out["first"]["blink_max"] >= 0.8
