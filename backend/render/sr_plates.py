"""Plates above a subject's working resolution through its super-resolution network: render
the NeRF at the working resolution through a scaled-down copy of the plate's camera, upscale
by the network's smallest scale that reaches the requested size (x2 when it has a x2 head and
the plate is at most twice the working size, else x4), and (for sizes that are not exactly
that) area-resample to the requested size.

A request of W x H renders the NeRF at W*f x H*f with f = working size / max(W, H), so the
NeRF always runs at its own working resolution (the face as large as in training) and the
network always sees the input scale it was trained on.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from backend.render.camera import PinholeCamera
from backend.render.super_resolution import SR_KIND, SR_VERSION, SuperResolutionConfig, SuperResolutionNet


def sr_stem(subject_dir: Path, info: dict) -> Path | None:
    """The subject's SR checkpoint stem (``subject.json:super_resolution``), None when it has none."""
    name = info.get("super_resolution")
    if name is None and (Path(subject_dir) / "sr.json").is_file():
        name = "sr"
    return Path(subject_dir) / name if name else None


def load_super_resolution(subject_dir: Path, info: dict, device: torch.device) -> SuperResolutionNet | None:
    from backend.checkpoints import CheckpointError, load_checkpoint, read_checkpoint_meta
    stem = sr_stem(subject_dir, info)
    if stem is None:
        return None
    meta = read_checkpoint_meta(stem, kind=SR_KIND, version=SR_VERSION)
    if meta.get("subject") != info["name"]:
        raise CheckpointError(f"{stem}.json was trained for subject {meta.get('subject')!r}, "
                              f"not {info['name']!r}")
    net = SuperResolutionNet(SuperResolutionConfig(**meta["config"]))
    load_checkpoint(stem, net, kind=SR_KIND, version=SR_VERSION)
    return net.to(device).eval()


def low_resolution_camera(camera: PinholeCamera, working: int) -> tuple[PinholeCamera, float]:
    """The plate camera zoomed by ``f = working / max(W, H)`` (pixel grid kept aligned); returns it and f."""
    f = working / max(camera.width, camera.height)
    return PinholeCamera(camera.fx * f, camera.fy * f, camera.cx * f, camera.cy * f,
                         max(1, math.ceil(camera.width * f)), max(1, math.ceil(camera.height * f)),
                         camera.world_from_camera.copy()), f


def network_scale(net: SuperResolutionNet, f: float) -> int:
    """The smallest of the network's scales whose output covers the plate (``f``: working / plate size)."""
    return next((s for s in sorted(net.scales) if s * f >= 1.0 - 1e-6), max(net.scales))


@torch.no_grad()
def super_resolved_plate(renderer, net: SuperResolutionNet, camera: PinholeCamera, conditions,
                         index: int) -> torch.Tensor:
    """``[H, W, 4]`` premultiplied RGBA at the plate camera's size."""
    low, f = low_resolution_camera(camera, max(renderer.training_camera_size))
    plate = renderer.render_premultiplied(low, conditions, index)
    net_scale = network_scale(net, f)
    up = net(plate.permute(2, 0, 1)[None], scale=net_scale)
    scale = net_scale * f   # output pixels per requested pixel
    if abs(scale - 1.0) > 1e-6:
        w, h = round(camera.width * scale), round(camera.height * scale)
        up = F.interpolate(up[:, :, :h, :w], size=(camera.height, camera.width), mode="area")
    return up[0, :, :camera.height, :camera.width].permute(1, 2, 0)


def to_straight_uint8(premultiplied: torch.Tensor) -> np.ndarray:
    from backend.render.compositing import straight_alpha
    colour = straight_alpha(premultiplied[..., :3], premultiplied[..., 3])
    rgba = torch.cat([colour, premultiplied[..., 3:].clamp(0, 1)], dim=-1)
    return (rgba * 255).round().to(torch.uint8).cpu().numpy()
