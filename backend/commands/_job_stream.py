"""Receiving a job's stream in the CLI (``emogene generate`` and ``emogene fetch``): a progress bar, the
plates written as they arrive, the landmarks gathered by ``bridge.results.JobAssembler``."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.errors import BridgeError
from bridge.protocol import ErrorCode, MessageType

if TYPE_CHECKING:
    import numpy as np

#: errors after which the backend may still hold the job: the user is told how to fetch it
_FETCH_LATER = (ErrorCode.TIMEOUT, ErrorCode.BACKEND_RESTARTED, ErrorCode.STREAM_MOVED)


@dataclass
class ReceivedJob:
    landmarks: np.ndarray | None   # float32 [F, NUM_LANDMARKS, 3]
    rotation: np.ndarray | None
    translation: np.ndarray | None
    fps: float
    plates_dir: Path


def fail(command: str, text: str, code: int = 1) -> int:
    print(f"emogene {command}: {text}", file=sys.stderr)
    return code


def _plate_writer(plates_dir: Path):
    def write(msg) -> Path:
        plates_dir.mkdir(exist_ok=True)
        frame = int(msg.content["frame"]) + int(msg.content.get("frame_start", 0))
        path = plates_dir / f"frame_{frame:06d}.png"
        path.write_bytes(msg.bytes(0))
        return path
    return write


def receive_job(client, job_id: str, stream, command: str, out: Path) -> ReceivedJob | int:
    """Write a job's stream under ``out`` (plates) and collect its landmarks.

    Returns the :class:`ReceivedJob`, or an exit code after telling the user what
    happened (and how to fetch the job later).
    """
    from tqdm import tqdm

    from bridge.results import JobAssembler

    plates_dir = out / "plates"
    token = client.tokens.get(job_id, "TOKEN")
    later = f"fetch its results later with: emogene fetch --job {job_id} --token {token} --out {out}"
    results = JobAssembler(on_plate=_plate_writer(plates_dir))
    bar = tqdm(total=100, unit="%", desc=command, bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]")
    try:
        for msg in stream:
            if msg.type == MessageType.PROGRESS:
                bar.n = round(100 * float(msg.content["fraction"]), 1)
                bar.set_postfix_str(str(msg.content.get("stage", "")))
                bar.refresh()
                continue
            results.add(msg)
            if msg.type == MessageType.WARNING:
                tqdm.write(f"warning: {msg.content.get('message')}")
            elif msg.type == MessageType.CANCELLED:
                bar.close()
                return fail(command, "the job was cancelled on the backend")
            elif msg.type == MessageType.DONE:
                bar.n = 100
                bar.refresh()
    except KeyboardInterrupt:
        bar.close()
        try:
            client.cancel(job_id)
        except BridgeError:
            pass
        return fail(command, f"interrupted; job {job_id} cancelled", 130)
    except BridgeError as exc:
        bar.close()
        if exc.code in _FETCH_LATER:
            return fail(command, f"{exc.code}: {exc.message}\n  {later}")
        return fail(command, str(exc))
    bar.close()
    track = results.track
    return ReceivedJob(track.landmarks, track.rotation, track.translation, track.fps, plates_dir)


def report_written(out: Path, received: ReceivedJob) -> None:
    """The closing line: how many frames and plates went where."""
    plates_dir = received.plates_dir
    plates = len(list(plates_dir.glob("*.png"))) if plates_dir.is_dir() else 0
    print(f"wrote {len(received.landmarks)} frames of landmarks to {out / 'landmarks.npz'} and .csv"
          + (f", {plates} plates to {plates_dir}" if plates else ""))
