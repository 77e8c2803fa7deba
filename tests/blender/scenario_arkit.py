"""Scenario: a take from a real backend drives a mesh's ARKit shape keys; ARKit CSV/JSON export.

    python scenario_arkit.py ZIP ADDRESS AUDIO OUT_DIR FRAMES
Prints ``RESULT {json}``; any failed assertion exits non-zero.
"""
from __future__ import annotations

import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (imports bpy)

import bpy  # noqa: E402
import numpy as np  # noqa: E402

zip_path, address, audio, out_dir, frames = sys.argv[1:6]
frames = int(frames)
os.makedirs(out_dir, exist_ok=True)
addon = harness.install_addon(zip_path)
compat = harness.submodule(addon, "compat")
shape_keys = harness.submodule(addon, "operators.shape_keys")
arkit_curves = harness.submodule(addon, "exporters.arkit_curves")
names = importlib.import_module(f"{addon.__name__}.bridge.arkit_names")
files = importlib.import_module(f"{addon.__name__}.bridge.live_link_face")
prefs = harness.preferences(addon)
prefs.backend_address = address
prefs.connect_timeout = 20.0
prefs.silence_timeout = 60.0
result = {}

assert bpy.ops.emogene.connect() == {"FINISHED"}
scene, _ = harness.speech_scene(audio, frames, strip_start=11)
first, last = 11, 10 + frames
expected_frames = list(range(first, last + 1))
scene.emogene.output = "LANDMARKS"
scene.emogene.use_subject_camera = True
bpy.ops.emogene.key_emotion(emotion="happy", weight=0.8, frame=first)


def generate_once() -> None:
    assert bpy.ops.emogene.generate() == {"FINISHED"}
    harness.pump(addon)
    assert scene.emogene.job_state == "DONE", (scene.emogene.job_state, scene.emogene.status)


generate_once()

# a character mesh made here: a quad with shape keys in the spellings rigs use, plus two that are no ARKit shape
mesh = bpy.data.meshes.new("FaceMesh")
mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1)], [], [(0, 1, 2, 3)])
face = bpy.data.objects.new("Face", mesh)
scene.collection.objects.link(face)
KEYS = {"Basis": None, "eyeBlinkLeft": "eyeBlinkLeft", "EyeBlink_R": "eyeBlinkRight", "bs_jawOpen": "jawOpen",
        "ARKit_mouthSmile_L": "mouthSmileLeft", "mouthSmileRight": "mouthSmileRight",
        "blendShape1.browInnerUp": "browInnerUp", "tongue_out": "tongueOut", "myCustomShape": None,
        "Frown": None}
for key_name in KEYS:
    block = face.shape_key_add(name=key_name)
    block.data[2].co.z += 0.1
key = mesh.shape_keys
# the user's own animation on the keys, which the add-on must not destroy
user_action = bpy.data.actions.new("UserFaceAnim")
key.animation_data_create().action = user_action

op_class = bpy.types.Operator.bl_rna_get_subclass_py("EMOGENE_OT_drive_shape_keys")
assert {"REGISTER", "UNDO"} <= set(op_class.bl_options), op_class.bl_options


def keyed_values(key_name: str) -> np.ndarray:
    fcurve = compat.find_fcurve(key, f'key_blocks["{key_name}"].value')
    assert fcurve is not None, key_name
    keyed = [int(round(k.co[0])) for k in fcurve.keyframe_points]
    assert keyed == expected_frames, (key_name, keyed[:3], keyed[-3:], len(keyed))
    return np.array([k.co[1] for k in fcurve.keyframe_points])


def drive() -> dict:
    assert bpy.ops.emogene.drive_shape_keys(target=face.name) == {"FINISHED"}
    out = dict(shape_keys.LAST_RESULT)
    expected = {k: v for k, v in KEYS.items() if v}
    assert out["matched"] == expected, out["matched"]
    assert sorted(out["unmatched"]) == ["Frown", "myCustomShape"], out["unmatched"]
    assert len(out["missing"]) == 52 - len(expected)
    ours = [a for a in bpy.data.actions if a.get(shape_keys.ACTION_PROP)]
    assert len(ours) == 1 and key.animation_data.action == ours[0], [a.name for a in ours]
    assert len(compat.id_fcurves(key)) == len(expected)
    return out


