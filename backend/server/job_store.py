"""Jobs' results on disk, kept until the client acknowledges them (or they grow too old).

One folder per job under the jobs directory: ``job.json`` (state, times, summary)
and ``messages/NNNNNN.msg``, one file per result message (landmark chunks,
plates, warnings, the terminal message) in the order they were produced. A
message file is the message's frames (``bridge.wire.serialize`` without a key),
each preceded by its length; reading it back goes through ``bridge.wire.deserialize``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time
from pathlib import Path
from typing import Iterator

from bridge.messages import Message
from bridge.protocol import Limits
from bridge.wire import deserialize, serialize

DEFAULT_JOBS_DIR = Path.home() / ".cache" / "emogene" / "jobs"
TERMINAL_STATES = frozenset({"done", "failed", "cancelled"})
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_LENGTH = struct.Struct(">Q")


def is_job_id(text: object) -> bool:
    return isinstance(text, str) and bool(_JOB_ID.match(text))


class JobStore:
    """Reads and writes job folders. Only one thread writes a given job's messages at a time."""

    def __init__(self, root: str | Path = DEFAULT_JOBS_DIR, limits: Limits = Limits()):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        # stored messages may be larger than what a client may send
        self.limits = Limits(max_message_bytes=1 << 40, max_header_bytes=1 << 30, max_buffers=1 << 16)

    def _dir(self, job_id: str) -> Path:
        if not is_job_id(job_id):
            raise KeyError(job_id)
        return self.root / job_id

    def exists(self, job_id: str) -> bool:
        return is_job_id(job_id) and (self.root / job_id / "job.json").is_file()

    def create(self, job_id: str, meta: dict) -> None:
        folder = self._dir(job_id)
        (folder / "messages").mkdir(parents=True, exist_ok=True)
        self.write_meta(job_id, {"job_id": job_id, "state": "queued", "created": time.time(), "stored": 0, **meta})

    def write_meta(self, job_id: str, meta: dict) -> None:
        path = self._dir(job_id) / "job.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}.{time.monotonic_ns()}")
        tmp.write_text(json.dumps({**meta, "updated": time.time()}, indent=1))
        os.replace(tmp, path)

    def read_meta(self, job_id: str) -> dict:
        return json.loads((self._dir(job_id) / "job.json").read_text())

    def update_meta(self, job_id: str, **changes) -> dict:
        meta = {**self.read_meta(job_id), **changes}
        self.write_meta(job_id, meta)
        return meta

    def append(self, job_id: str, index: int, msg: Message) -> None:
        """Write result message number ``index`` (0, 1, 2 ... in order)."""
        path = self._dir(job_id) / "messages" / f"{index:06d}.msg"
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as f:
            for frame in serialize(msg, key=None):
                view = memoryview(frame).cast("B")
                f.write(_LENGTH.pack(len(view)))
                f.write(view)
        os.replace(tmp, path)

    def messages(self, job_id: str, count: int | None = None) -> Iterator[Message]:
        """The first ``count`` stored messages (all when None), in order."""
        files = sorted((self._dir(job_id) / "messages").glob("*.msg"))
        for path in files[:count] if count is not None else files:
            data = path.read_bytes()
            frames, offset = [], 0
            while offset < len(data):
                (length,) = _LENGTH.unpack_from(data, offset)
                offset += _LENGTH.size
                frames.append(memoryview(data)[offset:offset + length])
                offset += length
            yield deserialize(frames, key=None, limits=self.limits)

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self._dir(job_id), ignore_errors=True)

    def job_ids(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if is_job_id(p.name) and (p / "job.json").is_file())

    def purge(self, max_age_s: float, keep: set[str] = frozenset()) -> list[str]:
        """Delete finished jobs not updated for ``max_age_s`` (never those in ``keep``); returns their ids."""
        removed = []
        now = time.time()
        for job_id in self.job_ids():
            if job_id in keep:
                continue
            try:
                meta = self.read_meta(job_id)
            except (OSError, ValueError):
                meta = {}
            if now - float(meta.get("updated", 0)) > max_age_s:
                self.delete(job_id)
                removed.append(job_id)
        return removed
