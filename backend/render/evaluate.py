"""Held-out evaluation of a subject NeRF driven by the held-out frames' ground-truth tracks.

Metrics per method, averaged over the evaluated held-out frames: PSNR and SSIM
(scikit-image) of the full frame, and PSNR inside the mouth box. Methods: ``nerf`` (ours,
composited over the subject's background plate), ``retrieval`` (the training frame with
the nearest canonical landmarks) and ``mean_frame`` (the mean training frame).
Writes ``metrics.json``, ``metrics.md`` and a contact sheet (GT | ours | retrieval).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from backend.render.train import psnr, render_dataset_frames

PAPER = {"psnr": 19.7, "ssim": 0.73, "resolution": "512x512 (MEAD, full resolution)"}


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity
    return float(structural_similarity(a, b, channel_axis=-1, data_range=1.0))


def _mouth_psnr(pred: np.ndarray, target: np.ndarray, box: np.ndarray) -> float:
    x0, y0, x1, y1 = (int(v) for v in box)
    return psnr(pred[y0:y1, x0:x1], target[y0:y1, x0:x1])


def evaluate_render(subject_dir: str | Path, out_dir: str | Path | None = None, frames: int = 24,
                    device: torch.device | str = "cpu", threads: int = 2, progress: bool = True) -> dict:
    """Evaluate a trained subject; returns the metrics dict (also written to ``out_dir``)."""
    from backend.checkpoints import load_checkpoint
    from backend.render.inference import _model_config
    from backend.render.model import MODEL_KIND, MODEL_VERSION, SubjectNeRF
    from backend.render.subject_dataset import SubjectDataset
    from backend.render.train import CHECKPOINT_STEM

    device = torch.device(device)
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    data = SubjectDataset(subject_dir)
    from backend.checkpoints import read_checkpoint_meta
    stem = Path(subject_dir) / CHECKPOINT_STEM
    meta = read_checkpoint_meta(stem, kind=MODEL_KIND, version=MODEL_VERSION)
    model = SubjectNeRF(_model_config(meta["config"]))
    load_checkpoint(stem, model, kind=MODEL_KIND, version=MODEL_VERSION)
    model.to(device).eval()

    held = data.heldout_indices
    held = held[np.linspace(0, len(held) - 1, min(frames, len(held))).round().astype(int)]
    train = data.train_indices
    gt = data.frames[held].astype(np.float64) / 255
    start = time.time()
    ours = render_dataset_frames(model, data, held, device, progress=progress).astype(np.float64)
    render_seconds = (time.time() - start) / len(held)
    lm = data.track["landmarks"]
    train_lm = lm[train].reshape(len(train), -1)
    nearest = train[np.argmin(((lm[held].reshape(len(held), 1, -1) - train_lm[None]) ** 2).sum(-1), axis=1)]
    retrieval = data.frames[nearest].astype(np.float64) / 255
    mean = data.frames[train].astype(np.float64).mean(0) / 255
    methods = {"nerf": ours, "retrieval": retrieval, "mean_frame": np.broadcast_to(mean, gt.shape)}
    results = {}
    for name, pred in methods.items():
        results[name] = {
            "psnr": float(np.mean([psnr(p, g) for p, g in zip(pred, gt)])),
            "ssim": float(np.mean([_ssim(p, g) for p, g in zip(pred, gt)])),
            "mouth_psnr": float(np.mean([_mouth_psnr(p, g, data.mouth_boxes[i]) for p, g, i in zip(pred, gt, held)])),
        }
    w, h = data.info["image_size"]
    metrics = {"subject": data.info["name"], "resolution": [w, h], "heldout_frames_evaluated": len(held),
               "heldout_frames_total": int(len(data.heldout_indices)), "methods": results,
               "render_seconds_per_frame": render_seconds, "device": str(device),
               "checkpoint_step": meta.get("step"), "train_seconds": meta.get("train_seconds"), "paper": PAPER}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (out / "metrics.md").write_text(markdown_table(metrics))
        contact_sheet(gt, ours, retrieval, out / "contact_sheet.png")
    return metrics


def markdown_table(metrics: dict) -> str:
    w, h = metrics["resolution"]
    lines = [f"# Render evaluation: subject `{metrics['subject']}`", "",
             f"{metrics['heldout_frames_evaluated']} of {metrics['heldout_frames_total']} held-out frames "
             f"(the last 10 % of the video), driven by their ground-truth tracks, at {w}x{h}.", "",
             "| method | PSNR (dB) | SSIM | mouth PSNR (dB) |", "|---|---|---|---|"]
    labels = {"nerf": "NeRF (ours)", "retrieval": "nearest training frame by landmarks",
              "mean_frame": "mean training frame"}
    for name, label in labels.items():
        r = metrics["methods"][name]
        lines.append(f"| {label} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['mouth_psnr']:.2f} |")
    p = metrics["paper"]
    lines += ["", f"Paper (EmoGene): PSNR {p['psnr']} / SSIM {p['ssim']} at {p['resolution']}; ours is at "
              f"{w}x{h}, a different subject and far less training, so the figures are not directly comparable.",
              f"Rendering: {metrics['render_seconds_per_frame']:.2f} s per frame on {metrics['device']}.", ""]
    return "\n".join(lines)


def contact_sheet(gt: np.ndarray, ours: np.ndarray, retrieval: np.ndarray, path: Path, rows: int = 6) -> None:
    """Rows of GT | ours | retrieval for evenly spaced evaluated frames."""
    import cv2
    idx = np.linspace(0, len(gt) - 1, min(rows, len(gt))).round().astype(int)
    sheet = np.concatenate([np.concatenate([gt[i], ours[i], retrieval[i]], axis=1) for i in idx], axis=0)
    img = (sheet.clip(0, 1) * 255).round().astype(np.uint8)
    h = gt.shape[1]
    img = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) if h < 200 else img
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
