"""Prepare + train the shipped default subject from ../shared/data/talking/cnn2_25fps.mp4 and
write backend/assets/subjects/default/ (subject.json, track.npz, background.png, NeRF weights,
training curves, MODEL_CARD.md). Large intermediates stay in cache/subjects/default.

    .venv/bin/python scripts/train_default_subject.py [--minutes 28] [--resolution 128]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VIDEO = REPO.parent / "shared" / "data" / "talking" / "cnn2_25fps.mp4"
ASSET_FILES = ["subject.json", "track.npz", "background.png", "nerf.safetensors", "nerf.json",
               "training_curves.png"]


def model_card(info: dict, summary: dict, metrics: dict, prepare_seconds: float) -> str:
    m = metrics["methods"]
    w, h = info["image_size"]
    cfg = summary["config"]
    return f"""# Default subject `default` (head + torso NeRF)

**Consent.** These plates show a real person (a news presenter from a public clip). Rendering
a real person's likeness, with speech and emotions they never expressed, needs that person's
consent: obtaining it is the user's duty. Do not use this subject to deceive.

## Data
- Video: `../shared/data/talking/cnn2_25fps.mp4` (sstzal/DFRF `dataset/vids/cnn2_25fps.mp4`, MIT),
  71 s, 512x512, 25 fps, static camera, head and shoulders; {info['frames']} frames.
- Split by time: training frames {info['split']['train'][0]}..{info['split']['train'][1] - 1},
  held out {info['split']['heldout'][0]}..{info['split']['heldout'][1] - 1} (the last 10 %).
- Tracks: backend.data face tracking (mediapipe FaceMesh -> 68 iBUG -> canonical + pose), smoothed.
  Person mask: mediapipe selfie segmentation; head mask: person pixels above the jaw line.
  Background: per-pixel median of non-person pixels (holes inpainted).

## Model
- Head NeRF in canonical face space (hash grid {cfg['model']['head_grid']['levels']} levels, 2^{cfg['model']['head_grid']['log2_table_size']} rows),
  conditioned on {cfg['model']['code_dim']} PCA coefficients of the canonical landmarks; torso NeRF in camera
  space conditioned on head pose + the head's rendered colour; occupancy grids ({cfg['model']['occupancy_resolution']}^3,
  seeded by the person masks' visual hull) skip empty space. Pure PyTorch.
- Working resolution {w}x{h} (plates up to {info['max_resolution'][0]}x{info['max_resolution'][1]} by upscaled rendering).
- Training: {summary['steps']} steps of {cfg['rays_per_step']} rays in {summary['train_seconds'] / 60:.1f} min on
  {summary['device']} ({cfg['threads']} thread(s) of a shared 2-core machine); preparation took {prepare_seconds:.0f} s.

## Held-out metrics ({metrics['heldout_frames_evaluated']} frames, ground-truth tracks, {w}x{h})
| method | PSNR (dB) | SSIM | mouth PSNR (dB) |
|---|---|---|---|
| NeRF (ours) | {m['nerf']['psnr']:.2f} | {m['nerf']['ssim']:.3f} | {m['nerf']['mouth_psnr']:.2f} |
| nearest training frame by landmarks | {m['retrieval']['psnr']:.2f} | {m['retrieval']['ssim']:.3f} | {m['retrieval']['mouth_psnr']:.2f} |
| mean training frame | {m['mean_frame']['psnr']:.2f} | {m['mean_frame']['ssim']:.3f} | {m['mean_frame']['mouth_psnr']:.2f} |

The paper reports PSNR 19.7 / SSIM 0.73 on MEAD at 512x512; ours is {w}x{h} on another subject
with {summary['train_seconds'] / 60:.0f} CPU minutes of training, so the numbers are not directly comparable.
Rendering: {metrics['render_seconds_per_frame']:.2f} s per {w}x{h} frame on {metrics['device']}.

Re-create: `.venv/bin/python scripts/train_default_subject.py --minutes {cfg['minutes']:g} --resolution {w}`.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(VIDEO))
    parser.add_argument("--work", default=str(REPO / "cache" / "subjects" / "default"))
    parser.add_argument("--out", default=str(REPO / "backend" / "assets" / "subjects" / "default"))
    parser.add_argument("--minutes", type=float, default=28.0)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--eval-frames", type=int, default=24)
    args = parser.parse_args(argv)

    from backend.render.evaluate import evaluate_render
    from backend.render.prepare import PrepareConfig, prepare_subject
    from backend.render.train import TrainConfig, train_subject

    work, out = Path(args.work), Path(args.out)
    t0 = time.time()
    prepare_subject(args.video, work, config=PrepareConfig(resolution=args.resolution), name="default")
    prepare_seconds = time.time() - t0
    summary = train_subject(work, TrainConfig(steps=args.steps, minutes=args.minutes, threads=args.threads),
                            resume=args.resume)
    metrics = evaluate_render(work, work / "eval", frames=args.eval_frames, threads=args.threads)
    out.mkdir(parents=True, exist_ok=True)
    info = json.loads((work / "subject.json").read_text())
    for name in ASSET_FILES:
        shutil.copy2(work / name, out / name)
    shipped = dict(info, source_video="../shared/data/talking/cnn2_25fps.mp4")
    (out / "subject.json").write_text(json.dumps(shipped, indent=2))
    (out / "MODEL_CARD.md").write_text(model_card(info, summary, metrics, prepare_seconds))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({"heldout": metrics["methods"], "steps": summary["steps"],
                      "train_minutes": summary["train_seconds"] / 60}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
