"""Shared helper for commands with targets (``train X``, ``eval X``)."""
from __future__ import annotations

import argparse
import importlib


def add_targets(parser: argparse.ArgumentParser, prefix: str, targets: dict[str, str]):
    """Add one sub-parser per target; target modules are ``backend.commands.<prefix>_<target>``.
    Returns the sub-parsers (a command may add targets of its own, e.g. ``train``'s motion models)."""
    sub = target_subparsers(parser)
    add_target_modules(sub, prefix, targets)
    return sub


def target_subparsers(parser: argparse.ArgumentParser):
    return parser.add_subparsers(dest="target", metavar="TARGET", required=True)


def add_target_modules(sub, prefix: str, targets: dict[str, str]) -> None:
    """One sub-parser per target, from the module ``backend.commands.<prefix>_<target>``."""
    for target, help_text in targets.items():
        module_name = f"backend.commands.{prefix}_{target.replace('-', '_')}"
        try:
            mod = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            missing = sub.add_parser(target, help=f"{help_text} (not available in this build)")
            missing.set_defaults(_run=_unavailable(f"{prefix} {target}"))
            continue
        p = sub.add_parser(target, help=help_text, description=(mod.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)


def _unavailable(name: str):
    def run(_args) -> int:
        print(f"emogene {name}: not available in this build", flush=True)
        return 2
    return run
