"""Is the keyed emotion visible on the plates? ``emogene eval emotion [--out DIR] [--subjects a,b] [--frames N] [--size PX]``.

Trains the plate-level judge on real MEAD video of the judge pool (backend/data/mead_pools.py),
measures it on real video of the generator's speakers (the bar), then renders the same held-out
speech under each emotion at intensity 1 and 0.5 (and a neutral take at intensity 0) for every
subject, tracks the plates with FaceMesh like real video and lets the judge name the emotion.
Writes DIR/emotion/: metrics.json, emotion.md, confusion and accuracy plots, contact sheets.
"""
from __future__ import annotations

import sys
from pathlib import Path

from backend.device import add_device_argument


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, default=Path("eval_report"),
                        help="report folder; results go to OUT/emotion (default eval_report)")
    parser.add_argument("--subjects", default=None,
                        help="comma-separated subjects (default: every subject this backend has)")
    parser.add_argument("--frames", type=int, default=54,
                        help="plates per take at intensity 1 and for the intensity-0 reference (default 54: 6 bursts)")
    parser.add_argument("--frames-other", type=int, default=18,
                        help="plates per take at intensity 0.5 (a subset of the same bursts; default 18)")
    parser.add_argument("--burst", type=int, default=9, help="consecutive frames per burst (default 9)")
    parser.add_argument("--seconds", type=float, default=12.0,
                        help="seconds of speech the bursts spread over (default 12)")
    parser.add_argument("--audio", type=Path, default=None,
                        help="held-out speech (default ../shared/data/talking/styletalk/andrew_clip_1.wav)")
    parser.add_argument("--size", "--resolution", dest="size", type=int, default=None,
                        help="square plate size for every subject (default: each subject's native product size: "
                             "its limit when it has a super-resolution network, else its working size)")
    parser.add_argument("--tracks", type=Path, default=Path("cache/tracks"),
                        help="MEAD track files for the judge (default cache/tracks, from `emogene prepare`)")
    parser.add_argument("--no-cache", action="store_true", help="render every take again (ignore cache/eval_emotion)")
    add_device_argument(parser)


def config_from_args(args):
    from backend.evaluation.emotion_report import EmotionEvalConfig
    from backend.evaluation.plate_emotion import PlateEvalConfig

    if args.frames < 1 or args.burst < 1 or args.frames_other < 1:
        raise ValueError("--frames, --frames-other and --burst must be >= 1")
    if args.seconds <= 1:
        raise ValueError("--seconds must be > 1")
    if args.size is not None and not 32 <= args.size <= 2048:
        raise ValueError(f"--size must be in 32..2048, got {args.size}")
    plates = PlateEvalConfig(frames=args.frames, frames_other=args.frames_other, burst=args.burst, seconds=args.seconds,
                             resolution=args.size, device=args.device)
    if args.audio is not None:
        if not Path(args.audio).is_file():
            raise FileNotFoundError(f"--audio {args.audio}: no such file")
        plates.audio = Path(args.audio)
    subjects = tuple(s.strip() for s in args.subjects.split(",") if s.strip()) if args.subjects else None
    return EmotionEvalConfig(out=Path(args.out) / "emotion", tracks=Path(args.tracks), subjects=subjects,
                             plates=plates, cache=None if args.no_cache else Path("cache/eval_emotion"),
                             device=args.device)


def run(args) -> int:
    import torch

    from backend.device import resolve_device
    from backend.evaluation.emotion_report import evaluate_emotion

    torch.set_num_threads(1)
    try:
        config = config_from_args(args)
        config.device = str(resolve_device(args.device))
        evaluate_emotion(config)
    except (ValueError, LookupError, FileNotFoundError, RuntimeError) as exc:
        print(f"emogene eval emotion: {exc}", file=sys.stderr)
        return 2
    print((config.out / "emotion.md").read_text())
    return 0
