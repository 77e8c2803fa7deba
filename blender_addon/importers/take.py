"""Importing a finished job as one "take": all of it, or nothing.

A take is a collection ``EmoGene <take>`` holding the face rig, plus (with
plates) an image strip and its PNG files. Re-generating *replaces* the scene's
previous take: its objects, actions, strip, camera background and the PNG
files the add-on wrote are removed, but only after the new take imported
completely. If anything fails on the way, everything the new take created is
removed again and the previous take stays as it was.
"""
from __future__ import annotations

import os

import bpy

from .. import compat
from ..job_session import StagedResults
from . import face_rig, plates

TAKE_PROP = "emogene_take"
FILES_PROP = "emogene_plate_files"
STRIP_PROP = "emogene_strip"
FRAMES_PROP = "emogene_frames"          # [first, last]
CAMERA_PROP = "emogene_camera"
IMAGE_PROP = "emogene_image"
OBJECT_PREFIX = "EG_"


def current_take(scene):
    """The collection of the scene's current take, or None."""
    for collection in scene.collection.children:
        if collection.get(TAKE_PROP):
            return collection
    return None


def import_take(scene, results: StagedResults, *, take: str, anchor, sound_strip_channel: int,
                cache_dir: str, camera_obj=None, with_plates: bool) -> "bpy.types.Collection":
    """Create the take from staged results, then replace the previous take. Atomic."""
    frame_start = results.frame_start
    frame_end = frame_start + results.frame_count - 1
    created_objects: list = []
    collection = None
    strip = None
    image = None
    files: list[str] = []
    previous = current_take(scene)
    try:
        collection = bpy.data.collections.new(f"EmoGene {take}")
        collection[TAKE_PROP] = take
        collection[FRAMES_PROP] = [frame_start, frame_end]
        scene.collection.children.link(collection)
        head, empties = face_rig.build(collection, anchor, frame_start, results.landmarks, results.rotation,
                                       results.translation, prefix=f"{OBJECT_PREFIX}{take}_")
        created_objects = [head, *empties]
        if with_plates and results.plates:
            folder, relative = plates.take_folder(take, cache_dir)
            files = plates.move_staged(results.plates, folder, frame_start)
            channel = plates.free_channel_above(scene, sound_strip_channel, frame_start, frame_end)
            strip = plates.add_strip(scene, f"EmoGene {take}", files, frame_start, channel, relative)
            collection[STRIP_PROP] = strip.name
            collection[FILES_PROP] = files
            if camera_obj is not None:
                image = plates.set_camera_background(camera_obj, files, frame_start, relative)
                collection[CAMERA_PROP] = camera_obj.name
                collection[IMAGE_PROP] = image.name
    except BaseException:
        _remove(scene, collection, created_objects, strip, files, camera_obj, image)
        raise
    if previous is not None:
        remove_take(scene, previous)
    _rename(collection, take)
    return collection


def _rename(collection, take: str) -> None:
    """Give the new take's Empties their plain names once the previous take is gone."""
    prefix = f"{OBJECT_PREFIX}{take}_"
    for obj in collection.objects:
        if obj.name.startswith(prefix):
            obj.name = OBJECT_PREFIX + obj.name[len(prefix):]
            if obj.animation_data and obj.animation_data.action:
                obj.animation_data.action.name = obj.name


def remove_take(scene, collection) -> None:
    """Delete a take: Empties, actions, strip, camera background, PNG files, collection."""
    strip = None
    editor = scene.sequence_editor
    strip_name = collection.get(STRIP_PROP)
    if editor is not None and strip_name:
        strip = compat.strips(editor).get(strip_name)
    camera_obj = bpy.data.objects.get(collection.get(CAMERA_PROP, "") or "")
    image = bpy.data.images.get(collection.get(IMAGE_PROP, "") or "")
    files = [str(p) for p in collection.get(FILES_PROP, [])]
    _remove(scene, collection, list(collection.objects), strip, files, camera_obj, image)


def _remove(scene, collection, objects, strip, files, camera_obj, image) -> None:
    face_rig.remove_objects(objects)
    if strip is not None:
        compat.strips(scene.sequence_editor).remove(strip)
    if image is not None:
        plates.remove_camera_background(camera_obj, image)
        bpy.data.images.remove(image)
    if files:
        plates.remove_files([f for f in files if os.path.basename(f).startswith("frame_")])
    if collection is not None:
        bpy.data.collections.remove(collection)
