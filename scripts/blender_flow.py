"""The whole add-on flow in background Blender (the bpy module), for a person to look at.

Builds the extension zip, installs it with Blender's own operator into a private
user folder, starts ``emogene serve`` (unless --address is given), makes a scene
with a sound strip, keys neutral -> happy -> sad, generates, and saves:
  <out>/emogene_flow.blend        the scene (face rig, strips, plates beside it under //emogene/)
  <out>/sequencer_frame.png       one frame of the sequencer's output: the rig seen by the camera
                                  (landmark dots, coloured by region) with the plates over it
  <out>/curves.csv|json|npz       the exported landmark curves

    .venv/bin/python scripts/blender_flow.py [--plates] [--seconds 4] [--out cache/blender_flow]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AUDIO = REPO_ROOT / "backend" / "assets" / "demo_speech.wav"
REGION_COLOURS = {
    "jaw": (0.9, 0.9, 0.9), "brow": (1.0, 0.75, 0.1), "nose": (0.2, 0.8, 1.0), "eye": (0.3, 1.0, 0.3),
    "lip_outer": (1.0, 0.2, 0.3), "lip_inner": (1.0, 0.5, 0.8),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "cache" / "blender_flow")
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--address", default=None, help="use a running backend instead of starting one")
    parser.add_argument("--plates", action="store_true", help="ask for plates too (needs a backend with a renderer)")
    parser.add_argument("--subject", default="default")
    parser.add_argument("--subjects-dir", type=Path, default=None,
                        help="extra subjects folder for the backend this script starts (emogene serve --subjects-dir)")
    parser.add_argument("--plate-size", type=int, default=None,
                        help="plate and preview size in pixels (default: 512, or twice the subject's image size)")
    parser.add_argument("--render-frame", type=int, default=None, help="frame to render (default: mid-take)")
    return parser.parse_args(argv)


def start_backend(out: Path, subjects_dir: Path | None):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    log = open(out / "serve.log", "w")
    cmd = [str(Path(sys.executable).with_name("emogene")), "serve", "--bind", address, "--jobs-dir", str(out / "jobs")]
    if subjects_dir is not None:
        cmd += ["--subjects-dir", str(subjects_dir)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return address, proc


def wait_for_backend(address: str, timeout_s: float = 60.0) -> dict:
    from bridge.client import SyncClient
    deadline = time.monotonic() + timeout_s
    while True:
        client = SyncClient(address, timeout_s=1.0)
        try:
            return client.hello().content
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
        finally:
            client.close()


def main(argv=None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # Blender's user folders go inside <out>, so installing the extension leaves no trace elsewhere
    os.environ["BLENDER_USER_RESOURCES"] = str(out / "blender_user")
    from backend.commands import build_addon
    zip_path = build_addon.build(out / "zip", ["linux-x64"], with_wheels=False)
    proc = None
    address = args.address
    if address is None:
        address, proc = start_backend(out, args.subjects_dir)
    try:
        welcome = wait_for_backend(address)
        print(f"backend {welcome.get('backend_version')} on {welcome.get('device')}, "
              f"plates: {welcome['capabilities']['plates']}, motion: {welcome['capabilities']['motion']}")
        plates = args.plates and welcome["capabilities"]["plates"]
        if args.plates and not plates:
            print("this backend cannot render plates: landmarks only")
        return run_flow(args, out, zip_path, address, plates)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


def subject_info(args) -> dict | None:
    """The subject's ``subject.json`` when this machine has it (to look through its training camera)."""
    import json
    roots = [args.subjects_dir] if args.subjects_dir else []
    roots.append(REPO_ROOT / "backend" / "assets" / "subjects")
    for root in roots:
        path = Path(root) / args.subject / "subject.json"
        if path.is_file():
            return json.loads(path.read_text())
    return None


def use_training_camera(camera, anchor, info: dict) -> None:
    """Put the Blender camera where the subject was filmed from, so rig and plates line up."""
    from mathutils import Matrix
    spec = info["training_camera"]
    m = spec["anchor_from_camera"]
    camera.matrix_world = anchor.matrix_world @ Matrix([m[0:4], m[4:8], m[8:12], m[12:16]])
    camera.data.lens = spec["focal_length_mm"]
    camera.data.sensor_width, camera.data.sensor_height = spec["sensor_width_mm"], spec["sensor_height_mm"]
    camera.data.sensor_fit = spec["sensor_fit"]
    camera.data.shift_x, camera.data.shift_y = spec["shift_x"], spec["shift_y"]


