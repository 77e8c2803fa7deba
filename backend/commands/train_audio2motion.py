"""Train the audio-to-motion model (log-mel -> neutral landmarks) on lip-sync tracks (optionally SyncNet-guided).

Writes <out>/audio2motion.safetensors + .json and <out>/audio2motion_loss.png.
The SyncNet comes from --syncnet, else <out>/syncnet, else the shipped one.
"""
from __future__ import annotations

from backend.motion.cli_args import add_training_arguments


def add_arguments(parser):
    add_training_arguments(parser, default_steps=1500)
    parser.add_argument("--syncnet", default=None, help="SyncNet checkpoint stem for the lip-sync loss")
    parser.add_argument("--sync-weight", type=float, default=0.0, help="weight of the SyncNet loss (0 disables)")


def run(args):
    from backend.motion.train_runner import run_training
    run_training("audio2motion", args)
    return 0
