"""Scenario scripts that run Blender (bpy) in their own processes, and the pytest-side helpers."""