def run_flow(args, out: Path, zip_path: Path, address: str, plates: bool) -> int:
    import bpy
    import numpy as np

    bpy.ops.wm.read_factory_settings(use_empty=False)
    assert bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                    enable_on_install=True) == {"FINISHED"}
    name = next(n for n in bpy.context.preferences.addons.keys() if n.endswith(".emogene"))
    addon = sys.modules[name]
    generate = sys.modules[f"{name}.jobs"]
    prefs = bpy.context.preferences.addons[name].preferences
    prefs.backend_address = address
    prefs.connect_timeout = 30.0
    prefs.silence_timeout = 300.0

    blend_path = out / "emogene_flow.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path))
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 25, 1.0
    info = subject_info(args) if plates else None
    size = args.plate_size or (2 * info["image_size"][0] if info else 512)
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"   # plates shown exactly as rendered
    for obj in list(scene.objects):
        if obj.type != "CAMERA":
            bpy.data.objects.remove(obj)
    frames = max(1, round(args.seconds * 25))
    editor = scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    sound = strips.new_sound("speech", str(args.audio), 1, 1)
    sound.frame_final_duration = frames
    scene.frame_start, scene.frame_end = 1, frames
    settings = scene.emogene
    settings.audio_source, settings.sound_strip = "STRIP", sound.name
    settings.output = "PLATES" if plates else "LANDMARKS"
    settings.subject = args.subject
    bpy.ops.emogene.add_anchor()
    camera = scene.camera
    camera.location = (0.0, -0.55, -0.035)          # in front of the face (it looks toward -Y)
    camera.rotation_euler = (np.pi / 2, 0.0, 0.0)
    camera.data.lens = 50.0
    if info is not None:
        use_training_camera(camera, settings.anchor, info)
        settings.resolution_mode = "SCENE"
    bpy.ops.emogene.key_emotion(emotion="neutral", frame=1)
    bpy.ops.emogene.key_emotion(emotion="happy", weight=0.8, frame=max(1, frames // 3))
    bpy.ops.emogene.key_emotion(emotion="sad", weight=0.8, frame=frames)

    started = time.monotonic()
    assert bpy.ops.emogene.generate() == {"FINISHED"}
    while generate.generate_timer() is not None:
        time.sleep(0.05)
    print(f"generate: {settings.job_state} in {time.monotonic() - started:.1f} s: {settings.status}")
    if settings.job_state != "DONE":
        return 1

    take = sys.modules[f"{name}.importers.take"].current_take(scene)
    add_rig_view(scene, take, camera)
    for fmt in ("csv", "json", "npz"):
        bpy.ops.emogene.export_landmarks(filepath=str(out / f"curves.{fmt}"), file_format=fmt.upper())
    frame = args.render_frame or (frames // 2)
    scene.frame_set(frame)
    scene.render.use_sequencer = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(out / "sequencer_frame.png")
    bpy.ops.render.render(write_still=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path))
    print(f"saved {blend_path} and {out / 'sequencer_frame.png'} (frame {frame}); add-on {addon.__name__}")
    return 0


def add_rig_view(scene, take, camera) -> None:
    """A second scene that sees the face rig through the camera (dots per landmark), laid over the plates
    in the sequencer (transparent film), so the output shows whether landmarks and plates line up."""
    import bpy
    view = bpy.data.scenes.new("EmoGene Rig View")
    view.render.engine = "BLENDER_WORKBENCH"
    view.display.shading.color_type = "OBJECT"
    view.display.shading.light = "FLAT"
    view.render.resolution_x, view.render.resolution_y = scene.render.resolution_x, scene.render.resolution_y
    view.render.fps = scene.render.fps
    view.view_settings.view_transform = "Standard"
    view.world = bpy.data.worlds.new("EmoGene Rig View")
    view.world.color = (0.02, 0.02, 0.025)
    has_plates = any(s.type == "IMAGE" for s in (scene.sequence_editor.strips if hasattr(scene.sequence_editor, "strips")
                                                  else scene.sequence_editor.sequences))
    view.render.film_transparent = has_plates
    view.collection.children.link(take)
    view.collection.objects.link(camera)
    if scene.emogene.anchor is not None:
        view.collection.objects.link(scene.emogene.anchor)
    view.camera = camera
    dots = bpy.data.collections.new("EmoGene Rig Dots")
    view.collection.children.link(dots)
    mesh = bpy.data.meshes.new("landmark_dot")
    import bmesh
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=8, v_segments=6, radius=0.0022)
    bm.to_mesh(mesh)
    bm.free()
    for empty in take.objects:
        if empty.get("emogene_role") != "landmark":
            continue
        dot = bpy.data.objects.new(f"dot_{empty.name}", mesh)
        dot.parent = empty
        region = empty.name.split("_", 1)[1]
        dot.color = (*next((c for key, c in REGION_COLOURS.items() if region.startswith(key)), (1, 1, 1)), 1.0)
        dots.objects.link(dot)
    editor = scene.sequence_editor
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    first, last = (int(v) for v in take["emogene_frames"])
    plate_channel = max((s.channel for s in strips if s.type == "IMAGE"), default=1)
    rig = strips.new_scene("Rig View", view, plate_channel + 1, first)
    rig.frame_final_duration = last - first + 1
    rig.blend_type = "ALPHA_OVER"


if __name__ == "__main__":
    sys.exit(main())
