"""How each motion model is trained from a :class:`TrainingRun` (the rows of ``model_specs``
name these functions). A recipe turns the command's options into the model's training config,
picks its clips and calls its trainer; ``train_runner`` does everything the models share
(loading tracks, the split, saving, the loss curve)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from backend.motion import training
from backend.motion.model_io import SHIPPED_MODELS, load_model
from backend.motion.tracks_data import ClipSplits, TrackClip


@dataclass
class TrainingRun:
    """What every recipe gets: the command's options, the device and the data."""
    args: Any
    device: torch.device
    clips: list[TrackClip]           # every prepared clip
    splits: ClipSplits
    out: Path

    @property
    def identity_clips(self) -> list[TrackClip]:
        return self.splits.talking_train + self.splits.mead_train

    def require(self, clips: list[TrackClip], what: str) -> list[TrackClip]:
        """``clips``, or a clear exit when there are none to train on."""
        if not clips:
            raise SystemExit(f"no {what} clips for training in {self.args.tracks}")
        return clips

    def talking(self) -> tuple[list[TrackClip], list[TrackClip]]:
        """(train, held out) talking clips; ``--all-data`` trains on both."""
        return _with_all_data(self.splits.talking_train, self.splits.talking_test, self.args.all_data)

    def mead(self) -> tuple[list[TrackClip], list[TrackClip]]:
        """(train, held out) emotion-labelled MEAD clips; ``--all-data`` trains on both."""
        return _with_all_data(self.splits.mead_train, self.splits.mead_test, self.args.all_data)


@dataclass
class TrainedModel:
    model: torch.nn.Module
    history: training.History
    config: Any                       # the training config (stored in the checkpoint's JSON)
    train_clips: list[TrackClip]
    held_out_clips: list[TrackClip]
    extra: dict = field(default_factory=dict)


def _with_all_data(train: list, test: list, all_data: bool) -> tuple[list, list]:
    return (train + test, []) if all_data else (train, test)


def common_options(cfg, args):
    """--steps, --seed and (when given) --batch, --lr onto a training config."""
    cfg.steps = int(args.steps)
    cfg.seed = int(args.seed)
    if getattr(args, "batch", None):
        cfg.batch = int(args.batch)
    if getattr(args, "lr", None):
        cfg.lr = float(args.lr)
    return cfg


def find_syncnet(path: str | None, out: Path, device) -> tuple[object | None, str]:
    """The SyncNet to guide audio-to-motion: ``--syncnet``, else ``<out>/syncnet``, else the shipped one."""
    candidates = [Path(path)] if path else [out / "syncnet", SHIPPED_MODELS / "syncnet"]
    for c in candidates:
        if c.with_suffix(".json").is_file() or (c / "syncnet.json").is_file():
            return load_model(c if c.suffix or not c.is_dir() else c, "syncnet", device), str(c)
    if path:
        raise FileNotFoundError(f"--syncnet {path}: no syncnet checkpoint there")
    return None, "none"


def train_syncnet(run: TrainingRun) -> TrainedModel:
    train, held_out = run.talking()
    run.require(train, "talking")
    cfg = common_options(training.SyncNetTrainConfig(), run.args)
    model, history = training.train_syncnet(cfg, train, run.device)
    return TrainedModel(model, history, cfg, train, held_out)


def train_audio2motion(run: TrainingRun) -> TrainedModel:
    from backend.motion.a2m_training import SpeechMotionTrainConfig, train_speech_motion
    from backend.motion.lipsync_data import lip_sync_split
    lips = lip_sync_split(run.clips)
    train, held_out = _with_all_data(lips.train, lips.test, run.args.all_data)
    run.require(train, "lip-sync")
    cfg = common_options(SpeechMotionTrainConfig(), run.args)
    cfg.sync_weight = float(run.args.sync_weight)
    syncnet, source = (find_syncnet(run.args.syncnet, run.out, run.device) if cfg.sync_weight > 0
                       else (None, "disabled"))
    model, history = train_speech_motion(cfg, train, run.device, syncnet, should_stop=None)
    return TrainedModel(model, history, cfg, train, held_out, {"syncnet": source})


def train_ldm(run: TrainingRun) -> TrainedModel:
    train, held_out = run.mead()
    run.require(train, "mead")
    cfg = common_options(training.LDMTrainConfig(), run.args)
    cfg.lip_weight = float(run.args.lip_weight)
    model, history = training.train_ldm(cfg, train, run.device, identity_clips=run.identity_clips)
    return TrainedModel(model, history, cfg, train, held_out)


def train_emotion_classifier(run: TrainingRun) -> TrainedModel:
    train, held_out = run.mead()
    run.require(train, "mead")
    cfg = common_options(training.EmotionTrainConfig(), run.args)
    model, history = training.train_emotion_classifier(cfg, train, run.device, identity_clips=run.identity_clips)
    return TrainedModel(model, history, cfg, train, held_out)
