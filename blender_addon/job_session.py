"""One generate job seen from Blender: send the request, poll replies, stage results.

No bpy here: a :class:`GenerateSession` owns a bridge ``PollingClient``, keeps the
landmark chunks in memory and writes plates to a private staging folder. The
scene is touched only after ``done`` (by ``importers.take``), so a failed,
timed-out or cancelled job leaves nothing half-imported. Every failure ends as
state ``ERROR`` with a sentence the user can act on.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import bridge_api

MessageType = bridge_api.protocol().MessageType
ErrorCode = bridge_api.protocol().ErrorCode

# session states
SUBMITTED = "SUBMITTED"   # sent, waiting for 'accepted'
RUNNING = "RUNNING"
CANCELLING = "CANCELLING"
DONE = "DONE"             # all results staged, ready to import
ERROR = "ERROR"
CANCELLED = "CANCELLED"
FINISHED_STATES = frozenset({DONE, ERROR, CANCELLED})

#: silence after which the session pings the backend (a pong proves it is alive but busy)
PING_AFTER_S = 2.0
#: a ping unanswered for this long (and nothing else heard since it left): the backend is gone
PONG_TIMEOUT_S = 6.0
#: bounds the work of one timer call (each plate is a file write)
PUMP_BUDGET_S = 0.03
POLL_BATCH = 16
#: how long a cancel waits for the backend's 'cancelled' before giving up locally
CANCEL_GRACE_S = 5.0


@dataclass
class StagedResults:
    """Everything a finished job produced, not yet in the scene."""
    frame_start: int
    fps: float
    landmarks: np.ndarray | None = None     # float32 [F, NUM_LANDMARKS, 3] canonical
    rotation: np.ndarray | None = None      # float32 [F, 3, 3]
    translation: np.ndarray | None = None   # float32 [F, 3]
    received: np.ndarray | None = None      # bool [F]: frames whose landmarks arrived
    plates: dict[int, str] = field(default_factory=dict)  # frame index (0-based) -> staged PNG path
    staging_dir: str = ""
    warnings: list[str] = field(default_factory=list)
    done_content: dict = field(default_factory=dict)

    @property
    def frame_count(self) -> int:
        return 0 if self.landmarks is None else len(self.landmarks)


#: a sentence the user can act on, per bridge error code ({message}, {address}, {version} filled in)
_ERROR_TEXT = {
    ErrorCode.BAD_SIGNATURE: "The backend rejected the signature: the add-on's key file does not match the "
                             "backend's key (or only one side uses a key). Details: {message}",
    ErrorCode.VERSION_MISMATCH: "Protocol version mismatch: this add-on speaks bridge v{version}. "
                                "Update the add-on or the backend. Details: {message}",
    ErrorCode.UNSUPPORTED: "The backend cannot do this: {message} (try 'Landmarks only')",
    ErrorCode.TIMEOUT: "{message}",
    ErrorCode.UNKNOWN_SUBJECT: "Unknown subject: {message} (press Connect in the preferences to list the "
                               "backend's subjects)",
    ErrorCode.BUSY: "The backend is busy: {message}. Try again later.",
    ErrorCode.BACKEND_RESTARTED: "The backend at {address} restarted during the job ({message}). Its queued jobs "
                                 "run again: press Fetch Results to get this one",
    ErrorCode.STREAM_MOVED: "Another connection fetched this job, so its results go there now ({message})",
    ErrorCode.BAD_TOKEN: "The backend refused: this .blend does not hold the job's token ({message})",
    ErrorCode.REPLAYED: "The backend refused the message as a replay; check that this computer's clock is right "
                        "({message})",
}


def describe_error(code: str, message: str, address: str) -> str:
    """A user-facing sentence for a bridge error code."""
    template = _ERROR_TEXT.get(code, "Backend error ({code}): {message}")
    return template.format(code=code, message=message, address=address,
                           version=bridge_api.protocol().PROTOCOL_VERSION)


class GenerateSession:
    """A running generate job. Call :meth:`pump` often; it never blocks more than a few ms."""

    def __init__(self, request, address: str, key: bytes | None, *, frame_start: int, fps: float,
                 landmarks_only: bool, staging_root: str, connect_timeout: float = 5.0,
                 silence_timeout: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 client=None, fetch_job_id: str | None = None, fetch_token: str | None = None,
                 server_key: bytes | None = None, client_pair: tuple[bytes, bytes] | None = None):
        """``fetch_job_id``/``fetch_token``: instead of sending ``request``, fetch that earlier job's stored
        results (a job started before Blender was closed or the .blend reloaded)."""
        self.address = address
        self.request = request
        self.landmarks_only = landmarks_only
        self.connect_timeout = connect_timeout
        self.silence_timeout = silence_timeout
        self.clock = clock
        self.state = SUBMITTED
        self.job_id: str | None = None
        #: the job's secret token (from 'accepted', or the saved one when fetching)
        self.token: str | None = fetch_token
        #: the backend instance serving the job; a pong from another one means it restarted
        self._instances = bridge_api.client().InstanceTracker()
        self.progress = 0.0
        self.stage = ""
        self.status = f"Sending to {address}"
        self.error: str = ""
        self.error_code: str = ""
        os.makedirs(staging_root, exist_ok=True)
        self.results = StagedResults(frame_start=frame_start, fps=fps,
                                     staging_dir=tempfile.mkdtemp(prefix="job_", dir=staging_root))
        self._track = bridge_api.module("results").LandmarkAssembler()
        self._client = client or bridge_api.client().PollingClient(address, key=key, server_key=server_key,
                                                                   client_pair=client_pair)
        self._started = clock()
        self._last_heard = self._started
        self._cancel_deadline: float | None = None
        self._ping_ids: set[str] = set()
        self._fetched = False
        self._last_ping = self._started
        self._oldest_unanswered: float | None = None   # when the oldest unanswered ping left
        self.fetching = bool(fetch_job_id)
        try:
            if fetch_job_id:
                self.job_id = fetch_job_id
                self._fetched = True  # the fetch is the replay: no second one
                self.status = f"Fetching job {fetch_job_id} from {address}"
                self._request_id = self._client.send(bridge_api.requests().build_fetch(fetch_job_id, fetch_token))
                # a job still running may send nothing for a while: a pong proves the backend is there
                self._send_ping()
            else:
                self._request_id = self._client.send(request)
        except Exception as exc:
            self._fail(getattr(exc, "code", ErrorCode.INTERNAL), f"could not send the request: {exc}")

    # -- public ---------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def pump(self) -> str:
        """Handle what has arrived, check the timeouts; returns the state."""
        if self.finished:
            return self.state
        started = time.monotonic()
        while time.monotonic() - started < PUMP_BUDGET_S:
            try:
                messages = self._client.poll(max_wait_ms=0, max_messages=POLL_BATCH)
            except Exception as exc:  # a broken socket must not take Blender's timer down
                self._fail(ErrorCode.INTERNAL, f"receiving from the backend failed: {exc}")
                return self.state
            now = self.clock()
            for msg in messages:
                if not self._is_ours(msg):
                    continue
                self._last_heard = now
                self._oldest_unanswered = None   # anything from the backend proves it is there
                self._handle(msg)
                if self.finished:
                    return self.state
            if len(messages) < POLL_BATCH:
                break
        self._check_timeouts(self.clock())
        return self.state

    def cancel(self) -> None:
        """Ask the backend to stop; results are dropped either way."""
        if self.finished:
            return
        if self.job_id is None:  # never accepted: nothing to cancel remotely
            self._finish_cancelled()
            return
        try:
            self._client.send(bridge_api.requests().build_cancel(self.job_id, self.token))
        except Exception:
            self._finish_cancelled()
            return
        self.state = CANCELLING
        self.status = "Cancelling..."
        self._cancel_deadline = self.clock() + CANCEL_GRACE_S

    def close(self, keep_socket: bool = False) -> None:
        """Remove the staging folder (imported plates have moved out of it) and close the socket.

        ``keep_socket`` leaves the socket open so a just-sent ``ack`` can leave; call again to close.
        """
        if self.results.staging_dir:
            shutil.rmtree(self.results.staging_dir, ignore_errors=True)
        if keep_socket:
            return
        try:
            self._client.close()
        except Exception:
            pass

    def ack(self) -> None:
        """Tell the backend the results arrived (it may delete its copy)."""
        if self.job_id:
            try:
                self._client.send(bridge_api.requests().build_ack(self.job_id, self.token))
            except Exception:
                pass

    # -- message handling -------------------------------------------------------
    def _is_ours(self, msg) -> bool:
        if msg.type == MessageType.PONG:
            return msg.parent_id in self._ping_ids
        if msg.parent_id == self._request_id:
            return True
        if self.job_id is not None and msg.job_id == self.job_id:
            return True
        # errors the backend could not tie to a request (unreadable/unsigned) or local decode errors
        return msg.type == MessageType.ERROR and (msg.parent_id is None or msg.content.get("local"))

    def _handle(self, msg) -> None:
        kind = msg.type
        content = msg.content or {}
        if self.fetching and self.state == SUBMITTED and kind != MessageType.ERROR:
            self.state = RUNNING  # the backend answered the fetch (it replays no 'accepted')
            self.status = f"Fetching job {self.job_id}"
        if kind == MessageType.PONG:
            self._ping_ids.discard(msg.parent_id)
            self._oldest_unanswered = None
            self._check_instance(content.get("instance"))
        elif kind == MessageType.ACCEPTED:
            self.job_id = msg.job_id or content.get("job_id")
            self.token = content.get("token") if isinstance(content.get("token"), str) else None
            self._check_instance(content.get("instance"))
            if self.state == SUBMITTED:
                self.state = RUNNING
            self.status = "Accepted by the backend"
        elif kind == MessageType.PROGRESS:
            self.progress = float(np.clip(content.get("fraction", self.progress), 0.0, 1.0))
            self.stage = str(content.get("stage", ""))
            text = str(content.get("message", "") or self.stage)
            self.status = f"{self.stage}: {text}" if self.stage and text != self.stage else text
        elif kind == MessageType.LANDMARKS:
            self._take_landmarks(msg)
        elif kind == MessageType.PLATE:
            self._take_plate(msg)
        elif kind == MessageType.WARNING:
            self.results.warnings.append(str(content.get("message", "")))
        elif kind == MessageType.DONE:
            self.results.done_content = dict(content)
            self._finish_done()
        elif kind == MessageType.CANCELLED:
            self._finish_cancelled()
        elif kind == MessageType.ERROR:
            self._fail(str(content.get("code", ErrorCode.INTERNAL)), str(content.get("message", "")))

    def _take_landmarks(self, msg) -> None:
        try:
            self._track.add(msg)
        except bridge_api.errors().BridgeError as exc:
            self._fail(exc.code, exc.message)
            return
        r, track = self.results, self._track
        r.landmarks, r.rotation, r.translation, r.received = (
            track.landmarks, track.rotation, track.translation, track.received)

    def _take_plate(self, msg) -> None:
        index = int(msg.content["frame"])
        media = msg.media_type(0)
        if media != "image/png":
            self._fail(ErrorCode.BAD_BUFFER, f"plate {index} came as {media!r}, expected image/png")
            return
        path = os.path.join(self.results.staging_dir, f"plate_{index:06d}.png")
        with open(path, "wb") as fh:
            fh.write(msg.bytes(0))
        self.results.plates[index] = path

    def _missing(self) -> str:
        """What a finished job still lacks, in words ('' when complete)."""
        r = self.results
        if r.landmarks is None or not r.received.all():
            missing = "all" if r.received is None else int((~r.received).sum())
            return f"{missing} landmark frame(s) never arrived"
        if not self.landmarks_only:
            missing_plates = sorted(set(range(r.frame_count)) - set(r.plates))
            if missing_plates:
                return f"{len(missing_plates)} plate(s) are missing (first: frame index {missing_plates[0]})"
        return ""

    def _finish_done(self) -> None:
        r = self.results
        missing = self._missing()
        if missing and not self._fetched and self.job_id:
            # a client that fell behind loses live messages; the backend keeps the job on disk: replay it
            self._fetched = True
            try:
                self._client.send(bridge_api.requests().build_fetch(self.job_id, self.token))
                self.status = f"Fetching the rest of the results ({missing})"
                return
            except Exception:
                pass
        if missing:
            self._fail(ErrorCode.JOB_FAILED, f"the backend finished but {missing}")
            return
        self.state = DONE
        self.progress = 1.0
        self.status = f"Received {r.frame_count} frames" + (
            "" if self.landmarks_only else f" and {len(r.plates)} plates")

    def _finish_cancelled(self) -> None:
        self.state = CANCELLED
        self.status = "Cancelled"

    def _fail(self, code: str, message: str) -> None:
        self.state = ERROR
        self.error_code = code
        self.error = describe_error(code, message, self.address)
        if self.fetching and code == ErrorCode.UNKNOWN_JOB:
            self.error = (f"The backend at {self.address} no longer has job {self.job_id} "
                          "(acknowledged or expired)")
        self.status = self.error

    def _check_timeouts(self, now: float) -> None:
        if self.state == CANCELLING:
            if self._cancel_deadline is not None and now > self._cancel_deadline:
                self._finish_cancelled()
                self.status = "Cancelled (the backend did not confirm)"
            return
        if self.state == SUBMITTED and now - self._started > self.connect_timeout:
            self._fail(ErrorCode.TIMEOUT, f"No answer from the backend at {self.address} within "
                                  f"{self.connect_timeout:g} s. Is `emogene serve` running there "
                                  "(and with the same key)?")
        elif self.state == RUNNING and now - self._last_heard > self.silence_timeout:
            self._fail(ErrorCode.TIMEOUT, f"The backend at {self.address} went silent for more than "
                                  f"{self.silence_timeout:g} s during the job (stopped or crashed?)")
        elif (self.state == RUNNING and self._oldest_unanswered is not None
              and now - self._oldest_unanswered > PONG_TIMEOUT_S and self._last_heard < self._oldest_unanswered):
            self._fail(ErrorCode.TIMEOUT, f"The backend at {self.address} stopped answering (no reply to pings for "
                                  f"{PONG_TIMEOUT_S:g} s): it stopped or crashed. If it comes back, press "
                                  "Fetch Results")
        elif self.state == RUNNING and now - max(self._last_heard, self._last_ping) > PING_AFTER_S:
            self._send_ping()

    def _send_ping(self) -> None:
        now = self.clock()
        self._last_ping = now
        try:
            self._ping_ids.add(self._client.send(bridge_api.requests().build_ping()))
        except Exception:
            return
        if self._oldest_unanswered is None:
            self._oldest_unanswered = now

    def _check_instance(self, instance) -> None:
        """A different backend instance than the one that took the job: it restarted."""
        change = self._instances.note(instance)
        if change:
            self._fail(ErrorCode.BACKEND_RESTARTED, change)
