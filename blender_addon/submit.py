"""Turning the panel's settings into a ``generate`` request (audio, emotion arrays, camera: still, or one per
frame when it is animated; see ``bridge.camera``).

Everything the user can get wrong is checked here and raised as
:class:`SubmitError` with a sentence saying what to fix, before any network use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import bpy

from . import audio_source, bridge_api, compat, emotion_track, preferences

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


def scene_resolution(scene) -> tuple[int, int]:
    """The scene's render size after the resolution percentage (what the camera's aspect is)."""
    pct = scene.render.resolution_percentage / 100.0
    return max(1, round(scene.render.resolution_x * pct)), max(1, round(scene.render.resolution_y * pct))


def resolution(scene, settings) -> tuple[int, int] | None:
    """The plate size the panel asks for; None leaves it to the backend (``bridge.camera.plate_size``)."""
    if settings.resolution_mode == "SUBJECT":
        return None
    if settings.resolution_mode == "CUSTOM":
        return settings.resolution_x, settings.resolution_y
    return scene_resolution(scene)


def camera_spec(scene, camera_obj, anchor):
    """The :class:`bridge.camera.CameraSpec` of a Blender camera at the scene's current frame, relative to
    the anchor's pose at that frame, seen at the scene's render size."""
    cam = camera_obj.data
    if cam.type != "PERSP":
        raise SubmitError(f"Camera {camera_obj.name!r} is {cam.type.lower()}; plates need a perspective camera")
    anchor_from_camera = anchor.matrix_world.inverted() @ camera_obj.matrix_world
    spec = bridge_api.module("camera").CameraSpec(
        focal_length_mm=float(cam.lens), sensor_width_mm=float(cam.sensor_width),
        sensor_height_mm=float(cam.sensor_height), sensor_fit=cam.sensor_fit, resolution=scene_resolution(scene),
        shift_x=float(cam.shift_x), shift_y=float(cam.shift_y),
        anchor_from_camera=[[float(v) for v in row] for row in anchor_from_camera],
        clip_start=float(cam.clip_start), clip_end=float(cam.clip_end))
    try:
        return spec.check()
    except ValueError as exc:
        raise SubmitError(f"Camera {camera_obj.name!r}: {exc}") from None


def _animated(obj) -> bool:
    """Whether ``obj`` (or its data, or a parent) can change over time: keys, drivers or constraints."""
    while obj is not None:
        for owner in (obj, getattr(obj, "data", None)):
            anim = getattr(owner, "animation_data", None)
            if anim is not None and (anim.action is not None or len(anim.drivers) or len(anim.nla_tracks)):
                return True
        if len(obj.constraints):
            return True
        obj = obj.parent
    return False


def _camera_markers(scene) -> list[int]:
    """Frames of the timeline markers bound to a camera (they switch the scene camera)."""
    return [m.frame for m in scene.timeline_markers if m.camera is not None]


def camera_request(scene, camera_obj, anchor, start: int, end: int, per_frame: bool = True,
                   follow_markers: bool = False):
    """The request's camera for frames ``start..end``: a still ``CameraSpec`` (taken at ``start``), or a
    ``CameraTrack`` with one camera per frame when ``per_frame`` (plates) and the camera, its lens/sensor/shift
    or the anchor is animated (read with ``frame_set``, so parents, constraints and drivers count), or, with
    ``follow_markers``, when camera-bound timeline markers pick the scene camera (each frame's is read)."""
    camera_mod = bridge_api.module("camera")
    markers = _camera_markers(scene) if follow_markers else []
    if markers:
        camera_obj = None   # the scene camera of each frame, as the markers set it

    def read():
        camera = camera_obj or scene.camera
        if camera is None:
            raise SubmitError(f"Frame {scene.frame_current} has no scene camera (timeline markers)")
        return camera_spec(scene, camera, anchor)

    if not per_frame or not (markers or _animated(camera_obj) or _animated(anchor)):
        return _at_frame(scene, start, read)
    caps = preferences.CONNECTION_INFO.get("capabilities")
    if caps is not None and not caps.get(camera_mod.CAPABILITY):
        raise SubmitError(f"The camera or anchor is animated (or markers switch cameras), but the backend "
                          f"renders one camera per take "
                          f"(no '{camera_mod.CAPABILITY}'): update the backend, or remove the animation")
    specs = _at_frames(scene, range(start, end + 1), read)
    try:
        track = camera_mod.CameraTrack.from_specs(specs)
    except ValueError as exc:
        raise SubmitError(f"Camera {(camera_obj or scene.camera).name!r}: {exc}") from None
    return specs[0] if track.is_still else track


def _at_frame(scene, frame: int, read):
    return _at_frames(scene, [frame], read)[0]


def _at_frames(scene, frames, read) -> list:
    """``read()`` at each frame (the scene's current frame is restored afterwards)."""
    current, subframe = scene.frame_current, scene.frame_subframe
    try:
        out = []
        for frame in frames:
            scene.frame_set(frame)
            out.append(read())
        return out
    finally:
        scene.frame_set(current, subframe=subframe)


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
            camera = camera_request(scene, camera_obj, anchor, start, end, per_frame=not landmarks_only,
                                    follow_markers=settings.camera is None)
    message = bridge_api.requests().build_generate(
        clip.samples, audio_source.SAMPLE_RATE, fps, weights, emotions.intensity,
        subject=settings.subject.strip() or "default", landmarks_only=landmarks_only,
        resolution=plate_resolution, camera=camera, seed=settings.seed,
        temperature=settings.temperature, idle_pose=settings.idle_pose, frame_start=start)
    return PreparedRequest(message, start, end, fps, landmarks_only, anchor, camera_obj, sound_channel,
                           emotions.clamped)
