"""Contact sheets for eyeballing a track: frames of the source video with the iBUG landmarks
(coloured by part) and the head-pose axes (x red, y green, z blue, from the canonical
origin between the eyes, 0.8 inter-ocular units long) drawn on them. Frames where the
face is small (upper-body shots) are cropped to the region the face moves in."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.data.canonical import project
from backend.data.tracks import TRACK_FPS, Track
from bridge.landmarks import REGIONS

PART_COLOURS = {  # RGB, by bridge.landmarks.REGIONS name
    "jaw": (255, 255, 255), "brow_r": (255, 200, 0), "brow_l": (255, 200, 0),
    "nose_bridge": (0, 255, 255), "nose_base": (0, 255, 255), "eye_r": (0, 255, 0),
    "eye_l": (0, 255, 0), "lip_outer": (255, 0, 255), "lip_inner": (255, 120, 120),
}
AXIS_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 128, 255))


def _read_frames(video: Path, indices: list[int]) -> dict[int, np.ndarray]:
    from backend.data.face_tracking import iter_frames_rgb
    wanted, out = set(indices), {}
    for i, frame in enumerate(iter_frames_rgb(video, max(indices) + 1)):
        if i in wanted:
            out[i] = frame
    return out


def draw_frame(rgb: np.ndarray, points: np.ndarray, axes_2d: np.ndarray | None, found: bool) -> np.ndarray:
    """Landmarks ``[NUM_LANDMARKS, 2]`` and axes ``[4, 2]`` (origin, x, y, z tips) drawn on a copy of ``rgb``."""
    import cv2
    img = np.ascontiguousarray(rgb.copy())
    radius = max(1, int(round(max(img.shape[:2]) / 200)))
    thick = max(1, radius)
    for part, idx in REGIONS.items():
        colour = PART_COLOURS[part]
        for i in idx:
            cv2.circle(img, (int(round(points[i, 0])), int(round(points[i, 1]))), radius, colour, -1, cv2.LINE_AA)
    if axes_2d is not None and np.all(np.isfinite(axes_2d)):
        o = tuple(int(round(v)) for v in axes_2d[0])
        for k in range(3):
            tip = tuple(int(round(v)) for v in axes_2d[k + 1])
            cv2.arrowedLine(img, o, tip, AXIS_COLOURS[k], thick + 1, cv2.LINE_AA, tipLength=0.15)
    if not found:
        cv2.putText(img, "NO FACE", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 0, 0), 2)
    return img


def _face_window(points: np.ndarray, image_hw: tuple[int, int], margin: float = 2.2) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): a square around the clip's face region when the face is small, else the frame."""
    lo, hi = points.reshape(-1, 2).min(0), points.reshape(-1, 2).max(0)
    side = margin * float(max(hi - lo))
    h, w = image_hw
    if side >= 0.8 * min(h, w):
        return 0, 0, w, h
    cx, cy = (lo + hi) / 2
    x0 = int(np.clip(cx - side / 2, 0, w - side))
    y0 = int(np.clip(cy - side / 2, 0, h - side))
    return x0, y0, x0 + int(side), y0 + int(side)


def write_contact_sheet(track: Track, video: str | Path, out_path: str | Path, tiles: int = 8,
                        tile_height: int = 256, columns: int = 4) -> Path:
    """Write a PNG grid of ``tiles`` evenly spaced frames with landmarks and pose axes."""
    import cv2
    import imageio.v3 as iio
    video, out_path = Path(video), Path(out_path)
    n = track.frame_count
    picks = sorted(set(np.linspace(0, n - 1, min(tiles, n)).round().astype(int).tolist()))
    source_fps = float(track.meta.get("source_fps", TRACK_FPS))
    source_index = {t: int(round(t * source_fps / TRACK_FPS)) for t in picks}
    frames = _read_frames(video, list(source_index.values()))
    intrinsics = np.asarray(track.meta["intrinsics"], np.float64)
    axes = np.array([[0, 0, 0], [0.8, 0, 0], [0, 0.8, 0], [0, 0, 0.8]], np.float64)
    images = []
    for t in picks:
        frame = frames.get(source_index[t])
        if frame is None:
            continue
        axes_2d = project(axes[None], track.rotation[t:t + 1].astype(np.float64),
                          track.translation[t:t + 1].astype(np.float64), intrinsics, track.scale[t:t + 1])[0]
        x0, y0, x1, y1 = _face_window(track.landmarks_image, frame.shape[:2])
        scale = tile_height / (y1 - y0)
        crop = cv2.resize(frame[y0:y1, x0:x1], (int(round((x1 - x0) * scale)), tile_height),
                          interpolation=cv2.INTER_AREA)
        to_tile = lambda pts: (pts - np.array([x0, y0])) * scale  # noqa: E731
        img = draw_frame(crop, to_tile(track.landmarks_image[t]), to_tile(axes_2d), bool(track.face_found[t]))
        cv2.putText(img, f"t={t}", (6, tile_height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1)
        images.append(img)
    if not images:
        raise ValueError(f"{video}: no frames could be read for the preview")
    width = max(im.shape[1] for im in images)
    images = [np.pad(im, ((0, 0), (0, width - im.shape[1]), (0, 0))) for im in images]
    while len(images) % columns:
        images.append(np.zeros_like(images[0]))
    rows = [np.concatenate(images[i:i + columns], axis=1) for i in range(0, len(images), columns)]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp.png")
    iio.imwrite(tmp, np.concatenate(rows, axis=0))
    tmp.replace(out_path)
    return out_path
