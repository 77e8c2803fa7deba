"""Train the landmark deformation model (neutral -> emotional) on MEAD tracks.

Pairs each emotional frame with the same speaker's neutral frame of most similar
mouth opening. Writes <out>/ldm.safetensors + .json and <out>/ldm_loss.png.
"""
from __future__ import annotations

from backend.motion.cli_args import add_training_arguments


def add_arguments(parser):
    add_training_arguments(parser, default_steps=1500)
    parser.add_argument("--lip-weight", type=float, default=1.0,
                        help="weight of the term keeping mouth opening at the neutral input's (0 disables)")


def run(args):
    from backend.motion.train_runner import run_training
    run_training("ldm", args)
    return 0
