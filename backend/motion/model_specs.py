"""The one table of motion models. Each row drives ``emogene train <target>`` (its options),
the trainer that ``train_runner`` calls, and how ``model_io`` saves and rebuilds the checkpoint.

Adding a model = one :class:`MotionModelSpec` row here + its own module (the ``nn.Module`` with
``KIND`` and ``VERSION``, its config dataclass, and a recipe function that trains it, see
``train_recipes.py``). Cheap to import (no torch): the CLI reads it to build ``--help``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainOption:
    """One extra ``emogene train <target>`` option (argparse ``add_argument`` keywords)."""
    flag: str
    type: type
    default: Any
    help: str


@dataclass(frozen=True)
class MotionModelSpec:
    target: str            # emogene train <target>
    stem: str              # checkpoint file stem in a models folder (<stem>.safetensors + .json)
    model: str             # "module:Class" of the nn.Module; the module defines KIND and VERSION
    config: str            # "module:Class" of the model's config dataclass
    recipe: str            # "module:function" (TrainingRun) -> TrainedModel, see train_recipes.py
    help: str              # one line for `emogene train --help`
    about: str             # what training does (the target's --help description)
    default_steps: int
    options: tuple[TrainOption, ...] = ()
    #: older stored versions this code still reads: version -> ("module:Class", "module:ConfigClass")
    legacy: dict[int, tuple[str, str]] = field(default_factory=dict)


def resolve(target: str) -> Any:
    """The object a ``"module:name"`` reference names (imports the module)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


MOTION_MODELS: tuple[MotionModelSpec, ...] = (
    MotionModelSpec(
        "syncnet", "syncnet", "backend.motion.syncnet:LandmarkSyncNet", "backend.motion.syncnet:SyncNetConfig",
        "backend.motion.train_recipes:train_syncnet", "landmark SyncNet (lip-sync expert and metric)",
        "Train the landmark SyncNet (audio window <-> mouth window, contrastive) on talking tracks with audio.",
        default_steps=1500),
    MotionModelSpec(
        "audio2motion", "audio2motion", "backend.motion.speech_motion:SpeechMotionModel",
        "backend.motion.speech_motion:SpeechMotionConfig", "backend.motion.train_recipes:train_audio2motion",
        "audio-to-motion model (neutral landmarks from speech)",
        "Train the audio-to-motion model (log-mel -> neutral landmarks) on lip-sync tracks (optionally "
        "SyncNet-guided).\nThe SyncNet comes from --syncnet, else <out>/syncnet, else the shipped one.",
        default_steps=1500,
        options=(TrainOption("--syncnet", str, None, "SyncNet checkpoint stem for the lip-sync loss"),
                 TrainOption("--sync-weight", float, 0.0, "weight of the SyncNet loss (0 disables)")),
        legacy={2: ("backend.motion.audio2motion:Audio2MotionVAE", "backend.motion.audio2motion:Audio2MotionConfig")}),
    MotionModelSpec(
        "ldm", "ldm", "backend.motion.ldm:LandmarkDeformationModel", "backend.motion.ldm:LDMConfig",
        "backend.motion.train_recipes:train_ldm", "landmark deformation model (neutral -> emotional)",
        "Train the landmark deformation model (neutral -> emotional) on MEAD tracks.",
        default_steps=1500,
        options=(TrainOption("--lip-weight", float, 1.0,
                             "weight of the term keeping mouth opening at the neutral input's (0 disables)"),)),
    MotionModelSpec(
        "emotion", "emotion_classifier", "backend.motion.emotion_classifier:EmotionClassifier",
        "backend.motion.emotion_classifier:EmotionClassifierConfig",
        "backend.motion.train_recipes:train_emotion_classifier", "emotion classifier on landmark sequences",
        "Train the emotion classifier on MEAD landmark windows (the \"emotion score\" metric).",
        default_steps=800),
)

BY_TARGET: dict[str, MotionModelSpec] = {spec.target: spec for spec in MOTION_MODELS}
BY_STEM: dict[str, MotionModelSpec] = {spec.stem: spec for spec in MOTION_MODELS}
