"""Hash-grid encoding: shapes, gradients, continuity, collision handling; frequency encoding."""
from __future__ import annotations

import torch

from backend.render.encodings import FrequencyEncoding, HashGridConfig, HashGridEncoding


def _grid(**kw) -> HashGridEncoding:
    torch.manual_seed(0)
    cfg = HashGridConfig(**{"levels": 6, "features_per_level": 2, "log2_table_size": 12,
                            "base_resolution": 4, "max_resolution": 64, "init_scale": 1.0, **kw})
    return HashGridEncoding(cfg)


def test_shape_and_out_dim():
    enc = _grid()
    out = enc(torch.rand(5, 7, 3))
    assert out.shape == (5, 7, enc.out_dim) and enc.out_dim == 12


def test_gradients_reach_the_table_and_the_input():
    enc = _grid()
    x = torch.rand(100, 3, requires_grad=True)
    enc(x).square().sum().backward()
    assert enc.table.grad is not None and enc.table.grad.abs().sum() > 0
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # only rows touched by those 100 points get gradient
    assert (enc.table.grad.abs().sum(-1) > 0).sum() <= 100 * 8 * 6


def test_interpolation_is_continuous_and_exact_at_vertices():
    enc = _grid()
    x = torch.rand(200, 3) * 0.98
    eps = 1e-5
    diff = (enc(x + eps) - enc(x)).abs().max()
    assert diff < 1e-2, diff            # no jumps across cell borders
    # at a vertex of the coarsest (dense) level the feature is that vertex's table row
    res = int(enc.resolutions[0])
    vertex = torch.tensor([[1.0, 2.0, 3.0]]) / res
    row = 1 + 2 * (res + 1) + 3 * (res + 1) ** 2
    assert torch.allclose(enc(vertex)[0, :2], enc.table[row], atol=1e-5)


def test_fine_levels_hash_and_coarse_levels_are_dense():
    enc = _grid()
    assert bool(enc.is_dense[0]) and not bool(enc.is_dense[-1])
    assert int(enc.table_sizes.max()) <= 2 ** 12
    # hashed indices stay inside their level's slice of the table, even for the largest corners
    cell = torch.full((1, enc.config.levels, 8, 3), 0, dtype=torch.long)
    cell[..., :] = enc.resolutions.view(1, -1, 1, 1)
    rows = enc.corner_indices(cell)
    lo = enc.offsets.view(1, -1, 1)
    assert ((rows >= lo) & (rows < lo + enc.table_sizes.view(1, -1, 1))).all()


def test_a_grid_with_collisions_still_fits_distinct_targets():
    """Two-level tiny table (lots of collisions): the encoding + linear head still fit a smooth function."""
    torch.manual_seed(1)
    enc = _grid(levels=4, log2_table_size=8, max_resolution=32, init_scale=1e-4)
    head = torch.nn.Linear(enc.out_dim, 1)
    opt = torch.optim.Adam(list(enc.parameters()) + list(head.parameters()), lr=1e-2)
    x = torch.rand(2048, 3)
    y = torch.sin(6 * x[:, :1]) * torch.cos(4 * x[:, 1:2]) + x[:, 2:]
    for _ in range(300):
        opt.zero_grad()
        loss = (head(enc(x)) - y).square().mean()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * y.var().item()


def test_frequency_encoding_dims():
    enc = FrequencyEncoding(3, 4)
    assert enc(torch.zeros(2, 3)).shape == (2, enc.out_dim) == (2, 27)
