#!/usr/bin/env python
"""Train the small default motion models shipped in backend/assets/models/ and write their model card.

Reads the track files that `emogene prepare` made from ../shared/data (default
cache/tracks), trains SyncNet -> audio-to-motion VAE (guided by that SyncNet) ->
LDM -> emotion classifier on the training split only (held-out speakers stay
unseen, and the tail of every MEAD clip, so `emogene eval motion` is honest), saves each as safetensors + JSON,
stores the default pose track (from the cnn2 clip, the default subject), runs the
evaluation and writes MODEL_CARD.md with data, steps, timings and metrics.

    .venv/bin/python scripts/train_default_models.py [--tracks cache/tracks] [--quick]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STEPS = {"syncnet": 1000, "audio2motion": 800, "ldm": 1500, "emotion": 800}
POSE_CLIP = "cnn2_25fps"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", default=str(REPO / "cache" / "tracks"))
    parser.add_argument("--out", default=str(REPO / "backend" / "assets" / "models"))
    parser.add_argument("--report", default=str(REPO / "eval_report" / "motion"))
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps (smoke test)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None, help="train only these targets (others must exist)")
    parser.add_argument("--no-eval", action="store_true",
                        help="save the weights only: no evaluation, report or MODEL_CARD.md "
                             "(then run `emogene eval motion`)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from backend.motion import training
    from backend.motion.eval_report import write_report
    from backend.motion.evaluate import EvalConfig, evaluate_motion
    from backend.motion.model_io import clear_cache, load_model, save_model
    from backend.motion.tracks_data import load_clips, split_clips
    from backend.motion.ldm_training import generator_clips, mead_clips
    from backend.motion.a2m_training import SpeechMotionTrainConfig, train_speech_motion
    from backend.motion.lipsync_data import lip_sync_split

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clips = load_clips(args.tracks)
    s = split_clips(clips)
    identity = s.talking_train + s.mead_train
    steps = {k: max(20, v // 10) if args.quick else v for k, v in STEPS.items()}
    targets = args.only or list(STEPS)
    timings, finals = {}, {}

    def done(name, stem, model, history, cfg, train_clips):
        final = {k: round(v[-1], 5) for k, v in history.items() if k != "step" and v}
        finals[name] = final
        save_model(model.cpu(), out, stem, extra={
            "train_clips": [c.name for c in train_clips], "steps": cfg.steps, "seconds": timings[name],
            "final": final, "tracks": "cache/tracks prepared from ../shared/data", "seed": cfg.seed})
        training.save_loss_curves(history, Path(args.report) / f"{stem}_loss.png", f"{name} ({cfg.steps} steps)")
        print(f"{name}: {timings[name]:.0f} s, final {final}", flush=True)

    lips = lip_sync_split(clips)      # lip-sync clips; held-out people never trained on (SyncNet included)
    if "syncnet" in targets:
        t = time.time()
        cfg = training.SyncNetTrainConfig(steps=steps["syncnet"])
        model, hist = training.train_syncnet(cfg, lips.train, device)
        timings["syncnet"] = round(time.time() - t, 1)
        done("syncnet", "syncnet", model, hist, cfg, lips.train)
    if "audio2motion" in targets:
        t = time.time()
        cfg = SpeechMotionTrainConfig(steps=steps["audio2motion"], equalise_people=True)   # every person at the median
        syncnet = load_model(out, "syncnet") if cfg.sync_weight > 0 else None
        model, hist = train_speech_motion(cfg, lips.train, device, syncnet)
        timings["audio2motion"] = round(time.time() - t, 1)
        done("audio2motion", "audio2motion", model, hist, cfg, lips.train)
    if "ldm" in targets:
        t = time.time()
        cfg = training.LDMTrainConfig(steps=steps["ldm"])
        # generator pool only (backend/data/mead_pools.py, asserted disjoint from the judge's); every
        # non-MEAD clip but the held-out talking people's builds the neutral-reference model
        ldm_clips = generator_clips(s.mead_train)
        held_out = {id(c) for c in s.talking_test}
        identity = [c for c in clips if id(c) not in held_out]
        model, hist = training.train_ldm(cfg, ldm_clips, device, identity_clips=identity)
        timings["ldm"] = round(time.time() - t, 1)
        done("ldm", "ldm", model, hist, cfg, mead_clips(ldm_clips))
    if "emotion" in targets:
        t = time.time()
        cfg = training.EmotionTrainConfig(steps=steps["emotion"])
        model, hist = training.train_emotion_classifier(cfg, s.mead_train, device, identity_clips=identity)
        timings["emotion"] = round(time.time() - t, 1)
        done("emotion", "emotion_classifier", model, hist, cfg, s.mead_train)

    print(f"training total: {sum(timings.values()):.0f} s wall, {time.process_time():.0f} s CPU of this process "
          f"(incl. loading; {args.threads} thread(s))", flush=True)
    pose = next((c for c in clips if c.name == POSE_CLIP), None) or max(s.talking_train, key=lambda c: c.frames)
    np.savez_compressed(out / "default_pose.npz", rotation=pose.rotation.astype(np.float32),
                        translation=pose.translation.astype(np.float32),
                        landmarks=pose.landmarks.mean(0, keepdims=True).astype(np.float32))
    pose_meta = Path(args.tracks) / f"{pose.name}.json"
    pose_source = json.loads(pose_meta.read_text()).get("source") if pose_meta.is_file() else None
    if pose_source and Path(pose_source).is_file():     # its edit cuts: pose sampling never replays across one
        from backend.data.shot_cuts import add_shot_starts
        add_shot_starts(pose_source, [out / "default_pose.npz"], progress=False)

    if args.no_eval:
        print(f"saved to {out} (no evaluation: --no-eval)")
        return 0
    clear_cache()
    metrics = evaluate_motion(EvalConfig(tracks=args.tracks, models=str(out)))
    paths = write_report(metrics, args.report)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    card = model_card(s, steps, timings, finals, metrics, pose.name, commit, out, args.threads)
    (out / "MODEL_CARD.md").write_text(card)
    print(paths["report"].read_text())
    print(f"wrote {out}/MODEL_CARD.md and the report in {args.report}")
    return 0


def model_card(s, steps, timings, finals, metrics, pose_clip, commit, out: Path, threads: int) -> str:
    from backend.motion.eval_report import markdown
    from backend.motion.a2m_training import SpeechMotionTrainConfig
    size = sum(p.stat().st_size for p in Path(out).glob("*.safetensors"))
    talking_seconds = sum(c.frames for c in s.talking_train) / 25
    talking_speakers = len({c.speaker for c in s.talking_train})
    from backend.motion.ldm_eval import model_card_lines
    ldm_json = Path(out) / "ldm.json"
    ldm_data, ldm_limits = model_card_lines(json.loads(ldm_json.read_text()) if ldm_json.is_file() else {})
    from backend.motion.lipsync_data import lip_sync_split
    from backend.motion.lipsync_eval import model_card_lines as a2m_card_lines
    syncnet_json = Path(out) / "syncnet.json"
    syncnet_clips = json.loads(syncnet_json.read_text()).get("train_clips") if syncnet_json.is_file() else None
    a2m_data, a2m_limits = a2m_card_lines(metrics["lipsync"], lip_sync_split(s.talking_train + s.talking_test
                                                                             + s.mead_full).train, syncnet_clips)
    lines = [
        "# Default motion models (EmoGene for Blender)", "",
        f"Trained by `scripts/train_default_models.py` on {dt.date.today()} at commit {commit or 'n/a'}, CPU, "
        f"{threads} thread(s). Weights: safetensors, {size / 1e6:.1f} MB in all. Each `.json` holds the model config, "
        "the training clips, steps, time and final losses.", "",
        "## Data (all from ../shared/data, see its README for origins and licences)",
        *a2m_data,
        *ldm_data,
        f"- MEAD (video only, emotion labels from file names): speakers "
        f"{', '.join(s.mead_speakers())}, {len(s.mead_train)} clips; the first ~80 % of each clip for training, "
        "the tail (data module's val_start_frame) held out. Speaker-held-out numbers: leave-one-speaker-out "
        "folds trained by the evaluation (emotion classifier; the LDM's are in its section below).",
        f"- Default pose track (used when a subject has no track.npz): `default_pose.npz` from {pose_clip}.", "",
        "## Models", "",
        "| model | file | steps | CPU time (s) | final training losses |", "|---|---|---|---|---|"]
    for name, stem in (("landmark SyncNet", "syncnet"), ("audio-to-motion (speech motion model)", "audio2motion"),
                       ("LDM (emotion fields, closed form)", "ldm"), ("emotion classifier", "emotion")):
        key = stem
        fname = "emotion_classifier" if stem == "emotion" else stem
        shown = f"{SpeechMotionTrainConfig().ensemble} x {steps.get(key, '?')}" if key == "audio2motion" else steps.get(key, "?")
        lines.append(f"| {name} | `{fname}.safetensors` | {shown} | {timings.get(key, 'n/a')} | "
                     f"{json.dumps(finals.get(key, {}))} |")
    lines += ["", "## Metrics on held-out data (`emogene eval motion`)", "",
              markdown(metrics).split("\n", 2)[2], "",
              "## Limits",
              f"- Tiny data: {talking_seconds / 60:.1f} min of training speech from {talking_speakers} speakers, "
              "two MEAD speakers' 8 clips each for emotions. "
              "Expect weak cross-speaker emotion transfer (see the leave-one-speaker-out table) and generic "
              "(averaged) mouth shapes.",
              *a2m_limits,
              *ldm_limits,
              "- Research data: MEAD is for research use; see ../shared/data/README.md.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
