"""The judge on real talking heads read with the plates' burst protocol (backend/evaluation/judge_talking_heads.py)
and the judge's neutral prior / dropped regions (backend/evaluation/emotion_judge.py)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backend.evaluation.emotion_judge import JudgeConfig, feature_scale, fit_judge
from backend.evaluation.judge_talking_heads import (
    BURST_REFERENCE, CLIP_REFERENCE, ClipReading, TalkingClip, burst_frames, load_mead_neutral_clips,
    load_talking_clips, pose_correlation, read_clip, split_speakers, summarise,
)
from backend.evaluation.plate_emotion import PlateEvalConfig
from bridge.emotions import EMOTION_INDEX, NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS, REGIONS

needs_tracks = pytest.mark.usefixtures("prepared_tracks")


def _reading(speaker, preds, sd=(1.0, 1.0, 0.0), clip=None):
    preds = np.asarray(preds)
    return ClipReading(clip or f"{speaker}_{len(preds)}", speaker, BURST_REFERENCE, preds,
                       np.arange(len(preds)) // 9, np.asarray(sd, np.float32))


class _Recorder:
    """Records what a judge is asked (the features it gets per call); says neutral."""
    def __init__(self):
        self.config, self.calls = JudgeConfig(window=9), []

    def predict(self, features):
        self.calls.append(np.asarray(features))
        return np.zeros(len(features), np.int64)


def test_burst_frames_are_the_plate_protocols():
    for n in (27, 75, 100, 627):
        idx, ids = burst_frames(n)
        assert np.array_equal(idx, PlateEvalConfig(frames=27, burst=9, seeds=(0,)).burst_frames(n))
        assert list(np.bincount(ids)) == [9, 9, 9]
        assert all(np.all(np.diff(idx[ids == b]) == 1) for b in range(3))     # consecutive inside a burst


def test_read_clip_judges_each_burst_against_the_bursts_mean_or_the_clips_mean():
    rng = np.random.default_rng(0)
    lms = rng.normal(size=(90, NUM_LANDMARKS, 3)).astype(np.float32)
    lms[:, :, 0] += np.linspace(0, 3, 90)[:, None]            # a drift: the clip mean differs from the bursts'
    clip = TalkingClip("c", "s", lms, np.zeros((90, 3), np.float32))
    idx, ids = burst_frames(90)
    for reference, ref in ((BURST_REFERENCE, lms[idx].mean(0)), (CLIP_REFERENCE, lms.mean(0))):
        judge = _Recorder()
        reading = read_clip(judge, clip, reference)
        assert len(judge.calls) == 3 and [len(c) for c in judge.calls] == [9, 9, 9]    # window stays in a burst
        first = lms[idx[ids == 0]] - ref
        assert np.allclose(judge.calls[0][4], first.mean(0)[:, :2].reshape(-1), atol=1e-5)   # centred window of 9
        assert reading.neutral_share == 1.0 and np.array_equal(reading.bursts, ids)
    with pytest.raises(ValueError, match="reference"):
        read_clip(_Recorder(), clip, "median")


def test_summary_weighs_speakers_equally_and_splits_by_head_motion():
    n, e = EMOTION_INDEX["neutral"], EMOTION_INDEX["surprised"]
    readings = [_reading("a", [n] * 27, (0.2, 0.1, 0)), _reading("a", [n] * 27, (0.3, 0.1, 0), "a2"),
                _reading("b", [n] * 9 + [e] * 18, (3, 4, 0)), _reading("c", [e] * 27, (8, 6, 0))]
    s = summarise(readings)
    assert s.neutral_share == pytest.approx((1 + 1 / 3 + 0) / 3)          # not frame-weighted (that would be 0.56)
    assert s.read_as["surprised"] == pytest.approx((0 + 2 / 3 + 1) / 3)
    assert s.per_speaker == pytest.approx({"a": 1.0, "b": 1 / 3, "c": 0.0})
    assert s.ci95[0] <= s.neutral_share <= s.ci95[1] and s.ci95[1] - s.ci95[0] > 0.2
    assert [b["neutral_share"] for b in s.by_pose][0] == 1.0 and s.by_pose[-1]["neutral_share"] <= 1 / 3
    assert sum(b["clips"] for b in s.by_pose) == 4
    assert pose_correlation(readings) < -0.9
    with pytest.raises(ValueError):
        summarise([])


def test_split_alternates_by_head_motion_and_keeps_the_reported_person_out_of_selection():
    clips = [TalkingClip(f"{s}_clip", s, np.zeros((30, NUM_LANDMARKS, 3), np.float32),
                         np.random.default_rng(k).normal(scale=1 + k, size=(30, 3)).astype(np.float32))
             for k, s in enumerate(["andrew", "b", "c", "d", "e", "f"])]
    selection, confirmation = split_speakers(clips)
    assert sorted(selection + confirmation) == sorted({c.speaker for c in clips})
    assert not set(selection) & set(confirmation) and abs(len(selection) - len(confirmation)) <= 1
    assert "andrew" in confirmation                       # least motion: would be first in selection
    assert selection[0] == "b"


def _toy_judge(config):
    rng = np.random.default_rng(0)
    dims = NUM_LANDMARKS * 2
    x = rng.normal(size=(400, dims)).astype(np.float32)
    y = rng.integers(0, NUM_EMOTIONS, 400)
    x[np.arange(400), y] += 3.0
    return fit_judge(x, y, config), x


def test_neutral_bias_acts_at_prediction_only_and_moves_frames_to_neutral():
    plain, x = _toy_judge(JudgeConfig(steps=50))
    biased, _ = _toy_judge(JudgeConfig(steps=50, neutral_bias=3.0))
    for a, b in zip(plain.state_dict().values(), biased.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy())        # training is unaffected
    p0, p1 = plain.predict(x), biased.predict(x)
    assert (p1 == 0).sum() > (p0 == 0).sum()
    assert np.all(p1[p0 == 0] == 0)                        # neutral stays neutral, others may only become neutral
    assert np.all((p1 == p0) | (p1 == 0))
    assert np.allclose(biased.probabilities(x).sum(1), 1, atol=1e-5)


def test_dropped_regions_get_zero_weight_and_unknown_ones_are_named():
    scale = feature_scale(JudgeConfig(drop_regions=("jaw",))).reshape(NUM_LANDMARKS, 2)
    assert np.all(scale[list(REGIONS["jaw"])] == 0) and np.all(scale[list(REGIONS["brow_r"])] == 1)
    with pytest.raises(ValueError, match="chin"):
        feature_scale(JudgeConfig(drop_regions=("chin",)))


@needs_tracks
def test_talking_heads_load_without_the_reported_clip(prepared_tracks):
    clips = load_talking_clips(prepared_tracks)
    ids = {c.clip_id for c in clips}
    assert "andrew_clip_1" not in ids and "KristiNoem" in ids and "grid_swwp2s" in ids
    assert not any(c.clip_id.startswith(("M0", "W0", "LivePortrait")) for c in clips)   # talking/ only
    assert {c.speaker for c in clips if c.clip_id.startswith("obama")} == {"obama"}   # same person, one speaker
    assert len({c.speaker for c in clips}) >= 20
    assert all(len(c.landmarks) == len(c.angles) >= 9 for c in clips)
    mead = load_mead_neutral_clips(prepared_tracks, {"M030"})
    assert [c.speaker for c in mead] == ["M030"] and "neutral" in mead[0].clip_id


@needs_tracks
def test_selected_neutral_prior_reads_real_talking_heads_more_neutral(prepared_tracks):
    """Real people talking neutrally with head motion, burst protocol: the selected judge (neutral prior) reads more
    of them neutral than session 8's, and the motion-heavy clips read less neutral than the still ones."""
    import torch
    torch.set_num_threads(1)
    from backend.evaluation.emotion_report import SESSION8_JUDGE, TALKING_HEADS_JUDGE
    from backend.evaluation.judge_real_video import judge_pools, train_judge

    train, _ = judge_pools(prepared_tracks)
    judge = train_judge(train, SESSION8_JUDGE)
    clips = load_talking_clips(prepared_tracks)
    old = summarise([read_clip(judge, c) for c in clips])
    judge.config = dataclasses.replace(judge.config, neutral_bias=TALKING_HEADS_JUDGE.neutral_bias)
    new = summarise([read_clip(judge, c) for c in clips])
    # measured (cache/s9_judge/measure_new.json): 51.5 % -> 64.6 %; by pose tercile 66 / 56 / 32 % (session 8's)
    assert new.neutral_share > old.neutral_share + 0.05
    assert old.by_pose[0]["neutral_share"] > old.by_pose[-1]["neutral_share"]


