"""The judge's training seed and seed ensembles (backend/evaluation/emotion_judge.py ``JudgeConfig.ensemble_seeds``,
``JudgeEnsemble``; judge_real_video.judge_seed_spread; ``eval emotion --judge-seeds``; the report's spread row;
scripts/select_emotion_judge.py --seed-spread). Real video only: no plate is read."""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from backend.evaluation.emotion_judge import EmotionJudge, JudgeConfig, JudgeEnsemble, fit_judge
from bridge.emotions import NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS

REPO = Path(__file__).resolve().parents[1]
needs_tracks = pytest.mark.usefixtures("prepared_tracks")


@pytest.fixture(autouse=True)
def _one_thread():
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _toy_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, NUM_LANDMARKS * 2)).astype(np.float32)
    y = rng.integers(0, NUM_EMOTIONS, 300)
    x[np.arange(300), y] += 1.5
    return x, y


def test_an_ensemble_of_one_seed_is_the_single_judge_bit_for_bit():
    x, y = _toy_data()
    for bias in (0.0, 2.0):
        single = fit_judge(x, y, JudgeConfig(steps=40, seed=3, neutral_bias=bias))
        one = fit_judge(x, y, JudgeConfig(steps=40, ensemble_seeds=(3,), neutral_bias=bias))
        assert isinstance(single, EmotionJudge) and isinstance(one, JudgeEnsemble)
        assert np.array_equal(one.probabilities(x), single.probabilities(x))
        assert np.array_equal(one.predict(x), single.predict(x))


def test_members_differ_and_the_ensemble_averages_their_biased_probabilities():
    x, y = _toy_data()
    config = JudgeConfig(steps=40, ensemble_seeds=(0, 1, 2), neutral_bias=2.0)
    ensemble = fit_judge(x, y, config)
    assert [m.config.seed for m in ensemble.members] == [0, 1, 2]
    assert all(m.config.ensemble_seeds == () for m in ensemble.members)
    w = [m.classifier.weight.detach().numpy() for m in ensemble.members]
    assert not np.allclose(w[0], w[1]) and not np.allclose(w[1], w[2])
    singles = [fit_judge(x, y, config.member(s)) for s in (0, 1, 2)]
    assert not np.array_equal(singles[0].predict(x), singles[1].predict(x))
    expected = np.mean([s.probabilities(x) for s in singles], axis=0)
    assert np.allclose(ensemble.probabilities(x), expected, atol=1e-7)
    assert np.array_equal(ensemble.predict(x), expected.argmax(-1))
    # the prior is the ensemble's: changing its config moves frames to neutral in every member's logits
    ensemble.config = dataclasses.replace(config, neutral_bias=0.0)
    plain = ensemble.predict(x)
    assert (ensemble.probabilities(x).sum(1) == pytest.approx(1, abs=1e-5))
    assert (expected.argmax(-1) == 0).sum() > (plain == 0).sum()


def test_ensemble_seeds_are_checked_and_named():
    assert JudgeConfig(seed=4).member_seeds == (4,)
    assert JudgeConfig(seed=4, ensemble_seeds=[2, 5]).member_seeds == (2, 5)
    assert JudgeConfig(ensemble_seeds=(2, 5)).member(5) == JudgeConfig(seed=5)
    for bad in ((1, 1), (-1,), (True,), (0.5,)):
        with pytest.raises(ValueError, match="ensemble_seeds"):
            JudgeConfig(ensemble_seeds=bad)
    with pytest.raises(ValueError, match="at least one member"):
        JudgeEnsemble([], JudgeConfig())


# ------------------------------------------------------------------------------------------- real video
@pytest.fixture(scope="module")
def pools(prepared_tracks):
    import torch
    torch.set_num_threads(1)
    from backend.evaluation.judge_real_video import judge_pools
    return judge_pools(prepared_tracks)


