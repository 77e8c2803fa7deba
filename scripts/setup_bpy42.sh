#!/usr/bin/env bash
# Blender 4.2 LTS as a module (bpy 4.2.23) at cache/bpy42/: the oldest Blender the add-on supports
# (tests/test_addon_bpy42.py skips without it).
exec bash "$(dirname "$0")/setup_bpy_venv.sh" 4.2 4.2.23
