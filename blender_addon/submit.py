"""Turning the panel's settings into a ``generate`` request (audio, emotion arrays, camera).

Everything the user can get wrong is checked here and raised as
:class:`SubmitError` with a sentence saying what to fix, before any network use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import bpy

from . import audio_source, bridge_api, compat, emotion_track

ANCHOR_NAME = "EmoGene Anchor"


class SubmitError(ValueError):
    """The settings cannot make a request; the text says what to fix."""


@dataclass
class PreparedRequest:
    message: object            # bridge Message
    frame_start: int
    frame_end: int
    fps: float
    landmarks_only: bool
    anchor: object
    camera: object | None
    sound_channel: int
    clamped: int               # emotion values clamped (Bezier overshoot)


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def sound_strip(scene, settings):
    editor = scene.sequence_editor
    if editor is None or not settings.sound_strip:
        raise SubmitError("Pick a sound strip (Audio: Sound strip) or switch the audio source to File")
    strip = compat.all_strips(editor).get(settings.sound_strip)
    if strip is None:
        raise SubmitError(f"Sound strip {settings.sound_strip!r} is not in this scene's sequencer")
    if strip.type != "SOUND":
        raise SubmitError(f"Strip {strip.name!r} is a {strip.type.lower()} strip, not a sound strip")
    return strip


def frame_range(scene, settings) -> tuple[int, int]:
    """The frames to generate: the sound strip's (default) or the panel's range."""
    if settings.audio_source == "STRIP" and settings.use_strip_range:
        strip = sound_strip(scene, settings)
        start, end = strip.frame_final_start, strip.frame_final_end - 1
    else:
        start, end = settings.frame_start, settings.frame_end
    if end < start:
        raise SubmitError(f"Frame range {start}..{end} is empty")
    return start, end


def ensure_anchor(scene, settings):
    """The subject anchor Empty, created at the world origin when none is set."""
    if settings.anchor is not None:
        return settings.anchor
    anchor = bpy.data.objects.new(ANCHOR_NAME, None)
    anchor.empty_display_type = "CUBE"
    anchor.empty_display_size = 0.1
    scene.collection.objects.link(anchor)
    settings.anchor = anchor
    return anchor


def resolution(scene, settings) -> tuple[int, int] | None:
    if settings.resolution_mode == "SUBJECT":
        return None
    if settings.resolution_mode == "CUSTOM":
        return settings.resolution_x, settings.resolution_y
    pct = scene.render.resolution_percentage / 100.0
    return max(1, round(scene.render.resolution_x * pct)), max(1, round(scene.render.resolution_y * pct))


def camera_content(scene, camera_obj, anchor, plate_resolution) -> dict:
    """CameraSpec fields of a Blender camera, relative to the anchor (its pose at the first frame)."""
    cam = camera_obj.data
    if cam.type != "PERSP":
        raise SubmitError(f"Camera {camera_obj.name!r} is {cam.type.lower()}; plates need a perspective camera")
    if plate_resolution is None:
        pct = scene.render.resolution_percentage / 100.0
        plate_resolution = (max(1, round(scene.render.resolution_x * pct)),
                            max(1, round(scene.render.resolution_y * pct)))
    anchor_from_camera = anchor.matrix_world.inverted() @ camera_obj.matrix_world
    return {
        "focal_length_mm": float(cam.lens), "sensor_width_mm": float(cam.sensor_width),
        "sensor_height_mm": float(cam.sensor_height), "sensor_fit": cam.sensor_fit,
        "resolution": [int(plate_resolution[0]), int(plate_resolution[1])],
        "shift_x": float(cam.shift_x), "shift_y": float(cam.shift_y),
        "anchor_from_camera": [float(v) for row in anchor_from_camera for v in row],
        "clip_start": float(cam.clip_start), "clip_end": float(cam.clip_end),
    }


def prepare(scene) -> PreparedRequest:
    settings = scene.emogene
    start, end = frame_range(scene, settings)
    count = end - start + 1
    fps = scene_fps(scene)
    sound_channel = 1
    try:
        if settings.audio_source == "STRIP":
            strip = sound_strip(scene, settings)
            sound_channel = strip.channel
            clip = audio_source.from_strip(strip, start, count, fps)
        else:
            if not settings.audio_file:
                raise SubmitError("Choose an audio file, or switch the audio source to Sound strip")
            clip = audio_source.from_file(os.path.normpath(bpy.path.abspath(settings.audio_file)), count, fps)
    except (FileNotFoundError, ValueError) as exc:
        if isinstance(exc, SubmitError):
            raise
        raise SubmitError(str(exc)) from None
    emotions = emotion_track.evaluate(scene, start, end)
    weights = bridge_api.emotions().normalise_weights(emotions.weights)
    landmarks_only = settings.output == "LANDMARKS"
    anchor = ensure_anchor(scene, settings)
    plate_resolution = resolution(scene, settings)
    camera_obj = None
    camera = None
    if not settings.use_subject_camera:
        camera_obj = settings.camera or scene.camera
        if camera_obj is None and not landmarks_only:
            raise SubmitError("The scene has no camera: set one, or tick 'Subject's own camera'")
        if camera_obj is not None:
            camera = camera_content(scene, camera_obj, anchor, plate_resolution)
    message = bridge_api.requests().build_generate(
        clip.samples, audio_source.SAMPLE_RATE, fps, weights, emotions.intensity,
        subject=settings.subject.strip() or "default", landmarks_only=landmarks_only,
        resolution=plate_resolution, camera=camera, seed=settings.seed,
        temperature=settings.temperature, idle_pose=settings.idle_pose, frame_start=start)
    return PreparedRequest(message, start, end, fps, landmarks_only, anchor, camera_obj, sound_channel,
                           emotions.clamped)
