"""scripts/probe_render_draw_pose.py's helpers: the burst-level pose slope and which cached draw it reads."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from probe_render_draw_pose import burst_slope, cached_draw, region_shift  # noqa: E402


def test_burst_slope_recovers_a_per_degree_pitch_slide_beside_yaw_and_roll():
    rng = np.random.default_rng(0)
    deviation = rng.normal(0, 3, (12, 3))
    brow = 3.0 * deviation[:, 0] - 0.5 * deviation[:, 2] + rng.normal(0, 0.05, 12)
    slope = burst_slope(deviation, brow)
    assert slope == pytest.approx([3.0, 0.0, -0.5], abs=0.05)


def test_region_shift_is_the_length_of_the_burst_mean_in_milli_iod():
    disp = np.zeros((9, 68, 2))
    disp[:, 17:27, 1] = 0.004          # brows 4 milli-IOD up on every frame
    disp[::2, 48:68, 0] = 0.01         # mouth moving back and forth does not count as a burst-mean shift ...
    disp[1::2, 48:68, 0] = -0.01       # ... when it averages out
    shift = region_shift(disp)
    assert shift["brows"] == pytest.approx(4.0, abs=0.01)
    assert shift["eyes"] == 0 and abs(shift["mouth"]) < 1.2


def _draw_file(path: Path, frames: int, mtime: float) -> Path:
    np.savez(path, frames=np.arange(frames), meta=np.array(json.dumps({})))
    os.utime(path, (mtime, mtime))
    return path


def test_cached_draw_takes_the_full_layout_over_a_newer_smoke_run(tmp_path):
    full = _draw_file(tmp_path / "default_s1_aaaa.npz", 27, 1000)
    _draw_file(tmp_path / "default_s1_bbbb.npz", 9, 2000)          # a later short smoke run
    _draw_file(tmp_path / "default_y_s1_cccc.npz", 54, 3000)       # another subject's file
    assert cached_draw(tmp_path, "default", 1) == full
    newer = _draw_file(tmp_path / "default_s1_dddd.npz", 27, 4000)
    assert cached_draw(tmp_path, "default", 1) == newer
    with pytest.raises(FileNotFoundError, match="draw 2"):
        cached_draw(tmp_path, "default", 2)
