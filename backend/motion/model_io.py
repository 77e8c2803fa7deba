"""Saving and loading the four motion models as checkpoints (``backend.checkpoints``: kind + version checked).

A model's JSON holds its own config (enough to rebuild the module), the training
config and whatever the trainer adds (data, steps, metrics). File stems inside a
models folder are fixed: ``syncnet``, ``audio2motion``, ``ldm``, ``emotion_classifier``.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from backend.checkpoints import CheckpointError, load_checkpoint, read_checkpoint_meta, save_checkpoint
from backend.motion import audio2motion, emotion_classifier, ldm, speech_motion, syncnet

SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "assets" / "models"

#: stem -> (module class, config class, kind, version)
MODEL_SPECS: dict[str, tuple[type, type, str, int]] = {
    "syncnet": (syncnet.LandmarkSyncNet, syncnet.SyncNetConfig, syncnet.KIND, syncnet.VERSION),
    "audio2motion": (speech_motion.SpeechMotionModel, speech_motion.SpeechMotionConfig, speech_motion.KIND,
                     speech_motion.VERSION),
    "ldm": (ldm.LandmarkDeformationModel, ldm.LDMConfig, ldm.KIND, ldm.VERSION),
    "emotion_classifier": (emotion_classifier.EmotionClassifier, emotion_classifier.EmotionClassifierConfig,
                           emotion_classifier.KIND, emotion_classifier.VERSION),
}


#: stem -> {older version: (module class, config class)} still readable (the model shipped before, for comparisons)
LEGACY_SPECS: dict[str, dict[int, tuple[type, type]]] = {
    "audio2motion": {2: (audio2motion.Audio2MotionVAE, audio2motion.Audio2MotionConfig)},
}


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
    _, _, kind, version = MODEL_SPECS[stem]
    return save_checkpoint(Path(folder) / stem, model, kind=kind, version=version, config=model.config,
                           extra=extra)


def load_model(folder_or_stem: str | Path, stem: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """Rebuild a model from ``<folder>/<stem>.json`` and load its weights; :class:`CheckpointError` if unusable."""
    cls, config_cls, kind, version = MODEL_SPECS[stem]
    path = Path(folder_or_stem)
    path = path / stem if path.is_dir() else path
    stored = _stored_version(path)
    if stored in LEGACY_SPECS.get(stem, {}):
        (cls, config_cls), version = LEGACY_SPECS[stem][stored], stored
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
    ldm: ldm.LandmarkDeformationModel
    syncnet: syncnet.LandmarkSyncNet | None = None
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
