"""A capture subject's own emotions: what its filmed emotional clips show, used in place of the LDM's fields.

The LDM (:mod:`ldm`) holds one displacement field per emotion learnt across MEAD speakers; it is what a
subject filmed talking neutrally gets. A subject captured in several emotions (``emogene prepare-subject`` on a
folder of labelled clips) has filmed how *it* shows each of them, and its NeRF was trained on exactly those
faces. For every emotion it was filmed in, its field is its own:

    field_k = (mean shape of its emotion-k clips - mean shape of its neutral clips) / intensity of the clips

(least squares over several clips of one emotion, intensity from the MEAD level, like the LDM's per-speaker
targets), with the inner-lip gaps kept (both lips of each inner pair move alike vertically, so lip sync is the
neutral track's, as with the LDM). Emotions it was not filmed in keep the LDM's field. A subject with no
neutral-labelled clip has no reference to measure from and keeps the LDM entirely.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from backend.motion.ldm import LandmarkDeformationModel
from bridge.emotions import EMOTIONS, level_intensity


def own_emotion_fields(landmarks: np.ndarray, segments: tuple[tuple[int, int], ...],
                       clips: list[dict]) -> dict[str, np.ndarray]:
    """Per filmed non-neutral emotion, its field ``[NUM_LANDMARKS, 3]`` at intensity 1 (module doc), from a capture
    session's ``track.npz`` landmarks ``[N, NUM_LANDMARKS, 3]``, its clip runs ``segments`` and ``clips`` (same
    order, ``emotion`` labels). ``{}`` when no clip is labelled neutral or the clips do not match the runs."""
    from backend.motion.ldm_training import preserve_inner_lips

    if not segments or len(segments) != len(clips):
        return {}
    means = [np.asarray(landmarks[a:b], np.float64).mean(0) for a, b in segments]
    neutral = [m for m, c in zip(means, clips) if c.get("emotion") == "neutral"]
    if not neutral:
        return {}
    reference = np.mean(neutral, axis=0)
    fields = {}
    for emotion in EMOTIONS[1:]:
        own = [(m, level_intensity(c.get("level"), 1.0)) for m, c in zip(means, clips) if c.get("emotion") == emotion]
        if own:
            field = sum(i * (m - reference) for m, i in own) / sum(i * i for _, i in own)
            fields[emotion] = preserve_inner_lips(field).astype(np.float32)
    return fields


def with_own_fields(ldm: LandmarkDeformationModel, fields: dict[str, np.ndarray]) -> LandmarkDeformationModel:
    """A copy of ``ldm`` whose field of each emotion in ``fields`` is replaced by it (``ldm`` itself when empty)."""
    if not fields:
        return ldm
    own = copy.deepcopy(ldm)
    for emotion, field in fields.items():
        own.fields[EMOTIONS.index(emotion) - 1] = torch.as_tensor(field, dtype=own.fields.dtype,
                                                                  device=own.fields.device)
    return own
