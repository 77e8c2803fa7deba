"""Opt-in condition noise in landmark space (TrainConfig.landmark_noise) and kept checkpoints."""
from __future__ import annotations

import torch

from backend.render.train import TrainConfig, compute_losses


class _CodeRecorder(torch.nn.Module):
    """Stands in for SubjectNeRF: records the code each ray was rendered with."""

    def __init__(self, std: torch.Tensor):
        super().__init__()
        self.landmark_code = torch.nn.Module()
        self.landmark_code.register_buffer("std", std)
        self.codes: list[torch.Tensor] = []

    def forward(self, origins, dirs, head_from_world, code, pose, jitter=False):
        self.codes.append(code.clone())
        n = len(origins)
        zeros = torch.zeros(n)
        return {"rgb": torch.zeros(n, 3), "alpha": zeros, "head_alpha": zeros, "torso_alpha": zeros}


def _run(config: TrainConfig, std: torch.Tensor, rays: int = 20000, seed: int = 0):
    model = _CodeRecorder(std)
    cond = type("Cond", (), {})()
    cond.code = torch.zeros(1, len(std))
    cond.pose = torch.zeros(1, 6)
    cond.head_from_world = torch.zeros(1, 3, 4)
    batch = {"frame": torch.zeros(rays, dtype=torch.long), "origins": torch.zeros(rays, 3),
             "dirs": torch.zeros(rays, 3), "background": torch.zeros(rays, 3), "rgb": torch.zeros(rays, 3),
             "mask": torch.zeros(rays), "head_mask": torch.zeros(rays), "mouth": torch.zeros(rays)}
    generator = torch.Generator().manual_seed(seed)
    compute_losses(model, batch, cond, config, generator)
    return model.codes[0], generator


def test_landmark_noise_is_isotropic_in_landmark_space():
    std = torch.tensor([0.3, 0.03])          # a major and a minor PCA component (whitened code)
    code, _ = _run(TrainConfig(code_noise=0.0, landmark_noise=0.015), std)
    measured = code.std(0)
    # noise per landmark coordinate 0.015 -> 0.015 / std_k on whitened component k
    assert torch.allclose(measured, 0.015 / std, rtol=0.05)


def test_landmark_noise_off_by_default_draws_nothing_extra():
    config = TrainConfig()
    assert config.landmark_noise == 0.0 and not config.keep_checkpoints
    std = torch.tensor([0.3, 0.03])
    code, generator = _run(config, std, rays=1000)
    expected = torch.Generator().manual_seed(0)
    torch.randn((1000, 2), generator=expected)   # the default code_noise draw, and nothing more
    assert torch.equal(generator.get_state(), expected.get_state())
    assert code.std(0).allclose(torch.full((2,), config.code_noise), rtol=0.15)
