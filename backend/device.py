"""The one place that decides which torch device the backend computes on."""
from __future__ import annotations

import torch


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    requested = (requested or "auto").lower()
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}; use auto, cpu or cuda")
    return torch.device(requested)
