"""Send speech + emotions to a backend and write what comes back under --out:

  DIR/landmarks.npz   landmarks [F,68,3] (canonical face space), rotation [F,3,3],
                      translation [F,3] (head pose, camera frame, OpenCV axes), fps,
                      emotion_weights [F,8], emotion_intensity [F]
  DIR/landmarks.csv   frame, index, name, x, y, z (one row per landmark per frame)
  DIR/arkit.csv       ARKit 52 blendshape weights per frame, Live Link Face CSV layout
  DIR/arkit.json      the same weights as JSON (bridge/live_link_face.py)
  DIR/plates/frame_000000.png ...   RGBA plates (unless --landmarks-only)

Audio: wav/flac/ogg are read here and sent as PCM; other formats (mp3, m4a ...)
are sent as they are and decoded by the backend.
"""
from __future__ import annotations

import sys

from backend.commands._connection import add_connection_arguments
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


def write_landmarks(out, landmarks, rotation, translation, fps, weights, intensity) -> None:
    import csv

    import numpy as np

    from bridge.landmarks import LANDMARK_NAMES

    emotion = {} if weights is None else {"emotion_weights": weights, "emotion_intensity": intensity}
    np.savez(out / "landmarks.npz", landmarks=landmarks, rotation=rotation, translation=translation,
             fps=np.float64(fps), **emotion)
    with open(out / "landmarks.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "index", "name", "x", "y", "z"])
        for frame, points in enumerate(landmarks):
            for index, (x, y, z) in enumerate(points.tolist()):
                writer.writerow([frame, index, LANDMARK_NAMES[index], f"{x:.6f}", f"{y:.6f}", f"{z:.6f}"])
    from bridge.live_link_face import write_take

    # the rest face is looked for among frames keyed neutral (an all-emotional take uses them all)
    rest = None if weights is None else (np.asarray(weights)[:, 0] >= 0.5) | (np.asarray(intensity) <= 0)
    write_take(out, landmarks, rotation, fps, rest)


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


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from bridge.client import KeyFileError, SyncClient, load_key
    from bridge.emotion_spec import parse_emotion_spec, spec_to_frames
    from bridge.emotions import UnknownEmotionError
    from bridge.errors import BridgeError
    from bridge.protocol import DEFAULT_LIMITS
    from bridge.requests import build_generate, frame_count_for

    def fail(text: str, code: int = 2) -> int:
        print(f"emogene generate: {text}", file=sys.stderr)
        return code

    audio_path, out = Path(args.audio), Path(args.out)
    limits = DEFAULT_LIMITS
    try:
        parse_emotion_spec(args.emotion)
        resolution = parse_resolution(args.resolution)
        if not (np.isfinite(args.fps) and 0 < args.fps <= limits.max_fps):
            raise ValueError(f"--fps must be a number > 0 and <= {limits.max_fps:g}, got {args.fps}")
        if not audio_path.is_file():
            raise ValueError(f"audio file {audio_path} not found")
        check_audio_file(audio_path, limits.max_audio_seconds, limits.max_message_bytes)
        audio, rate_or_type = read_audio(audio_path)
        key = load_key(args.key_file) if args.key_file else None
        curve = curve_options(args)
    except (ValueError, UnknownEmotionError, KeyFileError) as exc:
        return fail(str(exc))

    options = dict(subject=args.subject, landmarks_only=args.landmarks_only, resolution=resolution,
                   seed=args.seed, temperature=args.temperature)
    if isinstance(audio, bytes):   # the backend decodes it, and expands the emotion spec to its frame count
        request = build_generate(audio, None, args.fps, args.emotion, None, media_type=rate_or_type, **options)
        weights = intensity = None
    else:
        frames = frame_count_for(len(audio) / rate_or_type, args.fps)
        weights, intensity = spec_to_frames(args.emotion, frames, args.fps)
        request = build_generate(audio, rate_or_type, args.fps, weights, intensity, **options)

    out.mkdir(parents=True, exist_ok=True)
    with SyncClient(args.connect, key=key, timeout_s=args.timeout, **curve) as client:
        try:
            job_id = client.submit(request)
        except BridgeError as exc:
            return fail(str(exc), 1)
        token = client.tokens.get(job_id, "")
        print(f"job {job_id} token {token}", flush=True)
        print(f"  (to get its results later: emogene fetch --connect {args.connect} --job {job_id} "
              f"--token {token} --out {out})", file=sys.stderr, flush=True)
        received = receive_job(client, job_id, client.iter_job(job_id), "generate", out)
        if isinstance(received, int):
            return received
        landmarks, rotation, translation, plates_dir, _ = received
        if landmarks is None:
            return fail("the backend finished without sending landmarks", 1)
        if weights is None:
            weights, intensity = spec_to_frames(args.emotion, landmarks.shape[0], args.fps)
        write_landmarks(out, landmarks, rotation, translation, args.fps, weights, intensity)
        try:
            client.ack(job_id)
        except BridgeError as exc:
            print(f"emogene generate: note: could not acknowledge job {job_id}: {exc}", file=sys.stderr)
    plates = len(list(plates_dir.glob("*.png"))) if plates_dir.is_dir() else 0
    print(f"wrote {landmarks.shape[0]} frames of landmarks to {out / 'landmarks.npz'} and .csv"
          + (f", {plates} plates to {plates_dir}" if plates else ""))
    return 0


def curve_options(args) -> dict:
    """SyncClient's CURVE arguments from ``--server-key`` / ``--client-key`` (empty without them)."""
    from bridge.client import load_curve_key, load_curve_pair

    options = {}
    if getattr(args, "server_key", None):
        options["server_key"] = load_curve_key(args.server_key)
    if getattr(args, "client_key", None):
        if "server_key" not in options:
            raise ValueError("--client-key needs --server-key (the backend's public key)")
        options["client_pair"] = load_curve_pair(args.client_key)
    return options


def receive_job(client, job_id: str, stream, command: str, out):
    """Write a job's stream under ``out`` (plates) and collect its landmarks.

    Returns (landmarks, rotation, translation, plates_dir, fps), or an exit code after
    telling the user what happened (and how to fetch the job later).
    """
    import numpy as np
    from tqdm import tqdm

    from bridge.errors import BridgeError
    from bridge.protocol import ErrorCode, MessageType

    plates_dir = out / "plates"
    token = client.tokens.get(job_id, "TOKEN")
    later = f"fetch its results later with: emogene fetch --job {job_id} --token {token} --out {out}"

    def fail(text: str, code: int = 1) -> int:
        print(f"emogene {command}: {text}", file=sys.stderr)
        return code

    landmarks = rotation = translation = None
    fps = 0.0
    bar = tqdm(total=100, unit="%", desc=command, bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]")
    try:
        for msg in stream:
            if msg.type == MessageType.PROGRESS:
                bar.n = round(100 * float(msg.content["fraction"]), 1)
                bar.set_postfix_str(str(msg.content.get("stage", "")))
                bar.refresh()
            elif msg.type == MessageType.LANDMARKS:
                total, start, count = int(msg.content["total"]), int(msg.content["start"]), int(msg.content["count"])
                fps = float(msg.content.get("fps", fps))
                if landmarks is None:
                    landmarks = np.zeros((total, 68, 3), np.float32)
                    rotation = np.tile(np.eye(3, dtype=np.float32), (total, 1, 1))
                    translation = np.zeros((total, 3), np.float32)
                landmarks[start:start + count] = msg.array(0)
                rotation[start:start + count] = msg.array(1)
                translation[start:start + count] = msg.array(2)
            elif msg.type == MessageType.PLATE:
                plates_dir.mkdir(exist_ok=True)
                frame = int(msg.content["frame"]) + int(msg.content.get("frame_start", 0))
                (plates_dir / f"frame_{frame:06d}.png").write_bytes(msg.bytes(0))
            elif msg.type == MessageType.WARNING:
                tqdm.write(f"warning: {msg.content.get('message')}")
            elif msg.type == MessageType.CANCELLED:
                bar.close()
                return fail("the job was cancelled on the backend")
            elif msg.type == MessageType.DONE:
                bar.n = 100
                bar.refresh()
    except KeyboardInterrupt:
        bar.close()
        try:
            client.cancel(job_id)
        except BridgeError:
            pass
        return fail(f"interrupted; job {job_id} cancelled", 130)
    except BridgeError as exc:
        bar.close()
        if exc.code in (ErrorCode.TIMEOUT, ErrorCode.BACKEND_RESTARTED, ErrorCode.STREAM_MOVED):
            return fail(f"{exc.code}: {exc.message}\n  {later}")
        return fail(str(exc))
    bar.close()
    return landmarks, rotation, translation, plates_dir, fps
