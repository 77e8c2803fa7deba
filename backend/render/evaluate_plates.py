"""Plates at full size (the source video's resolution, 512² for the default subject) on held-out
frames: sharpness and landmark fidelity.

Sharpness: PSNR / SSIM / mouth PSNR of the plate composited over the subject's clean
full-size background vs the real frame, for ``ours`` (the renderer's plate at full size: NeRF
at its working resolution + the subject's super-resolution network), ``bicubic`` (the NeRF's
working-resolution render upscaled bicubic) and ``retrieval`` (the real training frame with the
nearest canonical landmarks).

Landmark fidelity: every composited plate (and the real held-out frame) is tracked with
FaceMesh (still-image mode, the iBUG map of backend.data) and compared with the *driving*
landmarks — the held-out frame's canonical landmarks posed by its head pose and projected
through the plate's camera. The real frames give the tracker's own noise floor (tracking +
the canonical fit). Distances in pixels of the full-size plate, all the points and the mouth
(48-67) separately, plus the mouth distance over the inter-ocular distance.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from backend.render.train import psnr
from bridge import landmarks as ibug

MOUTH = ibug.as_slice(ibug.MOUTH)
METHODS = ("ours", "bicubic", "retrieval")
LABELS = {"real": "real held-out frame (tracker noise floor)", "ours": "ours: NeRF + super-resolution",
          "bicubic": "NeRF at working size, bicubic upscale", "retrieval": "nearest training frame by landmarks"}


def read_frames(video: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """RGB frames of ``video`` at ``indices`` (one decoding pass)."""
    from backend.render.tracking import iter_video_frames
    wanted, out = set(int(i) for i in indices), {}
    for i, rgb in enumerate(iter_video_frames(video, max(wanted) + 1)):
        if i in wanted:
            out[i] = rgb
    missing = wanted - set(out)
    if missing:
        raise RuntimeError(f"{video}: frames {sorted(missing)[:5]} could not be decoded")
    return out


def evaluation_frames(info: dict, count: int) -> np.ndarray:
    """The ``count`` held-out frames the plate evaluation uses, evenly spread over the held-out split."""
    held = np.arange(*info["split"]["heldout"])
    return held[np.linspace(0, len(held) - 1, min(count, len(held))).round().astype(int)]


def full_size_background(subject_dir: Path, info: dict, size: tuple[int, int]) -> np.ndarray:
    """The subject's clean plate at ``size`` (its full-size background when shipped, else upscaled)."""
    import cv2
    name = info.get("background_full")
    path = subject_dir / (name or info["background"])
    bg = cv2.imread(str(path))[..., ::-1]
    if bg.shape[1::-1] != tuple(size):
        bg = cv2.resize(bg, size, interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(bg)


def driving_landmarks_px(track: dict, index: int, camera) -> np.ndarray:
    """Canonical landmarks of frame ``index`` posed (rotation, translation, scale) and projected."""
    flip = np.diag([1.0, -1.0, -1.0])
    r, t, s = track["rotation"][index], track["translation"][index], float(track["scale"][index])
    world = s * track["landmarks"][index].astype(np.float64) @ (r @ flip).T + t
    return camera.project(world)[0]


class PlateTracker:
    """FaceMesh in still-image mode -> iBUG pixels (None when no face is found)."""

    def __init__(self):
        from mediapipe.python.solutions import face_mesh
        self.mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                       min_detection_confidence=0.5)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        import warnings

        from backend.data.landmark_map import MEDIAPIPE_TO_IBUG68
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result = self.mesh.process(np.ascontiguousarray(rgb))
        if not result.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        pts = np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark], np.float64)
        return pts[MEDIAPIPE_TO_IBUG68]

    def close(self):
        self.mesh.close()


