"""``eval emotion`` pools motion draws (backend/evaluation/plate_emotion.py): the judge's readings of every draw are
pooled, the 95 % interval resamples (draw, burst) units so it holds the draw-to-draw spread, each draw keeps its own
row, and the plates are compared frame by frame with the reading of their driving landmarks."""
from __future__ import annotations

import numpy as np
import pytest

from backend.evaluation.judge_real_video import bootstrap_interval
from backend.evaluation.plate_emotion import (PlateEvalConfig, Reading, SubjectPlates, Take, judge_subject, parse_seeds,
                                              pool_readings, transfer_ratio)
from bridge.emotions import EMOTION_INDEX, EMOTIONS, NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS

BURSTS, BURST = 3, 9


def _draw(seed: int, plates_right: bool, driving_right: bool = True, intensity: float = 1.0,
          untracked: int = 0) -> list[Reading]:
    """Readings of one draw: neutral@0 and every emotion at ``intensity``, 3 bursts of 9 frames; the plates read
    the keyed emotion (else the next one), the driving landmarks likewise; ``untracked`` frames of each take lost."""
    bursts = np.repeat(np.arange(BURSTS), BURST)
    out = []
    for emotion, level in [("neutral", 0.0)] + [(e, intensity) for e in EMOTIONS]:
        k = EMOTION_INDEX[emotion]
        wrong = (k + 1) % NUM_EMOTIONS
        plates = np.full(len(bursts), k if plates_right else wrong)
        plates[:untracked] = -1
        driving = np.full(len(bursts), k if driving_right else wrong)
        out.append(Reading(seed, emotion, level, plates, driving, bursts))
    return out


def test_pooled_numbers_are_the_mean_of_the_draws_and_each_draw_keeps_its_row():
    pooled = pool_readings(_draw(0, True) + _draw(1, False) + _draw(2, True))
    top = pooled["by_intensity"]["intensity 1"]
    assert top["plates"]["mean_over_emotions"] == pytest.approx(2 / 3)
    assert top["plates"]["frames"] == 3 * BURSTS * BURST * NUM_EMOTIONS
    assert top["plates"]["bursts"] == 9 and top["plates"]["draws"] == 3          # (draw, burst) units
    assert pooled["neutral_stays_neutral"] == pytest.approx(2 / 3)
    assert [d["seed"] for d in pooled["draws"]] == [0, 1, 2]
    assert [d["intensity 1"]["plates"] for d in pooled["draws"]] == [1.0, 0.0, 1.0]
    assert [d["neutral_stays_neutral"] for d in pooled["draws"]] == [1.0, 0.0, 1.0]
    assert top["driving_landmarks"]["mean_over_emotions"] == 1.0
    # a vote per (draw, take): 2 of 3 draws right for every emotion
    assert top["plates"]["clip_majority_accuracy"] == pytest.approx(2 / 3)
    assert list(pooled["by_intensity"]) == ["intensity 1", "neutral@0"]


def test_the_interval_holds_the_draw_to_draw_spread():
    """Every burst of a draw agrees, the draws disagree: the (draw, burst) bootstrap is wide around the mean; the
    same errors spread evenly inside every draw give a narrow interval."""
    spread = pool_readings(_draw(0, True) + _draw(1, False) + _draw(2, True))["by_intensity"]["intensity 1"]
    lo, hi = spread["plates"]["ci95"]
    assert lo < 0.45 and hi > 0.85 and lo < 2 / 3 < hi
    even = []
    for seed in range(3):
        draw = _draw(seed, True)
        for r in draw:
            r.plates[1::3] = (EMOTION_INDEX[r.emotion] + 1) % NUM_EMOTIONS       # a third wrong in every burst
        even += draw
    lo, hi = pool_readings(even)["by_intensity"]["intensity 1"]["plates"]["ci95"]
    assert hi - lo < 0.1 and lo <= 2 / 3 <= hi
    # resampling bursts alone (a burst id shared by the draws) would hide the spread: every burst is 2/3 right
    readings = [r for r in _draw(0, True) + _draw(1, False) + _draw(2, True) if r.intensity == 1.0]
    labels = np.concatenate([np.full(len(r.plates), EMOTION_INDEX[r.emotion]) for r in readings])
    predictions = np.concatenate([r.plates for r in readings])
    lo, hi = bootstrap_interval(labels, predictions, np.concatenate([r.bursts for r in readings]))
    assert hi - lo < 1e-9


