"""Replay protection for keyed servers: a time window and a bounded history of message ids.

A signed message proves who made it, not that it is new: a captured ``generate`` or ``fetch`` could be
sent again. With a key, the server refuses a message whose ``time`` is further than ``window_s`` from
its own clock, and one whose ``msg_id`` it already received within the window (ids are kept for
2 x window, the longest a message can still pass the time check; beyond ``history`` ids the oldest
are forgotten first).
"""
from __future__ import annotations

import collections
import math
import time

from bridge.errors import BridgeError
from bridge.messages import Message
from bridge.protocol import ErrorCode


class ReplayGuard:
    def __init__(self, window_s: float = 300.0, history: int = 200_000):
        self.window_s = window_s
        self.history = history
        #: message id -> when it was received, oldest first
        self._seen: "collections.OrderedDict[str, float]" = collections.OrderedDict()
        self._next_expiry = math.inf   # when the oldest remembered id may be forgotten

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, msg: Message, now: float | None = None) -> None:
        """Raise ``replayed`` for a stale/future message or a repeated id; else remember the id."""
        now = time.time() if now is None else now
        if not abs(msg.time - now) <= self.window_s:
            raise BridgeError(ErrorCode.REPLAYED,
                              f"message time is {msg.time - now:+.0f} s from the backend's clock; messages "
                              f"must be within ±{self.window_s:g} s (a replay, or the clocks are out of sync)",
                              parent_id=msg.msg_id)
        seen = self._seen
        if now >= self._next_expiry or len(seen) >= self.history:
            self._forget(now)
        if msg.msg_id in seen:
            raise BridgeError(ErrorCode.REPLAYED, f"message id {msg.msg_id[:32]} was already received "
                              "(a replayed message)", parent_id=msg.msg_id)
        seen[msg.msg_id] = now
        if len(seen) == 1:
            self._next_expiry = now + 2 * self.window_s

    def _forget(self, now: float) -> None:
        """Drop the ids older than 2 x window (and the oldest beyond ``history``)."""
        seen, keep_s = self._seen, 2 * self.window_s
        while seen:
            received = next(iter(seen.values()))
            if now - received <= keep_s and len(seen) < self.history:
                self._next_expiry = received + keep_s
                return
            seen.popitem(last=False)
        self._next_expiry = math.inf