@needs_tracks
def test_shipped_judge_as_a_one_seed_ensemble_reads_real_video_identically(pools, prepared_tracks):
    from backend.evaluation.emotion_judge_data import clip_features, stack
    from backend.evaluation.emotion_report import DEFAULT_JUDGE
    from backend.evaluation.judge_pose_augment import selection_pose_augmentation
    from backend.evaluation.judge_real_video import judge_seed_spread, own_neutral_only, seed_judges, train_judge

    train, test = pools
    pose = selection_pose_augmentation(prepared_tracks) if DEFAULT_JUDGE.augment_pose else None
    x, _, _ = stack(clip_features(own_neutral_only(test), DEFAULT_JUDGE))
    judges = seed_judges(train, DEFAULT_JUDGE, seeds=(0, 2), pose=pose)
    assert DEFAULT_JUDGE.member_seeds == (0,) and judges[0].config == DEFAULT_JUDGE
    one = train_judge(train, dataclasses.replace(DEFAULT_JUDGE, ensemble_seeds=(0,)), pose)
    assert np.array_equal(one.predict(x), judges[0].predict(x))
    spread = judge_seed_spread(judges, test)
    assert spread["seeds"] == [0, 2] and len(spread["bar"]["per_seed"]) == 2
    assert spread["bar"]["min"] <= spread["bar"]["mean"] <= spread["bar"]["max"]
    # the seeds train different judges (session 10's judge read the bar 34.9 / 27.9 % with seeds 0 / 2, session 11's
    # pose-augmented one 40.6 / 38.5 %; over seeds 0-9 its SD is 5.4 points: one seed is a point estimate)
    assert spread["bar"]["max"] - spread["bar"]["min"] > 0.005
    # the reported judge (DEFAULT_JUDGE itself) is reused for its seed, not trained again: it predicts as seed 0 does
    reused = seed_judges(train, DEFAULT_JUDGE, seeds=(0, 2), pose=pose, trained=one)
    assert reused[0] is one and np.array_equal(reused[2].predict(x), judges[2].predict(x))
    ensemble = dataclasses.replace(DEFAULT_JUDGE, ensemble_seeds=(0, 1))
    assert seed_judges(train, ensemble, seeds=(0,), pose=pose, trained=one)[0] is not one   # not a member's config


@needs_tracks
def test_an_ensemble_judge_still_refuses_overlapping_pools(monkeypatch, prepared_tracks):
    import backend.evaluation.judge_real_video as jr
    from backend.data.mead_pools import JUDGE_SPEAKERS, PoolOverlapError
    from backend.evaluation.emotion_report import DEFAULT_JUDGE

    monkeypatch.setattr(jr, "JUDGE_SPEAKERS", frozenset(JUDGE_SPEAKERS | {"M030"}))
    with pytest.raises(PoolOverlapError, match="M030"):
        jr.judge_on_real_video(prepared_tracks, dataclasses.replace(DEFAULT_JUDGE, ensemble_seeds=(0, 1)))