def test_plates_read_as_their_driving_landmarks_credits_neither_invention_nor_a_missing_input():
    # driving landmarks read the keyed emotion, the plates do not: the renderer lost it
    lost = pool_readings(_draw(0, plates_right=False, driving_right=True))["by_intensity"]["intensity 1"]
    assert lost["plates_agree_with_driving"]["share"] == 0.0
    # neither reads the keyed emotion but the plates read what their input reads: the renderer is faithful
    faithful = pool_readings(_draw(0, plates_right=False, driving_right=False))["by_intensity"]["intensity 1"]
    assert faithful["plates"]["mean_over_emotions"] == 0.0
    assert faithful["plates_agree_with_driving"]["share"] == 1.0
    assert faithful["plates_agree_with_driving"]["ci95"] == (1.0, 1.0)
    # an untracked plate never agrees (it also counts wrong for the keyed label)
    partly = pool_readings(_draw(0, True, untracked=9))["by_intensity"]["intensity 1"]
    assert partly["plates_agree_with_driving"]["share"] == pytest.approx(18 / 27)
    assert partly["plates"]["mean_over_emotions"] == pytest.approx(18 / 27)
    assert set(partly["plates_agree_with_driving"]["per_emotion"]) == set(EMOTIONS)


def test_keyed_neutral_is_read_at_each_draws_top_intensity():
    readings = _draw(0, True) + _draw(0, False, intensity=0.5)
    for r in readings:
        r.seed = 0
    pooled = pool_readings(readings)
    assert pooled["neutral_stays_neutral"] == 1.0                               # the 0.5 take does not count
    assert "draws" not in pooled                                                 # one draw: no per-draw rows


def test_seeds_are_validated_and_a_draw_is_the_config_with_one_seed():
    assert parse_seeds("0, 1,2") == (0, 1, 2) and parse_seeds(3) == (3,) and parse_seeds([4, 5]) == (4, 5)
    for bad, why in (("", "integers"), ("a", "integers"), ("-1", ">= 0"), ("0,0", "repeat"), ([], "at least one"),
                     ("1.5", "integers")):
        with pytest.raises(ValueError, match=why):
            parse_seeds(bad)
    config = PlateEvalConfig(seeds="2,7")
    assert config.seeds == (2, 7) and config.seed == 2
    assert config.draw(7).seeds == (7,) and config.draw(7).seed == 7 and config.draw(7).frames == config.frames
    with pytest.raises(ValueError):
        PlateEvalConfig(seeds=(1, 1))


def test_default_cost_is_six_draws_of_three_bursts_and_one_burst_at_half_intensity():
    """3x session 7's single draw of 54 (intensity 1 and 0) and 18 (intensity 0.5) plates per take."""
    config = PlateEvalConfig()
    frames = config.burst_frames(300)
    bursts = np.concatenate([[0], np.cumsum(np.diff(frames) != 1)])
    assert len(config.seeds) == 6
    assert len(config.seeds) * len(config.positions(1.0, bursts)) == 162
    assert len(config.seeds) * len(config.positions(0.5, bursts)) == 54


def _plates(seed: int, frames: np.ndarray, shift: float = 0.0) -> SubjectPlates:
    rng = np.random.default_rng(seed)
    n = len(frames)
    face = rng.normal(size=(NUM_LANDMARKS, 3)).astype(np.float32)
    takes = []
    for emotion, intensity in [("neutral", 0.0), ("happy", 1.0)]:
        driving = np.repeat(face[None], n, 0) + (0.05 if emotion == "happy" else 0.0)
        tracked = driving + (shift if emotion == "happy" else 0.0)
        takes.append(Take(emotion, intensity, np.zeros((n, 4, 4, 3), np.uint8), tracked, np.ones(n, bool), driving,
                          np.zeros(n, int)))
    return SubjectPlates("s", frames, takes, seed=seed)


def test_judge_subject_refuses_draws_that_judge_different_frames_or_repeat_a_seed():
    frames = np.arange(9)
    with pytest.raises(ValueError, match="same job frames"):
        judge_subject(None, [_plates(0, frames), _plates(1, frames + 1)])
    with pytest.raises(ValueError, match="repeat a seed"):
        judge_subject(None, [_plates(0, frames), _plates(0, frames)])


def test_transfer_ratio_pools_the_draws_each_against_its_own_neutral():
    frames = np.arange(9)
    one = transfer_ratio(_plates(0, frames))
    two = transfer_ratio([_plates(0, frames), _plates(1, frames)])
    assert all(v == pytest.approx(1.0) for v in one["ratio"].values())
    assert all(v == pytest.approx(1.0) for v in two["ratio"].values())