def landmark_distances(tracked: np.ndarray | None, driving: np.ndarray) -> dict[str, float]:
    if tracked is None:
        return {"all_px": np.nan, "mouth_px": np.nan, "mouth_iod": np.nan}
    d = np.linalg.norm(tracked - driving, axis=-1)
    iod = np.linalg.norm(driving[ibug.as_slice(ibug.EYE_R)].mean(0) - driving[ibug.as_slice(ibug.EYE_L)].mean(0))
    return {"all_px": float(d.mean()), "mouth_px": float(d[MOUTH].mean()), "mouth_iod": float(d[MOUTH].mean() / iod)}


def _mouth_box(points: np.ndarray, size: tuple[int, int], grow: float = 1.5) -> tuple[int, int, int, int]:
    mouth = points[MOUTH]
    centre, half = 0.5 * (mouth.min(0) + mouth.max(0)), 0.5 * (mouth.max(0) - mouth.min(0)) * grow + 1
    x0, y0 = np.floor(centre - half).astype(int)
    x1, y1 = np.ceil(centre + half).astype(int)
    return max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1)


def _composite(premultiplied: torch.Tensor, background: np.ndarray) -> np.ndarray:
    rgba = premultiplied.cpu().numpy().astype(np.float64)
    return (rgba[..., :3] + (1 - rgba[..., 3:]) * background).clip(0, 1)


def evaluate_plates(subject_dir: str | Path, out_dir: str | Path | None = None, frames: int = 24,
                    device: torch.device | str = "cpu", threads: int = 2, progress: bool = True) -> dict:
    """Held-out plates at the source resolution; returns the metrics (also written to ``out_dir``)."""
    from skimage.metrics import structural_similarity
    from tqdm import tqdm

    from backend.render.inference import SubjectRenderer
    from backend.render.sr_data import resolve_source_video
    from backend.render.super_resolution import bicubic_plate

    device = torch.device(device)
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    subject_dir = Path(subject_dir)
    renderer = SubjectRenderer(subject_dir, device)
    info = renderer.info
    video = resolve_source_video(subject_dir, info)
    size = tuple(int(v) for v in info["source_size"])
    if max(size) > max(renderer.max_resolution):
        size = renderer.fit_to_limit(size)
    track_file = np.load(subject_dir / info["track"])
    track = {k: track_file[k] for k in track_file.files}
    held = evaluation_frames(info, frames)
    train = np.arange(*info["split"]["train"])
    lm = track["landmarks"].reshape(len(track["landmarks"]), -1)
    nearest = train[np.argmin(((lm[held][:, None] - lm[train][None]) ** 2).sum(-1), axis=1)]
    real = read_frames(video, list(held) + list(nearest))
    background = full_size_background(subject_dir, info, size) / 255.0
    camera = renderer.camera_for(None, size)
    working = renderer.camera_for(None, renderer.training_camera_size)
    prepared = renderer.conditions(track["landmarks"][held], track["rotation"][held], track["translation"][held],
                                   track["scale"][held])
    tracker = PlateTracker()
    rows: dict[str, list[dict]] = {m: [] for m in ("real",) + METHODS}
    sheet_frames: list[dict[str, np.ndarray]] = []
    seconds = []
    try:
        for k, (i, j) in enumerate(tqdm(list(zip(held, nearest)), desc="held-out plates at full size",
                                        unit="frame", disable=not progress)):
            gt = real[int(i)].astype(np.float64) / 255
            start = time.perf_counter()
            plate = renderer.render(camera, prepared.conditions, k)
            seconds.append(time.perf_counter() - start)
            alpha = plate[..., 3:].astype(np.float64) / 255
            images = {"ours": (plate[..., :3] / 255.0 * alpha + (1 - alpha) * background).clip(0, 1)}
            low = renderer.render_premultiplied(working, prepared.conditions, k)
            up = bicubic_plate(low.permute(2, 0, 1)[None])[0].permute(1, 2, 0)
            images["bicubic"] = _composite(up[:size[1], :size[0]], background)
            images["retrieval"] = real[int(j)].astype(np.float64) / 255
            driving = driving_landmarks_px(track, int(i), camera)
            box = _mouth_box(driving, size)
            rows["real"].append(landmark_distances(tracker((gt * 255).round().astype(np.uint8)), driving))
            for name, img in images.items():
                x0, y0, x1, y1 = box
                rows[name].append({"psnr": psnr(img, gt),
                                   "ssim": float(structural_similarity(img, gt, channel_axis=-1, data_range=1.0)),
                                   "mouth_psnr": psnr(img[y0:y1, x0:x1], gt[y0:y1, x0:x1]),
                                   **landmark_distances(tracker((img * 255).round().astype(np.uint8)), driving)})
            sheet_frames.append({"real": gt, **images})
    finally:
        tracker.close()
    results = {}
    for name, values in rows.items():
        keys = values[0].keys()
        results[name] = {key: float(np.nanmean([v[key] for v in values])) for key in keys}
        results[name]["faces_found"] = int(sum(np.isfinite(v["all_px"]) for v in values))
    floor = results["real"]["mouth_px"]
    metrics = {"subject": info["name"], "size": list(size), "heldout_frames_evaluated": len(held),
               "methods": results, "mouth_distance_over_noise_floor": {
                   m: results[m]["mouth_px"] / floor for m in METHODS},
               "super_resolution": renderer.super_resolution is not None,
               "plate_seconds_per_frame": float(np.median(seconds)), "device": str(device)}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "plates.json").write_text(json.dumps(metrics, indent=2))
        (out / "plates.md").write_text(markdown_table(metrics))
        contact_sheet(sheet_frames, out / "plates_contact_sheet.png")
    return metrics


