#!/usr/bin/env bash
# A venv with an older Blender as a module at cache/bpyXY/ (Blender X.Y's bpy, cp311, numpy 1.x as Blender
# bundles it, pyzmq as in the extension's wheels), so the add-on's compat layer is tested on it.
#   bash scripts/setup_bpy_venv.sh 4.2 4.2.23     (what scripts/setup_bpy42.sh runs)
set -euo pipefail
cd "$(dirname "$0")/.."
short=$1
bpy_version=$2
dir=cache/bpy${short//./}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if "$dir"/bin/python -c "import bpy, sys, zmq; assert '%d.%d' % bpy.app.version[:2] == sys.argv[1]" "$short" 2>/dev/null; then
  exit 0
fi
rm -rf "$dir"
"$PY" -m venv "$dir"
"$dir"/bin/python -m pip install -q "bpy==$bpy_version" "numpy==1.26.4" "pyzmq>=26,<28"
