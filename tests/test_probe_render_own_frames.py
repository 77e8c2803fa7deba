"""scripts/probe_render_own_frames.py picks, per labelled clip, two training bursts and the held-out tail."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("probe_render_own_frames",
                                                  REPO / "scripts" / "probe_render_own_frames.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_labelled_clip_gives_two_training_bursts_inside_its_rows_and_its_held_out_tail():
    clips = [{"emotion": "neutral", "train_rows": [0, 80], "heldout_rows": [160, 169]},
             {"emotion": "angry", "train_rows": [80, 160], "heldout_rows": [169, 178]},
             {"emotion": None, "train_rows": [178, 200], "heldout_rows": [200, 202]}]
    chosen = _script().selection(clips, burst=9)
    assert list(chosen) == ["neutral", "angry"]                       # the unlabelled clip is left out
    for clip in clips[:2]:
        parts = chosen[clip["emotion"]]
        assert [name for name, _ in parts] == ["train", "train", "heldout"]
        for _, rows in parts[:2]:
            assert len(rows) == 9 and np.all(np.diff(rows) == 1)
            assert clip["train_rows"][0] <= rows[0] and rows[-1] < clip["train_rows"][1]
        assert parts[0][1][-1] < parts[1][1][0]                        # the two bursts do not overlap
        np.testing.assert_array_equal(parts[2][1], np.arange(*clip["heldout_rows"]))


def test_a_session_without_neutral_or_with_too_short_clips_is_refused():
    script = _script()
    with pytest.raises(ValueError, match="neutral"):
        script.selection([{"emotion": "angry", "train_rows": [0, 80], "heldout_rows": [80, 90]}])
    with pytest.raises(ValueError, match="fewer than two bursts"):
        script.selection([{"emotion": "neutral", "train_rows": [0, 12], "heldout_rows": [12, 14], "video": "n.mp4"}])
