"""Run every evaluation (motion, render and plate-level emotion) and write eval_report/README.md with tables, plots and commands."""
from __future__ import annotations

import sys
from pathlib import Path

from backend.device import add_device_argument


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, default=Path("eval_report"), help="report folder (default eval_report)")
    parser.add_argument("--tracks", type=Path, default=Path("cache/tracks"),
                        help="prepared tracks for the motion metrics (default cache/tracks; make them with "
                             "`emogene prepare ../shared/data --out cache/tracks`)")
    parser.add_argument("--subject", default="default", help="subject whose NeRF is evaluated")
    parser.add_argument("--render-frames", type=int, default=None,
                        help="held-out frames rendered for the render metrics (default: the evaluation's own)")
    parser.add_argument("--skip-motion", action="store_true")
    parser.add_argument("--skip-render", action="store_true")
    parser.add_argument("--skip-emotion", action="store_true", help="skip the plate-level emotion evaluation")
    parser.add_argument("--emotion-frames", type=int, default=None,
                        help="plates rendered per take and motion draw at intensity 1 by the emotion evaluation "
                             "(default: its own, 27 per draw over 6 draws)")
    add_device_argument(parser)


def run(args) -> int:
    from backend.device import resolve_device
    from backend.evaluation.report import ReportConfig, write_report

    try:
        counts = {name: value for name, value in (("render_frames", args.render_frames),
                                                  ("emotion_frames", args.emotion_frames)) if value is not None}
        summary = write_report(ReportConfig(out=args.out, tracks=args.tracks, subject=args.subject,
                                            skip_motion=args.skip_motion, skip_render=args.skip_render,
                                            skip_emotion=args.skip_emotion, device=str(resolve_device(args.device)),
                                            **counts))
    except (LookupError, RuntimeError, OSError) as exc:
        print(f"emogene eval all: {exc}", file=sys.stderr)
        return 1
    print(f"eval: wrote {args.out}/README.md and metrics.json in {summary['total_seconds']} s")
    return 0