def _select_script():
    spec = importlib.util.spec_from_file_location("select_emotion_judge", REPO / "scripts" / "select_emotion_judge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@needs_tracks
def test_select_script_reproduces_the_seed_spread_decision(prepared_tracks):
    """~3 min: cache/s10_judge/decision.md's outcome (single seeds 0-9, ensembles of 3/5/7): no ensemble steadies the
    bar within the rule's 2 points. The exact numbers depend on the machine: session 10 measured bar 30.74 ± 5.28,
    talking heads 60.93, ranges 10.89 / 5.68 / 6.38; session 11, on another CPU with tracks prepared afresh, 33.03 ±
    7.63, 61.26, ranges 15.25 / 6.17 / 6.90 (seed 0 identical; some seeds' training took another path)."""
    import torch
    torch.set_num_threads(1)
    result = _select_script().seed_spread(str(prepared_tracks))
    assert result["single"]["bar"]["mean"] == pytest.approx(32, abs=3)
    assert result["single"]["talking"]["mean"] == pytest.approx(61, abs=3)
    assert all(result[f"k{k}"]["bar"]["range"] > 2 for k in (3, 5, 7))
    assert result["adopted"] is None


# ------------------------------------------------------------------------------------- command and report
def _args(*argv: str) -> argparse.Namespace:
    from backend.commands import eval_emotion
    parser = argparse.ArgumentParser()
    eval_emotion.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_judge_seeds_option_picks_a_single_judge_or_an_ensemble_and_rejects_bad_values(capsys):
    from backend.commands import eval_emotion
    from backend.evaluation.emotion_report import DEFAULT_JUDGE, reproduce_command

    today = eval_emotion.config_from_args(_args("--judge-seeds", "0"))
    assert today.judge == DEFAULT_JUDGE
    assert "--judge-seeds" not in reproduce_command(today)
    other = eval_emotion.config_from_args(_args("--judge-seeds", "3"))
    assert other.judge == dataclasses.replace(DEFAULT_JUDGE, seed=3) and "--judge-seeds 3" in reproduce_command(other)
    ens = eval_emotion.config_from_args(_args("--judge-seeds", "0,1,2,3,4", "--judge-neutral-bias", "1"))
    assert ens.judge.ensemble_seeds == (0, 1, 2, 3, 4) and ens.judge.neutral_bias == 1.0
    assert "--judge-seeds 0,1,2,3,4" in reproduce_command(ens)
    for bad in ("", "a", "1,1", "-1", "0.5"):
        with pytest.raises(ValueError, match="--judge-seeds"):
            eval_emotion.config_from_args(_args(f"--judge-seeds={bad}"))
    assert eval_emotion.run(_args("--judge-seeds", "0,0")) == 2
    assert "--judge-seeds" in capsys.readouterr().err


def test_report_states_the_bar_with_its_seed_spread(tmp_path):
    from backend.evaluation.emotion_report import seed_spread_markdown, seed_spread_plot, seed_spread_rows

    row = lambda v: {"per_seed": v, "mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)),   # noqa: E731
                     "min": min(v), "max": max(v)}
    spread = {"seeds": [0, 1, 2], "bar": row([0.349, 0.359, 0.279]), "bar_neutral": row([0.73, 0.78, 0.78]),
              "talking_heads_neutral": row([0.65, 0.66, 0.52])}
    judge = {"config": {"seed": 0, "ensemble_seeds": []},
             "unseen_speakers": {"mean_over_emotions": 0.349, "per_emotion": {"neutral": 0.73}}}
    lines = seed_spread_rows(judge, spread)
    assert len(lines) == 1 and "training seed 0-2" in lines[0] and "32.9 ± 4.4 % (27.9-35.9)" in lines[0]
    text = " ".join(seed_spread_markdown({"judge": judge, "judge_seed_spread": spread}))
    assert "training seed 0" in text and "61.0 ±" in text
    ens = {**judge, "config": {"seed": 0, "ensemble_seeds": [0, 1, 2]}}
    assert "3-seed ensemble" in seed_spread_rows(ens, spread)[0]
    assert seed_spread_rows(judge, None) == [] and seed_spread_markdown({"judge": judge}) == []
    seed_spread_plot({"judge": judge, "judge_seed_spread": spread,
                      "judge_talking_heads": {"bursts": {"neutral_share": 0.646}}}, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 5000


def test_the_acceptance_is_read_per_judge_seed_against_that_judges_own_bar(monkeypatch):
    """plates_over_judges: each judge reads the same plates; seed_pairs_markdown pairs them with each seed's bar."""
    import backend.evaluation.plate_emotion as pe
    from backend.evaluation.emotion_report import seed_pairs_markdown
    from bridge.emotions import EMOTION_INDEX, EMOTIONS

    def fake_read_draw(judge, draw):          # judge "right" reads every keyed emotion, "wrong" the next one
        bursts = np.repeat(np.arange(3), 9)
        out = []
        for emotion, level in [("neutral", 0.0)] + [(e, 1.0) for e in EMOTIONS]:
            k = EMOTION_INDEX[emotion] if judge == "right" else (EMOTION_INDEX[emotion] + 1) % NUM_EMOTIONS
            out.append(pe.Reading(draw, emotion, level, np.full(27, k), np.full(27, k), bursts))
        return out

    monkeypatch.setattr(pe, "read_draw", fake_read_draw)
    pairs = pe.plates_over_judges({0: "right", 1: "wrong"}, [0, 1])
    assert pairs["seeds"] == [0, 1] and pairs["intensity"] == "intensity 1"
    assert pairs["plates"] == [1.0, 0.0] and pairs["neutral_stays_neutral"] == [1.0, 0.0]
    row = lambda v: {"per_seed": v}   # noqa: E731
    spread = {"seeds": [0, 1, 2], "bar": row([0.35, 0.30, 0.25]), "bar_neutral": row([0.73, 0.78, 0.7])}
    text = " ".join(seed_pairs_markdown("default", pairs, spread))
    assert "plates >= bar for 1 of 2 seeds" in text and "both (the acceptance) for 1 of 2 seeds" in text
    assert "+65.0" in text and "-30.0" in text                      # 1.00 - 0.35, 0.00 - 0.30
    assert seed_pairs_markdown("default", None, spread) == [] and seed_pairs_markdown("default", pairs, None) == []
    with pytest.raises(ValueError, match="at least one judge"):
        pe.plates_over_judges({}, [0])