def test_report_states_the_talking_head_row_beside_the_mead_bar():
    from backend.evaluation.emotion_report import talking_heads_markdown

    n, e = EMOTION_INDEX["neutral"], EMOTION_INDEX["fear"]
    row = summarise([_reading("a", [n] * 27, (0.2, 0.1, 0)), _reading("b", [e] * 27, (6, 6, 0))]).to_dict()
    row.update(spearman_pose_spread_vs_neutral=-1.0, halves={"selection": 1.0, "confirmation": 0.0})
    metrics = {"judge": {"unseen_speakers": {"per_emotion": {"neutral": 0.691}}},
               "judge_talking_heads": {"frames": 27, "burst": 9, "excluded": ["andrew_clip_1"], "bursts": row,
                                       "mead_neutral_bursts": {"M030_n": {"neutral": 0.667,
                                                                          "pose_sd_deg": [1.0, 0.3, 0.1]}}}}
    text = "\n".join(talking_heads_markdown(metrics))
    assert "judge on real neutral talking heads (burst protocol)" in text
    assert "69.1 %" in text and "**50.0 %**" in text and "fear 50.0 %" in text and "3 bursts of 9" in text
    assert "andrew_clip_1 excluded" in text and "confirmation 0.0 %" in text
    assert talking_heads_markdown({"judge": {}}) == []


