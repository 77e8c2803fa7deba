"""Extract training tracks from talking videos: ``emogene prepare PATH... --out DIR``.

PATHs are video files or folders (searched recursively): MEAD (flat names or its own
tree), VoxCeleb2/HDTF-style talking videos, or a subject video with a same-named .wav
beside it. Each clip becomes ``DIR/<clip>.npz`` + ``.json`` (25 fps: canonical iBUG
landmarks, head pose, log-mel, voice activity, eye openness; see backend/data/tracks.py).
Re-running skips clips already prepared (``--force`` redoes them); an interrupted run
resumes where it stopped. Bad clips are reported and the batch goes on.
Exit status: 0 when no clip failed, 1 otherwise.
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser):
    parser.add_argument("paths", nargs="+", metavar="PATH", help="video files or folders")
    parser.add_argument("--out", required=True, type=Path, help="folder for the track files (e.g. cache/tracks)")
    parser.add_argument("--preview", action="store_true",
                        help="also write <clip>.preview.png: frames with landmarks and pose axes")
    parser.add_argument("--force", action="store_true", help="redo clips that are already prepared")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="use only the first N seconds of each clip (quick runs, CI)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="share of speakers held out for validation (default 0.2)")
    parser.add_argument("--vad", choices=("silero", "energy"), default="silero",
                        help="voice activity detector (default silero, bundled model)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt  # same clean stop as Ctrl-C: temporary files removed, done clips kept


def run(args) -> int:
    import signal

    import torch

    from backend.data.prepare import PrepareConfig, prepare_paths

    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    if args.max_seconds is not None and args.max_seconds <= 0:
        print("emogene prepare: --max-seconds must be > 0")
        return 2
    config = PrepareConfig(out_dir=args.out, preview=args.preview, force=args.force,
                           max_seconds=args.max_seconds, val_fraction=args.val_fraction, vad_backend=args.vad)
    summary = prepare_paths(args.paths, config, show_progress=not args.quiet)
    for line in summary.lines():
        print(line)
    return 1 if summary.of("failed") else 0
