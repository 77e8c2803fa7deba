"""Validate a ``generate`` message into a :class:`backend.pipeline.base.GenerateJob` (or a ``BridgeError``)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from backend.pipeline.base import GenerateJob
from backend.server.audio_input import request_audio
from backend.subjects import DEFAULT_SUBJECT, UnknownSubjectError
from bridge.camera import CameraError, CameraSpec, CameraTrack, frame_buffers, parse_resolution
from bridge.camera import camera_from_content as parse_camera
from bridge.emotion_spec import spec_to_frames
from bridge.emotions import NUM_EMOTIONS, UnknownEmotionError, normalise_emotion
from bridge.errors import BridgeError
from bridge.messages import Message
from bridge.protocol import ErrorCode, Limits
from bridge.requests import frame_count_for

_MAX_INT = 2**63


def _bad(text: str, code: str = ErrorCode.BAD_REQUEST) -> BridgeError:
    return BridgeError(code, text)


def _number(content: dict, name: str, default: Any, *, minimum: float | None = None,
            maximum: float | None = None, integer: bool = False, code: str = ErrorCode.BAD_REQUEST):
    value = content.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise _bad(f"{name} must be {'an integer' if integer else 'a number'}, got {str(value)[:64]!r}", code)
    if isinstance(value, int) and not -_MAX_INT <= value <= _MAX_INT:   # before any float conversion
        raise _bad(f"{name} is an integer of {len(str(abs(value)))} digits; at most 2**63", code)
    if not math.isfinite(value):
        raise _bad(f"{name} must be finite, got {value!r}", code)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _bad(f"{name} = {value} is outside [{minimum}, {maximum}]", code)
    return value


def _flag(content: dict, name: str, default: bool) -> bool:
    value = content.get(name, default)
    if not isinstance(value, bool):
        raise _bad(f"{name} must be true or false, got {value!r}")
    return value


def _resolution(value: Any, name: str = "resolution") -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        return parse_resolution(value, name)
    except CameraError as exc:
        raise _bad(str(exc)) from None


def camera_from_content(value: Any, frame_count: int = 1, buffers: list | None = None,
                        frames_buffer: int | None = None) -> CameraSpec | CameraTrack | None:
    """The request's ``camera`` (``bridge.camera``'s contract) or a ``bad_request`` naming the field."""
    try:
        return parse_camera(value, frame_count, list(buffers or []), frames_buffer)
    except CameraError as exc:
        raise _bad(str(exc)) from None


def _emotion_arrays(msg: Message, frame_count: int, fps: float) -> tuple[np.ndarray, np.ndarray, int]:
    spec = msg.content.get("emotion")
    if spec is not None:
        if not isinstance(spec, str):
            raise _bad(f"content.emotion must be an emotion spec string, got {spec!r}", ErrorCode.BAD_EMOTION)
        try:
            weights, intensity = spec_to_frames(spec, frame_count, fps)
        except UnknownEmotionError as exc:
            raise _bad(str(exc), ErrorCode.UNKNOWN_EMOTION) from None
        except ValueError as exc:
            raise _bad(f"emotion {spec[:200]!r}: {exc}", ErrorCode.BAD_EMOTION) from None
        return weights, intensity, frame_count
    weights = msg.array(1)
    intensity = msg.array(2)
    if weights.ndim != 2 or weights.shape[1] != NUM_EMOTIONS:
        raise _bad(f"emotion weights must be [frames, {NUM_EMOTIONS}], got {list(weights.shape)}", ErrorCode.BAD_EMOTION)
    if intensity.shape != (weights.shape[0],):
        raise _bad(f"emotion intensity must be [{weights.shape[0]}], got {list(intensity.shape)}",
                   ErrorCode.BAD_EMOTION)
    rows = weights.shape[0]
    # one row applies to every frame; otherwise allow the client's own rounding of the frame count
    if rows == 1:
        weights, intensity = np.repeat(weights, frame_count, 0), np.repeat(intensity, frame_count, 0)
    elif abs(rows - frame_count) <= 1 and rows > 0:
        frame_count = rows
    else:
        raise _bad(f"emotion arrays have {rows} frames; this audio at this fps needs {frame_count}",
                   ErrorCode.BAD_EMOTION)
    try:
        weights, intensity, _ = normalise_emotion(weights, intensity)
    except ValueError as exc:
        raise _bad(str(exc), ErrorCode.BAD_EMOTION) from None
    return weights, intensity, frame_count


def _check_subject(name: Any, subjects: Any, landmarks_only: bool) -> str:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise _bad(f"subject must be a non-empty name, got {name!r}")
    try:
        subjects.path(name)
    except UnknownSubjectError as exc:
        # landmark jobs on the default subject run before any subject assets exist
        if not (landmarks_only and name == DEFAULT_SUBJECT):
            raise _bad(str(exc), ErrorCode.UNKNOWN_SUBJECT) from None
    return name


def job_from_message(msg: Message, job_id: str, subjects: Any, limits: Limits) -> GenerateJob:
    """The validated job, or :class:`BridgeError` with the code naming what is wrong."""
    content = msg.content
    base_buffers = 1 if "emotion" in content else 3
    wanted = base_buffers + frame_buffers(content.get("camera"))   # + the per-frame camera rows, last
    if len(msg.buffers) != wanted:
        raise _bad(f"generate needs 3 buffers (audio, emotion weights [F, {NUM_EMOTIONS}], emotion intensity [F]), or 1 "
                   f"(audio) with content.emotion as a spec string, then the camera rows when camera.frames "
                   f"is set; got {len(msg.buffers)}")
    fps = _number(content, "fps", None, code=ErrorCode.BAD_FPS)
    if not 0 < fps <= limits.max_fps:
        raise _bad(f"fps must be > 0 and <= {limits.max_fps:g}, got {fps}", ErrorCode.BAD_FPS)
    landmarks_only = _flag(content, "landmarks_only", False)
    subject = _check_subject(content.get("subject", DEFAULT_SUBJECT), subjects, landmarks_only)
    audio, duration = request_audio(msg.buffers[0], content.get("sample_rate"), limits)
    frame_count = frame_count_for(duration, float(fps))
    weights, intensity, frame_count = _emotion_arrays(msg, frame_count, float(fps))
    return GenerateJob(
        job_id=job_id, audio=audio, fps=float(fps), frame_count=frame_count,
        emotion_weights=weights, emotion_intensity=intensity, subject=subject,
        landmarks_only=landmarks_only, resolution=_resolution(content.get("resolution")),
        camera=camera_from_content(content.get("camera"), frame_count, msg.buffers, base_buffers),
        seed=int(_number(content, "seed", 0, integer=True, minimum=0, maximum=2**63 - 1)),
        temperature=float(_number(content, "temperature", 1.0, minimum=0.0, maximum=10.0)),
        idle_pose=_flag(content, "idle_pose", True),
        frame_start=int(_number(content, "frame_start", 0, integer=True, minimum=-2**31, maximum=2**31)),
    )
