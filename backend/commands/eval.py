"""Evaluate against baselines: ``emogene eval motion|render|emotion|all``; ``all`` writes ``eval_report/``."""
from __future__ import annotations

from backend.commands._targets import add_targets

TARGETS = {
    "motion": "audio-to-motion, SyncNet, LDM, emotion and idle metrics on held-out tracks",
    "render": "PSNR / SSIM / mouth PSNR of the subject NeRF on held-out frames",
    "emotion": "is the keyed emotion on the plates? a judge trained on real MEAD video scores each subject's takes",
    "all": "every metric, written as a markdown report with plots",
}


def add_arguments(parser):
    add_targets(parser, "eval", TARGETS)


def run(args):
    return args._run(args)
