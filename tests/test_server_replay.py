"""The replay guard alone: the time window, repeated ids, and a history that stays bounded."""
from __future__ import annotations

import pytest

from backend.server.replay import ReplayGuard
from bridge.errors import BridgeError
from bridge.messages import Message
from bridge.protocol import ErrorCode


def _refused(guard: ReplayGuard, msg: Message, now: float) -> bool:
    with pytest.raises(BridgeError) as err:
        guard.check(msg, now)
    assert err.value.code == ErrorCode.REPLAYED
    return True


def test_window_and_ids():
    guard = ReplayGuard(window_s=300.0)
    now = 1_800_000_000.0
    msg = Message("ping", time=now - 10)
    guard.check(msg, now)
    assert _refused(guard, msg, now + 1)                         # the same id again
    assert _refused(guard, Message("ping", time=now - 301), now)  # too old
    assert _refused(guard, Message("ping", time=now + 301), now)  # from the future
    assert _refused(guard, Message("ping", time=0.0), now)        # 1970
    guard.check(Message("ping", time=now + 299), now)
    # ids are forgotten only once the time check alone would refuse the message
    assert _refused(guard, msg, now + 290 + 0.0) and len(guard) == 2
    guard.check(Message("ping", time=now + 700), now + 700)
    assert len(guard) == 1


def test_history_is_bounded():
    guard = ReplayGuard(window_s=300.0, history=1000)
    now = 1_800_000_000.0
    for i in range(5000):
        guard.check(Message("ping", time=now), now + i * 1e-3)
    assert len(guard) <= 1000
