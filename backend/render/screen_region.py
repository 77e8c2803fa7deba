"""Where on screen the person can be: the pixels whose rays may meet an occupied cell.

A ray can only gather density inside an occupied cell of the head or torso occupancy grid
(samples elsewhere are never evaluated), so a pixel outside the projection of every
occupied cell renders exactly transparent. We project the corners of the occupied cells
(torso: world space, fixed, so cached per camera; head: canonical space, moved by the
frame's head pose) and keep the union of the cells' screen rectangles, grown by a pixel.
Rays outside it are never cast; their pixels are transparent.
"""
from __future__ import annotations

import numpy as np
import torch

from backend.render.camera import PinholeCamera

#: extra pixels around each projected rectangle (rounding of pixel centres)
MARGIN_PX = 1


def occupied_cell_corners(occupied: torch.Tensor, box: torch.Tensor) -> np.ndarray:
    """The 8 corners of every occupied cell, ``[cells, 8, 3]`` in the box's space."""
    occ = occupied.detach().cpu().numpy().astype(bool)
    r = occ.shape[0]
    cells = np.argwhere(occ).astype(np.float64)
    offsets = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float64)
    lo, hi = (box.detach().cpu().numpy().astype(np.float64)[k] for k in (0, 1))
    return lo + (cells[:, None, :] + offsets[None]) / r * (hi - lo)


def splat_cells(camera: PinholeCamera, corners_world: np.ndarray) -> np.ndarray:
    """bool ``[H, W]``: pixels whose centre lies in the screen rectangle of some cell (corners
    ``[cells, 8, 3]`` in world space), grown by ``MARGIN_PX``; every pixel when a cell reaches
    the camera plane (a ray through such a pixel may start inside it)."""
    h, w = camera.height, camera.width
    if len(corners_world) == 0:
        return np.zeros((h, w), bool)
    uv, z = camera.project(corners_world.reshape(-1, 3))
    if (z <= 1e-6).any():
        return np.ones((h, w), bool)
    uv = uv.reshape(-1, 8, 2)
    # pixel x is covered when its centre x + 0.5 lies in [u_min, u_max]
    x0 = np.clip(np.ceil(uv[..., 0].min(1) - 0.5).astype(np.int64) - MARGIN_PX, 0, w)
    x1 = np.clip(np.floor(uv[..., 0].max(1) - 0.5).astype(np.int64) + 1 + MARGIN_PX, 0, w)
    y0 = np.clip(np.ceil(uv[..., 1].min(1) - 0.5).astype(np.int64) - MARGIN_PX, 0, h)
    y1 = np.clip(np.floor(uv[..., 1].max(1) - 0.5).astype(np.int64) + 1 + MARGIN_PX, 0, h)
    ok = (x1 > x0) & (y1 > y0)
    x0, x1, y0, y1 = x0[ok], x1[ok], y0[ok], y1[ok]
    # rectangles filled at once with a 2-D difference array and prefix sums
    diff = np.zeros((h + 1, w + 1), np.int32)
    np.add.at(diff, (y0, x0), 1)
    np.add.at(diff, (y0, x1), -1)
    np.add.at(diff, (y1, x0), -1)
    np.add.at(diff, (y1, x1), 1)
    return diff.cumsum(0).cumsum(1)[:h, :w] > 0


class ScreenRegion:
    """Per model: the occupied cells of both grids; per camera and frame, the pixels worth a ray."""

    def __init__(self, model):
        self.torso_world = occupied_cell_corners(model.torso_grid.occupied, model.torso_box)
        self.head_canonical = occupied_cell_corners(model.head_grid.occupied, model.head_box)
        self._torso_cache: dict[tuple, np.ndarray] = {}

    @staticmethod
    def _camera_key(camera: PinholeCamera) -> tuple:
        return (camera.fx, camera.fy, camera.cx, camera.cy, camera.width, camera.height,
                camera.world_from_camera.tobytes())

    def torso_mask(self, camera: PinholeCamera) -> np.ndarray:
        """The torso grid is fixed in world space: its footprint is computed once per camera."""
        key = self._camera_key(camera)
        if key not in self._torso_cache:
            if len(self._torso_cache) >= 4:
                self._torso_cache.pop(next(iter(self._torso_cache)))
            self._torso_cache[key] = splat_cells(camera, self.torso_world)
        return self._torso_cache[key]

    def head_mask(self, camera: PinholeCamera, head_from_world: torch.Tensor, grow: float = 0.0) -> np.ndarray:
        """``head_from_world [3, 4]`` maps world points to the head's canonical space; ``grow``
        (canonical units) widens every cell, e.g. by a bound on a deformation warp's displacement
        (a sample at x is looked up at x + u(x)); infinite: every pixel."""
        if not np.isfinite(grow):
            return np.ones((camera.height, camera.width), bool)
        m = head_from_world.detach().cpu().numpy().astype(np.float64)
        corners = self.head_canonical
        if grow > 0:
            centre = corners.mean(axis=1, keepdims=True)
            corners = corners + np.sign(corners - centre) * grow
        world = (corners - m[:, 3]) @ np.linalg.inv(m[:, :3]).T
        return splat_cells(camera, world)

    def pixel_mask(self, camera: PinholeCamera, head_from_world: torch.Tensor, head_grow: float = 0.0) -> np.ndarray:
        """bool ``[H, W]``: True where a ray may meet an occupied cell (False: exactly transparent)."""
        return self.torso_mask(camera) | self.head_mask(camera, head_from_world, head_grow)


def warp_bound(warp) -> float:
    """An upper bound on a Gaussian RBF warp's displacement, sum_k |a_k| (0 without a warp;
    infinite for a warp this module does not know)."""
    if warp is None:
        return 0.0
    coefficients = getattr(warp, "coefficients", None)
    return float(coefficients.norm(dim=-1).sum()) if coefficients is not None else float("inf")
