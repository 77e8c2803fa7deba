"""Evaluate a subject NeRF on its held-out frames: ``emogene eval render [--subject DIR] [--out DIR]``.

PSNR, SSIM and mouth PSNR of ours vs the nearest-landmark training frame (retrieval) and
the mean training frame; writes metrics.json, metrics.md and contact_sheet.png. Then the
full-size plates (backend/render/evaluate_plates.py): sharpness vs bicubic/retrieval and the
landmark fidelity (FaceMesh on the plates vs the driving landmarks); plates.json, plates.md,
plates_contact_sheet.png.
"""
from __future__ import annotations

from backend.device import add_device_argument


def add_arguments(parser):
    parser.add_argument("--subject", default=None,
                        help="trained subject folder with prepared/ frames (default: cache/subjects/default, "
                             "as written by scripts/train_default_subject.py)")
    parser.add_argument("--out", default="eval_report/render", help="report folder (default eval_report/render)")
    parser.add_argument("--frames", type=int, default=24, help="held-out frames to evaluate (default 24)")
    add_device_argument(parser)
    parser.add_argument("--plates-subject", default="backend/assets/subjects/default",
                        help="subject whose full-size plates are evaluated (sharpness + landmark fidelity; needs "
                             "only its source video): default the shipped default subject")
    parser.add_argument("--plate-frames", type=int, default=80,
                        help="held-out frames for the plate evaluation (default 80, with 95 %% bootstrap intervals)")
    parser.add_argument("--skip-plates", action="store_true", help="skip the full-size plate evaluation")


def run(args) -> int:
    from pathlib import Path

    from backend.device import resolve_device
    from backend.render.evaluate import evaluate_render

    subject = Path(args.subject or "cache/subjects/default")
    try:
        evaluate_render(subject, args.out, frames=args.frames, device=resolve_device(args.device))
    except FileNotFoundError as exc:
        print(f"eval render: {exc}")
        return 2
    print((Path(args.out) / "metrics.md").read_text())
    if not args.skip_plates:
        from backend.render.evaluate_plates import evaluate_plates
        try:
            evaluate_plates(args.plates_subject, args.out, frames=args.plate_frames,
                            device=resolve_device(args.device))
        except FileNotFoundError as exc:
            print(f"eval render: plates: {exc}")
            return 2
        print((Path(args.out) / "plates.md").read_text())
    return 0
