"""Send speech + emotions to a backend and write what comes back under --out:

  DIR/landmarks.npz   landmarks [F,NUM_LANDMARKS,3] (canonical face space), rotation [F,3,3],
                      translation [F,3] (head pose, camera frame, OpenCV axes), fps,
                      emotion_weights [F,NUM_EMOTIONS], emotion_intensity [F]
  DIR/landmarks.csv   frame, index, name, x, y, z (one row per landmark per frame)
  DIR/arkit.csv       ARKit 52 blendshape weights per frame, Live Link Face CSV layout
  DIR/arkit.json      the same weights as JSON (bridge/live_link_face.py)
  DIR/plates/frame_000000.png ...   RGBA plates (unless --landmarks-only)

Audio: wav/flac/ogg are read here and sent as PCM; other formats (mp3, m4a ...)
are sent as they are and decoded by the backend.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from backend.commands._connection import Connection, add_connection_arguments, open_client
from backend.commands._job_stream import fail, receive_job, report_written
from bridge.emotion_spec import SPEC_HELP

MEDIA_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".m4a": "audio/mp4", ".aac": "audio/aac", ".opus": "audio/opus", ".webm": "audio/webm"}


def add_arguments(parser) -> None:
    add_connection_arguments(parser)
    parser.add_argument("--audio", required=True, metavar="FILE", help="speech audio (wav, flac, ogg, mp3, ...)")
    parser.add_argument("--emotion", required=True, metavar="SPEC", help=SPEC_HELP)
    parser.add_argument("--fps", required=True, type=float, metavar="N", help="output frame rate (e.g. 24, 25, 29.97)")
    parser.add_argument("--landmarks-only", action="store_true", help="no plates, only the landmark track")
    parser.add_argument("--subject", default="default", metavar="NAME", help="trained subject (default: default)")
    parser.add_argument("--resolution", metavar="WxH", help="plate size, e.g. 512x512 (default: the subject's)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed for motion sampling")
    parser.add_argument("--temperature", type=float, default=1.0, metavar="T",
                        help="motion sampling temperature (0 = deterministic)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds without any answer before giving up (default 30)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")


def parse_resolution(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--resolution {text!r} must look like 512x512") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"--resolution {text!r} must be positive")
    return width, height


def read_audio(path):
    """(PCM float32 mono, sample rate) when soundfile reads it, else (file bytes, media type)."""
    import numpy as np
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32), int(rate)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        media_type = MEDIA_TYPES.get(path.suffix.lower())
        if media_type is None:
            raise ValueError(f"cannot read {path} as audio (unknown format {path.suffix or 'without extension'!r})")
        return path.read_bytes(), media_type


def check_audio_file(path, max_seconds: float, max_bytes: int):
    """Refuse audio the backend would refuse, before reading it: too long (by its header) or too big."""
    import soundfile

    size = path.stat().st_size
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        info = None   # not for soundfile: sent encoded, the backend decodes and checks it
    if info is not None and info.samplerate > 0 and info.frames / info.samplerate > max_seconds:
        raise ValueError(f"audio_too_long: {path} is {info.frames / info.samplerate:.1f} s by its header; "
                         f"the backend takes at most {max_seconds:g} s")
    if info is None and size > max_bytes:
        raise ValueError(f"too_large: {path} is {size} bytes; a request may carry at most {max_bytes} bytes")


@dataclass
class GenerateOptions:
    """One ``emogene generate``: what to send, where, and where the results go (the CLI's flags as fields)."""
    audio: Path
    emotion: str
    fps: float
    out: Path
    connection: Connection = field(default_factory=Connection)
    subject: str = "default"
    landmarks_only: bool = False
    resolution: tuple[int, int] | None = None
    seed: int = 0
    temperature: float = 1.0
    timeout: float = 30.0

    @classmethod
    def from_args(cls, args) -> "GenerateOptions":
        """From the parsed flags (``ValueError`` for a malformed --resolution)."""
        return cls(Path(args.audio), args.emotion, args.fps, Path(args.out), Connection.from_args(args),
                   args.subject, args.landmarks_only, parse_resolution(args.resolution), args.seed,
                   args.temperature, args.timeout)


def run(args) -> int:
    try:
        options = GenerateOptions.from_args(args)
    except ValueError as exc:
        return fail("generate", str(exc), 2)
    return generate_to_folder(options)


def _request(options: GenerateOptions, audio, rate_or_type):
    """The ``generate`` message, and the emotion arrays it carries (None when the backend expands the spec)."""
    from bridge.emotion_spec import spec_to_frames
    from bridge.requests import build_generate, frame_count_for

    kwargs = dict(subject=options.subject, landmarks_only=options.landmarks_only, resolution=options.resolution,
                  seed=options.seed, temperature=options.temperature)
    if isinstance(audio, bytes):   # the backend decodes it, and expands the emotion spec to its frame count
        return build_generate(audio, None, options.fps, options.emotion, None, media_type=rate_or_type,
                              **kwargs), None, None
    frames = frame_count_for(len(audio) / rate_or_type, options.fps)
    weights, intensity = spec_to_frames(options.emotion, frames, options.fps)
    return build_generate(audio, rate_or_type, options.fps, weights, intensity, **kwargs), weights, intensity


def generate_to_folder(options: GenerateOptions) -> int:
    """Send ``options.audio`` with its emotion spec to the backend and write the results under ``options.out``.

    The library form of ``emogene generate`` (the demo calls it): returns the
    command's exit code (0 done, 1 the backend or job failed, 2 bad input) after
    printing progress and what went wrong.
    """
    import numpy as np

    from bridge.client import KeyFileError
    from bridge.emotion_spec import parse_emotion_spec, spec_to_frames
    from bridge.emotions import UnknownEmotionError
    from bridge.errors import BridgeError
    from bridge.protocol import DEFAULT_LIMITS
    from bridge.results import write_landmark_files

    audio_path, out, limits = Path(options.audio), Path(options.out), DEFAULT_LIMITS
    try:
        parse_emotion_spec(options.emotion)
        if not (np.isfinite(options.fps) and 0 < options.fps <= limits.max_fps):
            raise ValueError(f"--fps must be a number > 0 and <= {limits.max_fps:g}, got {options.fps}")
        if not audio_path.is_file():
            raise ValueError(f"audio file {audio_path} not found")
        check_audio_file(audio_path, limits.max_audio_seconds, limits.max_message_bytes)
        request, weights, intensity = _request(options, *read_audio(audio_path))
        client = open_client(options.connection, options.timeout)
    except (ValueError, UnknownEmotionError, KeyFileError) as exc:
        return fail("generate", str(exc), 2)

    out.mkdir(parents=True, exist_ok=True)
    connect = options.connection.connect
    with client:
        try:
            job_id = client.submit(request)
        except BridgeError as exc:
            return fail("generate", str(exc), 1)
        token = client.tokens.get(job_id, "")
        print(f"job {job_id} token {token}", flush=True)
        print(f"  (to get its results later: emogene fetch --connect {connect} --job {job_id} "
              f"--token {token} --out {out})", file=sys.stderr, flush=True)
        received = receive_job(client, job_id, client.iter_job(job_id), "generate", out)
        if isinstance(received, int):
            return received
        if received.landmarks is None:
            return fail("generate", "the backend finished without sending landmarks", 1)
        if weights is None:
            weights, intensity = spec_to_frames(options.emotion, received.landmarks.shape[0], options.fps)
        write_landmark_files(out, received.landmarks, received.rotation, received.translation, options.fps,
                             weights, intensity)
        try:
            client.ack(job_id)
        except BridgeError as exc:
            print(f"emogene generate: note: could not acknowledge job {job_id}: {exc}", file=sys.stderr)
    report_written(out, received)
    return 0
