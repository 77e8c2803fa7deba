"""Scenario: an animated camera (keyed dolly and pan around a turned, lifted anchor) sends one camera per frame;
the backend's plates are imported; prints each frame's camera, anchor and head matrices, bpy's own projection
of the anchor and the head, and the plate files, for the test to measure.

    python scenario_camera.py ZIP ADDRESS AUDIO OUT_DIR FRAMES
Prints ``RESULT {json}``; any failed assertion exits non-zero.
"""
from __future__ import annotations

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (imports bpy)

import bpy  # noqa: E402
from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
from mathutils import Euler, Matrix, Vector  # noqa: E402

zip_path, address, audio, out_dir, frames = sys.argv[1:6]
frames = int(frames)
SIZE = (96, 96)
os.makedirs(out_dir, exist_ok=True)
addon = harness.install_addon(zip_path)
take_mod = harness.submodule(addon, "importers.take")
submit = harness.submodule(addon, "submit")
prefs = harness.preferences(addon)
prefs.backend_address = address
prefs.cache_dir = os.path.join(out_dir, "cache")
prefs.connect_timeout = 20.0
prefs.silence_timeout = 120.0
assert bpy.ops.emogene.connect() == {"FINISHED"}
info = harness.submodule(addon, "preferences").CONNECTION_INFO
assert info["ok"] and info["capabilities"].get("camera_frames") is True, info

bpy.ops.wm.save_as_mainfile(filepath=os.path.join(out_dir, "scene.blend"))
scene, strip = harness.speech_scene(audio, frames, strip_start=1)
first, last = 1, frames
scene.render.resolution_x, scene.render.resolution_y = SIZE
scene.render.resolution_percentage = 100
anchor = bpy.data.objects.new("Anchor", None)
scene.collection.objects.link(anchor)
anchor.location = (0.3, -0.2, 1.5)
anchor.rotation_euler = Euler((0.0, 0.0, math.radians(30)))
settings = scene.emogene
settings.anchor = anchor
settings.subject = "default"
settings.output = "PLATES"
settings.resolution_mode = "SUBJECT"          # the camera's render size (96x96)
settings.use_subject_camera = False
settings.use_camera_background = False

camera = scene.camera
camera.parent = None
camera.data.lens, camera.data.sensor_width, camera.data.sensor_fit = 70.0, 36.0, "AUTO"
bpy.context.view_layer.update()


def key_camera(frame: int, distance: float, pan_deg: float) -> None:
    """Camera in front of the face (anchor space: the face looks toward -Y), ``pan_deg`` about the vertical."""
    local = Matrix.Translation(Vector((0.0, -distance, 0.02))) @ (
        Euler((math.radians(90), 0.0, math.radians(pan_deg))).to_matrix().to_4x4())
    camera.matrix_world = anchor.matrix_world @ local
    camera.keyframe_insert("location", frame=frame)
    camera.keyframe_insert("rotation_euler", frame=frame)


key_camera(first, 1.10, 0.0)     # dolly in from 1.10 m to 0.80 m while panning 3 degrees
key_camera(last, 0.80, 3.0)
request_camera = submit.camera_request(scene, camera, anchor, first, last)
assert type(request_camera).__name__ == "CameraTrack" and not request_camera.is_still
assert len(request_camera) == frames
# a backend without per-frame cameras (its welcome lacks the capability): an animated camera is refused with
# a sentence, a still one is sent as before
connection = harness.submodule(addon, "preferences").CONNECTION_INFO
saved_capabilities = connection["capabilities"]
connection["capabilities"] = {}
try:
    submit.camera_request(scene, camera, anchor, first, last)
    raise AssertionError("an animated camera went to a backend that renders one camera per take")
except submit.SubmitError as exc:
    assert "camera_frames" in str(exc) and "animated" in str(exc), exc
still_camera = bpy.data.objects.new("Still", bpy.data.cameras.new("Still"))
scene.collection.objects.link(still_camera)
still_camera.matrix_world = camera.matrix_world
assert type(submit.camera_request(scene, still_camera, anchor, first, last)).__name__ == "CameraSpec"
connection["capabilities"] = saved_capabilities
# timeline markers bound to cameras: each frame gets the camera the markers pick (the still one from frame 3)
marker_a = scene.timeline_markers.new("A", frame=first)
marker_a.camera = camera
marker_b = scene.timeline_markers.new("B", frame=3)
marker_b.camera = still_camera
switched = submit.camera_request(scene, camera, anchor, first, last, follow_markers=True)
assert type(switched).__name__ == "CameraTrack" and len(switched) == frames
for frame in range(first, last + 1):
    scene.frame_set(frame)
    expected = camera.matrix_world if frame < 3 else still_camera.matrix_world
    got = switched.at(frame - first).anchor_from_camera
    want = (anchor.matrix_world.inverted() @ expected)
    assert max(abs(got[r][c] - want[r][c]) for r in range(4) for c in range(4)) < 1e-5, frame
scene.timeline_markers.remove(marker_a)
scene.timeline_markers.remove(marker_b)
scene.camera = camera

assert bpy.ops.emogene.generate() == {"FINISHED"}
harness.pump(addon, timeout_s=900)
assert settings.job_state == "DONE", (settings.job_state, settings.status)
take = take_mod.current_take(scene)
plate_files = [bpy.path.abspath(str(p)) for p in take.get("emogene_plate_files", [])]
assert len(plate_files) == frames, plate_files
head = next(o for o in take.objects if o.get("emogene_role") == "head")


def as_list(matrix) -> list:
    return [[float(v) for v in row] for row in matrix]


per_frame = []
for frame in range(first, last + 1):
    scene.frame_set(frame)
    projected = {}
    for name, point in (("anchor", anchor.matrix_world.translation), ("head", head.matrix_world.translation)):
        x, y, depth = world_to_camera_view(scene, camera, point)
        projected[name] = [x * SIZE[0], (1.0 - y) * SIZE[1], depth]
    per_frame.append({"frame": frame, "camera": as_list(camera.matrix_world), "anchor": as_list(anchor.matrix_world),
                      "head": as_list(head.matrix_world), "lens": camera.data.lens,
                      "sensor": [camera.data.sensor_width, camera.data.sensor_height], "bpy_projection": projected})
harness.emit({"frames": per_frame, "plates": sorted(plate_files), "size": list(SIZE), "status": settings.status})
