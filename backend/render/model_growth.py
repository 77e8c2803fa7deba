"""Start a grown subject NeRF from a smaller one's weights without changing what it renders.

Growths handled: an MLP made wider (each ``nn.Linear`` whose rows and/or columns grew) and
parameters the old model lacks that are zero-initialised (``ConditionedField.gate``). The old
weights fill the top-left block of each grown matrix; the columns that read the new hidden units
are zeroed in the old units' rows, so old units compute exactly what they did and the new units,
which do read every input, reach the output only through weights that start at zero. Training
then uses the new capacity from an unchanged starting picture (Net2Net's function-preserving
widening, in its simplest form)."""
from __future__ import annotations

import torch
from torch import nn


def grow_state_into(model: nn.Module, old_state: dict[str, torch.Tensor]) -> list[str]:
    """Copy ``old_state`` into ``model`` (in place), growing wider Linear layers; returns the names
    of the parameters grown or left at their initialisation. Raises ``ValueError`` for a tensor that
    shrank or changed shape outside a Linear layer (e.g. a hash table), one the new model lacks, or
    a new one that is not zero-initialised."""
    new_state = model.state_dict()
    unknown = sorted(set(old_state) - set(new_state))
    if unknown:
        raise ValueError(f"the checkpoint has tensors the model lacks: {', '.join(unknown[:5])}")
    linear_params = {f"{m}.{p}" for m, mod in model.named_modules() if isinstance(mod, nn.Linear)
                     for p in ("weight", "bias")}
    changed: list[str] = []
    merged: dict[str, torch.Tensor] = {}
    for name, target in new_state.items():
        if name not in old_state:
            if target.is_floating_point() and target.abs().max() > 0:
                raise ValueError(f"{name} is new and not zero-initialised: the grown model would render differently")
            merged[name] = target
            changed.append(name)
            continue
        old = old_state[name].to(target)
        if old.shape == target.shape:
            merged[name] = old
            continue
        if (name not in linear_params or old.dim() != target.dim()
                or any(o > n for o, n in zip(old.shape, target.shape))):
            raise ValueError(f"{name}: checkpoint shape {tuple(old.shape)} does not grow into {tuple(target.shape)}")
        grown = target.clone()
        if old.dim() == 2:   # a Linear's weight: old units keep reading only old inputs
            grown[: old.shape[0], old.shape[1]:] = 0
        grown[tuple(slice(0, n) for n in old.shape)] = old
        merged[name] = grown
        changed.append(name)
    _check_outputs_kept(model, old_state, merged)
    model.load_state_dict(merged, strict=True)
    return changed


def _check_outputs_kept(model: nn.Module, old_state: dict[str, torch.Tensor], merged: dict[str, torch.Tensor]) -> None:
    """New hidden units are harmless only while every consumer reads them with zeros: refuse an MLP whose
    last Linear gained rows (outputs), which nothing downstream would read with zeros."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            linears = [f"{name}.{i}.weight" for i, m in enumerate(module) if isinstance(m, nn.Linear)]
            if linears and linears[-1] in old_state and old_state[linears[-1]].shape[0] != merged[linears[-1]].shape[0]:
                raise ValueError(f"{linears[-1]}: an MLP's output grew: the grown model would render differently")


def load_grown_checkpoint(stem, model: nn.Module, *, kind: str, version: int,
                          device: torch.device | str = "cpu") -> list[str]:
    """``load_checkpoint`` for a start point: the weights load strictly when they fit ``model``,
    and grow into it (``grow_state_into``) when it is a wider / gated version; returns what grew."""
    from backend.checkpoints import CheckpointError, read_checkpoint_state

    old_state, _ = read_checkpoint_state(stem, kind=kind, version=version, device=device)
    try:
        return grow_state_into(model, old_state)
    except ValueError as exc:
        raise CheckpointError(f"{stem} cannot start {type(model).__name__}: {exc}") from exc
