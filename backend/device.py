"""The one place that decides which torch device the backend computes on, and the one
``--device`` option every command declares (cheap to import: torch loads only to resolve)."""
from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: what every command's --device defaults to: CUDA when torch sees one, else CPU
DEFAULT_DEVICE = "auto"
_DEVICE_NAME = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def device_name(value: str) -> str:
    """argparse type of ``--device``: auto, cpu, cuda or cuda:N (lower-cased)."""
    name = (value or "").strip().lower()
    if not _DEVICE_NAME.match(name):
        raise argparse.ArgumentTypeError(f"unknown device {value!r}; use auto, cpu, cuda or cuda:N")
    return name


def add_device_argument(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--device`` (default :data:`DEFAULT_DEVICE`), resolved later by :func:`resolve_device`."""
    parser.add_argument("--device", type=device_name, default=DEFAULT_DEVICE,
                        help=help or f"torch device: auto (CUDA when present, else CPU), cpu, cuda or cuda:N "
                                     f"(default {DEFAULT_DEVICE})")


def resolve_device(requested: str = DEFAULT_DEVICE) -> "torch.device":
    """``auto`` picks CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    import torch

    requested = (requested or DEFAULT_DEVICE).lower()
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}; use auto, cpu or cuda")
    return torch.device(requested)
