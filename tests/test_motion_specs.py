"""One table of motion models drives the CLI, training and loading: every row resolves, and a new
model is one row plus its own module (shown here with a toy model defined in this file)."""
from __future__ import annotations

import dataclasses
import importlib

import torch

from backend.cli import build_parser, main as emogene
from backend.motion import model_specs
from backend.motion.model_io import load_model, model_spec
from backend.motion.model_specs import BY_STEM, BY_TARGET, MOTION_MODELS, MotionModelSpec, TrainOption, resolve
from backend.motion.synthetic import synthetic_dataset
from backend.motion.train_recipes import TrainedModel

KIND = "emogene.test_toy"
VERSION = 1


@dataclasses.dataclass
class ToyConfig:
    width: int = 3


class ToyModel(torch.nn.Module):
    def __init__(self, config: ToyConfig | None = None):
        super().__init__()
        self.config = config or ToyConfig()
        self.weight = torch.nn.Parameter(torch.zeros(self.config.width))


@dataclasses.dataclass
class ToyTrainConfig:
    steps: int = 1
    scale: float = 1.0


def train_toy(run) -> TrainedModel:
    train, held_out = run.talking()
    cfg = ToyTrainConfig(steps=run.args.steps, scale=run.args.scale)
    model = ToyModel(ToyConfig(width=4))
    with torch.no_grad():
        model.weight.fill_(cfg.scale * len(train))
    return TrainedModel(model, {"step": [0], "loss": [1.0]}, cfg, train, held_out)


TOY = MotionModelSpec("toy", "toy_model", f"{__name__}:ToyModel", f"{__name__}:ToyConfig", f"{__name__}:train_toy",
                      "a toy model", "Train the toy.", default_steps=7,
                      options=(TrainOption("--scale", float, 1.0, "weight per training clip"),))


def test_every_row_resolves_to_a_model_a_config_and_a_recipe():
    assert len({s.target for s in MOTION_MODELS}) == len({s.stem for s in MOTION_MODELS}) == len(MOTION_MODELS)
    train_targets = _subparsers(build_parser(), "train")
    for spec in MOTION_MODELS:
        cls, config_cls, kind, version = model_spec(spec.stem)
        assert issubclass(cls, torch.nn.Module) and dataclasses.is_dataclass(config_cls)
        module = importlib.import_module(cls.__module__)
        assert (kind, version) == (module.KIND, module.VERSION)
        assert callable(resolve(spec.recipe))
        assert spec.target in train_targets
        flags = {a for action in train_targets[spec.target]._actions for a in action.option_strings}
        assert {"--steps", "--device", "--tracks", *(o.flag for o in spec.options)} <= flags
        for version_, (legacy_model, legacy_config) in spec.legacy.items():
            assert model_spec(spec.stem, version_)[3] == version_ and resolve(legacy_model) and resolve(legacy_config)


def test_a_new_model_is_one_row_plus_its_module(tmp_path, monkeypatch):
    monkeypatch.setattr(model_specs, "MOTION_MODELS", (*MOTION_MODELS, TOY))
    monkeypatch.setitem(BY_TARGET, TOY.target, TOY)
    monkeypatch.setitem(BY_STEM, TOY.stem, TOY)
    tracks = synthetic_dataset(tmp_path / "tracks", talking=4, frames=120)
    out = tmp_path / "out"
    assert emogene(["train", "toy", "--tracks", str(tracks), "--out", str(out), "--scale", "0.5",
                    "--device", "cpu"]) == 0
    model = load_model(out, "toy_model")
    assert isinstance(model, ToyModel) and model.config.width == 4
    assert float(model.weight.detach()[0]) > 0 and (out / "toy_model_loss.png").is_file()
    assert "--scale" in _subparsers(build_parser(), "train")["toy"].format_help()


def _subparsers(parser, command):
    import argparse
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices
