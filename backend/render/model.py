"""SubjectNeRF: head field + torso field + their occupancy grids, rendering rays.

Spaces: *world* is the subject camera's frame (OpenCV axes) divided by the subject's
mean face scale, so one unit is about one inter-ocular distance. The head field lives
in canonical face space (see docs/architecture.md); each ray carries the affine map
world -> canonical of its frame's head pose. The torso field lives in world space.
The head is composited over the torso; alpha is the accumulated opacity of both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from backend.render.compositing import over
from backend.render.deformation import LandmarkWarp
from backend.render.encodings import HashGridConfig, LandmarkCode
from backend.render.fields import ConditionedField, HeadField, PlainNerfField, TorsoField
from backend.render.sampling import OccupancyGrid, stratified_samples
from backend.render.volume_rendering import volume_render

MODEL_KIND = "subject_nerf"
MODEL_VERSION = 1
BANK_SIZE = 256      # training conditions kept for occupancy updates
POSE_DIM = 6          # rotation vector (3) + normalised translation (3)
HEAD_COLOUR_DIM = 3
#: inference stops marching a ray once less than 0.5 % of the light gets through; with 4 samples per
#: step this is more accurate than the former 1 % with 8 per step (8 held-out frames at 128²: mouth PSNR
#: 31.18 vs 31.16 dB) and marches 4 % fewer samples
EARLY_STOP_TRANSMITTANCE = 5e-3


@dataclass
class SubjectModelConfig:
    code_dim: int = 16
    hidden: int = 64
    condition_embed: int = 16
    head_grid: HashGridConfig = field(default_factory=lambda: HashGridConfig(levels=8, log2_table_size=15,
                                                                             base_resolution=16, max_resolution=256))
    torso_grid: HashGridConfig = field(default_factory=lambda: HashGridConfig(levels=6, log2_table_size=14,
                                                                              base_resolution=8, max_resolution=128))
    head_samples: int = 40
    torso_samples: int = 24
    occupancy_resolution: int = 48
    occupancy_threshold: float = 0.05
    # canonical face units (inter-ocular distance 1): x right, y up, z toward the viewer
    head_box: tuple[tuple[float, float, float], tuple[float, float, float]] = ((-2.6, -3.4, -3.6), (2.6, 3.0, 1.6))
    plain_baseline: bool = False   # benchmark only: PlainNerfField, no occupancy skipping
    #: opt-in: "global" scales the landmark code by one number instead of whitening it (LandmarkCode)
    code_scale: str = "component"
    #: opt-in: "split" fits the landmark code's PCA on the upper face and on the rest apart (LandmarkCode)
    code_regions: str = "whole"
    #: opt-in: the head field's hidden width (None: ``hidden``); a wider head can be started from a
    #: narrower checkpoint without changing its output (model_growth.py)
    head_hidden: int | None = None
    #: opt-in: the landmark code also scales the head's hash-grid feature channels (ConditionedField.gate)
    head_condition_gate: bool = False


class SubjectNeRF(nn.Module):
    """No I/O: conditions come in as tensors, rendered colour/alpha go out."""

    def __init__(self, config: SubjectModelConfig | None = None,
                 torso_box: torch.Tensor | None = None, code_bank: torch.Tensor | None = None,
                 pose_bank: torch.Tensor | None = None):
        super().__init__()
        self.config = c = config or SubjectModelConfig()
        if c.plain_baseline:
            self.head_field: nn.Module = PlainNerfField(c.code_dim, c.condition_embed)
            self.torso_field: nn.Module = PlainNerfField(POSE_DIM + HEAD_COLOUR_DIM, c.condition_embed)
        else:
            self.head_field = HeadField(c.head_grid, c.code_dim, c.condition_embed, c.head_hidden or c.hidden,
                                        gate=c.head_condition_gate)
            self.torso_field = TorsoField(c.torso_grid, POSE_DIM + HEAD_COLOUR_DIM, c.condition_embed, c.hidden)
        self.landmark_code = LandmarkCode(c.code_dim, scale=c.code_scale, regions=c.code_regions)
        self.head_grid = OccupancyGrid(c.occupancy_resolution, c.occupancy_threshold, decay=0.95)
        self.torso_grid = OccupancyGrid(c.occupancy_resolution, c.occupancy_threshold, decay=0.95)
        self.register_buffer("head_box", torch.tensor(c.head_box, dtype=torch.float32))
        self.register_buffer("torso_box", torso_box if torso_box is not None else
                             torch.tensor([[-6.0, -3.0, 6.0], [6.0, 9.0, 14.0]]))
        self.register_buffer("code_bank", code_bank if code_bank is not None else torch.zeros(BANK_SIZE, c.code_dim))
        self.register_buffer("pose_bank", pose_bank if pose_bank is not None else torch.zeros(BANK_SIZE, POSE_DIM))
        # the subject's mean head pose (camera frame): the anchor and the pose code's reference
        self.register_buffer("mean_rotation", torch.eye(3))
        self.register_buffer("mean_translation", torch.zeros(3))
        #: inference skips the torso behind an opaque head (benchmarks switch it off to time the old way)
        self.skip_occluded_torso = True
        #: samples per front-to-back step (4: fewer samples past opacity than 8; 2-3 no faster)
        self.march_block = 4
        #: early ray termination's transmittance (benchmarks set the former 1e-2 to time the old way)
        self.early_stop = EARLY_STOP_TRANSMITTANCE

    # -- one field pass -------------------------------------------------------------------
    def _render_field(self, fld: ConditionedField, grid: OccupancyGrid, origins: torch.Tensor,
                      dirs: torch.Tensor, box: torch.Tensor, condition: torch.Tensor, count: int,
                      jitter: bool, skip_empty: bool,
                      warp: LandmarkWarp | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        samples = stratified_samples(origins, dirs, box, count, jitter)
        if warp is not None:
            samples = warp.warp_samples(samples, box)
        keep = samples.keep
        if skip_empty and not self.config.plain_baseline:
            keep = keep & grid.lookup(samples.positions01)
        embedding = fld.embed_condition(condition)
        if torch.is_grad_enabled():
            sigma, rgb = self._evaluate(fld, samples.positions01, keep, embedding)
            return volume_render(sigma, rgb, samples.delta)
        return self._render_front_to_back(fld, samples, keep, embedding)

    @staticmethod
    def _evaluate(fld, positions01, keep, embedding) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense ``[R, S]`` density/colour with the field evaluated only where ``keep``."""
        sigma = torch.zeros(keep.shape, device=keep.device, dtype=positions01.dtype)
        rgb = torch.zeros(*keep.shape, 3, device=keep.device, dtype=positions01.dtype)
        ray_idx, sample_idx = keep.nonzero(as_tuple=True)
        if len(ray_idx):
            s, c = fld(positions01[ray_idx, sample_idx], embedding[ray_idx])
            sigma = sigma.index_put((ray_idx, sample_idx), s)
            rgb = rgb.index_put((ray_idx, sample_idx), c)
        return sigma, rgb

    def _render_front_to_back(self, fld, samples, keep, embedding, block: int | None = None,
                              min_transmittance: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference: march blocks of samples front to back, dropping rays once they are opaque
        (early ray termination); same result as the dense render up to ``min_transmittance``."""
        block = block or self.march_block
        min_transmittance = min_transmittance or self.early_stop
        rays = keep.shape[0]
        colour = torch.zeros(rays, 3, device=keep.device)
        log_transmittance = torch.zeros(rays, device=keep.device)
        for start in range(0, keep.shape[1], block):
            part = slice(start, start + block)
            alive = (log_transmittance > math.log(min_transmittance))[:, None]
            sigma, rgb = self._evaluate(fld, samples.positions01[:, part], keep[:, part] & alive, embedding)
            tau = sigma * samples.delta[:, part]
            trans = torch.exp(log_transmittance[:, None] - (torch.cumsum(tau, dim=-1) - tau))
            weights = trans * (1 - torch.exp(-tau))
            colour += (weights[..., None] * rgb).sum(dim=1)
            log_transmittance = log_transmittance - tau.sum(dim=1)
        # a terminated ray is opaque: the light it has left would be absorbed further in, so alpha is 1 and
        # the colour gathered so far is that of the whole ray (a plate's solid parts stay exactly solid)
        done = log_transmittance <= math.log(min_transmittance)
        colour[done] = colour[done] / (1 - torch.exp(log_transmittance[done]))[:, None]
        log_transmittance[done] = -math.inf
        return colour, 1 - torch.exp(log_transmittance)

    def forward(self, origins: torch.Tensor, dirs: torch.Tensor, head_from_world: torch.Tensor,
                code: torch.Tensor, pose: torch.Tensor, jitter: bool = False,
                skip_empty: bool = True, warp: LandmarkWarp | None = None) -> dict[str, torch.Tensor]:
        """Render rays (world space). Per ray: ``head_from_world [R, 3, 4]``, ``code [R, K]``,
        ``pose [R, 6]``; ``warp`` (one frame's, see deformation.py) bends the head samples.
        Returns premultiplied ``rgb``/``alpha`` and the head/torso parts."""
        rot, shift = head_from_world[..., :3], head_from_world[..., 3]
        head_o = (rot @ origins[..., None])[..., 0] + shift
        head_d = (rot @ dirs[..., None])[..., 0]
        c = self.config
        head_rgb, head_alpha = self._render_field(self.head_field, self.head_grid, head_o, head_d, self.head_box,
                                                  code, c.head_samples, jitter, skip_empty, warp)
        torso_condition = torch.cat([pose, head_rgb.detach()], dim=-1)
        if torch.is_grad_enabled():
            torso_rgb, torso_alpha = self._render_field(self.torso_field, self.torso_grid, origins, dirs,
                                                        self.torso_box, torso_condition, c.torso_samples,
                                                        jitter, skip_empty)
        else:
            # inference: behind a head that lets less than early_stop of the light through, the
            # torso would change the pixel by less than that (early termination's own tolerance): not marched
            torso_rgb, torso_alpha = torch.zeros_like(head_rgb), torch.zeros_like(head_alpha)
            todo = (head_alpha < (1 - self.early_stop if self.skip_occluded_torso else 2.0)).nonzero()[:, 0]
            if len(todo):
                torso_rgb[todo], torso_alpha[todo] = self._render_field(
                    self.torso_field, self.torso_grid, origins[todo], dirs[todo], self.torso_box,
                    torso_condition[todo], c.torso_samples, jitter, skip_empty)
        rgb, alpha = over(head_rgb, head_alpha, torso_rgb, torso_alpha)
        return {"rgb": rgb, "alpha": alpha, "head_rgb": head_rgb, "head_alpha": head_alpha,
                "torso_rgb": torso_rgb, "torso_alpha": torso_alpha}

    # -- empty-space skipping -------------------------------------------------------------
    @torch.no_grad()
    def update_occupancy(self) -> tuple[float, float]:
        """Refresh both grids with conditions drawn from the training banks."""
        def head_density(points):
            code = self.code_bank[torch.randint(len(self.code_bank), (len(points),), device=points.device)]
            return self.head_field(points, self.head_field.embed_condition(code))[0]

        def torso_density(points):
            pose = self.pose_bank[torch.randint(len(self.pose_bank), (len(points),), device=points.device)]
            colour = torch.rand(len(points), 3, device=points.device)
            cond = torch.cat([pose, colour], dim=-1)
            return self.torso_field(points, self.torso_field.embed_condition(cond))[0]

        return self.head_grid.update(head_density), self.torso_grid.update(torso_density)
