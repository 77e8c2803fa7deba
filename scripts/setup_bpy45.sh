#!/usr/bin/env bash
# Blender 4.5 LTS as a module (bpy 4.5.15) at cache/bpy45/, so the add-on's compat layer is tested on 4.x too
# (tests/test_addon_bpy45.py skips without it).
exec bash "$(dirname "$0")/setup_bpy_venv.sh" 4.5 4.5.15
