"""Build client requests (``generate`` and the small ones), shared by the CLI and the Blender add-on."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from bridge.camera import CameraSpec, CameraTrack, camera_content
from bridge.emotions import NUM_EMOTIONS
from bridge.messages import EncodedBuffer, Message
from bridge.protocol import MessageType


def frame_count_for(duration_s: float, fps: float) -> int:
    """Frames that cover ``duration_s`` seconds at ``fps``: ``ceil(duration * fps)``.

    A hair of tolerance keeps float noise (e.g. 2.0 s at 29.97 fps computed from
    samples) from adding a frame.
    """
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise ValueError(f"duration must be a finite number of seconds >= 0, got {duration_s}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a finite number > 0, got {fps}")
    return max(0, math.ceil(duration_s * fps - 1e-6))


def build_generate(audio: np.ndarray | bytes, sample_rate: int | None, fps: float,
                   emotion_weights: np.ndarray | str, emotion_intensity: np.ndarray | None, *,
                   subject: str = "default", landmarks_only: bool = False,
                   resolution: tuple[int, int] | None = None,
                   camera: CameraSpec | CameraTrack | dict[str, Any] | None = None,
                   seed: int = 0, temperature: float = 1.0, idle_pose: bool = True,
                   frame_start: int = 0, media_type: str | None = None) -> Message:
    """A ``generate`` request.

    ``audio`` is mono float32 PCM ``[samples]`` at ``sample_rate``, or the bytes of
    an audio file with its ``media_type`` (e.g. ``audio/wav``, ``audio/mpeg``)
    for the server to decode. Emotion arrays are per output frame: weights
    ``[F, NUM_EMOTIONS]`` in ``bridge.emotions.EMOTIONS`` order and intensity ``[F]``;
    or ``emotion_weights`` is an emotion spec string (``happy:0.8``, see
    ``bridge.emotion_spec``) that the backend expands, and intensity is None.
    ``camera``: a still :class:`~bridge.camera.CameraSpec` (or its fields as a dict), or a
    :class:`~bridge.camera.CameraTrack` with one camera per output frame (sent as the last buffer; only
    to a server whose welcome lists ``capabilities.camera_frames``, see ``bridge.camera``).
    """
    content: dict[str, Any] = {
        "subject": subject, "fps": float(fps), "landmarks_only": bool(landmarks_only),
        "resolution": [int(resolution[0]), int(resolution[1])] if resolution else None,
        "camera": camera_content(camera) if camera and not isinstance(camera, CameraTrack) else None,
        "seed": int(seed), "temperature": float(temperature), "idle_pose": bool(idle_pose),
        "frame_start": int(frame_start),
    }
    if isinstance(audio, (bytes, bytearray, memoryview)):
        if not media_type or not media_type.startswith("audio/"):
            raise ValueError("encoded audio bytes need a media_type such as 'audio/wav'")
        audio_buffer: Any = EncodedBuffer(bytes(audio), media_type)
    else:
        samples = np.asarray(audio)
        if samples.ndim != 1:
            raise ValueError(f"PCM audio must be mono [samples], got shape {list(samples.shape)}")
        if not sample_rate or sample_rate <= 0:
            raise ValueError("PCM audio needs a positive sample_rate")
        content["sample_rate"] = int(sample_rate)
        audio_buffer = np.ascontiguousarray(samples, dtype=np.float32)
    if isinstance(emotion_weights, str):
        if emotion_intensity is not None:
            raise ValueError("with an emotion spec string, emotion_intensity must be None")
        content["emotion"] = emotion_weights
        return _with_camera_track(Message(MessageType.GENERATE, content, [audio_buffer]), camera)
    weights = np.ascontiguousarray(emotion_weights, dtype=np.float32)
    intensity = np.ascontiguousarray(emotion_intensity, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[1] != NUM_EMOTIONS:
        raise ValueError(f"emotion weights must be [frames, {NUM_EMOTIONS}], got {list(weights.shape)}")
    if intensity.shape != (weights.shape[0],):
        raise ValueError(f"emotion intensity must be [{weights.shape[0]}] (one per frame), "
                         f"got {list(intensity.shape)}")
    return _with_camera_track(Message(MessageType.GENERATE, content, [audio_buffer, weights, intensity]), camera)


def _with_camera_track(message: Message, camera: Any) -> Message:
    """Per-frame cameras ride as the message's last buffer (``bridge.camera``'s wire form)."""
    if isinstance(camera, CameraTrack):
        message.content["camera"], rows = camera.to_wire(len(message.buffers))
        message.buffers.append(rows)
    return message


def build_hello(client: str = "emogene", **extra: Any) -> Message:
    return Message(MessageType.HELLO, {"client": client, **extra})


def build_ping() -> Message:
    return Message(MessageType.PING)


def build_subjects() -> Message:
    return Message(MessageType.SUBJECTS)


def _job_request(kind: str, job_id: str, token: str | None) -> Message:
    """``cancel``/``fetch``/``ack``: the job's id and its secret token (from ``accepted``)."""
    content: dict[str, Any] = {"job_id": job_id}
    if token is not None:
        content["token"] = token
    return Message(kind, content, job_id=job_id)


def build_cancel(job_id: str, token: str | None) -> Message:
    return _job_request(MessageType.CANCEL, job_id, token)


def build_fetch(job_id: str, token: str | None) -> Message:
    return _job_request(MessageType.FETCH, job_id, token)


def build_ack(job_id: str, token: str | None) -> Message:
    return _job_request(MessageType.ACK, job_id, token)
