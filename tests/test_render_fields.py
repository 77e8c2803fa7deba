"""Volume rendering, sampling, occupancy skipping and the model's two render paths on synthetic input."""
from __future__ import annotations

import math

import pytest
import torch

from backend.render.compositing import over, straight_alpha
from backend.render.conditions import head_from_world, pose_code
from backend.render.sampling import OccupancyGrid, ray_box_bounds, stratified_samples
from backend.render.volume_rendering import volume_render
from render_support import rays_through_head, tiny_subject_model


def test_constant_density_slab_matches_beer_lambert():
    sigma = torch.full((1, 100), 2.0)
    delta = torch.full((1, 100), 0.01)          # a slab of length 1
    rgb = torch.tensor([0.2, 0.4, 0.6]).expand(1, 100, 3)
    colour, alpha = volume_render(sigma, rgb, delta)
    assert alpha.item() == pytest.approx(1 - math.exp(-2.0), rel=1e-4)
    assert torch.allclose(straight_alpha(colour, alpha), torch.tensor([[0.2, 0.4, 0.6]]), atol=1e-5)


def test_over_composites_premultiplied_colour():
    rgb, alpha = over(torch.tensor([[0.5, 0, 0]]), torch.tensor([0.5]), torch.tensor([[0, 1.0, 0]]), torch.tensor([1.0]))
    assert torch.allclose(rgb, torch.tensor([[0.5, 0.5, 0]])) and alpha.item() == 1.0


def test_ray_box_bounds_hit_and_miss():
    box = torch.tensor([[-1.0, -1, -1], [1.0, 1, 1]])
    origins = torch.tensor([[0.0, 0, -5], [3.0, 3, -5]])
    dirs = torch.tensor([[0.0, 0, 1], [0.0, 0, 1]])
    near, far, hit = ray_box_bounds(origins, dirs, box)
    assert hit.tolist() == [True, False] and near[0].item() == pytest.approx(4) and far[0].item() == pytest.approx(6)
    s = stratified_samples(origins, dirs, box, 16, jitter=True)
    assert s.keep[0].all() and not s.keep[1].any()
    assert ((s.t[0] >= 4) & (s.t[0] <= 6)).all()


def test_occupancy_grid_marks_empty_cells_and_respects_the_prior():
    grid = OccupancyGrid(resolution=8, threshold=0.5, decay=0.5)
    assert grid.lookup(torch.rand(10, 3)).all()      # before any update everything is occupied
    grid.update(lambda p: (p[:, 0] < 0.25).float() * 10)
    inside = grid.lookup(torch.tensor([[0.1, 0.5, 0.5]]))
    far = grid.lookup(torch.tensor([[0.9, 0.5, 0.5]]))
    assert inside.item() and not far.item()
    allowed = torch.zeros(8, 8, 8, dtype=torch.bool)
    grid.set_allowed(allowed)
    assert not grid.lookup(torch.tensor([[0.1, 0.5, 0.5]])).item()


def test_front_to_back_inference_equals_the_dense_training_render():
    model = tiny_subject_model()
    rays = rays_through_head()
    with torch.no_grad():
        fast = model(*rays)
    with torch.enable_grad():
        dense = model(*rays)
    # early termination drops at most the last 1 % of light per ray
    assert torch.allclose(fast["alpha"], dense["alpha"].detach(), atol=1.2e-2)
    assert torch.allclose(fast["rgb"], dense["rgb"].detach(), atol=1.2e-2)


def test_gradients_reach_both_fields_and_the_landmark_embedding():
    model = tiny_subject_model().train()
    out = model(*rays_through_head(), jitter=True)
    (out["rgb"].sum() + out["alpha"].sum()).backward()
    assert model.head_field.encoding.table.grad.abs().sum() > 0
    assert model.torso_field.encoding.table.grad.abs().sum() > 0
    assert model.head_field.embed.weight.grad.abs().sum() > 0


def test_pose_code_is_zero_at_the_mean_pose_and_head_transform_inverts_the_pose():
    rot = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.1, 0.05], [0.1, 0.0, -0.2], [-0.05, 0.2, 0.0]]))[None]
    trans = torch.tensor([[0.3, -0.2, 9.0]])
    assert pose_code(rot, trans, rot[0], trans[0]).abs().max() < 1e-5
    canonical = torch.tensor([0.4, -1.0, 0.5])
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    world = rot[0] @ flip @ canonical + trans[0]
    m = head_from_world(rot, trans)[0]
    assert torch.allclose(m[:, :3] @ world + m[:, 3], canonical, atol=1e-5)
