"""Where along a ray to evaluate a field: ray/box bounds, stratified samples, and an
occupancy grid that skips empty space (samples in empty cells are never evaluated).

Samples are kept in a dense ``[rays, samples]`` layout with a boolean ``keep`` mask, so
volume rendering is an exact per-ray cumulative sum; only kept samples reach the field.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def ray_box_bounds(origins: torch.Tensor, dirs: torch.Tensor, box: torch.Tensor,
                   near_min: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entry/exit ray parameters of the axis-aligned ``box [2, 3]``; ``hit`` is False for misses."""
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (box[0] - origins) / safe
    t1 = (box[1] - origins) / safe
    near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=near_min)
    far = torch.maximum(t0, t1).amin(dim=-1)
    return near, far, far > near


@dataclass
class RaySamples:
    """Stratified samples along rays in a field's own space."""
    t: torch.Tensor          # [R, S] ray parameter of each sample
    delta: torch.Tensor      # [R, S] segment length (world units)
    positions01: torch.Tensor  # [R, S, 3] positions normalised to the field's box
    keep: torch.Tensor       # [R, S] bool: inside the box and in an occupied cell


def stratified_samples(origins: torch.Tensor, dirs: torch.Tensor, box: torch.Tensor, count: int,
                       jitter: bool, near_min: float = 0.0) -> RaySamples:
    """``count`` samples per ray between box entry and exit (jittered when training)."""
    near, far, hit = ray_box_bounds(origins, dirs, box, near_min)
    steps = torch.arange(count, device=origins.device, dtype=origins.dtype)
    offset = torch.rand(origins.shape[0], count, device=origins.device) if jitter else torch.full_like(steps, 0.5)
    span = (far - near).clamp(min=0.0)
    t = near[:, None] + span[:, None] * (steps + offset) / count
    delta = (span / count)[:, None].expand_as(t)
    points = origins[:, None, :] + t[..., None] * dirs[:, None, :]
    positions01 = (points - box[0]) / (box[1] - box[0])
    keep = hit[:, None].expand_as(t) & ((positions01 >= 0) & (positions01 <= 1)).all(dim=-1)
    return RaySamples(t=t, delta=delta, positions01=positions01, keep=keep)


class OccupancyGrid(nn.Module):
    """A coarse density grid over a field's unit box; cells below ``threshold`` are skipped.

    ``update`` keeps a decaying maximum of the field's density at jittered cell centres,
    so cells empty for every condition seen become skippable; the occupied set is dilated
    by one cell to protect thin structures between updates.
    """

    def __init__(self, resolution: int = 48, threshold: float = 0.1, decay: float = 0.9):
        super().__init__()
        self.resolution = resolution
        self.threshold = threshold
        self.decay = decay
        self.register_buffer("density", torch.full((resolution,) * 3, 1e3))
        self.register_buffer("occupied", torch.ones((resolution,) * 3, dtype=torch.bool))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("allowed", torch.ones((resolution,) * 3, dtype=torch.bool))

    def cell_centres(self) -> torch.Tensor:
        """Centres of all cells in [0, 1]^3, ``[r^3, 3]`` in the grid's (i, j, k) order."""
        r = self.resolution
        idx = torch.stack(torch.meshgrid(*(torch.arange(r, device=self.density.device),) * 3, indexing="ij"), -1)
        return (idx.reshape(-1, 3).float() + 0.5) / r

    @torch.no_grad()
    def set_allowed(self, allowed: torch.Tensor) -> None:
        """Restrict the grid to a prior (e.g. the visual hull of the person masks), forever."""
        allowed = allowed.reshape((self.resolution,) * 3).to(self.allowed.device)
        self.allowed.copy_(allowed)
        self.occupied.copy_(self.occupied & allowed)

    def lookup(self, positions01: torch.Tensor) -> torch.Tensor:
        """True where a point in [0, 1]^3 lies in an occupied cell."""
        idx = (positions01 * self.resolution).long().clamp(0, self.resolution - 1)
        return self.occupied[idx[..., 0], idx[..., 1], idx[..., 2]]

    @torch.no_grad()
    def update(self, density_fn, chunk: int = 65536) -> float:
        """Re-evaluate ``density_fn(points01 [N, 3]) -> [N]`` at jittered centres; returns occupied share."""
        r = self.resolution
        device = self.density.device
        grid = torch.stack(torch.meshgrid(*(torch.arange(r, device=device),) * 3, indexing="ij"), -1).reshape(-1, 3)
        points = (grid + torch.rand(grid.shape, device=device)) / r
        values = torch.cat([density_fn(points[i:i + chunk]) for i in range(0, len(points), chunk)])
        values = values.reshape(r, r, r)
        # the first update replaces the "everything occupied" start; later ones decay
        self.density.copy_(values if int(self.updates) == 0 else torch.maximum(self.density * self.decay, values))
        self.updates += 1
        occupied = (self.density > self.threshold).float()[None, None]
        self.occupied.copy_((F.max_pool3d(occupied, 3, stride=1, padding=1)[0, 0] > 0) & self.allowed)
        return float(self.occupied.float().mean())
