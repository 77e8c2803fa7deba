"""Batch from Blender: Generate All Marked sends one job per marked scene against `emogene serve` and
imports each take into its own scene."""
from __future__ import annotations

import pytest

from blender.support import Backend, build_test_zip, run_scenario

pytestmark = pytest.mark.bpy


def test_generate_all_marked_scenes_imports_a_take_into_each(shared_data, tmp_path):
    for folder in ("zip", "serve"):
        (tmp_path / folder).mkdir()
    zip_path = build_test_zip(tmp_path / "zip")
    backend = Backend(tmp_path / "serve")
    try:
        out = run_scenario("scenario_batch", zip_path, backend.address, shared_data / "speech" / "eng_60s.wav",
                           tmp_path / "out", 40, user_dir=tmp_path / "user")
    finally:
        backend.stop()
    assert out["Shot_A"]["frames"] == 40 and out["Shot_B"]["frames"] == 50
