"""End-to-end demo on the embedded default subject.

Starts a backend in this process, sends the bundled speech clip (our own,
synthesised with espeak-ng) keyed neutral -> happy -> sad, and writes to --out:
demo.mp4 (H.264 + AAC; plates over the subject's background), landmarks_side_by_side.mp4,
landmarks.npz / landmarks.csv, plates/*.png and timing.json.
"""
from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    from pathlib import Path

    from backend.device import add_device_argument
    parser.add_argument("--audio", type=Path, default=None, help="speech file (default: the bundled demo clip)")
    parser.add_argument("--emotion", default=None, help="emotion SPEC as for `emogene generate` (default: neutral -> happy -> sad)")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--subject", default="default")
    parser.add_argument("--resolution", default=None, help="plate size WxH (default 512x512)")
    parser.add_argument("--landmarks-only", action="store_true", help="skip the NeRF plates")
    add_device_argument(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-emotion-comparison", action="store_true",
                        help="skip the neutral | happy | sad comparison of one stretch of the speech")


def run(args) -> int:
    from backend.commands.generate import parse_resolution
    from backend.demo import DEMO_EMOTION, DEMO_RESOLUTION, DEMO_SPEECH, DemoConfig, run_demo

    try:
        config = DemoConfig(audio=args.audio or DEMO_SPEECH, emotion=args.emotion or DEMO_EMOTION, out=args.out,
                            fps=args.fps, subject=args.subject, resolution=parse_resolution(args.resolution) or DEMO_RESOLUTION,
                            landmarks_only=args.landmarks_only, device=args.device, seed=args.seed,
                            emotion_comparison=not args.no_emotion_comparison)
        summary = run_demo(config)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"emogene demo: {exc}", file=sys.stderr)
        return 1
    t = summary["timings"]
    print(f"demo: {summary['frames']} frames, {summary['plates']} plates, {summary['audio_seconds']} s of speech "
          f"in {t['total_s']:.1f} s (generate {t['generate_s']:.1f} s, videos {t['compose_videos_s']:.1f} s)")
    print(f"demo: wrote {args.out}/demo.mp4, landmarks_side_by_side.mp4, landmarks.npz/.csv, timing.json")
    return 0
