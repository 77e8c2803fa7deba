"""The bar at a plate's size: the unseen speaker's square real crops, tracked as plates are, at their own size and
downsampled to a smaller plate size (backend/evaluation/judge_plate_size.py)."""
from __future__ import annotations

import pytest

from backend.evaluation.emotion_report import DEFAULT_JUDGE, plate_size_markdown
from backend.evaluation.judge_plate_size import bar_at_plate_sizes, square_source
from backend.evaluation.judge_real_video import judge_on_real_video, own_neutral_only


@pytest.mark.usefixtures("prepared_tracks")
def test_the_judge_still_reads_the_unseen_speaker_at_the_smallest_plate_size(prepared_tracks):
    real = judge_on_real_video(prepared_tracks, DEFAULT_JUDGE)
    speakers = own_neutral_only(real.test)
    assert square_source(prepared_tracks, "M030_sad_level3_001_with_audio_1080p") is None     # uncropped 1080p
    assert square_source(prepared_tracks, "M030_front_angry_level3_001")[1] == 256
    result = bar_at_plate_sizes({0: real.judge}, speakers, prepared_tracks, [128, 512])
    assert "M030_front_neutral_level1_001" in result["clips"]
    assert all("1080p" not in c for c in result["clips"])
    assert set(result["sizes"]) == {"source", "128"}            # 512² is no smaller than the 256² crops
    for reading in result["sizes"].values():
        assert 0.25 < reading["mean"] <= 1.0                   # well above chance (12.5 %) at 256² and at 128²
    text = "".join(plate_size_markdown(result))
    assert "256²" in text and "128²" in text
