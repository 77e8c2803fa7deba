"""Prepare + train the shipped emotional subject ``mead_m030`` from the 8 MEAD M030 clips
(one per emotion, one camera) and write backend/assets/subjects/mead_m030/ (subject.json,
track.npz, background.png, NeRF weights, training curves, metrics.json, held-out sheet,
MODEL_CARD.md). Large intermediates stay in cache/subjects/mead_m030.

    .venv/bin/python scripts/train_emotional_subject.py [--minutes 28] [--resolution 128] [--resume]

Training is resumable (checkpoints every 1000 steps): after an interruption, run again with
--resume; a run whose budget is already spent only evaluates and ships.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MEAD = REPO.parent / "shared" / "data" / "mead"
PATTERN = "M030_front_*_level*_001.mp4"
SPEAKER = "M030"
ASSET_FILES = ["track.npz", "background.png", "nerf.safetensors", "nerf.json", "training_curves.png",
               "heldout_sheet.png"]


def evaluate_heldout(subject_dir: Path, threads: int = 1) -> tuple[dict, dict]:
    """All held-out frames, driven by their ground-truth tracks: PSNR / SSIM / mouth PSNR of the
    NeRF, the nearest training frame by landmarks and the mean training frame (the functions of
    backend.render.evaluate), overall and per emotion. Returns (metrics, renders by row)."""
    import torch

    from backend.checkpoints import load_checkpoint, read_checkpoint_meta
    from backend.render.evaluate import PAPER, _mouth_psnr, _ssim
    from backend.render.inference import _model_config
    from backend.render.model import MODEL_KIND, MODEL_VERSION, SubjectNeRF
    from backend.render.subject_dataset import SubjectDataset
    from backend.render.train import CHECKPOINT_STEM, psnr, render_dataset_frames

    torch.set_num_threads(threads)
    data = SubjectDataset(subject_dir)
    stem = subject_dir / CHECKPOINT_STEM
    meta = read_checkpoint_meta(stem, kind=MODEL_KIND, version=MODEL_VERSION)
    model = SubjectNeRF(_model_config(meta["config"]))
    load_checkpoint(stem, model, kind=MODEL_KIND, version=MODEL_VERSION)
    model.eval()
    held, train = data.heldout_indices, data.train_indices
    start = time.time()
    ours = render_dataset_frames(model, data, held, torch.device("cpu"), progress=True).astype(np.float64)
    seconds = (time.time() - start) / len(held)
    gt = data.frames[held].astype(np.float64) / 255
    lm = data.track["landmarks"].reshape(len(data.frames), -1)
    nearest = train[np.argmin(((lm[held][:, None] - lm[train][None]) ** 2).sum(-1), axis=1)]
    preds = {"nerf": ours, "retrieval": data.frames[nearest].astype(np.float64) / 255,
             "mean_frame": np.broadcast_to(data.frames[train].astype(np.float64).mean(0) / 255, gt.shape)}
    per_frame = {name: np.array([[psnr(p, g), _ssim(p, g), _mouth_psnr(p, g, data.mouth_boxes[i])]
                                 for p, g, i in zip(pred, gt, held)]) for name, pred in preds.items()}

    def summary(rows: np.ndarray) -> dict:
        return {name: dict(zip(("psnr", "ssim", "mouth_psnr"), (float(v) for v in values[rows].mean(0))))
                for name, values in per_frame.items()}

    from bridge.emotions import EMOTIONS
    emotion = data.track["emotion_index"][held]
    w, h = data.info["image_size"]
    metrics = {"subject": data.info["name"], "resolution": [w, h], "heldout_frames_evaluated": int(len(held)),
               "heldout_frames_total": int(len(held)), "methods": summary(np.arange(len(held))),
               "per_emotion": {EMOTIONS[e]: dict(summary(np.nonzero(emotion == e)[0]),
                                                 frames=int((emotion == e).sum())) for e in sorted(set(emotion))},
               "retrieval_same_clip": float((data.track["clip_index"][nearest] == data.track["clip_index"][held]).mean()),
               "retrieval_median_gap_frames": float(np.median(data.track["clip_frame"][held] - data.track["clip_frame"][nearest])),
               "render_seconds_per_frame": seconds, "device": "cpu", "threads": threads,
               "checkpoint_step": meta.get("step"), "train_seconds": meta.get("train_seconds"), "paper": PAPER}
    return metrics, {int(r): img for r, img in zip(held, ours)}


def heldout_sheet(subject_dir: Path, renders: dict, path: Path, scale: int = 1) -> None:
    """One held-out frame per emotion (middle of each clip's held-out tail): real on top, NeRF below."""
    import cv2

    from backend.render.subject_dataset import SubjectDataset
    data = SubjectDataset(subject_dir)
    columns = []
    for clip in data.info["clips"]:
        a, b = clip["heldout_rows"]
        row = (a + b) // 2
        real = data.frames[row]
        ours = (renders[row].clip(0, 1) * 255).round().astype(np.uint8)
        col = np.concatenate([real, ours], axis=0)
        col = cv2.resize(col, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        label = np.full((8 + 8 * scale, col.shape[1], 3), 255, np.uint8)
        cv2.putText(label, clip["emotion"], (3, 4 + 8 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
        columns.append(np.concatenate([label, col], axis=0))
    sheet = np.concatenate(columns, axis=1)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def model_card(info: dict, summary: dict, metrics: dict, prepare_seconds: float, emotion_note: str = "") -> str:
    """The subject's MODEL_CARD.md; ``emotion_note``: measured plate-emotion results to state under the mode."""
    m = metrics["methods"]
    total_steps = summary["steps"] + (summary.get("prior") or {}).get("steps", 0)
    w, h = info["image_size"]
    cfg = summary["config"]
    clips = info["clips"]
    seconds = sum(c["frames"] for c in clips) / info["fps"]
    clip_lines = "\n".join(f"  - `{Path(c['video']).name}`: {c['emotion']} (MEAD level {c['level']}), "
                           f"{c['frames']} frames, held out {c['frames'] - c['train_frames']}" for c in clips)
    emo_rows = "\n".join(f"| {e} | {v['frames']} | {v['nerf']['psnr']:.2f} | {v['nerf']['ssim']:.3f} | "
                         f"{v['nerf']['mouth_psnr']:.2f} | {v['retrieval']['psnr']:.2f} | {v['mean_frame']['psnr']:.2f} |"
                         for e, v in metrics["per_emotion"].items())
    wins = [e for e, v in metrics["per_emotion"].items() if v["nerf"]["psnr"] > v["retrieval"]["psnr"]]
    if m["nerf"]["psnr"] > m["retrieval"]["psnr"]:
        verdict = (f"The NeRF beats both baselines on full-frame PSNR (by {m['nerf']['psnr'] - m['retrieval']['psnr']:.1f} dB "
                   f"over retrieval, {m['nerf']['psnr'] - m['mean_frame']['psnr']:.1f} dB over the mean frame).")
    else:
        verdict = (f"**The nearest training frame beats the NeRF on full-frame PSNR/SSIM** "
                   f"({m['retrieval']['psnr']:.2f} vs {m['nerf']['psnr']:.2f} dB; the NeRF wins only for "
                   f"{', '.join(wins) or 'no emotion'}), while the NeRF wins on the mouth "
                   f"({m['nerf']['mouth_psnr']:.2f} vs {m['retrieval']['mouth_psnr']:.2f} dB) and beats the mean frame "
                   f"by {m['nerf']['psnr'] - m['mean_frame']['psnr']:.1f} dB. Why: each clip's held-out tail starts "
                   f"0.04 s after its last training frame, so the nearest training frame is the same take in "
                   f"{metrics['retrieval_same_clip']:.0%} of the held-out frames, a median "
                   f"{metrics['retrieval_median_gap_frames']:.1f} frames earlier (same pose, light and hair): "
                   f"an easy test for retrieval, which "
                   f"still cannot render a new pose, camera or expression. The NeRF saw "
                   f"{total_steps} steps (the default subject had 9345): its skin and hair are still noisier "
                   f"than the real frames and fine wrinkles are softened (see the sheet).")
    return f"""# Emotional subject `mead_m030` (head + torso NeRF, 8 emotions)

**Consent.** These plates show a real person (MEAD speaker M030, an actor recorded for the
MEAD corpus). Rendering a real person's likeness, with speech and emotions they never
expressed, needs that person's consent: obtaining it is the user's duty. Do not use this
subject to deceive.

**Licence: non-commercial, research use only.** MEAD is released for research use only; the
clips here come from ali-vilab/dreamtalk `data/style_clip/video/` (the repository is MIT, MEAD's
own terms still apply). So this subject, its weights and anything rendered with it are for
non-commercial research use. For anything else, film your own actor (docs/capture_guide.md).

## Why this subject
The default subject was filmed talking neutrally, so its NeRF has never seen a smile or a frown.
This one was trained on footage that holds all 8 emotions at full intensity (MEAD level 3;
neutral is level 1), so its landmark-conditioned NeRF can render those expressions from its
code. `subject.json` says `"expression": "code"`. Keyed emotions drive its own filmed faces: for every emotion it has a labelled clip of,
the motion stage adds its own displacement (that clip's mean shape minus its neutral clip's, inner-lip gaps kept)
instead of the LDM's cross-speaker field (backend/motion/subject_emotions.py, session 12), so an animator keying
*angry* gets M030's angry, the face its NeRF was trained on.{(chr(10) + chr(10) + emotion_note) if emotion_note else ""}

## Data
- One capture session: the 8 clips `../shared/data/mead/{PATTERN}` (MEAD speaker M030,
  front camera, take 001), 256x256 face crops, 25 fps, video only; {info['frames']} frames
  (~{seconds:.0f} s) in all:
{clip_lines}
- M030 belongs to the generator's speaker pool (backend/data/mead_pools.py); the plate-level
  emotion judge never trains on M030 (its speakers are W009, W023, W901, W902).
- Split by time within each clip: the last 10 % of **each** clip is held out
  ({info['split']['heldout'][1] - info['split']['heldout'][0]} frames), the rest trains.
- Tracks per clip (mediapipe FaceMesh -> iBUG -> canonical + pose, smoothed within the clip,
  never across a cut); person mask: mediapipe selfie segmentation; one background plate: the
  per-pixel median of non-person pixels over all clips. `emogene prepare-subject` with the 8 files.

## Model
- The head + torso NeRF of the default subject (hash grid {cfg['model']['head_grid']['levels']} levels,
  2^{cfg['model']['head_grid']['log2_table_size']} rows, head MLP {cfg['model'].get('head_hidden') or cfg['model']['hidden']} units wide; {cfg['model']['code_dim']} PCA coefficients of the canonical
  landmarks, fitted on this subject's emotional training frames).
- Working resolution {w}x{h} (plates up to {info['max_resolution'][0]}x{info['max_resolution'][1]} by upscaled
  rendering); the face spans ~34 px between the eye centres at {w}x{h}.
{_training_lines(summary, prepare_seconds)}

## Held-out metrics (all {metrics['heldout_frames_evaluated']} held-out frames, ground-truth tracks, {w}x{h})
| method | PSNR (dB) | SSIM | mouth PSNR (dB) |
|---|---|---|---|
| NeRF (ours) | {m['nerf']['psnr']:.2f} | {m['nerf']['ssim']:.3f} | {m['nerf']['mouth_psnr']:.2f} |
| nearest training frame by landmarks | {m['retrieval']['psnr']:.2f} | {m['retrieval']['ssim']:.3f} | {m['retrieval']['mouth_psnr']:.2f} |
| mean training frame | {m['mean_frame']['psnr']:.2f} | {m['mean_frame']['ssim']:.3f} | {m['mean_frame']['mouth_psnr']:.2f} |

Per emotion (NeRF PSNR / SSIM / mouth PSNR; retrieval and mean-frame PSNR beside):

| emotion | frames | PSNR | SSIM | mouth PSNR | retrieval PSNR | mean-frame PSNR |
|---|---|---|---|---|---|---|
{emo_rows}

{verdict}

`heldout_sheet.png`: one held-out frame per emotion, real (top) above the NeRF (bottom).
Rendering: {metrics['render_seconds_per_frame']:.2f} s per {w}x{h} frame on one CPU thread (shared machine).

## Limits
- ~30 s of footage: every emotion is seen in ~3.4 s of one sentence, so expressions far from
  those sentences (and mouth shapes the sentences lack) are clamped to the training range.
- No audio in these clips: this subject's pose track (track.npz) is 8 short takes; head motion is drawn from
  its neutral take only (3.8 s, replayed forward and back), never across a cut.
- Its own emotions are one take each: a keyed emotion is that take's mean face at every frame (speech and blinks
  move on top of it), not the way the face moves within the emotion.
- 256x256 source crops: plates are sharp only up to about 2x the working resolution.

{_recreate(summary, w)}
"""


RUNS_FILE = "training_runs.json"   # beside the shipped weights: every run that made them, oldest first


def _this_run(summary: dict) -> str:
    """One run's schedule, in words (steps, rays, minutes, lr, the opt-in losses, the kept checkpoint)."""
    cfg = summary["config"]
    run = (f"{summary['steps']} steps of {cfg['rays_per_step']} rays in {summary['train_seconds'] / 60:.1f} min on "
           f"{summary['device']} ({cfg['threads']} thread of a 2-core machine shared with other jobs), "
           f"lr {cfg['learning_rate']:g} -> {cfg['learning_rate'] * cfg['final_lr_ratio']:.3g}"
           + (" decayed over the wall-clock budget" if cfg.get("anneal_by_time") else "")
           + (f", condition noise {cfg['landmark_noise']:g} per canonical landmark coordinate "
              f"(`TrainConfig.landmark_noise`)" if cfg.get("landmark_noise") else "")
           + (f", landmark depth loss weight {cfg['landmark_depth_weight']:g} "
              f"(`TrainConfig.landmark_depth_weight`)" if cfg.get("landmark_depth_weight") else "")
           + (f", {cfg['upper_face_ray_share']:.0%} of the rays drawn in the brow-and-eye box "
              f"(`TrainConfig.upper_face_ray_share`)" if cfg.get("upper_face_ray_share") else "")
           + (", the landmark code scaled by one global number instead of whitened per PCA component "
              "(`SubjectModelConfig.code_scale='global'`)" if _code_scale(cfg) == "global" else "")
           + (", the landmark code's PCA fitted on the upper face and on the rest apart "
              "(`SubjectModelConfig.code_regions='split'`)" if _code_regions(cfg) == "split" else "")
           + (f", the head MLP {_head_hidden(cfg)} units wide (`SubjectModelConfig.head_hidden`; a narrower start "
              f"grown without changing its output, backend/render/model_growth.py)" if _head_hidden(cfg) else "")
           + (", the landmark code also scaling the head's hash-grid feature channels "
              "(`SubjectModelConfig.head_condition_gate`)" if _head_gate(cfg) else ""))
    if summary.get("shipped_step"):
        run += (f" (the run's kept checkpoint at its step {summary['shipped_step']} of {summary['run_steps']}, "
                f"chosen by the plate-emotion judge on the tuning clip; the lr had not reached its end value there)")
    return run


def _code_scale(cfg: dict) -> str:
    return (cfg.get("model") or {}).get("code_scale", "component")


def _code_regions(cfg: dict) -> str:
    return (cfg.get("model") or {}).get("code_regions", "whole")


def _head_hidden(cfg: dict) -> int | None:
    return (cfg.get("model") or {}).get("head_hidden")


def _head_gate(cfg: dict) -> bool:
    return bool((cfg.get("model") or {}).get("head_condition_gate"))


def _this_command(summary: dict, width: int) -> str:
    """The command line that re-creates this run (a continued run names the shipped weights it starts from)."""
    cfg, prior = summary["config"], summary.get("prior")
    options = (cfg.get("anneal_by_time") or cfg.get("landmark_noise") or cfg.get("landmark_depth_weight")
               or cfg.get("upper_face_ray_share") or _code_scale(cfg) != "component" or _code_regions(cfg) != "whole"
               or _head_hidden(cfg) or _head_gate(cfg) or summary.get("shipped_step"))
    if prior is None and not options:
        return f".venv/bin/python scripts/train_emotional_subject.py --minutes {cfg['minutes']:g} --resolution {width}"
    return (f".venv/bin/python scripts/train_emotional_subject.py --resolution {width} "
            + ("--init-from backend/assets/subjects/mead_m030/nerf " if prior is not None else "")
            + f"--learning-rate {cfg['learning_rate']:g} "
            f"--final-lr-ratio {cfg['final_lr_ratio']:g}" + (" --anneal-by-time" if cfg.get("anneal_by_time") else "")
            + f" --minutes {cfg['minutes']:g} --steps {cfg['steps']}"
            + (f" --landmark-noise {cfg['landmark_noise']:g}" if cfg.get("landmark_noise") else "")
            + (f" --landmark-depth-weight {cfg['landmark_depth_weight']:g}" if cfg.get("landmark_depth_weight") else "")
            + (f" --upper-face-ray-share {cfg['upper_face_ray_share']:g}" if cfg.get("upper_face_ray_share") else "")
            + (f" --code-scale {_code_scale(cfg)}" if _code_scale(cfg) != "component" else "")
            + (f" --code-regions {_code_regions(cfg)}" if _code_regions(cfg) != "whole" else "")
            + (f" --head-hidden {_head_hidden(cfg)}" if _head_hidden(cfg) else "")
            + (" --head-condition-gate" if _head_gate(cfg) else "")
            + (f" --keep-checkpoints --ship-step {summary['shipped_step']}" if summary.get("shipped_step") else ""))


def training_runs(summary: dict, width: int) -> list[dict]:
    """Every run behind the weights ``summary`` describes, oldest first (written to RUNS_FILE when shipped)."""
    runs = list((summary.get("prior") or {}).get("runs") or [])
    return runs + [{"steps": int(summary["steps"]), "train_seconds": float(summary["train_seconds"]),
                    "description": _this_run(summary), "command": _this_command(summary, width)}]


def _training_lines(summary: dict, prepare_seconds: float) -> str:
    """The card's training bullet: one run, or the chain of runs each continuing the previous one's weights."""
    prior = summary.get("prior")
    run = _this_run(summary)
    if prior is None:
        return f"- Training: {run}; preparation took {prepare_seconds:.0f} s."
    total = prior["steps"] + summary["steps"]
    minutes = (prior["train_seconds"] + summary["train_seconds"]) / 60
    if prior.get("runs"):
        earlier = "; ".join(f"({i}) {r['description']}" for i, r in enumerate(prior["runs"], 1))
        return (f"- Training: {total} steps in {minutes:.1f} min in all, {len(prior['runs']) + 1} runs, each continuing "
                f"the previous one's shipped weights: {earlier}; ({len(prior['runs']) + 1}) {run}; preparation took "
                f"{prepare_seconds:.0f} s.")
    return (f"- Training: {total} steps in {minutes:.1f} min in all: a first run of {prior['steps']} steps in "
            f"{prior['train_seconds'] / 60:.1f} min (lr 0.01, cut by its clock at lr ~3.5e-3, never annealed), "
            f"then continued from its weights for {run}; preparation took {prepare_seconds:.0f} s.")


def _recreate(summary: dict, width: int) -> str:
    prior = summary.get("prior")
    if prior is None:
        return f"Re-create: `{_this_command(summary, width)}`."
    if prior.get("runs"):
        steps = "\n".join(f"{i}. `{r['command']}`" for i, r in enumerate(training_runs(summary, width), 1))
        return (f"Re-create ({len(prior['runs']) + 1} runs of one script; each continues from the previous one's "
                f"shipped weights; the lr follows the wall clock, so a re-run matches in recipe, not bit for bit):\n"
                f"{steps}")
    first = f"`.venv/bin/python scripts/train_emotional_subject.py --minutes 28 --resolution {width}`"
    return (f"Re-create (two runs of one script; the second continues from the first's shipped weights):\n"
            f"{first}, then\n`{_this_command(summary, width)}`.")


def _prior_training(init_from: str | None) -> dict | None:
    """Steps and seconds behind the checkpoint a continued run starts from (None: from scratch); with the
    RUNS_FILE beside it, every earlier run ('runs') and their totals."""
    if init_from is None:
        return None
    from backend.checkpoints import read_checkpoint_meta
    from backend.render.model import MODEL_KIND, MODEL_VERSION
    meta = read_checkpoint_meta(Path(init_from), kind=MODEL_KIND, version=MODEL_VERSION)
    prior = {"init_from": str(init_from), "steps": int(meta.get("step") or 0),
             "train_seconds": float(meta.get("train_seconds") or 0.0)}
    runs_file = Path(init_from).parent / RUNS_FILE
    if runs_file.is_file():
        runs = json.loads(runs_file.read_text())
        if runs[-1]["steps"] != prior["steps"]:
            raise ValueError(f"{runs_file}: its last run has {runs[-1]['steps']} steps but {init_from} was saved at "
                             f"step {prior['steps']}: the file does not describe these weights")
        prior.update(runs=runs, steps=sum(r["steps"] for r in runs), train_seconds=sum(r["train_seconds"] for r in runs))
    return prior


def _curves_after(work: Path, prior_steps: int, baseline_psnr: float) -> None:
    """Redraw the work folder's training curves with this run's steps counted after ``prior_steps``."""
    import torch

    from backend.render.train import save_curves
    history = torch.load(work / "train_state.pt", weights_only=False)["history"]
    shifted = {"loss": [(s + prior_steps, v) for s, v in history["loss"]],
               "psnr": [(s + prior_steps, *rest) for s, *rest in history["psnr"]], "occupancy": history["occupancy"]}
    save_curves(shifted, work / "training_curves.png", baseline_psnr)


def _kept_checkpoint(work: Path, step: int) -> dict:
    """Make the kept ``nerf_step<step>`` the folder's checkpoint; its steps and seconds for the card."""
    from backend.checkpoints import read_checkpoint_meta
    from backend.render.model import MODEL_KIND, MODEL_VERSION
    from backend.render.train import CHECKPOINT_STEM
    kept = work / f"{CHECKPOINT_STEM}_step{step}"
    if not Path(str(kept) + ".safetensors").is_file():
        raise FileNotFoundError(f"{kept}.safetensors not found: --ship-step needs a run made with --keep-checkpoints "
                                f"that reached step {step}")
    for ext in (".safetensors", ".json"):
        shutil.copy2(str(kept) + ext, str(work / CHECKPOINT_STEM) + ext)
    meta = read_checkpoint_meta(kept, kind=MODEL_KIND, version=MODEL_VERSION)
    return {"steps": int(meta["step"]), "train_seconds": float(meta["train_seconds"]), "shipped_step": int(meta["step"])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mead", default=str(MEAD), help="folder holding the MEAD M030 clips")
    parser.add_argument("--work", default=str(REPO / "cache" / "subjects" / "mead_m030"))
    parser.add_argument("--out", default=str(REPO / "backend" / "assets" / "subjects" / "mead_m030"))
    parser.add_argument("--minutes", type=float, default=28.0)
    parser.add_argument("--steps", type=int, default=7000)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--expression", default="code", choices=["code", "warp"],
                        help="how plates show expressions (subject.json 'expression'; default code)")
    parser.add_argument("--prepare-only", action="store_true", help="prepare the subject folder, train nothing")
    parser.add_argument("--init-from", default=None,
                        help="checkpoint stem to continue from (e.g. backend/assets/subjects/mead_m030/nerf)")
    parser.add_argument("--learning-rate", type=float, default=None, help="start learning rate (default TrainConfig's)")
    parser.add_argument("--final-lr-ratio", type=float, default=None, help="end / start learning rate")
    parser.add_argument("--anneal-by-time", action="store_true",
                        help="decay the learning rate over the wall-clock budget too (ends annealed)")
    parser.add_argument("--landmark-noise", type=float, default=None,
                        help="TrainConfig.landmark_noise: condition noise per canonical landmark coordinate")
    parser.add_argument("--landmark-depth-weight", type=float, default=None,
                        help="TrainConfig.landmark_depth_weight: sparse FaceMesh depth loss at landmark pixels")
    parser.add_argument("--upper-face-ray-share", type=float, default=None,
                        help="TrainConfig.upper_face_ray_share: share of rays drawn in the brow-and-eye box")
    parser.add_argument("--code-regions", default=None, choices=["whole", "split"],
                        help="landmark code: one PCA over the face (default) or the upper face and the rest apart")
    parser.add_argument("--code-scale", default=None, choices=["component", "global"],
                        help="landmark code: whiten each PCA component (default) or one global scale")
    parser.add_argument("--head-hidden", type=int, default=None,
                        help="the head MLP's width (SubjectModelConfig.head_hidden); with --init-from, a narrower "
                             "checkpoint grows into it without changing its output")
    parser.add_argument("--head-condition-gate", action="store_true",
                        help="the landmark code also scales the head's hash-grid feature channels "
                             "(SubjectModelConfig.head_condition_gate)")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep every checkpoint's weights as nerf_step<N> in the work folder")
    parser.add_argument("--ship-step", type=int, default=None,
                        help="evaluate and ship the kept checkpoint nerf_step<N> instead of the last one "
                             "(with --keep-checkpoints; the step chosen by the judge on the tuning clip)")
    args = parser.parse_args(argv)

    from backend.data.mead_pools import pool_of
    from backend.render.prepare import PrepareConfig, prepare_subject
    from backend.render.model import SubjectModelConfig
    from backend.render.train import TrainConfig, train_subject

    clips = sorted(Path(args.mead).glob(PATTERN))
    if len(clips) != 8:
        print(f"expected the 8 clips {PATTERN} in {args.mead}, found {len(clips)}")
        return 2
    if pool_of(SPEAKER) != "generator":
        raise AssertionError(f"{SPEAKER} is not in the generator's MEAD pool: it must not train a shipped subject")
    work, out = Path(args.work), Path(args.out)
    t0 = time.time()
    prepare_subject(clips, work, config=PrepareConfig(resolution=args.resolution), name="mead_m030")
    prepare_seconds = time.time() - t0
    timing = work / "prepare_seconds.txt"   # a cached preparation takes no time: keep the measured one
    if prepare_seconds > 2 or not timing.is_file():
        timing.write_text(f"{prepare_seconds:.1f}")
    prepare_seconds = float(timing.read_text())
    if args.prepare_only:
        return 0
    schedule = {k: v for k, v in (("learning_rate", args.learning_rate), ("final_lr_ratio", args.final_lr_ratio),
                                  ("landmark_noise", args.landmark_noise),
                                  ("landmark_depth_weight", args.landmark_depth_weight),
                                  ("upper_face_ray_share", args.upper_face_ray_share)) if v is not None}
    model_options = {k: v for k, v in (("code_scale", args.code_scale), ("code_regions", args.code_regions),
                                       ("head_hidden", args.head_hidden),
                                       ("head_condition_gate", args.head_condition_gate or None)) if v is not None}
    config = TrainConfig(steps=args.steps, minutes=args.minutes, threads=args.threads,
                         anneal_by_time=args.anneal_by_time, keep_checkpoints=args.keep_checkpoints,
                         model=SubjectModelConfig(**model_options), **schedule)
    prior = _prior_training(args.init_from)
    summary = train_subject(work, config, resume=args.resume, init_from=args.init_from)
    summary["prior"] = prior
    if args.ship_step is not None:
        summary.update(_kept_checkpoint(work, args.ship_step), run_steps=summary["steps"])
    if prior is not None:   # the curves count the steps of every run behind the weights
        _curves_after(work, prior["steps"], summary["mean_frame_psnr"])
    metrics, renders = evaluate_heldout(work, threads=args.threads)
    heldout_sheet(work, renders, work / "heldout_sheet.png")               # shipped: small
    heldout_sheet(work, renders, work / "heldout_sheet_x2.png", scale=2)   # for looking at
    out.mkdir(parents=True, exist_ok=True)
    for name in ASSET_FILES:
        shutil.copy2(work / name, out / name)
    info = json.loads((work / "subject.json").read_text())
    if "neutral_landmarks" not in info:   # a folder prepared before this key existed
        from backend.render.prepare import neutral_landmarks
        track = np.load(work / "prepared" / "track_native.npz")
        n_train = info["split"]["train"][1]
        info["neutral_landmarks"] = neutral_landmarks(track["landmarks"][:n_train], track["emotion_index"][:n_train])
    shipped = dict(info, expression=args.expression,
                   source_clips=[f"../shared/data/mead/{Path(c).name}" for c in info["source_clips"]],
                   clips=[dict(c, video=f"../shared/data/mead/{Path(c['video']).name}") for c in info["clips"]])
    (out / "subject.json").write_text(json.dumps(shipped, indent=2))
    (out / "MODEL_CARD.md").write_text(model_card(info, summary, metrics, prepare_seconds))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / RUNS_FILE).write_text(json.dumps(training_runs(summary, info["image_size"][0]), indent=2))
    print(json.dumps({"heldout": metrics["methods"], "steps": summary["steps"],
                      "train_minutes": summary["train_seconds"] / 60}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
