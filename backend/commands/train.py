"""Train a model on prepared tracks: ``emogene train TARGET [options]``.

The motion targets come from ``backend.motion.model_specs`` (one row per model); ``subject``
(a person's NeRF) is ``train_subject.py``.
"""
from __future__ import annotations

import argparse

from backend.commands._targets import add_target_modules, target_subparsers
from backend.motion import model_specs

#: targets that are not motion models: target -> help (module backend.commands.train_<target>)
OTHER_TARGETS = {
    "subject": "head + torso NeRF of one prepared subject",
}


def _add_motion_target(sub, spec: model_specs.MotionModelSpec) -> None:
    from backend.motion.cli_args import add_training_arguments
    about = (f"{spec.about}\n\nWrites <out>/{spec.stem}.safetensors + .json and <out>/{spec.stem}_loss.png.")
    parser = sub.add_parser(spec.target, help=spec.help, description=about,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, default_steps=spec.default_steps)
    for option in spec.options:
        parser.add_argument(option.flag, type=option.type, default=option.default, help=option.help)
    parser.set_defaults(_run=lambda args, target=spec.target: _train_motion(target, args))


def _train_motion(target: str, args) -> int:
    from backend.motion.train_runner import run_training
    run_training(target, args)
    return 0


def add_arguments(parser):
    sub = target_subparsers(parser)
    for spec in model_specs.MOTION_MODELS:
        _add_motion_target(sub, spec)
    add_target_modules(sub, "train", OTHER_TARGETS)


def run(args):
    return args._run(args)
