"""The one training loop the gradient-trained motion models share (training.fit)."""
from __future__ import annotations

import torch

from backend.motion.training import LoopConfig, fit


def _regression(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 4, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.01 * torch.randn(256, generator=gen)
    model = torch.nn.Linear(4, 1)
    return model, x, y


def test_fit_trains_the_model_in_place_well_below_the_mean_predictor():
    torch.manual_seed(0)
    model, x, y = _regression()

    def step_fn(step):
        loss = (model(x)[:, 0] - y).pow(2).mean()
        return loss, {"double": 2 * loss.item()}

    history = fit(model, step_fn, LoopConfig(steps=300, lr=0.05, log_every=10), "test fit")
    mean_predictor = float((y - y.mean()).pow(2).mean())
    with torch.no_grad():
        final = float((model(x)[:, 0] - y).pow(2).mean())
    assert final < 0.01 * mean_predictor
    assert history["step"] == list(range(0, 300, 10))
    assert history["double"] == [2 * v for v in history["loss"]]


def test_fit_stops_when_asked_and_clips_gradients():
    model, x, y = _regression()
    calls = []

    def step_fn(step):
        calls.append(step)
        return (model(x)[:, 0] - 1e6 * y).pow(2).mean(), {}

    before = model.weight.detach().clone()
    fit(model, step_fn, LoopConfig(steps=100, lr=1e-3, log_every=1), "test fit",
        should_stop=lambda: len(calls) >= 3, clip_grad_norm=1e-6)
    assert calls == [0, 1, 2]
    # Adam normalises the step size, so check the clipped gradient norm instead of the step
    assert model.weight.grad is not None and float(model.weight.grad.norm()) <= 1e-6 * 1.01
    assert not torch.equal(before, model.weight)
