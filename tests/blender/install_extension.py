"""Scenario (own process): install the built zip with Blender's own operator, check it is enabled.

    BLENDER_USER_RESOURCES=<tmp> python tests/blender/install_extension.py <zip>
"""
from __future__ import annotations

import json
import os
import sys

import bpy

zip_path = sys.argv[1]
assert os.environ.get("BLENDER_USER_RESOURCES"), "run with BLENDER_USER_RESOURCES pointing at a temp folder"
result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
assert result == {"FINISHED"}, result
enabled = sorted(bpy.context.preferences.addons.keys())
module = next((name for name in enabled if name.endswith(".emogene")), None)
assert module is not None, f"emogene not among enabled add-ons: {enabled}"
operators = {name: hasattr(bpy.types, cls) for name, cls in (
    ("generate", "EMOGENE_OT_generate"), ("cancel", "EMOGENE_OT_cancel"),
    ("key_emotion", "EMOGENE_OT_key_emotion"), ("export", "EMOGENE_OT_export_landmarks"),
    ("connect", "EMOGENE_OT_connect"))}
assert all(operators.values()), operators
# the vendored bridge is the one in use (not the repository's)
addon = sys.modules[module]
bridge_pkg = sys.modules[f"{module}.bridge_api"].BRIDGE_PACKAGE
assert bridge_pkg == f"{module}.bridge", bridge_pkg
# its Python files were installed under the temporary user folder
install_dir = os.path.dirname(addon.__file__)
assert install_dir.startswith(os.environ["BLENDER_USER_RESOURCES"]), install_dir
assert hasattr(bpy.types.Scene, "emogene_emotion")
bpy.ops.emogene.key_emotion(emotion="happy", weight=0.8, frame=5)
assert abs(bpy.context.scene.emogene_emotion.happy - 0.8) < 1e-6
print("RESULT " + json.dumps({"module": module, "install_dir": install_dir, "bridge": bridge_pkg, "operators": operators}))
