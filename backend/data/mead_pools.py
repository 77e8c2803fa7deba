"""Which MEAD speakers may train the generator and which may train the emotion judge.

The plate-level emotion judge (``emogene eval emotion``) must never have seen the
data the generator (LDM, emotional subject NeRF) learnt from: otherwise a high
score could mean "the judge recognises its own training faces" rather than "the
emotion is on the plate". The split is by **speaker**, so it also holds for
clips added later.

- ``GENERATOR_SPEAKERS``: the LDM and the shipped emotional subject (M030) learn
  from these. M030 is the one speaker here with all 8 emotions.
- ``JUDGE_SPEAKERS``: the judge learns from these only. W009 has all 8 emotions.
- Any other MEAD speaker (a new corpus) is held out from both and may be used
  only as unseen test data.

``assert_disjoint`` is called by both training paths and by the tests.
"""
from __future__ import annotations

from collections.abc import Iterable

GENERATOR_SPEAKERS: frozenset[str] = frozenset({"M030", "M003", "M026", "M901"})
JUDGE_SPEAKERS: frozenset[str] = frozenset({"W009", "W023", "W901", "W902"})


class PoolOverlapError(AssertionError):
    """The generator's and the judge's training data share a speaker."""


def pool_of(speaker: str) -> str:
    """``"generator"``, ``"judge"`` or ``"held_out"`` for a MEAD speaker id (case-insensitive)."""
    key = speaker.upper()
    if key in GENERATOR_SPEAKERS:
        return "generator"
    if key in JUDGE_SPEAKERS:
        return "judge"
    return "held_out"


def assert_disjoint(generator_speakers: Iterable[str], judge_speakers: Iterable[str]) -> None:
    """Raise :class:`PoolOverlapError` naming the shared speakers, if any."""
    shared = {s.upper() for s in generator_speakers} & {s.upper() for s in judge_speakers}
    if shared:
        raise PoolOverlapError(f"generator and judge training data share MEAD speakers {sorted(shared)}: "
                               f"the plate-level judge would not be independent")


assert_disjoint(GENERATOR_SPEAKERS, JUDGE_SPEAKERS)
