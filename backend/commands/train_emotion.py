"""Train the emotion classifier on MEAD landmark windows (the "emotion score" metric).

Writes <out>/emotion_classifier.safetensors + .json and <out>/emotion_classifier_loss.png.
"""
from __future__ import annotations

from backend.motion.cli_args import add_training_arguments


def add_arguments(parser):
    add_training_arguments(parser, default_steps=800)


def run(args):
    from backend.motion.train_runner import run_training
    run_training("emotion", args)
    return 0
