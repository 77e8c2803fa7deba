"""Train a model on prepared tracks: ``emogene train TARGET [options]``."""
from __future__ import annotations

from backend.commands._targets import add_targets

TARGETS = {
    "syncnet": "landmark SyncNet (lip-sync expert and metric)",
    "audio2motion": "audio-to-motion VAE (neutral landmarks from speech)",
    "ldm": "landmark deformation model (neutral -> emotional)",
    "emotion": "emotion classifier on landmark sequences",
    "subject": "head + torso NeRF of one prepared subject",
}


def add_arguments(parser):
    add_targets(parser, "train", TARGETS)


def run(args):
    return args._run(args)