def markdown_table(metrics: dict) -> str:
    w, h = metrics["size"]
    r = metrics["methods"]
    lines = [f"# Plates at {w}x{h}: subject `{metrics['subject']}`", "",
             f"{metrics['heldout_frames_evaluated']} held-out frames driven by their ground-truth tracks, "
             f"composited over the subject's clean background; landmarks by FaceMesh (still-image mode) vs the "
             f"driving landmarks projected through the plate's camera.", "",
             "| method | PSNR (dB) | SSIM | mouth PSNR (dB) | landmarks (px) | mouth landmarks (px) | "
             "mouth / inter-ocular | mouth vs noise floor |", "|---|---|---|---|---|---|---|---|"]
    for name in ("real",) + METHODS:
        m = r[name]
        ratio = metrics["mouth_distance_over_noise_floor"].get(name, 1.0)
        quality = (f"{m['psnr']:.2f} | {m['ssim']:.3f} | {m['mouth_psnr']:.2f}" if "psnr" in m else "— | — | —")
        lines.append(f"| {LABELS[name]} | {quality} | {m['all_px']:.2f} | {m['mouth_px']:.2f} | "
                     f"{m['mouth_iod']:.3f} | {ratio:.2f}x |")
    lines += ["", f"Plate rendering: {metrics['plate_seconds_per_frame']:.2f} s per {w}x{h} plate on "
              f"{metrics['device']} (super-resolution: {'yes' if metrics['super_resolution'] else 'no'}).", ""]
    return "\n".join(lines)


def contact_sheet(frames: list[dict[str, np.ndarray]], path: Path, rows: int = 3) -> None:
    """Full-size tiles, one row per frame: real | ours | bicubic | retrieval, labelled."""
    import cv2
    idx = np.linspace(0, len(frames) - 1, min(rows, len(frames))).round().astype(int)
    columns = ("real",) + METHODS
    tiles = []
    for i in idx:
        row = []
        for name in columns:
            tile = (frames[i][name].clip(0, 1) * 255).round().astype(np.uint8).copy()
            cv2.putText(tile, name, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 3, cv2.LINE_AA)
            cv2.putText(tile, name, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
            row.append(tile)
        tiles.append(np.concatenate(row, axis=1))
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, axis=0), cv2.COLOR_RGB2BGR))
