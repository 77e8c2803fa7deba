"""Prepare one person's footage for NeRF training: ``emogene prepare-subject VIDEO|FOLDER [VIDEO ...]``.

Takes one talking video, or a capture session: a folder (or a list) of clips of one person
filmed by one camera, e.g. one clip per emotion. Writes a subject folder (subject.json,
track.npz, background.png, prepared/ frames and masks); the last 10 % of each clip is held
out. Re-running with the same clips and settings reuses the cached result.
"""
from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("video", nargs="+",
                        help="talking video of one person, static camera (e.g. ../shared/data/talking/cnn2_25fps.mp4), "
                             "or a folder / several videos of one capture session (same person, camera and size)")
    parser.add_argument("--audio", help="separate audio file of a single video (optional, recorded in subject.json)")
    parser.add_argument("--out", help="subject folder to write (default: ~/.local/share/emogene/subjects/<video or folder name>)")
    parser.add_argument("--name", help="subject name (default: the folder name)")
    parser.add_argument("--resolution", type=int, default=128, help="working resolution: longer image side in pixels (default 128)")
    parser.add_argument("--max-seconds", type=float, default=None, help="use only the first N seconds of each clip")
    parser.add_argument("--heldout", type=float, default=0.1, help="share of each clip, at its end, held out (default 0.1)")


def run(args) -> int:
    from pathlib import Path

    from backend.render.prepare import PrepareConfig, prepare_subject
    from backend.subjects import USER_SUBJECTS

    if args.resolution < 16:
        print(f"prepare-subject: --resolution {args.resolution} is too small (minimum 16)")
        return 2
    if not 0 < args.heldout < 1:
        print(f"prepare-subject: --heldout {args.heldout} must be between 0 and 1")
        return 2
    first = Path(args.video[0])
    out = Path(args.out) if args.out else USER_SUBJECTS / (first.name if first.is_dir() else first.stem)
    source = args.video[0] if len(args.video) == 1 else args.video
    config = PrepareConfig(resolution=args.resolution, max_seconds=args.max_seconds, heldout_fraction=args.heldout)
    try:
        path = prepare_subject(source, out, audio=args.audio, config=config, name=args.name)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"prepare-subject: {exc}")
        return 2
    print(_cuts_summary(path / "track.npz"))
    print(f"subject prepared in {path}; next: emogene train subject --subject {path}")
    return 0


def _cuts_summary(track_path) -> str:
    """One line on the edit cuts found in the footage (head motion is never replayed across one)."""
    import numpy as np

    from backend.render.prepare import TRACK_FPS

    with np.load(track_path) as z:
        cuts = z["shot_starts"].tolist() if "shot_starts" in z else []
    if not cuts:
        return "edit cuts: none found (each clip is one continuous shot)"
    seconds = ", ".join(f"{c / TRACK_FPS:.2f} s" for c in cuts[:8]) + (" ..." if len(cuts) > 8 else "")
    return (f"edit cuts: {len(cuts)} found in the footage (track at {seconds}); generated head motion never "
            "replays across one")
