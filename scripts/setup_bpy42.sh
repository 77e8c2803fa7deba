#!/usr/bin/env bash
# A third venv with Blender 4.2 LTS as a module (bpy 4.2.23, cp311) at cache/bpy42/, so the add-on's
# compat layer is tested on the oldest Blender it supports (tests/test_addon_bpy42.py skips without it).
# Blender 4.2 bundles numpy 1.x; pyzmq as in the extension's wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if cache/bpy42/bin/python -c "import bpy, zmq; assert bpy.app.version[:2] == (4, 2)" 2>/dev/null; then
  exit 0
fi
rm -rf cache/bpy42
"$PY" -m venv cache/bpy42
cache/bpy42/bin/python -m pip install -q "bpy==4.2.23" "numpy==1.26.4" "pyzmq>=26,<28"
