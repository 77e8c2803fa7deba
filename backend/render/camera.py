"""Cameras: Blender's camera (``CameraSpec``) -> a pinhole camera in the NeRF's world space,
and pinhole cameras -> rays.

Conventions. Blender: the camera looks along its local -Z, +Y up; the sensor fit picks
which image side the sensor size spans (AUTO: the longer side, with ``sensor_width``);
shift is in units of that side. Anchor space (``CameraSpec.anchor_from_camera``): Blender
axes, metres, the face looking toward -Y, 1 inter-ocular distance = 0.063 m. Pinhole:
OpenCV axes (x right, y down, z forward), pixel centres at integer + 0.5, origin top-left.
World: the subject camera's OpenCV frame divided by the mean face scale (see model.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bridge.camera import CameraSpec

METRES_PER_CANONICAL_UNIT = 0.063
#: Blender anchor axes (x, y, z) -> canonical face axes: canonical = (x, z, -y) / 0.063
CANONICAL_FROM_BLENDER = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)
OPENCV_FROM_CANONICAL = np.diag([1.0, -1.0, -1.0])
BLENDER_CAMERA_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class PinholeCamera:
    """Intrinsics in pixels plus the camera's pose (OpenCV camera axes) in world space."""
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    world_from_camera: np.ndarray  # [4, 4]

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``[N, 2]`` (top-left origin) and depth ``[N]`` of world points."""
        camera_from_world = np.linalg.inv(self.world_from_camera)
        p = points_world @ camera_from_world[:3, :3].T + camera_from_world[:3, 3]
        z = p[:, 2]
        uv = np.stack([self.fx * p[:, 0] / z + self.cx, self.fy * p[:, 1] / z + self.cy], axis=-1)
        return uv, z

    def scaled_to(self, width: int, height: int) -> "PinholeCamera":
        """The same view at another resolution (uniform zoom, centred; aspect change crops/pads)."""
        zoom = min(width / self.width, height / self.height)
        return PinholeCamera(self.fx * zoom, self.fy * zoom, self.cx * zoom + (width - self.width * zoom) / 2,
                             self.cy * zoom + (height - self.height * zoom) / 2, width, height,
                             self.world_from_camera.copy())


def world_from_anchor_matrix(mean_rotation: np.ndarray, mean_translation_world: np.ndarray) -> np.ndarray:
    """4x4 map from Blender anchor space (metres) to world (the mean head pose's frame)."""
    m = np.eye(4)
    m[:3, :3] = mean_rotation @ OPENCV_FROM_CANONICAL @ CANONICAL_FROM_BLENDER / METRES_PER_CANONICAL_UNIT
    m[:3, 3] = mean_translation_world
    return m


def blender_camera_to_pinhole(spec: CameraSpec, world_from_anchor: np.ndarray) -> PinholeCamera:
    """THE conversion of a Blender camera (intrinsics + pose in anchor space) into a pinhole
    camera in the NeRF's world space. Tested against bpy's own projection."""
    width, height = (int(v) for v in spec.resolution)
    if width <= 0 or height <= 0:
        raise ValueError(f"camera resolution must be positive, got {spec.resolution}")
    if spec.focal_length_mm <= 0:
        raise ValueError(f"camera focal length must be positive, got {spec.focal_length_mm} mm")
    fit = spec.sensor_fit.upper()
    if fit == "AUTO":
        sensor = spec.sensor_width_mm
        fit = "HORIZONTAL" if width >= height else "VERTICAL"
    elif fit == "HORIZONTAL":
        sensor = spec.sensor_width_mm
    elif fit == "VERTICAL":
        sensor = spec.sensor_height_mm
    else:
        raise ValueError(f"unknown sensor fit {spec.sensor_fit!r}; expected AUTO, HORIZONTAL or VERTICAL")
    if sensor <= 0:
        raise ValueError(f"sensor size must be positive, got {sensor} mm")
    view_factor = width if fit == "HORIZONTAL" else height
    focal_px = spec.focal_length_mm * view_factor / sensor
    cx = width / 2.0 - spec.shift_x * view_factor
    cy = height / 2.0 + spec.shift_y * view_factor
    anchor_from_camera = np.asarray(spec.anchor_from_camera, dtype=np.float64).reshape(4, 4)
    world_from_camera = world_from_anchor @ anchor_from_camera @ BLENDER_CAMERA_TO_OPENCV
    # keep the camera's rotation orthonormal in world units (world_from_anchor scales by 1/0.063)
    scale = np.cbrt(abs(np.linalg.det(world_from_camera[:3, :3])))
    world_from_camera[:3, :3] /= scale
    return PinholeCamera(focal_px, focal_px, cx, cy, width, height, world_from_camera)


def pinhole_to_blender(camera: PinholeCamera, world_from_anchor: np.ndarray,
                       sensor_width_mm: float = 36.0) -> CameraSpec:
    """The inverse conversion (square pixels, no skew), e.g. the subject's training camera for the add-on."""
    fit = "HORIZONTAL" if camera.width >= camera.height else "VERTICAL"
    view_factor = camera.width if fit == "HORIZONTAL" else camera.height
    anchor_from_world = np.linalg.inv(world_from_anchor)
    anchor_from_camera = anchor_from_world @ camera.world_from_camera @ BLENDER_CAMERA_TO_OPENCV
    scale = np.cbrt(abs(np.linalg.det(anchor_from_camera[:3, :3])))
    anchor_from_camera[:3, :3] /= scale
    return CameraSpec(focal_length_mm=camera.fx * sensor_width_mm / view_factor, sensor_width_mm=sensor_width_mm,
                      sensor_height_mm=sensor_width_mm, sensor_fit=fit, resolution=(camera.width, camera.height),
                      shift_x=(camera.width / 2.0 - camera.cx) / view_factor,
                      shift_y=(camera.cy - camera.height / 2.0) / view_factor,
                      anchor_from_camera=anchor_from_camera)


def pinhole_rays(camera: PinholeCamera, device: torch.device | str = "cpu",
                 pixels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space ray origins and unit directions ``[H*W, 3]`` (row-major) or for ``pixels [N, 2]`` (x, y)."""
    if pixels is None:
        ys, xs = torch.meshgrid(torch.arange(camera.height, dtype=torch.float64),
                                torch.arange(camera.width, dtype=torch.float64), indexing="ij")
        pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
    pixels = pixels.to(torch.float64)
    d = torch.stack([(pixels[:, 0] + 0.5 - camera.cx) / camera.fx, (pixels[:, 1] + 0.5 - camera.cy) / camera.fy,
                     torch.ones(len(pixels), dtype=torch.float64)], dim=-1)
    m = torch.from_numpy(camera.world_from_camera)
    dirs = d @ m[:3, :3].T
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = m[:3, 3].expand_as(dirs)
    return origins.to(device, torch.float32), dirs.to(device, torch.float32)
