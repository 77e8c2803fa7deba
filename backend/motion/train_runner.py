"""What ``emogene train <motion model>`` does: load tracks, train, save checkpoint + loss curve + config JSON."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from backend.motion import training
from backend.motion.model_io import SHIPPED_MODELS, load_model, save_model
from backend.motion.tracks_data import ClipSplits, TrackClip, load_clips, split_clips

#: target -> (checkpoint stem, which clips it trains on)
TARGETS = {
    "syncnet": ("syncnet", "talking"),
    "audio2motion": ("audio2motion", "talking"),
    "ldm": ("ldm", "mead"),
    "emotion": ("emotion_classifier", "mead"),
}


def training_clips(splits: ClipSplits, which: str, all_data: bool) -> list[TrackClip]:
    if which == "talking":
        return splits.talking_train + (splits.talking_test if all_data else [])
    return splits.mead_train + (splits.mead_test if all_data else [])


def _apply_common(cfg, args):
    cfg.steps = int(args.steps)
    cfg.seed = int(args.seed)
    if getattr(args, "batch", None):
        cfg.batch = int(args.batch)
    if getattr(args, "lr", None):
        cfg.lr = float(args.lr)
    return cfg


def find_syncnet(path: str | None, out: Path, device) -> tuple[object | None, str]:
    """The SyncNet to guide the VAE: ``--syncnet``, else ``<out>/syncnet``, else the shipped one."""
    candidates = [Path(path)] if path else [out / "syncnet", SHIPPED_MODELS / "syncnet"]
    for c in candidates:
        if c.with_suffix(".json").is_file() or (c / "syncnet.json").is_file():
            return load_model(c if c.suffix or not c.is_dir() else c, "syncnet", device), str(c)
    if path:
        raise FileNotFoundError(f"--syncnet {path}: no syncnet checkpoint there")
    return None, "none"


def run_training(target: str, args) -> dict:
    from backend.device import resolve_device
    torch.set_num_threads(max(1, int(getattr(args, "threads", 2))))
    device = resolve_device(args.device)
    stem, which = TARGETS[target]
    out = Path(args.out)
    clips = load_clips(args.tracks)
    splits = split_clips(clips)
    train = training_clips(splits, which, args.all_data)
    if not train:
        raise SystemExit(f"no {which} clips for training in {args.tracks}")
    started = time.time()
    extra: dict = {"target": target, "tracks": str(args.tracks), "device": str(device),
                   "train_clips": [c.name for c in train],
                   "held_out_clips": [] if args.all_data else [c.name for c in
                                                               (splits.talking_test if which == "talking" else splits.mead_test)]}
    identity = splits.talking_train + splits.mead_train
    if target == "syncnet":
        cfg = _apply_common(training.SyncNetTrainConfig(), args)
        model, history = training.train_syncnet(cfg, train, device)
    elif target == "audio2motion":
        from backend.motion.a2m_training import SpeechMotionTrainConfig, train_speech_motion
        from backend.motion.lipsync_data import lip_sync_split
        lips = lip_sync_split(clips)
        train = lips.train + (lips.test if args.all_data else [])
        extra["train_clips"] = [c.name for c in train]
        extra["held_out_clips"] = [] if args.all_data else [c.name for c in lips.test]
        cfg = _apply_common(SpeechMotionTrainConfig(), args)
        cfg.sync_weight = float(args.sync_weight)
        syncnet, source = find_syncnet(args.syncnet, out, device) if cfg.sync_weight > 0 else (None, "disabled")
        extra["syncnet"] = source
        model, history = train_speech_motion(cfg, train, device, syncnet, should_stop=None)
    elif target == "ldm":
        cfg = _apply_common(training.LDMTrainConfig(), args)
        cfg.lip_weight = float(args.lip_weight)
        model, history = training.train_ldm(cfg, train, device, identity_clips=identity)
    elif target == "emotion":
        cfg = _apply_common(training.EmotionTrainConfig(), args)
        model, history = training.train_emotion_classifier(cfg, train, device, identity_clips=identity)
    else:
        raise ValueError(f"unknown motion target {target!r}")
    extra["train_config"] = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    extra["seconds"] = round(time.time() - started, 1)
    extra["final"] = {k: v[-1] for k, v in history.items() if k != "step" and v}
    path = save_model(model.cpu(), out, stem, extra=extra)
    curve = training.save_loss_curves(history, out / f"{stem}_loss.png", f"{target} ({cfg.steps} steps)")
    print(f"saved {path} and {curve}; final: " + ", ".join(f"{k}={v:.4g}" for k, v in extra["final"].items()))
    return {"checkpoint": str(path), "curve": str(curve), **extra}
