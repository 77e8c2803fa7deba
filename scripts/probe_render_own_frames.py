"""Does a subject's NeRF render the emotions it was filmed in so the plate judge reads them?

For a prepared capture session (``emogene prepare-subject`` on clips labelled with emotions), per clip: two training
bursts of ``--burst`` frames and the clip's held-out tail. Each set is read by the plate judge (pose-augmented, one
judge per ``--judge-seeds`` seed) three ways, the neutral clip's same selection as reference:

* ``real``: the subject's own frames at the working size, tracked as plates are (the ceiling at this size);
* each ``NAME=CHECKPOINT_STEM``: the NeRF rendered at those frames' ground-truth tracks (landmarks and pose), tracked
  the same way.

So a gap between ``real`` and a checkpoint is the renderer's (the driving cannot be blamed: it is the real track),
and two checkpoints are compared on the same frames. Renders are cached per name in ``--out``.

    .venv/bin/python scripts/probe_render_own_frames.py --subject cache/s13/m030 \\
        shipped=backend/assets/subjects/mead_m030/nerf candidate=cache/s13/train_e2/nerf --out cache/s13/compare
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def selection(clips: list[dict], burst: int = 9) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Per labelled clip (by emotion): two training bursts (at 1/4 and 5/8 of its training rows) and its held-out
    rows, as (split, prepared-frame rows)."""
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for clip in clips:
        if not clip.get("emotion"):
            continue
        start, end = clip["train_rows"]
        length = end - start
        if length < 2 * burst:
            raise ValueError(f"clip {clip.get('video')}: {length} training frames, fewer than two bursts of {burst}")
        bursts = [("train", np.arange(start + at, start + at + burst)) for at in (length // 4, 5 * length // 8)]
        out[clip["emotion"]] = bursts + [("heldout", np.arange(*clip["heldout_rows"]))]
    if "neutral" not in out:
        raise ValueError("the subject has no clip labelled neutral: there is no reference to read emotions against")
    return out


def render_selection(stem: Path, data, chosen: dict) -> dict[str, np.ndarray]:
    """uint8 renders (composited over the background) of every chosen row, by emotion."""
    import torch

    from backend.checkpoints import load_checkpoint, read_checkpoint_meta
    from backend.render.inference import _model_config
    from backend.render.model import MODEL_KIND, MODEL_VERSION, SubjectNeRF
    from backend.render.train import render_dataset_frames

    meta = read_checkpoint_meta(stem, kind=MODEL_KIND, version=MODEL_VERSION)
    model = SubjectNeRF(_model_config(meta["config"]))
    load_checkpoint(stem, model, kind=MODEL_KIND, version=MODEL_VERSION)
    model.eval()
    return {emotion: (render_dataset_frames(model, data, np.concatenate([rows for _, rows in parts]),
                                            torch.device("cpu")) * 255).round().astype(np.uint8)
            for emotion, parts in chosen.items()}


def read_sets(judges: dict, images: dict[str, np.ndarray], chosen: dict) -> dict:
    """Share of frames each judge reads as the clip's emotion, per emotion and split (train, heldout, all); the
    mean over judges and its mean over emotions."""
    from backend.evaluation.emotion_judge import predict_in_bursts
    from backend.evaluation.plate_emotion import track_burst
    from bridge.emotions import EMOTION_INDEX

    tracked = {}
    for emotion, parts in chosen.items():
        burst_id = np.concatenate([np.full(len(rows), k) for k, (_, rows) in enumerate(parts)])
        split = np.concatenate([[name] * len(rows) for name, rows in parts])
        pieces = [track_burst(list(images[emotion][burst_id == b])) for b in np.unique(burst_id)]
        tracked[emotion] = (np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]),
                            burst_id, split)
    landmarks, found, _, _ = tracked["neutral"]
    reference = np.nanmean(landmarks[found], axis=0)
    shares: dict = {}
    for judge in judges.values():
        for emotion, (landmarks, found, burst_id, split) in tracked.items():
            predicted = predict_in_bursts(judge, landmarks, reference, burst_id, found)
            for part in ("train", "heldout", "all"):
                keep = (predicted >= 0) & ((split == part) if part != "all" else True)
                hit = float((predicted[keep] == EMOTION_INDEX[emotion]).mean()) if keep.any() else 0.0
                shares.setdefault(part, {}).setdefault(emotion, []).append(hit)
    return {part: {"per_emotion": {e: float(np.mean(v)) for e, v in per.items()},
                   "mean_over_emotions": float(np.mean([np.mean(v) for v in per.values()]))}
            for part, per in shares.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="*", help="NAME=CHECKPOINT_STEM of each NeRF to read")
    parser.add_argument("--subject", required=True, help="prepared subject folder (emogene prepare-subject)")
    parser.add_argument("--tracks", default=str(REPO / "cache" / "tracks"), help="prepared tracks (the judge's data)")
    parser.add_argument("--judge-seeds", default="0,1,2,3,4")
    parser.add_argument("--burst", type=int, default=9)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import torch

    from backend.evaluation.emotion_report import DEFAULT_JUDGE
    from backend.evaluation.judge_pose_augment import selection_pose_augmentation
    from backend.evaluation.judge_real_video import judge_pools, seed_judges
    from backend.evaluation.plate_emotion import parse_seeds
    from backend.render.subject_dataset import SubjectDataset

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = SubjectDataset(args.subject)
    chosen = selection(data.info.get("clips") or [], args.burst)
    train, _ = judge_pools(args.tracks, True)
    pose = selection_pose_augmentation(args.tracks) if DEFAULT_JUDGE.augment_pose else None
    judges = seed_judges(train, DEFAULT_JUDGE, parse_seeds(args.judge_seeds, "judge seeds"), pose)
    sets = {"real": {e: data.frames[np.concatenate([rows for _, rows in parts])] for e, parts in chosen.items()}}
    for item in args.weights:
        name, _, stem = item.partition("=")
        if not name or not stem:
            parser.error(f"weights must be NAME=CHECKPOINT_STEM, got {item!r}")
        cached = out / f"{name}_renders.npz"
        if not cached.is_file():
            np.savez_compressed(cached, **render_selection(Path(stem), data, chosen))
        with np.load(cached) as z:
            sets[name] = {k: z[k] for k in z.files}
    results = {name: read_sets(judges, images, chosen) for name, images in sets.items()}
    for name, r in results.items():
        print(f"{name:10s} mean over emotions: all {100 * r['all']['mean_over_emotions']:.1f} %, train "
              f"{100 * r['train']['mean_over_emotions']:.1f} %, held-out {100 * r['heldout']['mean_over_emotions']:.1f} %"
              " | " + " ".join(f"{e} {100 * v:.0f}" for e, v in r["all"]["per_emotion"].items()))
    (out / "results.json").write_text(json.dumps({"judge_seeds": list(judges), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
