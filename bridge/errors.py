"""The one exception type of the bridge: an error code from ``protocol.ErrorCode`` plus readable text."""
from __future__ import annotations


class BridgeError(Exception):
    """A protocol-level failure. ``code`` is stable (see ``bridge.protocol.ErrorCode``).

    ``parent_id`` is the id of the message the error is about, when known, so a
    server can address its ``error`` reply to the request that caused it.
    """

    def __init__(self, code: str, message: str, *, parent_id: str | None = None,
                 job_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.parent_id = parent_id
        self.job_id = job_id
