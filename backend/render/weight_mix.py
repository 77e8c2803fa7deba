"""Weight-space mix of two NeRFs of one subject, one fine-tuned from the other.

A rare-mouth fine-tune (frame_weights.py) draws pressed lips better but fits the common frames a
little worse. Its weights stay close to the base model's (same start, a short run at a low learning
rate), so a convex mix of the two lies between them on both: ``alpha`` of the tuned model, ``1 - alpha``
of the base. ``parts="head"`` mixes only the head field (the part that draws the mouth); the torso
field stays the base's. Occupancy grids are not weights: the mix keeps the union of both models'
occupied cells (density maximum), so no cell either model draws is skipped.
"""
from __future__ import annotations

import torch

PARTS = ("all", "head")


def _mixed(key: str, parts: str) -> bool:
    return parts == "all" or key.startswith("head_")


def mix_state_dicts(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float,
                    parts: str = "all") -> dict[str, torch.Tensor]:
    """``(1 - alpha) * base + alpha * tuned`` for the float weights of ``parts``; occupancy grids of
    ``parts`` united; everything else (code and pose banks, boxes, counters) from ``base``."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"weight mix needs 0 <= alpha <= 1, got {alpha}")
    if parts not in PARTS:
        raise ValueError(f"weight mix parts must be one of {PARTS}, got {parts!r}")
    if set(base) != set(tuned):
        raise ValueError(f"weight mix needs the same tensors in both models; differ: {sorted(set(base) ^ set(tuned))}")
    out = {}
    for key, a in base.items():
        b = tuned[key]
        if a.shape != b.shape:
            raise ValueError(f"weight mix: {key} has shape {tuple(a.shape)} vs {tuple(b.shape)}")
        if not _mixed(key, parts):
            out[key] = a.clone()
        elif key.endswith(".occupied"):
            out[key] = a | b
        elif key.endswith("grid.density"):
            out[key] = torch.maximum(a, b)
        elif a.is_floating_point() and (key.startswith("head_field.") or key.startswith("torso_field.")):
            out[key] = (1.0 - alpha) * a + alpha * b
        else:
            out[key] = a.clone()
    return out
