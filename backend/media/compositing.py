"""Straight-alpha compositing of RGBA plates and simple landmark drawings."""
from __future__ import annotations

import cv2
import numpy as np

from bridge.landmarks import REGIONS


def composite_over(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``rgba`` (uint8, straight alpha) over an RGB ``background`` of the same size."""
    if background.shape[:2] != rgba.shape[:2]:
        background = cv2.resize(background, (rgba.shape[1], rgba.shape[0]), interpolation=cv2.INTER_AREA)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * alpha + background[..., :3].astype(np.float32) * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


_CLOSED = {"eye_r", "eye_l", "lip_outer", "lip_inner"}


def draw_landmarks(landmarks: np.ndarray, size: int = 256, title: str | None = None,
                   background: int = 24) -> np.ndarray:
    """A frontal drawing of canonical landmarks ``[NUM_LANDMARKS, 3]`` (y up) as an RGB image."""
    image = np.full((size, size, 3), background, np.uint8)
    xy = np.asarray(landmarks, np.float32)[:, :2] * np.array([1.0, -1.0], np.float32)
    # canonical units: inter-ocular distance 1; the face spans about 2.4 x 3 units
    scale = size / 3.4
    centre = np.array([size / 2, size * 0.36], np.float32)
    pts = (xy * scale + centre).round().astype(np.int32)
    for name, idx in REGIONS.items():
        poly = pts[list(idx)]
        colour = (255, 120, 120) if name.startswith("lip") else (200, 220, 255)
        cv2.polylines(image, [poly], isClosed=name in _CLOSED, color=colour, thickness=1, lineType=cv2.LINE_AA)
    for p in pts:
        cv2.circle(image, tuple(int(v) for v in p), 1, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    if title:
        cv2.putText(image, title, (6, size - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
    return image
