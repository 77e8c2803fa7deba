"""Inside a scenario process: install the add-on zip into bpy and drive it like Blender would.

Import this before anything else touches bpy; ``BLENDER_USER_RESOURCES`` must
already point at a temporary folder (``support.run_scenario`` sets it).
"""
from __future__ import annotations

import json
import os
import sys
import time

import bpy
import numpy as np

FPS = 25


def install_addon(zip_path: str):
    """Install and enable the zip with Blender's own operator; returns the add-on's package module."""
    assert os.environ.get("BLENDER_USER_RESOURCES"), "BLENDER_USER_RESOURCES must point at a temp folder"
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}, result
    name = next(n for n in bpy.context.preferences.addons.keys() if n.endswith(".emogene"))
    return sys.modules[name]


def submodule(addon, name: str):
    return sys.modules[f"{addon.__name__}.{name}"]


def preferences(addon):
    return bpy.context.preferences.addons[addon.__name__].preferences


def setup(zip_path: str, out_dir: str, address: str | None = None, *, connect_timeout: float = 20.0,
          silence_timeout: float = 60.0):
    """Install the add-on zip and set its preferences (backend, cache under ``out_dir``, timeouts): (addon, prefs)."""
    os.makedirs(out_dir, exist_ok=True)
    addon = install_addon(zip_path)
    prefs = preferences(addon)
    connect_to(prefs, address, connect_timeout, silence_timeout)
    prefs.cache_dir = os.path.join(out_dir, "cache")
    return addon, prefs


def connect_to(prefs, address: str | None, connect_timeout: float = 20.0, silence_timeout: float = 60.0) -> None:
    """Point the preferences at ``address`` (None: leave it) with these timeouts."""
    if address is not None:
        prefs.backend_address = address
    prefs.connect_timeout = connect_timeout
    prefs.silence_timeout = silence_timeout


def submodules(addon, *names: str) -> tuple:
    return tuple(submodule(addon, name) for name in names)


def speech_scene(audio_path: str, frames: int, strip_start: int = 1, channel: int = 1,
                 fps: int = FPS, fps_base: float = 1.0):
    """The default scene (25 fps unless given) with a sound strip trimmed to ``frames`` frames."""
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, fps_base
    editor = scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    strip = strips.new_sound("speech", audio_path, channel, strip_start)
    strip.frame_final_duration = frames
    scene.frame_start, scene.frame_end = strip_start, strip_start + frames - 1
    scene.emogene.audio_source = "STRIP"
    scene.emogene.sound_strip = strip.name
    return scene, strip


def pump(addon, timeout_s: float = 120.0, on_step=None) -> int:
    """Call the add-on's timer function until it reports no work left; returns the number of calls."""
    timer = submodule(addon, "running_jobs").generate_timer
    deadline = time.monotonic() + timeout_s
    calls = 0
    while True:
        calls += 1
        if timer() is None:
            return calls
        if on_step is not None:
            on_step(calls)
        if time.monotonic() > deadline:
            raise AssertionError(f"job still running after {timeout_s} s")
        time.sleep(0.02)


def emit(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def render_sequencer_frame(scene, frame: int, path: str) -> np.ndarray:
    """Render the sequencer's output at ``frame`` to ``path``; returns its RGBA bytes as uint8 [H, W, 4]."""
    scene.render.use_sequencer = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.frame_set(frame)
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True, scene=scene.name)
    image = bpy.data.images.load(path, check_existing=False)
    pixels = np.array(image.pixels[:], dtype=np.float32).reshape(image.size[1], image.size[0], 4)
    bpy.data.images.remove(image)
    return np.round(pixels * 255).astype(np.uint8)


def check_plate_colours(scene, first: int, out_dir: str) -> dict:
    """Pure R, G, B plates must render back exactly with the 'Standard' view transform.

    Also measures how far Blender's default 'AgX' moves them (why the README asks for 'Standard').
    """
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
    expected = {0: (255, 0, 0, 255), 1: (0, 255, 0, 255), 2: (0, 0, 255, 255)}
    report = {}
    for transform in ("Standard", "AgX"):
        scene.view_settings.view_transform = transform
        scene.view_settings.look = "None"
        worst = 0
        for index, colour in expected.items():
            pixels = render_sequencer_frame(scene, first + index, os.path.join(out_dir, f"{transform}_{index}.png"))
            worst = max(worst, int(np.abs(pixels.astype(int) - np.array(colour)).max()))
        report[transform] = worst
    assert report["Standard"] == 0, report
    scene.view_settings.view_transform = "Standard"
    return report
