"""Choose the plate-level emotion judge's settings without looking at the numbers it reports.

The judge is reported trained on the judge pool and tested on the generator pool's speakers
(``emogene eval emotion``). Settings are chosen on the *swapped* direction: train on the
generator pool's MEAD speakers, test on the judge pool's speakers that have a measured
neutral clip. Each setting (window, depth, mouth weight, hidden units, weight decay) is
picked by its marginal mean over the grid (less noisy than the single best cell); then the
training augmentation (expression amplitude scaled, face mirrored) on top of those settings.
Prints the grid, the marginals and the chosen configuration.

    .venv/bin/python scripts/select_emotion_judge.py [--tracks cache/tracks]
"""
from __future__ import annotations

import argparse
import itertools
from collections import defaultdict

import numpy as np
import torch

from backend.evaluation.emotion_judge import JudgeConfig
from backend.evaluation.judge_real_video import evaluate_judge, judge_pools, own_neutral_only, train_judge

GRID = {"window": (1, 9), "use_depth": (False, True), "mouth_weight": (0.25, 0.5, 1.0), "hidden": (0, 32),
        "weight_decay": (1e-3, 1e-1)}
AUGMENT_SCALES = ((), (0.7, 1.4), (0.5, 0.75, 1.5, 2.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", default="cache/tracks")
    args = parser.parse_args()
    torch.set_num_threads(1)
    judge_pool, generator_pool = judge_pools(args.tracks)
    validation = own_neutral_only(judge_pool)
    print(f"train: {generator_pool.speakers}; validate on {validation.speakers}")
    scores = []
    for values in itertools.product(*GRID.values()):
        cfg = JudgeConfig(**dict(zip(GRID, values)), steps=300)
        m = evaluate_judge(train_judge(generator_pool, cfg), validation, cfg)
        scores.append((values, m["mean_over_emotions"]))
        print(dict(zip(GRID, values)), f"mean over emotions {m['mean_over_emotions']:.3f}", flush=True)
    chosen = {}
    for k, name in enumerate(GRID):
        marginal = defaultdict(list)
        for values, score in scores:
            marginal[values[k]].append(score)
        means = {v: float(np.mean(s)) for v, s in marginal.items()}
        chosen[name] = max(means, key=means.get)
        print(f"{name}: " + ", ".join(f"{v}: {m:.3f}" for v, m in means.items()))
    print("chosen before augmentation:", chosen)
    best = None
    for scales, mirror in itertools.product(AUGMENT_SCALES, (False, True)):
        cfg = JudgeConfig(**chosen, steps=300, augment_scales=scales, augment_mirror=mirror)
        score = evaluate_judge(train_judge(generator_pool, cfg), validation, cfg)["mean_over_emotions"]
        print(f"augment scales {scales} mirror {mirror}: mean over emotions {score:.3f}", flush=True)
        if best is None or score > best[0]:
            best = (score, cfg)
    print("chosen:", best[1])


if __name__ == "__main__":
    main()
