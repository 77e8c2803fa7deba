"""Command-line options shared by ``emogene train syncnet|audio2motion|ldm|emotion`` (cheap to import)."""
from __future__ import annotations

import argparse

from backend.device import add_device_argument

DEFAULT_TRACKS = "cache/tracks"
DEFAULT_OUT = "cache/runs/motion"


def add_training_arguments(parser: argparse.ArgumentParser, default_steps: int) -> None:
    parser.add_argument("--tracks", default=DEFAULT_TRACKS,
                        help=f"folder of track files from `emogene prepare` (default {DEFAULT_TRACKS})")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"folder for the checkpoint (<model>.safetensors + .json) and loss curve (default {DEFAULT_OUT})")
    parser.add_argument("--steps", type=int, default=default_steps, help=f"optimiser steps (default {default_steps})")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the model's training config)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (one-cycle schedule)")
    parser.add_argument("--seed", type=int, default=0)
    add_device_argument(parser)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (default 1: small models, and a shared CPU slows threads down)")
    parser.add_argument("--all-data", action="store_true",
                        help="train on held-out clips too (no honest evaluation afterwards)")
