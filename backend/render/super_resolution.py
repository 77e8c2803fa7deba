"""SuperResolutionNet: a subject's x4 plate upscaler (no I/O).

Input: the NeRF's render at the working resolution as premultiplied RGB + alpha
``[B, 4, h, w]``. Output: premultiplied RGB + alpha ``[B, 4, 4h, 4w]`` = bicubic upscale of
the input plus a learnt residual (residual blocks at the input size, then two
pixel-shuffle x2 steps). Alpha is clamped to [0, 1] and colour to [0, alpha], so the
output is always a valid premultiplied plate. Pixel (i, j) of the input covers output
pixels 4i..4i+3 (pixel centres line up, as with ``align_corners=False``).
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
    scale: int = 4            # fixed: two x2 pixel-shuffle steps
    channels: int = 32        # features at the input resolution
    blocks: int = 4           # residual blocks at the input resolution
    up_channels: int = 16     # features after the first x2
    final_channels: int = 8   # features after the second x2


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SuperResolutionNet(nn.Module):
    def __init__(self, config: SuperResolutionConfig | None = None):
        super().__init__()
        self.config = c = config or SuperResolutionConfig()
        if c.scale != 4:
            raise ValueError(f"SuperResolutionNet upscales x4 only, got scale {c.scale}")
        self.head = nn.Conv2d(4, c.channels, 3, padding=1)
        self.body = nn.Sequential(*[_ResidualBlock(c.channels) for _ in range(c.blocks)])
        self.up1 = nn.Conv2d(c.channels, c.up_channels * 4, 3, padding=1)
        self.up2 = nn.Conv2d(c.up_channels, c.final_channels * 4, 3, padding=1)
        self.tail = nn.Conv2d(c.final_channels, 4, 3, padding=1)
        nn.init.zeros_(self.tail.weight)   # starts as plain bicubic
        nn.init.zeros_(self.tail.bias)

    def forward(self, plate: torch.Tensor) -> torch.Tensor:
        """``plate [B, 4, h, w]`` premultiplied RGBA in [0, 1] -> ``[B, 4, 4h, 4w]``."""
        if plate.dim() != 4 or plate.shape[1] != 4:
            raise ValueError(f"SuperResolutionNet expects [B, 4, h, w] premultiplied RGBA, got {tuple(plate.shape)}")
        base = F.interpolate(plate, scale_factor=4, mode="bicubic", align_corners=False)
        x = F.relu(self.head(plate))
        x = x + self.body(x)
        x = F.relu(F.pixel_shuffle(self.up1(x), 2))
        x = F.relu(F.pixel_shuffle(self.up2(x), 2))
        out = base + self.tail(x)
        alpha = out[:, 3:].clamp(0.0, 1.0)
        colour = torch.minimum(out[:, :3].clamp(min=0.0), alpha)
        return torch.cat([colour, alpha], dim=1)


def bicubic_plate(plate: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """The trivial baseline: bicubic upscale of a premultiplied plate, kept valid."""
    out = F.interpolate(plate, scale_factor=scale, mode="bicubic", align_corners=False)
    alpha = out[:, 3:].clamp(0.0, 1.0)
    return torch.cat([torch.minimum(out[:, :3].clamp(min=0.0), alpha), alpha], dim=1)
