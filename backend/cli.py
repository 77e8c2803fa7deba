"""The ``emogene`` command line: one entry point, one module per command.

Each command lives in ``backend/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Those modules must stay cheap
to import (heavy imports such as torch go inside ``run``) so ``--help`` is fast.
``train`` and ``eval`` have targets, each its own module
(``backend/commands/train_<target>.py``, ``eval_<target>.py``).
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: command name -> (module under backend.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run the backend server (ZeroMQ ROUTER)"),
    "ping": ("ping", "check that a backend answers"),
    "generate": ("generate", "send audio + emotions to a backend, write landmark tracks and plates"),
    "fetch": ("fetch", "get an earlier job's results (by its id and token) from a backend"),
    "keys": ("keys", "make CURVE key pairs that encrypt the bridge (serve --curve-secret, --server-key)"),
    "prepare": ("prepare", "extract landmark/pose/audio tracks from talking videos"),
    "prepare-subject": ("prepare_subject", "prepare one person's video for NeRF training"),
    "train": ("train", "train a model (syncnet, audio2motion, ldm, emotion, subject)"),
    "eval": ("eval", "evaluate models against baselines and write a report"),
    "demo": ("demo", "end-to-end demo on the embedded default subject"),
    "build-addon": ("build_addon", "build the Blender extension zip"),
}


def _load(module: str):
    return importlib.import_module(f"backend.commands.{module}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emogene", description="EmoGene for Blender: emotional talking heads from speech.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        try:
            mod = _load(module)
        except ModuleNotFoundError as exc:
            if exc.name != f"backend.commands.{module}":
                raise
            sub.add_parser(name, help=f"{help_text} (not available in this build)")
            continue
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
