"""Small synthetic subject NeRF and rays through its head, shared by the render tests."""
from __future__ import annotations

import torch

from backend.render.conditions import head_from_world
from backend.render.model import SubjectModelConfig, SubjectNeRF


def tiny_subject_model() -> SubjectNeRF:
    """An untrained, seeded SubjectNeRF with few samples (eval mode)."""
    torch.manual_seed(0)
    config = SubjectModelConfig(head_samples=24, torso_samples=16, occupancy_resolution=16)
    return SubjectNeRF(config, torso_box=torch.tensor([[-3.0, -3, 6], [3.0, 4, 12]])).eval()


def rays_through_head(n: int = 64, spread: float = 0.4) -> tuple[torch.Tensor, ...]:
    """``n`` random rays from the origin towards a head 9 units ahead (direction x/y within ±spread/2), with
    their head-from-world maps, a random 16-d code and a random 6-d pose condition: the model's ray inputs."""
    origins = torch.zeros(n, 3)
    dirs = torch.nn.functional.normalize(torch.cat([torch.rand(n, 2) * spread - spread / 2, torch.ones(n, 1)], -1),
                                         dim=-1)
    hfw = head_from_world(torch.eye(3)[None], torch.tensor([[0.0, 0.0, 9.0]])).expand(n, 3, 4)
    return origins, dirs, hfw, torch.randn(n, 16), torch.randn(n, 6)
