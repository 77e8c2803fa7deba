"""Saving and loading the motion models as checkpoints (``backend.checkpoints``: kind + version checked).

A model's JSON holds its own config (enough to rebuild the module), the training
config and whatever the trainer adds (data, steps, metrics). Which class, config, kind,
version and file stem each model has comes from its row in ``model_specs.MOTION_MODELS``.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from backend.checkpoints import CheckpointError, load_checkpoint, read_checkpoint_meta, save_checkpoint
from backend.motion import emotion_classifier, speech_motion
from backend.motion.emotion_deformer import EmotionDeformer
from backend.motion.model_specs import BY_STEM, resolve
from backend.motion.syncnet import LandmarkSyncNet

SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "assets" / "models"


def model_spec(stem: str, version: int | None = None) -> tuple[type, type, str, int]:
    """(module class, config class, kind, version) of the model stored as ``stem`` (a row of
    ``model_specs``); ``version`` picks an older stored version the row still reads."""
    if stem not in BY_STEM:
        raise KeyError(f"unknown motion model {stem!r}; known: {', '.join(BY_STEM)}")
    spec = BY_STEM[stem]
    cls = resolve(spec.model)
    module = importlib.import_module(cls.__module__)
    if version is not None and version in spec.legacy:
        legacy_model, legacy_config = spec.legacy[version]
        return resolve(legacy_model), resolve(legacy_config), module.KIND, version
    return cls, resolve(spec.config), module.KIND, module.VERSION


def _stored_version(path: Path) -> int | None:
    try:
        return int(json.loads(path.with_suffix(".json").read_text()).get("version"))
    except (OSError, ValueError, TypeError):
        return None


def _config_from_dict(config_cls: type, values: dict) -> Any:
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    kwargs = {}
    for k, v in (values or {}).items():
        if k in fields:
            kwargs[k] = tuple(v) if isinstance(v, list) else v
    return config_cls(**kwargs)


def save_model(model: torch.nn.Module, folder: str | Path, stem: str, extra: dict | None = None) -> Path:
    _, _, kind, version = model_spec(stem)
    return save_checkpoint(Path(folder) / stem, model, kind=kind, version=version, config=model.config,
                           extra=extra)


def load_model(folder_or_stem: str | Path, stem: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """Rebuild a model from ``<folder>/<stem>.json`` and load its weights; :class:`CheckpointError` if unusable."""
    path = Path(folder_or_stem)
    path = path / stem if path.is_dir() else path
    cls, config_cls, kind, version = model_spec(stem, _stored_version(path))
    meta = read_checkpoint_meta(path, kind=kind, version=version)
    try:
        model = cls(_config_from_dict(config_cls, meta.get("config", {})))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}.json has a config this code cannot build: {exc}") from exc
    load_checkpoint(path, model, kind=kind, version=version, device=device)
    return model.to(device).eval()


@dataclass
class MotionModels:
    audio2motion: speech_motion.SpeechMotionModel
    ldm: EmotionDeformer                 # the shipped ldm.LandmarkDeformationModel, or any other deformer
    syncnet: LandmarkSyncNet | None = None
    emotion: emotion_classifier.EmotionClassifier | None = None
    folder: Path | None = None


_CACHE: dict[tuple[str, str], MotionModels] = {}
_LOCK = threading.Lock()


def load_motion_models(folder: str | Path | None = None, device: torch.device | str = "cpu",
                       with_metrics: bool = False) -> MotionModels:
    """The models in ``folder`` (default: the shipped ones), loaded once per (folder, device)."""
    folder = Path(folder or SHIPPED_MODELS).resolve()
    key = (str(folder), str(device))
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is None or (with_metrics and cached.syncnet is None):
            models = MotionModels(load_model(folder, "audio2motion", device), load_model(folder, "ldm", device),
                                  folder=folder)
            if with_metrics:
                models.syncnet = load_model(folder, "syncnet", device)
                models.emotion = load_model(folder, "emotion_classifier", device)
            _CACHE[key] = cached = models
    return cached


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()
