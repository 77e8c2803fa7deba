"""Evaluate the motion models on held-out tracks against trivial baselines.

Writes metrics.json, motion_report.md and PNG plots into --out. Library entry
point: backend.motion.evaluate.evaluate_motion.
"""
from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("--tracks", default="cache/tracks", help="prepared track folder (default cache/tracks)")
    parser.add_argument("--models", default=None, help="models folder (default: the shipped backend/assets/models)")
    parser.add_argument("--out", default="eval_report/motion", help="report folder (default eval_report/motion)")
    parser.add_argument("--ablation-steps", type=int, default=1500,
                        help="steps for the LDM trained without the lip term (0 skips the comparison)")
    parser.add_argument("--previous-models", default="cache/previous_models",
                        help="folder with the audio-to-motion model shipped before, compared on held-out people "
                             "(default cache/previous_models; skipped when absent)")
    parser.add_argument("--threads", type=int, default=1)


def run(args):
    import torch
    from backend.motion.eval_report import write_report
    from backend.motion.evaluate import EvalConfig, evaluate_motion
    torch.set_num_threads(max(1, args.threads))
    metrics = evaluate_motion(EvalConfig(tracks=args.tracks, models=args.models, ablation_steps=args.ablation_steps,
                                         previous_models=args.previous_models or None))
    paths = write_report(metrics, args.out)
    print(paths["report"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
