"""Scenario: key happy -> sad, Generate against a real backend, check the take, export, re-generate.

    python scenario_generate.py ZIP ADDRESS AUDIO OUT_DIR LANDMARKS|PLATES FRAMES [FPS FPS_BASE]
Prints ``RESULT {json}``; any failed assertion exits non-zero.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (imports bpy)

import bpy  # noqa: E402
import numpy as np  # noqa: E402

zip_path, address, audio, out_dir, output, frames = sys.argv[1:7]
frames = int(frames)
fps, fps_base = (int(sys.argv[7]), float(sys.argv[8])) if len(sys.argv) > 8 else (25, 1.0)
addon, prefs = harness.setup(zip_path, out_dir, address)
take_mod, compat, curves_mod = harness.submodules(addon, "importers.take", "compat", "exporters.landmark_curves")

result = {}
# Connect: the backend's version, device and subjects (picks the first subject when 'default' is not there)
assert bpy.ops.emogene.connect() == {"FINISHED"}
info = harness.submodule(addon, "preferences").CONNECTION_INFO
assert info["ok"] and info["device"] and info["protocol"] == 3, info
result["connect"] = {k: info[k] for k in ("version", "device", "subjects")}

# a saved .blend, so plates land under its folder with relative paths
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(out_dir, "scene.blend"))
scene, strip = harness.speech_scene(audio, frames, strip_start=11, fps=fps, fps_base=fps_base)
first, last = 11, 10 + frames
scene.emogene.output = output
if "flat_colours" in info["subjects"]:  # the stand-in renderer's subject, beside the shipped 'default'
    scene.emogene.subject = "flat_colours"
elif output == "PLATES":  # a real NeRF subject: a small plate keeps the CPU render short (1920x1080 is refused)
    scene.emogene.resolution_mode = "CUSTOM"
    scene.emogene.resolution_x, scene.emogene.resolution_y = 128, 96
scene.emogene.use_subject_camera = output == "LANDMARKS"
scene.emogene.use_camera_background = output == "PLATES"
bpy.ops.emogene.key_emotion(emotion="happy", weight=0.8, frame=first)
bpy.ops.emogene.key_emotion(emotion="sad", weight=0.8, frame=last)



def generate_once() -> None:
    assert bpy.ops.emogene.generate() == {"FINISHED"}
    assert scene.emogene.job_state == "RUNNING"
    result.setdefault("timer_calls", []).append(harness.pump(addon))
    assert scene.emogene.job_state == "DONE", (scene.emogene.job_state, scene.emogene.status)


generate_once()
take = take_mod.current_take(scene)
assert take is not None
objects = list(take.objects)
assert len(objects) == 69, len(objects)
head = [o for o in objects if o.get("emogene_role") == "head"]
landmarks = [o for o in objects if o.get("emogene_role") == "landmark"]
assert len(head) == 1 and len(landmarks) == 68
head = head[0]
assert head.parent == scene.emogene.anchor and all(o.parent == head for o in landmarks)
names = sorted(o.name for o in landmarks)
assert "EG_jaw_00" in names and "EG_lip_inner_7" in names and "EG_brow_l_4" in names, names[:5]
expected_frames = list(range(first, last + 1))
for obj in [head, *landmarks]:
    fcurves = compat.id_fcurves(obj)
    assert len(fcurves) == (6 if obj is head else 3), (obj.name, len(fcurves))
    for fc in fcurves:
        keyed = [int(round(k.co[0])) for k in fc.keyframe_points]
        assert keyed == expected_frames, (obj.name, fc.data_path, keyed[:3], keyed[-3:])
# the mouth moves with the speech: the lower lip's height varies over the take
lower_lip = bpy.data.objects["EG_lip_outer_09"]
z = np.array([compat.find_fcurve(lower_lip, "location", 2).evaluate(f) for f in expected_frames])
result["lower_lip_z_range_mm"] = float((z.max() - z.min()) * 1000)
assert z.max() - z.min() > 1e-4, "lower lip does not move"

# plates: strip above the sound at the right start and length, files on disk
image_strips = [s for s in compat.strips(scene.sequence_editor) if s.type == "IMAGE"]
if output == "PLATES":
    assert len(image_strips) == 1, image_strips
    plate_strip = image_strips[0]
    assert plate_strip.frame_final_start == first, plate_strip.frame_final_start
    assert plate_strip.frame_final_duration == frames, plate_strip.frame_final_duration
    assert plate_strip.channel > strip.channel
    assert plate_strip.colorspace_settings.name == "sRGB"
    assert plate_strip.directory.startswith("//emogene/"), plate_strip.directory
    folder = bpy.path.abspath(plate_strip.directory)
    files = sorted(os.listdir(folder))
    assert files == [f"frame_{f:06d}.png" for f in expected_frames], files[:3]
    result["plate_folder"] = folder
    backgrounds = list(scene.camera.data.background_images)
    assert len(backgrounds) == 1 and scene.camera.data.show_background_images
    user = backgrounds[0].image_user
    assert backgrounds[0].image.source == "SEQUENCE"
    assert (user.frame_start, user.frame_duration, user.frame_offset) == (first, frames, first - 1)
    assert bpy.path.abspath(backgrounds[0].image.filepath) == os.path.join(folder, f"frame_{first:06d}.png")
    if scene.emogene.subject == "flat_colours":  # stand-in renderer: frames are pure red, green, blue in turn
        result["colour"] = harness.check_plate_colours(scene, first, out_dir)
else:
    assert image_strips == [], image_strips

# export round trip: the files hold the F-curves' values, also after an animator's edit
jaw = bpy.data.objects["EG_jaw_08"]
key = compat.find_fcurve(jaw, "location", 2).keyframe_points[5]
key.co[1] += 0.01
compat.find_fcurve(jaw, "location", 2).update()
edited_value = key.co[1]
for fmt in ("CSV", "JSON", "NPZ"):
    path = os.path.join(out_dir, f"curves.{fmt.lower()}")
    assert bpy.ops.emogene.export_landmarks(filepath=path, file_format=fmt) == {"FINISHED"}
    loaded = curves_mod.load(path)
    assert list(loaded.frames) == expected_frames
    for obj in landmarks:
        index = int(obj["emogene_landmark"])
        assert loaded.names[index] == obj.name[len("EG_"):]
        for axis in range(3):
            fc = compat.find_fcurve(obj, "location", axis)
            values = np.array([fc.evaluate(f) for f in expected_frames])
            np.testing.assert_array_equal(loaded.positions[:, index, axis], values, err_msg=f"{fmt} {obj.name}")
    for axis in range(3):
        for data_path, got in (("location", loaded.head_location), ("rotation_euler", loaded.head_rotation)):
            fc = compat.find_fcurve(head, data_path, axis)
            np.testing.assert_array_equal(got[:, axis], [fc.evaluate(f) for f in expected_frames])
    assert abs(loaded.positions[5, 8, 2] - edited_value) < 1e-6, fmt

# re-generating replaces the take: one collection, plain names, old plate files gone
old_take_name = take.name
old_files = list(take.get("emogene_plate_files", []))
generate_once()
takes = [c for c in scene.collection.children if c.get("emogene_take")]
assert len(takes) == 1 and takes[0].name != old_take_name, [c.name for c in takes]
assert sum(1 for o in bpy.data.objects if o.name.startswith("EG_")) == 69
assert "EG_jaw_08" in bpy.data.objects and "EG_jaw_08.001" not in bpy.data.objects
assert not any(os.path.exists(str(p)) for p in old_files)
image_strips = [s for s in compat.strips(scene.sequence_editor) if s.type == "IMAGE"]
assert len(image_strips) == (1 if output == "PLATES" else 0)
assert len(scene.camera.data.background_images) == (1 if output == "PLATES" else 0)
assert len([i for i in bpy.data.images if i.source == "SEQUENCE"]) == (1 if output == "PLATES" else 0)
result.update(take=takes[0].name, frames=frames, output=output, status=scene.emogene.status)
harness.emit(result)
