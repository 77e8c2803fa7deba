"""Camera conversion: our Blender-camera -> pinhole conversion projects points exactly as bpy does."""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from recording_context import RecordingContext

from backend.pipeline.base import CameraSpec
from backend.render.camera import (PinholeCamera, blender_camera_to_pinhole, pinhole_rays, pinhole_to_blender,
                                   world_from_anchor_matrix)

BPY_PROJECT = textwrap.dedent("""
    import json, sys
    import bpy, mathutils
    from bpy_extras.object_utils import world_to_camera_view
    cases = json.loads(sys.stdin.read())
    scene = bpy.context.scene
    out = []
    for case in cases:
        data = bpy.data.cameras.new("cam")
        cam = bpy.data.objects.new("cam", data)
        scene.collection.objects.link(cam)
        data.lens = case["focal"]; data.sensor_width = case["sw"]; data.sensor_height = case["sh"]
        data.sensor_fit = case["fit"]; data.shift_x = case["shift_x"]; data.shift_y = case["shift_y"]
        scene.render.resolution_x, scene.render.resolution_y = case["res"]
        scene.render.resolution_percentage = 100
        scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
        cam.matrix_world = mathutils.Matrix(case["matrix"])
        bpy.context.view_layer.update()
        uvz = [list(world_to_camera_view(scene, cam, mathutils.Vector(p))) for p in case["points"]]
        out.append(uvz)
    print("RESULT" + json.dumps(out))
""")


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Blender camera matrix (looks along -Z, +Y up) at ``eye`` looking at ``target``, world +Z up."""
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, back, eye
    return m


def _cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for fit, res in [("AUTO", (640, 480)), ("AUTO", (300, 500)), ("HORIZONTAL", (512, 512)),
                     ("VERTICAL", (400, 720)), ("HORIZONTAL", (720, 400)), ("VERTICAL", (800, 600))]:
        eye = np.array([rng.uniform(-0.3, 0.3), -rng.uniform(0.4, 1.2), rng.uniform(-0.2, 0.3)])
        matrix = _look_at(eye, rng.normal(0, 0.02, 3))
        points = rng.normal(0, 0.05, (12, 3))
        cases.append({"focal": float(rng.uniform(20, 120)), "sw": float(rng.uniform(20, 40)),
                      "sh": float(rng.uniform(15, 30)), "fit": fit, "shift_x": float(rng.uniform(-0.2, 0.2)),
                      "shift_y": float(rng.uniform(-0.2, 0.2)), "res": list(res), "matrix": matrix.tolist(),
                      "points": points.tolist()})
    return cases


@pytest.mark.bpy
def test_blender_camera_projection_matches_bpy():
    pytest.importorskip("bpy")
    cases = _cases(np.random.default_rng(3))
    proc = subprocess.run([sys.executable, "-c", BPY_PROJECT], input=json.dumps(cases), capture_output=True,
                          text=True, timeout=180)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT")), None)
    assert line, f"bpy subprocess failed: {proc.stderr[-2000:]}"
    results = json.loads(line[len("RESULT"):])
    for case, uvz in zip(cases, results):
        spec = CameraSpec(focal_length_mm=case["focal"], sensor_width_mm=case["sw"], sensor_height_mm=case["sh"],
                          sensor_fit=case["fit"], resolution=tuple(case["res"]), shift_x=case["shift_x"],
                          shift_y=case["shift_y"], anchor_from_camera=np.array(case["matrix"]))
        cam = blender_camera_to_pinhole(spec, np.eye(4))
        ours, depth = cam.project(np.array(case["points"]))
        w, h = case["res"]
        theirs = np.array([[x * w, (1.0 - y) * h] for x, y, _ in uvz])
        assert np.all(depth > 0)
        np.testing.assert_allclose(depth, [z for _, _, z in uvz], rtol=1e-5)
        err = np.abs(ours - theirs).max()
        assert err < 0.5, f"{case['fit']} {case['res']}: max pixel error {err:.3f}"
        # rays through the projected pixel centres pass through the points
        pix = torch_pixels(theirs)
        origins, dirs = pinhole_rays(cam, pixels=pix)
        pts = np.array(case["points"])
        to_p = pts - origins.numpy()
        dist = np.linalg.norm(np.cross(to_p, dirs.numpy()), axis=-1)
        assert dist.max() < 1e-4 * max(1.0, np.linalg.norm(to_p, axis=-1).max())


def torch_pixels(uv: np.ndarray):
    import torch
    return torch.from_numpy(uv - 0.5)  # pinhole_rays adds the half-pixel centre offset


def test_pinhole_blender_round_trip_and_anchor_space():
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    rot *= np.sign(np.linalg.det(rot))
    world_from_anchor = world_from_anchor_matrix(rot, np.array([0.1, -0.2, 9.0]))
    cam = PinholeCamera(300.0, 300.0, 70.0, 60.0, 128, 128, np.eye(4))
    spec = pinhole_to_blender(cam, world_from_anchor)
    back = blender_camera_to_pinhole(spec, world_from_anchor)
    np.testing.assert_allclose([back.fx, back.fy, back.cx, back.cy], [300, 300, 70, 60], atol=1e-9)
    np.testing.assert_allclose(back.world_from_camera, np.eye(4), atol=1e-9)
    # canonical point (0, 0, 1) (toward the viewer) is Blender anchor (0, -0.063, 0)
    p_world = world_from_anchor @ np.array([0.0, -0.063, 0.0, 1.0])
    np.testing.assert_allclose(p_world[:3], rot @ np.array([0, 0, -1.0]) + [0.1, -0.2, 9.0], atol=1e-9)


def test_bad_camera_is_rejected_with_a_clear_message():
    spec = CameraSpec(50.0, 36.0, 24.0, "DIAGONAL", (64, 64))
    with pytest.raises(ValueError, match="sensor fit"):
        blender_camera_to_pinhole(spec, np.eye(4))


# -- per-frame cameras through the render stage (the shipped default subject, 32x32 plates) --------------------

DEFAULT_SUBJECT = Path(__file__).resolve().parents[1] / "backend" / "assets" / "subjects" / "default"


def _front_camera(distance: float, pan_deg: float, size=(32, 32)) -> CameraSpec:
    """A Blender camera ``distance`` m in front of the face (anchor -Y), panned ``pan_deg`` about +Z."""
    t = np.radians(pan_deg)
    pan = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]])
    pose = np.eye(4)
    pose[:3, :3] = pan @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])   # -Z looks toward +Y
    pose[:3, 3] = [0.0, -distance, 0.02]
    return CameraSpec(70.0, 36.0, 24.0, "AUTO", size, anchor_from_camera=pose)


def _render(cameras, frames: int):
    from backend.pipeline.base import GenerateJob
    from backend.render.stage import RenderStage
    from backend.subjects import SubjectStore
    track = np.load(DEFAULT_SUBJECT / "track.npz")
    state = {"landmarks": track["landmarks"][:frames], "rotation": track["rotation"][:frames],
             "translation": track["translation"][:frames]}
    job = GenerateJob("t", np.zeros(16000, np.float32), 25.0, frames, np.zeros((frames, 8), np.float32),
                      np.zeros(frames, np.float32), "default", camera=cameras)
    ctx = RecordingContext(state)
    RenderStage("cpu", SubjectStore([DEFAULT_SUBJECT.parent])).run(job, ctx)
    return ctx


@pytest.mark.skipif(not (DEFAULT_SUBJECT / "nerf.safetensors").is_file(), reason="no shipped default subject")
def test_each_plate_renders_through_its_own_frames_camera():
    """A camera track's plate i equals the plate of a job whose still camera is frame i's; a frame that looks
    away is transparent and named in one warning."""
    from bridge.camera import CameraTrack
    import torch
    torch.set_num_threads(1)
    specs = [_front_camera(1.1, 0.0), _front_camera(0.8, 3.0), _front_camera(0.6, 180.0)]
    animated = _render(CameraTrack.from_specs(specs), 3)
    for i in (0, 1):
        still = _render(specs[i], 3)
        np.testing.assert_array_equal(animated.plates[i], still.plates[i])
        assert animated.plates[i][..., 3].max() == 255
    assert not np.array_equal(animated.plates[0], animated.plates[1])
    assert animated.plates[2][..., 3].max() == 0
    assert [w for w in animated.warnings if "does not see" in w] == [
        "the camera does not see subject 'default' on 1 of 3 frames (first: 2): those plates are transparent "
        "(aim the camera at the subject anchor)"]
