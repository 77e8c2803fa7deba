#!/usr/bin/env bash
# A second venv with Blender 4.5 LTS as a module (bpy 4.5.15, cp311) at cache/bpy45/, so the
# add-on's compat layer is tested on 4.x too (tests/test_addon_bpy45.py skips without it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if cache/bpy45/bin/python -c "import bpy, zmq; assert bpy.app.version[:2] == (4, 5)" 2>/dev/null; then
  exit 0
fi
rm -rf cache/bpy45
"$PY" -m venv cache/bpy45
cache/bpy45/bin/python -m pip install -q "bpy==4.5.15" "numpy==1.26.4" "pyzmq>=26,<28"
