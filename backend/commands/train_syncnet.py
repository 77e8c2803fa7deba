"""Train the landmark SyncNet (audio window <-> mouth window, contrastive) on talking tracks with audio.

Writes <out>/syncnet.safetensors + .json and <out>/syncnet_loss.png.
"""
from __future__ import annotations

from backend.motion.cli_args import add_training_arguments


def add_arguments(parser):
    add_training_arguments(parser, default_steps=1500)


def run(args):
    from backend.motion.train_runner import run_training
    run_training("syncnet", args)
    return 0
