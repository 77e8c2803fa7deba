#!/usr/bin/env bash
# Creates .venv/ in the repo root with everything the backend, the add-on tests
# and the dev tools need. Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && .venv/bin/python -c "import backend, bridge" 2>/dev/null; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned to the CPU wheel: otherwise a dependency pulls a multi-GB CUDA build.
# On a machine without the local CPU wheel, PyPI's torch==2.13.0 is the CUDA build, which a GPU box wants.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[backend,blender-tests,dev]"
# bpy's wheel is tagged cp39 although it is built for cp311, so pip check flags it
# as "not supported on this platform"; any other complaint fails the set-up.
if problems=$(.venv/bin/python -m pip check 2>&1 | grep -v '^bpy .* is not supported on this platform$' | grep -v '^No broken requirements found.$'); [ -n "$problems" ]; then
  echo "$problems" >&2; exit 1
fi
touch "$stamp"
