"""Evaluate a subject NeRF on its held-out frames: ``emogene eval render [--subject DIR] [--out DIR]``.

PSNR, SSIM and mouth PSNR of ours vs the nearest-landmark training frame (retrieval) and
the mean training frame; writes metrics.json, metrics.md and contact_sheet.png.
"""
from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("--subject", default=None,
                        help="trained subject folder with prepared/ frames (default: cache/subjects/default, "
                             "as written by scripts/train_default_subject.py)")
    parser.add_argument("--out", default="eval_report/render", help="report folder (default eval_report/render)")
    parser.add_argument("--frames", type=int, default=24, help="held-out frames to evaluate (default 24)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")


def run(args) -> int:
    from pathlib import Path

    from backend.device import resolve_device
    from backend.render.evaluate import evaluate_render

    subject = Path(args.subject or "cache/subjects/default")
    try:
        metrics = evaluate_render(subject, args.out, frames=args.frames, device=resolve_device(args.device))
    except FileNotFoundError as exc:
        print(f"eval render: {exc}")
        return 2
    print((Path(args.out) / "metrics.md").read_text())
    return 0
