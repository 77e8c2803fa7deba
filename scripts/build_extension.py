"""Build the EmoGene Blender extension zip (same as ``emogene build-addon``).

    .venv/bin/python scripts/build_extension.py --out dist [--platforms linux-x64]
"""
from __future__ import annotations

import argparse
import sys

from backend.commands import build_addon


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=build_addon.__doc__.splitlines()[0])
    build_addon.add_arguments(parser)
    return build_addon.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