first_run = drive()
assert first_run["kept_action"] == "UserFaceAnim" and bpy.data.actions.get("UserFaceAnim").use_fake_user
take = arkit_curves.solve_take(scene)
jaw = names.ARKIT_INDEX["jawOpen"]
before = keyed_values("bs_jawOpen")
np.testing.assert_allclose(before, take.weights[:, jaw], atol=1e-6)
for key_name, arkit_name in first_run["matched"].items():
    values = keyed_values(key_name)
    assert values.min() >= 0 and values.max() <= 1, key_name
assert not keyed_values("tongue_out").any()     # not observable from landmarks: keyed at 0
smile = keyed_values("ARKit_mouthSmile_L")
result["first"] = {"jaw_mean": float(before.mean()), "smile_mean": float(smile.mean()),
                   "blink_max": float(keyed_values("eyeBlinkLeft").max())}

# an animator opens the mouth on frames first+10..first+19 (jaw and lower lip Empties down 15 mm):
# re-driving replaces the keys, and jawOpen follows the edit
edited = range(first + 10, first + 20)
for name in ["jaw_06", "jaw_07", "jaw_08", "jaw_09", "jaw_10", "lip_outer_07", "lip_outer_08", "lip_outer_09",
             "lip_outer_10", "lip_outer_11", "lip_inner_5", "lip_inner_6", "lip_inner_7"]:
    fcurve = compat.find_fcurve(bpy.data.objects[f"EG_{name}"], "location", 2)
    for point in fcurve.keyframe_points:
        if int(round(point.co[0])) in edited:
            point.co[1] -= 0.015
    fcurve.update()
second_run = drive()
after = keyed_values("bs_jawOpen")
idx = np.array([f - first for f in edited])
result["jaw_open_edit_gain"] = float(after[idx].mean() - before[idx].mean())
assert result["jaw_open_edit_gain"] > 0.2, result["jaw_open_edit_gain"]

# ARKit export of the edited curves: Live Link Face columns, one row per frame, the keyed values
for fmt, ext in (("ARKIT_CSV", ".csv"), ("ARKIT_JSON", ".json")):
    path = os.path.join(out_dir, f"arkit{ext}")
    assert bpy.ops.emogene.export_landmarks(filepath=path, file_format=fmt) == {"FINISHED"}
header, codes, values = files.read_csv(os.path.join(out_dir, "arkit.csv"))
assert tuple(header) == names.LIVE_LINK_FACE_HEADER, header[:5]
assert len(codes) == frames and codes[0] == files.timecode(first, 25), codes[:2]
np.testing.assert_allclose(values[:, jaw], after, atol=1e-5)
with open(os.path.join(out_dir, "arkit.json")) as fh:
    doc = json.load(fh)
assert doc["frames"] == expected_frames and len(doc["weights"]) == frames

# regenerating gives a new take; driving again replaces the keys for it
scene.emogene.seed += 1
generate_once()
third_run = drive()
keyed_values("bs_jawOpen")
result["regenerated_action"] = third_run["action"]

# meshes the operator cannot drive are reported, nothing breaks
plain = bpy.data.objects.new("Plain", bpy.data.meshes.new("Plain"))
scene.collection.objects.link(plain)


def refused(target: str) -> str:
    """An ERROR report: scripts see it as RuntimeError (the UI shows it in the status bar)."""
    try:
        bpy.ops.emogene.drive_shape_keys(target=target)
    except RuntimeError as exc:
        return str(exc)
    raise AssertionError(f"driving {target} should have been refused")


assert "not a mesh with shape keys" in refused(plain.name)
plain.shape_key_add(name="Basis")
plain.shape_key_add(name="Wobble")
assert "has an ARKit name" in refused(plain.name)
assert plain.data.shape_keys.animation_data is None

result.update(matched=len(first_run["matched"]), unmatched=first_run["unmatched"],
              header=list(header[:4]), frames=frames)
harness.emit(result)
