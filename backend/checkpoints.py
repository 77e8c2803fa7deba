"""Checkpoints: safetensors weights beside a JSON config naming the model kind and version.

``save_checkpoint(path_stem, module, kind=..., version=..., config=dataclass_or_dict, extra={})``
writes ``<stem>.safetensors`` and ``<stem>.json``. ``load_checkpoint`` refuses a file of
another kind or version with :class:`CheckpointError`, which names both.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


class CheckpointError(RuntimeError):
    """A checkpoint is missing, of the wrong kind/version, or does not fit the model."""


def _paths(stem: str | Path) -> tuple[Path, Path]:
    stem = Path(stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_checkpoint(stem: str | Path, module: torch.nn.Module, *, kind: str, version: int,
                    config: Any = None, extra: dict | None = None) -> Path:
    """Write weights and metadata; returns the .safetensors path."""
    weights_path, meta_path = _paths(stem)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(weights_path))
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    meta = {"kind": kind, "version": version, "config": config or {}, **(extra or {})}
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))
    return weights_path


def read_checkpoint_meta(stem: str | Path, *, kind: str, version: int) -> dict:
    """The JSON metadata, after checking kind and version."""
    weights_path, meta_path = _paths(stem)
    if not weights_path.exists() or not meta_path.exists():
        raise CheckpointError(f"checkpoint {weights_path.with_suffix('')} not found (need .safetensors and .json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("kind") != kind:
        raise CheckpointError(f"{meta_path} holds a {meta.get('kind')!r} checkpoint, expected {kind!r}")
    if meta.get("version") != version:
        raise CheckpointError(
            f"{meta_path} is {kind} version {meta.get('version')}, this code reads version {version}")
    return meta


def read_checkpoint_state(stem: str | Path, *, kind: str, version: int,
                          device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """The weights as a state dict and the metadata, after checking kind and version; loads nothing into a model."""
    meta = read_checkpoint_meta(stem, kind=kind, version=version)
    return load_file(str(_paths(stem)[0]), device=str(device)), meta


def load_checkpoint(stem: str | Path, module: torch.nn.Module, *, kind: str, version: int,
                    device: torch.device | str = "cpu") -> dict:
    """Load weights into ``module`` (strict) and return the metadata."""
    state, meta = read_checkpoint_state(stem, kind=kind, version=version, device=device)
    weights_path, _ = _paths(stem)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{weights_path} does not fit {type(module).__name__}: {exc}") from exc
    return meta
