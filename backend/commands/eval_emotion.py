"""Is the keyed emotion visible on the plates? ``emogene eval emotion [--out DIR] [--subjects a,b] [--seeds 0,1,2,3,4,5]
[--frames N] [--size PX] [--audio WAV] [--judge-seeds 0] [--judge-pose-copies 4]``.

Trains the plate-level judge on real MEAD video of the judge pool (backend/data/mead_pools.py),
measures it on real video of the generator's speakers (the bar), then renders the same held-out
speech under each emotion at intensity 1 and 0.5 (and a neutral take at intensity 0) for every
subject, once per motion draw (``--seeds``: one draw is noise; the draws' readings are pooled), tracks
the plates with FaceMesh like real video and lets the judge name the emotion. Tuning a candidate subject:
``EMOGENE_SUBJECTS_DIR=cand emogene eval emotion --audio KristiNoem.wav --subjects NAME --out DIR`` (the
render cache keys on the contents of the subject's weights, so a candidate never reuses shipped plates).
Writes DIR/emotion/: metrics.json, emotion.md, confusion and accuracy plots, contact sheets.
"""
from __future__ import annotations

import sys
from pathlib import Path

from backend.device import add_device_argument


#: PlateEvalConfig's defaults, restated for --help only (this module stays cheap to import; a test checks they agree)
HELP_DEFAULTS = {"seeds": "0,1,2,3,4,5", "frames": 27, "frames_other": 9, "judge_neutral_bias": 2.0, "judge_seeds": "0",
                 "judge_pose_copies": 4}


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, default=Path("eval_report"),
                        help="report folder; results go to OUT/emotion (default eval_report)")
    parser.add_argument("--subjects", default=None,
                        help="comma-separated subjects (default: every subject this backend has)")
    parser.add_argument("--seeds", default=None,
                        help="motion draws (job seeds of the motion stage's pose/motion sampling), comma-separated; "
                             "every take is rendered for every draw and the readings pooled "
                             f"(default {HELP_DEFAULTS['seeds']})")
    parser.add_argument("--frames", type=int, default=None,
                        help="plates per take and draw at intensity 1 and for the intensity-0 reference "
                             f"(default {HELP_DEFAULTS['frames']}: 3 bursts of 9)")
    parser.add_argument("--frames-other", type=int, default=None,
                        help="plates per take and draw at intensity 0.5 (a subset of the same bursts; "
                             f"default {HELP_DEFAULTS['frames_other']})")
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
    parser.add_argument("--judge-neutral-bias", type=float, default=None,
                        help="the judge's neutral prior (added to its neutral logit; default "
                             f"{HELP_DEFAULTS['judge_neutral_bias']:g}, chosen on real talking heads; "
                             "0 = session 8's judge)")
    parser.add_argument("--judge-pose-copies", type=int, default=None,
                        help="pose-shifted training copies of each MEAD clip the judge learns from (default "
                             f"{HELP_DEFAULTS['judge_pose_copies']}, chosen on real talking heads; 0 = sessions 9-10's "
                             "judge, and with --judge-neutral-bias 0 session 8's)")
    parser.add_argument("--judge-seeds", default=None,
                        help="the judge's training seed(s), comma-separated: one seed = one judge (default "
                             f"{HELP_DEFAULTS['judge_seeds']}), several = a seed ensemble (their probabilities "
                             "averaged); cached plates are only re-judged")
    parser.add_argument("--no-cache", action="store_true", help="render every take again (ignore cache/eval_emotion)")
    add_device_argument(parser)


def config_from_args(args):
    import dataclasses
    import math

    from backend.evaluation.emotion_report import DEFAULT_JUDGE, EmotionEvalConfig
    from backend.evaluation.plate_emotion import PlateEvalConfig, parse_seeds

    defaults = PlateEvalConfig()
    try:
        seeds = defaults.seeds if args.seeds is None else parse_seeds(args.seeds)
    except ValueError as exc:
        raise ValueError(f"--seeds {args.seeds!r}: {exc}") from None
    frames = defaults.frames if args.frames is None else args.frames
    frames_other = defaults.frames_other if args.frames_other is None else args.frames_other
    if frames < 1 or args.burst < 1 or frames_other < 1:
        raise ValueError("--frames, --frames-other and --burst must be >= 1")
    if args.seconds <= 1:
        raise ValueError("--seconds must be > 1")
    if args.size is not None and not 32 <= args.size <= 2048:
        raise ValueError(f"--size must be in 32..2048, got {args.size}")
    from backend.device import resolve_device
    # resolved here, so that `auto` and the device it picks render on, and cache as, the same device
    device = str(resolve_device(args.device))
    plates = PlateEvalConfig(frames=frames, frames_other=frames_other, burst=args.burst, seconds=args.seconds,
                             resolution=args.size, seeds=seeds)
    if args.audio is not None:
        if not Path(args.audio).is_file():
            raise FileNotFoundError(f"--audio {args.audio}: no such file")
        plates.audio = Path(args.audio)
    bias = getattr(args, "judge_neutral_bias", None)
    if bias is not None and not (math.isfinite(bias) and -10 <= bias <= 10):
        raise ValueError(f"--judge-neutral-bias must be a number in -10..10, got {bias}")
    judge = DEFAULT_JUDGE if bias is None else dataclasses.replace(DEFAULT_JUDGE, neutral_bias=float(bias))
    copies = getattr(args, "judge_pose_copies", None)
    if copies is not None:
        if not 0 <= copies <= 16:
            raise ValueError(f"--judge-pose-copies must be an integer in 0..16, got {copies}")
        judge = dataclasses.replace(judge, augment_pose=int(copies),
                                    augment_pose_scale=judge.augment_pose_scale if copies else 1.0)
    judge_seeds = getattr(args, "judge_seeds", None)
    if judge_seeds is not None:
        try:
            seeds = parse_seeds(str(judge_seeds), what="judge training seeds")
        except ValueError as exc:
            raise ValueError(f"--judge-seeds {judge_seeds!r}: {exc}") from None
        judge = dataclasses.replace(judge, seed=seeds[0], ensemble_seeds=()) if len(seeds) == 1 else \
            dataclasses.replace(judge, ensemble_seeds=seeds)
    subjects = tuple(s.strip() for s in args.subjects.split(",") if s.strip()) if args.subjects else None
    return EmotionEvalConfig(out=Path(args.out) / "emotion", tracks=Path(args.tracks), subjects=subjects,
                             plates=plates, judge=judge, cache=None if args.no_cache else Path("cache/eval_emotion"),
                             device=device)


def run(args) -> int:
    import torch

    from backend.evaluation.emotion_report import evaluate_emotion

    torch.set_num_threads(1)
    try:
        config = config_from_args(args)
        evaluate_emotion(config)
    except (ValueError, LookupError, FileNotFoundError, RuntimeError) as exc:
        print(f"emogene eval emotion: {exc}", file=sys.stderr)
        return 2
    print((config.out / "emotion.md").read_text())
    return 0
