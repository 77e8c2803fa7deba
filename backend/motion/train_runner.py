"""What ``emogene train <motion model>`` does: load tracks, run the model's recipe (its row in
``model_specs``), save checkpoint + loss curve + config JSON."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from backend.motion import training
from backend.motion.model_io import save_model
from backend.motion.model_specs import BY_TARGET, resolve
from backend.motion.tracks_data import load_clips, split_clips
from backend.motion.train_recipes import TrainingRun


def run_training(target: str, args) -> dict:
    from backend.device import resolve_device
    if target not in BY_TARGET:
        raise ValueError(f"unknown motion target {target!r}; known: {', '.join(BY_TARGET)}")
    spec = BY_TARGET[target]
    torch.set_num_threads(max(1, int(getattr(args, "threads", 2))))
    device = resolve_device(args.device)
    clips = load_clips(args.tracks)
    run = TrainingRun(args, device, clips, split_clips(clips), Path(args.out))
    started = time.time()
    trained = resolve(spec.recipe)(run)
    extra: dict = {"target": target, "tracks": str(args.tracks), "device": str(device),
                   "train_clips": [c.name for c in trained.train_clips],
                   "held_out_clips": [c.name for c in trained.held_out_clips], **trained.extra}
    extra["train_config"] = json.loads(json.dumps(dataclasses.asdict(trained.config), default=str))
    extra["seconds"] = round(time.time() - started, 1)
    extra["final"] = {k: v[-1] for k, v in trained.history.items() if k != "step" and v}
    path = save_model(trained.model.cpu(), run.out, spec.stem, extra=extra)
    curve = training.save_loss_curves(trained.history, run.out / f"{spec.stem}_loss.png",
                                      f"{target} ({trained.config.steps} steps)")
    print(f"saved {path} and {curve}; final: " + ", ".join(f"{k}={v:.4g}" for k, v in extra["final"].items()))
    return {"checkpoint": str(path), "curve": str(curve), **extra}
