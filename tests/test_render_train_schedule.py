"""The NeRF's learning-rate schedule: by steps (default, unchanged) or, opt-in, by the wall clock too."""
from __future__ import annotations

import pytest

from backend.render.train import TrainConfig, schedule_share


def test_default_schedule_follows_steps_only():
    config = TrainConfig(steps=1000, minutes=10.0)
    assert not config.anneal_by_time
    assert schedule_share(config, 250, elapsed=599.0) == pytest.approx(0.25)   # the clock is ignored


def test_anneal_by_time_takes_the_larger_share_and_ends_annealed():
    config = TrainConfig(steps=1000, minutes=10.0, anneal_by_time=True)
    assert schedule_share(config, 250, elapsed=60.0) == pytest.approx(0.25)     # steps ahead of the clock
    assert schedule_share(config, 250, elapsed=300.0) == pytest.approx(0.5)     # the clock ahead of steps
    assert schedule_share(config, 250, elapsed=900.0) == 1.0                   # past the budget: final lr
    lr = config.learning_rate * config.final_lr_ratio ** schedule_share(config, 250, elapsed=600.0)
    assert lr == pytest.approx(config.learning_rate * config.final_lr_ratio)


def test_anneal_by_time_without_a_clock_budget_follows_steps():
    config = TrainConfig(steps=1000, minutes=None, anneal_by_time=True)
    assert schedule_share(config, 500, elapsed=1e6) == pytest.approx(0.5)
