"""The plate evaluation's measurement: which held-out frames, the frame's own background, and the
block-bootstrap intervals."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backend.render.evaluate_plates import (DEFAULT_FRAMES, block_bootstrap_interval, evaluation_frames,
                                            frame_background, selection_frames, summarise)

DEFAULT = Path(__file__).resolve().parents[1] / "backend" / "assets" / "subjects" / "default"


def test_evaluation_frames_spread_over_the_held_out_span_and_skip_the_selection_frames():
    info = json.loads((DEFAULT / "subject.json").read_text())
    start, end = info["split"]["heldout"]
    frames, selection = evaluation_frames(info, DEFAULT_FRAMES), selection_frames(info)
    assert len(frames) == DEFAULT_FRAMES and len(set(frames)) == DEFAULT_FRAMES
    assert frames.min() == start and frames.max() >= end - 3          # the whole span, not its start
    assert not set(frames) & set(selection) and len(selection) >= 20
    assert set(selection) <= set(range(start, end))


def test_bootstrap_interval_covers_the_mean_and_widens_for_correlated_frames():
    rng = np.random.default_rng(1)
    iid = rng.normal(0.0, 1.0, 200)
    lo, hi = block_bootstrap_interval(iid, np.mean)
    assert lo < 0.0 < hi and 0.15 < hi - lo < 0.45                   # about 2 x 1.96 / sqrt(200) = 0.28
    assert block_bootstrap_interval(np.full(50, 3.0), np.mean) == (3.0, 3.0)
    slow = np.repeat(rng.normal(0.0, 1.0, 20), 10)                  # 20 independent values, each held 10 frames
    lo_block, hi_block = block_bootstrap_interval(slow, np.mean, block=10)
    lo_frame, hi_frame = block_bootstrap_interval(slow, np.mean, block=1)
    assert hi_block - lo_block > 1.5 * (hi_frame - lo_frame)      # frame-wise resampling would be overconfident


def test_frame_background_keeps_the_real_background_and_fills_behind_the_person():
    real, clean = np.full((64, 64, 3), 0.8), np.full((64, 64, 3), 0.2)
    mask = np.zeros((64, 64))
    mask[20:40, 20:40] = 1.0
    own = frame_background(real, mask, clean, dilate_px=4)
    assert (own[:10, :10] == 0.8).all() and (own[20:40, 20:40] == 0.2).all()
    assert (own[17, 30] == 0.2).all() and (own[14, 30] == 0.8).all()  # dilated by 4 px, not more


def test_summary_pairs_the_methods_frame_by_frame():
    rows = []
    for k in range(30):
        base = 25.0 + np.sin(k / 3)                                  # frames differ far more than the methods
        q = lambda p: {key: p for key in ("psnr", "ssim", "mouth_psnr", "clean_psnr", "clean_ssim",
                                          "clean_mouth_psnr")}
        d = lambda px: {"all_px": px, "mouth_px": px, "mouth_iod": px / 100}
        rows.append({"real": d(1.0), "ours": {**q(base + 0.1), **d(1.2)}, "bicubic": {**q(base), **d(1.3)},
                     "retrieval": {**q(base - 5), **d(10.0)}})
    s = summarise(rows)
    mean, lo, hi = s["paired_differences"]["ours-bicubic"]["psnr"]
    assert abs(mean - 0.1) < 1e-9 and lo > 0.09 and hi < 0.11       # pairing removes the frame-to-frame spread
    assert s["ci95"]["ours"]["psnr"][1] - s["ci95"]["ours"]["psnr"][0] > 0.2
    assert abs(s["mouth_distance_over_noise_floor"]["ours"] - 1.2) < 1e-9