def test_talking_heads_plot_is_written(tmp_path):
    from backend.evaluation.emotion_report import talking_heads_plot

    per = {"a": {"neutral": 1.0, "pose_sd_deg": [0.2, 0.1, 0.0]}, "b": {"neutral": 0.3, "pose_sd_deg": [5, 4, 1]}}
    metrics = {"judge": {"unseen_speakers": {"per_emotion": {"neutral": 0.69}}},
               "judge_talking_heads": {"bursts": {"per_clip": per}, "clip": {"per_clip": per},
                                       "mead_neutral_bursts": {"m": {"neutral": 0.67, "pose_sd_deg": [1, 0.3, 0]}}}}
    talking_heads_plot(metrics, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_heads_moving_like_the_plates_are_picked_by_head_motion():
    from backend.evaluation.emotion_report import motion_alike_markdown
    from backend.evaluation.judge_talking_heads import neutral_share_in_motion_range

    per = {"a1": {"speaker": "a", "neutral": 1.0, "pose_sd_deg": [0.3, 0.4, 0]},     # 0.5 deg: too still
           "b1": {"speaker": "b", "neutral": 0.2, "pose_sd_deg": [3.0, 4.0, 9]},     # 5 deg
           "b2": {"speaker": "b", "neutral": 0.4, "pose_sd_deg": [1.2, 1.6, 0]},     # 2 deg
           "c1": {"speaker": "c", "neutral": 0.9, "pose_sd_deg": [2.4, 3.2, 0]}}     # 4 deg
    alike = neutral_share_in_motion_range(per, 1.5, 5.0)
    assert (alike["clips"], alike["speakers"]) == (3, 2)
    assert alike["neutral_share"] == pytest.approx((0.3 + 0.9) / 2)                # speakers weigh equally
    assert neutral_share_in_motion_range(per, 20, 30)["clips"] == 0
    text = "\n".join(motion_alike_markdown({"subjects": {"default": {"real_heads_moving_alike": alike},
                                                         "other": {}}}))
    assert "default: its draws ask for 1.5-5.0°" in text and "60.0 %" in text and "other" not in text


def test_asked_head_motion_is_the_motion_stages_pose_per_draw():
    """The head motion a draw asks the renderer for (no plate rendered): three SDs in degrees, the same for the
    same draw, another for another draw."""
    import torch
    torch.set_num_threads(1)
    from backend.composition import StageSet
    from backend.evaluation.emotion_report import draw_head_rotations, head_motion_sd
    from backend.subjects import SubjectStore

    store = SubjectStore()
    stage_set = StageSet(device="cpu", subjects=store)
    config = PlateEvalConfig(seconds=4)
    def asked_head_motion(seed):
        return head_motion_sd(draw_head_rotations(stage_set, "default", config, seed))

    first = asked_head_motion(0)
    assert len(first) == 3 and all(np.isfinite(first)) and all(0 <= v < 30 for v in first) and max(first) > 0
    assert asked_head_motion(0) == first
    assert asked_head_motion(1) != first
