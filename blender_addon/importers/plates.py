"""Plates on disk and in the sequencer: PNG files beside the .blend, an image strip, a camera background.

Files go to ``//emogene/<take>/frame_######.png`` (numbered by scene frame) next
to the saved .blend, referenced by relative paths. An unsaved .blend has no
folder yet, so its plates go to the add-on's cache folder (Preferences) with
absolute paths; saving the .blend later does not move them.

Colour: plates are sRGB-encoded 8-bit PNGs with straight alpha. The strip's
colour space is set to sRGB and its alpha mode to straight, so the sequencer
reads the pixels as rendered. To *see* them unchanged, the scene's View
Transform must be 'Standard' (Blender's default 'AgX' tone-maps them); the
add-on does not change scene colour settings on its own.
"""
from __future__ import annotations

import os
import shutil

import bpy

from .. import compat

PLATE_PATTERN = "frame_{frame:06d}.png"


def take_folder(take: str, cache_dir: str) -> tuple[str, bool]:
    """``(absolute folder, relative_paths)`` for a take's plates."""
    if bpy.data.filepath:
        return bpy.path.abspath(f"//emogene/{take}"), True
    return os.path.join(cache_dir, "emogene", take), False


def move_staged(staged: dict[int, str], folder: str, frame_start: int) -> list[str]:
    """Move staged plates (frame index -> path) into ``folder``; returns the new paths in frame order."""
    os.makedirs(folder, exist_ok=True)
    out = []
    for index in sorted(staged):
        target = os.path.join(folder, PLATE_PATTERN.format(frame=frame_start + index))
        shutil.move(staged[index], target)
        out.append(target)
    return out


def remove_files(paths: list[str]) -> None:
    """Delete plate files this add-on wrote, then their folder if it became empty."""
    folders = set()
    for path in paths:
        folders.add(os.path.dirname(path))
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            pass


def free_channel_above(scene, channel: int, frame_start: int, frame_end: int) -> int:
    """The lowest channel above ``channel`` with no strip overlapping ``frame_start..frame_end``."""
    editor = scene.sequence_editor
    taken = set()
    for strip in compat.strips(editor):
        if strip.frame_final_start <= frame_end and strip.frame_final_end > frame_start:
            taken.add(strip.channel)
    candidate = channel + 1
    while candidate in taken:
        candidate += 1
    return candidate


def add_strip(scene, name: str, paths: list[str], frame_start: int, channel: int, relative: bool):
    """An image strip showing ``paths`` from ``frame_start`` (one file per frame)."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    first = bpy.path.relpath(paths[0]) if relative else paths[0]
    strip = compat.strips(editor).new_image(name=name, filepath=first, channel=channel, frame_start=frame_start)
    for path in paths[1:]:
        strip.elements.append(os.path.basename(path))
    strip.colorspace_settings.name = "sRGB"
    strip.alpha_mode = "STRAIGHT"
    strip.blend_type = "ALPHA_OVER"
    return strip


def set_camera_background(camera_obj, paths: list[str], frame_start: int, relative: bool):
    """Show the plate sequence behind ``camera_obj``'s view; returns the Image."""
    first = bpy.path.relpath(paths[0]) if relative else paths[0]
    image = bpy.data.images.load(bpy.path.abspath(first), check_existing=False)
    image.filepath = first
    image.source = "SEQUENCE"
    image.colorspace_settings.name = "sRGB"
    camera = camera_obj.data
    camera.show_background_images = True
    background = camera.background_images.new()
    background.image = image
    background.image_user.frame_start = frame_start
    background.image_user.frame_duration = len(paths)
    # files are numbered by scene frame; Blender reads number (frame - start + 1 + offset)
    background.image_user.frame_offset = frame_start - 1
    background.image_user.use_auto_refresh = True
    background.alpha = 1.0
    return image


def remove_camera_background(camera_obj, image) -> None:
    if camera_obj is None or camera_obj.type != "CAMERA":
        return
    for background in list(camera_obj.data.background_images):
        if background.image == image:
            camera_obj.data.background_images.remove(background)
