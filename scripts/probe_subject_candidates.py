"""Plates of candidate NeRF weights of one shipped subject, on a *tuning* speech, read by the plate judges.

    .venv/bin/python scripts/probe_subject_candidates.py --subject mead_m030 \
        shipped=backend/assets/subjects/mead_m030 e1=cache/s13/out_e1 [--seeds 0,1,2] --out cache/probe_candidates

Each ``NAME=FOLDER`` is the shipped subject folder with ``FOLDER``'s ``nerf.safetensors`` / ``nerf.json`` in place
of its own (everything else — track, background, subject.json — stays the shipped one's), put in a subjects root of
its own under ``--out`` and rendered by the same code path as ``emogene eval emotion`` (motion stage, renderer,
compositing, FaceMesh tracking; its render cache, keyed by file contents, so a candidate never reuses another's
plates). The judges are the pose-augmented plate judges of ``--judge-seeds`` (seed 0 is the acceptance judge);
printed per candidate: mean over the 8 emotions at intensity 1 (each judge seed, and their mean), keyed neutral,
per emotion. The reported speech (andrew_clip_1) is refused: candidates are chosen on another clip.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TUNING_AUDIO = REPO.parent / "shared" / "data" / "talking" / "styletalk" / "KristiNoem.wav"
WEIGHT_FILES = ("nerf.safetensors", "nerf.json")


def candidate_root(out: Path, name: str, subject: str, shipped_dir: Path, weights_dir: Path) -> Path:
    """``out/subjects/<name>/<subject>``: the shipped folder's files with ``weights_dir``'s NeRF; returns the root."""
    root = out / "subjects" / name
    folder = root / subject
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for item in shipped_dir.iterdir():
        if item.is_file() and item.name not in WEIGHT_FILES and item.suffix in (".json", ".npz", ".png"):
            shutil.copy2(item, folder / item.name)
    for fname in WEIGHT_FILES:
        src = weights_dir / fname
        if not src.is_file():
            raise FileNotFoundError(f"{src} not found: a candidate folder needs {' and '.join(WEIGHT_FILES)}")
        shutil.copy2(src, folder / fname)
    return root


def summarise(readings: dict, judge_seed: int) -> dict:
    one = readings["by_intensity"]["intensity 1"]["plates"]
    return {"judge_seed": judge_seed, "mean_over_emotions": one["mean_over_emotions"],
            "per_emotion": one["per_emotion"], "neutral_stays_neutral": readings["neutral_stays_neutral"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", help="NAME=FOLDER holding a candidate's nerf.safetensors/json")
    parser.add_argument("--subject", required=True, help="the shipped subject the candidates are weights of")
    parser.add_argument("--audio", default=str(TUNING_AUDIO), help="tuning speech (never andrew_clip_1)")
    parser.add_argument("--seeds", default="0,1,2", help="motion draws")
    parser.add_argument("--judge-seeds", default="0,1,2,3,4")
    parser.add_argument("--tracks", default=str(REPO / "cache" / "tracks"))
    parser.add_argument("--cache", default=str(REPO / "cache" / "eval_emotion"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if "andrew_clip_1" in Path(args.audio).name:
        parser.error("andrew_clip_1 is the reported clip: choose candidates on a tuning clip")

    import torch

    from backend.composition import StageSet
    from backend.evaluation.emotion_report import DEFAULT_JUDGE, EmotionEvalConfig, subject_plates
    from backend.evaluation.judge_pose_augment import selection_pose_augmentation
    from backend.evaluation.judge_real_video import judge_pools, seed_judges
    from backend.evaluation.plate_emotion import PlateEvalConfig, judge_subject, parse_seeds
    from backend.subjects import SubjectStore

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shipped_dir = SubjectStore().path(args.subject)
    plates_config = PlateEvalConfig(audio=Path(args.audio), seeds=parse_seeds(args.seeds))
    config = EmotionEvalConfig(out=out, tracks=Path(args.tracks), subjects=(args.subject,), plates=plates_config,
                               cache=Path(args.cache))
    train, _ = judge_pools(args.tracks, True)
    pose = selection_pose_augmentation(args.tracks) if DEFAULT_JUDGE.augment_pose else None
    judges = seed_judges(train, DEFAULT_JUDGE, parse_seeds(args.judge_seeds, "judge seeds"), pose)
    results = {}
    for item in args.candidates:
        name, _, folder = item.partition("=")
        if not name or not folder:
            parser.error(f"candidates must be NAME=FOLDER, got {item!r}")
        root = candidate_root(out, name, args.subject, shipped_dir, Path(folder))
        store = SubjectStore(extra_roots=[root])
        stage_set = StageSet(device="cpu", subjects=store)
        draws = [subject_plates(args.subject, stage_set, store, config, progress=None, seed=s)[0]
                 for s in plates_config.seeds]
        per_judge = [summarise(judge_subject(j, draws, ceiling_bursts=0), s) for s, j in judges.items()]
        results[name] = {"folder": folder, "judges": per_judge,
                         "mean_over_emotions": float(np.mean([r["mean_over_emotions"] for r in per_judge])),
                         "neutral_stays_neutral": float(np.mean([r["neutral_stays_neutral"] for r in per_judge]))}
        first = per_judge[0]
        print(f"{name:10s} judge seed {first['judge_seed']}: mean8 {100 * first['mean_over_emotions']:.1f} %, keyed "
              f"neutral {100 * first['neutral_stays_neutral']:.1f} % | seeds mean mean8 "
              f"{100 * results[name]['mean_over_emotions']:.1f} % | "
              + " ".join(f"{e} {100 * v:.0f}" for e, v in first["per_emotion"].items()), flush=True)
        (out / "results.json").write_text(json.dumps({"audio": args.audio, "seeds": list(plates_config.seeds),
                                                      "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
