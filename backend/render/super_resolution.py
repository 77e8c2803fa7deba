"""SuperResolutionNet: a subject's plate upscaler, x4 (and optionally x2) (no I/O).

Input: the NeRF's render at the working resolution as premultiplied RGB + alpha
``[B, 4, h, w]``. Output: premultiplied RGB + alpha ``[B, 4, s*h, s*w]`` = bicubic upscale of
the input plus a learnt residual (residual blocks at the input size, then pixel-shuffle x2
steps). ``scale=4`` runs both x2 steps; ``scale=2`` (only with ``x2_head``) stops after the
first and reads the residual there, so a plate at twice the working size skips the x4
stage's work instead of downsampling its output. Alpha is clamped to [0, 1] (snapped to exactly 0
or 1 within 1 %) and colour to [0, alpha], so the output is always a valid premultiplied plate. Pixel (i, j) of the input
covers output pixels s*i..s*i+s-1 (pixel centres line up, as with ``align_corners=False``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SR_KIND = "subject_super_resolution"
SR_VERSION = 1


@dataclass
class SuperResolutionConfig:
    scale: int = 4            # the largest scale: two x2 pixel-shuffle steps
    channels: int = 32        # features at the input resolution
    blocks: int = 4           # residual blocks at the input resolution
    up_channels: int = 16     # features after the first x2
    final_channels: int = 8   # features after the second x2
    x2_head: bool = False     # also a x2 output read after the first x2 step


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


def _zero_conv(channels: int) -> nn.Conv2d:
    """The residual's last conv, zero so an untrained head is exactly bicubic."""
    conv = nn.Conv2d(channels, 4, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class SuperResolutionNet(nn.Module):
    def __init__(self, config: SuperResolutionConfig | None = None):
        super().__init__()
        self.config = c = config or SuperResolutionConfig()
        if c.scale != 4:
            raise ValueError(f"SuperResolutionNet upscales x4 (and x2 with x2_head) only, got scale {c.scale}")
        self.head = nn.Conv2d(4, c.channels, 3, padding=1)
        self.body = nn.Sequential(*[_ResidualBlock(c.channels) for _ in range(c.blocks)])
        self.up1 = nn.Conv2d(c.channels, c.up_channels * 4, 3, padding=1)
        self.up2 = nn.Conv2d(c.up_channels, c.final_channels * 4, 3, padding=1)
        self.tail = _zero_conv(c.final_channels)
        self.tail_x2 = _zero_conv(c.up_channels) if c.x2_head else None

    @property
    def scales(self) -> tuple[int, ...]:
        """The output scales this network has heads for."""
        return (2, 4) if self.tail_x2 is not None else (4,)

    def forward(self, plate: torch.Tensor, scale: int = 4) -> torch.Tensor:
        """``plate [B, 4, h, w]`` premultiplied RGBA in [0, 1] -> ``[B, 4, scale*h, scale*w]``."""
        return self.both(plate, (scale,))[scale]

    def both(self, plate: torch.Tensor, scales: tuple[int, ...] = (2, 4)) -> dict[int, torch.Tensor]:
        """The outputs at each of ``scales`` from one pass of the shared trunk (training uses both)."""
        if plate.dim() != 4 or plate.shape[1] != 4:
            raise ValueError(f"SuperResolutionNet expects [B, 4, h, w] premultiplied RGBA, got {tuple(plate.shape)}")
        unknown = set(scales) - set(self.scales)
        if unknown:
            raise ValueError(f"this SuperResolutionNet has heads for scales {self.scales}, not {sorted(unknown)}")
        x = F.relu(self.head(plate))
        x = x + self.body(x)
        x = F.relu(F.pixel_shuffle(self.up1(x), 2))
        out = {}
        if 2 in scales:
            out[2] = _valid(_bicubic(plate, 2) + self.tail_x2(x))
        if 4 in scales:
            x = F.relu(F.pixel_shuffle(self.up2(x), 2))
            out[4] = _valid(_bicubic(plate, 4) + self.tail(x))
        return out


def _bicubic(plate: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(plate, scale_factor=scale, mode="bicubic", align_corners=False)


#: alpha within this of 0 or 1 is snapped to exactly clear or solid (the NeRF's own early-termination
#: tolerance is 0.5 %): a learnt residual must not leave a plate's solid person faintly see-through
ALPHA_SNAP = 0.01


def _valid(out: torch.Tensor) -> torch.Tensor:
    """Alpha in [0, 1] (snapped to 0 or 1 within ``ALPHA_SNAP``), colour in [0, alpha]: a valid
    premultiplied plate; snapping to solid keeps the straight colour."""
    alpha = out[:, 3:].clamp(0.0, 1.0)
    colour = torch.minimum(out[:, :3].clamp(min=0.0), alpha)
    solid = alpha >= 1.0 - ALPHA_SNAP
    colour = torch.where(solid, colour / alpha.clamp(min=1.0 - ALPHA_SNAP), colour).clamp(max=1.0)
    alpha = torch.where(solid, torch.ones_like(alpha), alpha)
    clear = alpha <= ALPHA_SNAP
    return torch.cat([torch.where(clear, torch.zeros_like(colour), colour),
                      torch.where(clear, torch.zeros_like(alpha), alpha)], dim=1)


def bicubic_plate(plate: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """The trivial baseline: bicubic upscale of a premultiplied plate, kept valid."""
    return _valid(_bicubic(plate, scale))
