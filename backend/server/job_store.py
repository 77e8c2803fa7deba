"""Jobs' results on disk, kept until the client acknowledges them (or they grow too old).

One folder per job under the jobs directory: ``job.json`` (state, times, summary)
and ``messages/NNNNNN.msg``, one file per result message (landmark chunks,
plates, warnings, the terminal message) in the order they were produced. A
message file is the message's frames (``bridge.wire.serialize`` without a key),
each preceded by its length; reading it back goes through ``bridge.wire.deserialize``.
"""
from __future__ import annotations

import hashlib
import hmac
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


def token_digest(token: str) -> str:
    """What the store keeps of a job's secret token (never the token itself)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: object, digest: object) -> bool:
    """Constant-time check of a presented token against a stored digest."""
    if not isinstance(token, str) or not isinstance(digest, str) or not 0 < len(token) <= 256:
        return False
    return hmac.compare_digest(token_digest(token).encode(), digest.encode())


def _write_private(path: Path, chunks) -> None:
    """Write ``chunks`` (bytes-like) to ``path`` atomically, readable by the owner only (0600)."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.{time.monotonic_ns()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _frames_file(msg: Message):
    for frame in serialize(msg, key=None):
        view = memoryview(frame).cast("B")
        yield _LENGTH.pack(len(view))
        yield view


def _read_frames_file(path: Path, limits: Limits) -> Message:
    data = path.read_bytes()
    frames, offset = [], 0
    while offset < len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        frames.append(memoryview(data)[offset:offset + length])
        offset += length
    return deserialize(frames, key=None, limits=limits)


class JobStore:
    """Reads and writes job folders. Only one thread writes a given job's messages at a time.

    Everything is private to the user running the backend: folders 0700, files 0600
    (job folders hold the request's audio and the results).
    """

    def __init__(self, root: str | Path = DEFAULT_JOBS_DIR, limits: Limits = Limits()):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.chmod(self.root, 0o700)
        except OSError:
            pass  # not ours to change: the jobs inside are still 0700/0600
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
        folder.mkdir(mode=0o700, exist_ok=True)
        (folder / "messages").mkdir(mode=0o700, exist_ok=True)
        self.write_meta(job_id, {"job_id": job_id, "state": "queued", "created": time.time(), "stored": 0, **meta})

    def write_meta(self, job_id: str, meta: dict) -> None:
        path = self._dir(job_id) / "job.json"
        _write_private(path, [json.dumps({**meta, "updated": time.time()}, indent=1).encode("utf-8")])

    def read_meta(self, job_id: str) -> dict:
        return json.loads((self._dir(job_id) / "job.json").read_text())

    def update_meta(self, job_id: str, **changes) -> dict:
        meta = {**self.read_meta(job_id), **changes}
        self.write_meta(job_id, meta)
        return meta

    def append(self, job_id: str, index: int, msg: Message) -> None:
        """Write result message number ``index`` (0, 1, 2 ... in order)."""
        _write_private(self._dir(job_id) / "messages" / f"{index:06d}.msg", _frames_file(msg))

    def clear_messages(self, job_id: str) -> None:
        """Remove every stored result message (a job about to run again from the start)."""
        for path in (self._dir(job_id) / "messages").glob("*"):
            path.unlink(missing_ok=True)

    def save_request(self, job_id: str, msg: Message) -> None:
        """Keep the ``generate`` request, so a queued job can run after a backend restart."""
        _write_private(self._dir(job_id) / "request.msg", _frames_file(msg))

    def load_request(self, job_id: str) -> Message:
        return _read_frames_file(self._dir(job_id) / "request.msg", self.limits)

    def drop_request(self, job_id: str) -> None:
        (self._dir(job_id) / "request.msg").unlink(missing_ok=True)

    def messages(self, job_id: str, count: int | None = None) -> Iterator[Message]:
        """The first ``count`` stored messages (all when None), in order."""
        files = sorted((self._dir(job_id) / "messages").glob("*.msg"))
        for path in files[:count] if count is not None else files:
            yield _read_frames_file(path, self.limits)

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
