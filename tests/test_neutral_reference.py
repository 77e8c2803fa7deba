"""A speaker's neutral reference: own neutral clips when filmed, else the identity-model projection."""
from __future__ import annotations

import numpy as np
import pytest

from backend.data.neutral_reference import (IDENTITY_PROJECTION, OWN_NEUTRAL, NeutralReferenceError,
                                            fit_identity_basis, identity_basis_from_tracks,
                                            speaker_neutral_reference, with_expression_directions)
from backend.data.mean_face import MEAN_FACE_68

FACE = np.asarray(MEAN_FACE_68, np.float64)


def _distance(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1).mean())


def test_basis_is_orthonormal_and_projection_recovers_faces_in_its_span():
    rng = np.random.default_rng(0)
    dirs = np.linalg.qr(rng.normal(size=(204, 3)))[0].T                    # 3 identity directions
    means = [FACE + (dirs.T @ rng.normal(0, 0.05, 3)).reshape(68, 3) for _ in range(12)]
    basis = fit_identity_basis(means, 3)
    assert basis.basis.shape == (3, 204) and basis.mean.shape == (68, 3)
    np.testing.assert_allclose(basis.basis @ basis.basis.T, np.eye(3), atol=1e-9)
    probe = FACE + (dirs.T @ np.array([0.04, -0.03, 0.02])).reshape(68, 3)
    np.testing.assert_allclose(basis.project(probe), probe, atol=1e-5)


def test_expression_part_is_removed_and_identity_kept():
    rng = np.random.default_rng(1)
    q = np.linalg.qr(rng.normal(size=(204, 4)))[0].T
    ident, expr = q[:2], q[2:]
    means = [FACE + (ident.T @ rng.normal(0, 0.05, 2)).reshape(68, 3) for _ in range(15)]
    deviations = (rng.normal(0, 0.03, (500, 2)) @ expr).reshape(500, 68, 3)
    basis = with_expression_directions(fit_identity_basis(means, 2), deviations, 2, noise_variance=1e-6)
    neutral = FACE + (ident.T @ np.array([0.03, 0.05])).reshape(68, 3)
    smiling = neutral + (expr.T @ np.array([0.06, -0.04])).reshape(68, 3)
    ref, how = speaker_neutral_reference([np.repeat(smiling[None], 5, 0)], ["happy"], basis)
    assert how == IDENTITY_PROJECTION
    assert _distance(ref, neutral) < 0.05 * _distance(smiling, neutral)


def test_own_neutral_clips_win_when_present():
    basis = fit_identity_basis([FACE, FACE + 0.01], 1)
    neutral = np.repeat((FACE + 0.02)[None], 4, 0)
    ref, how = speaker_neutral_reference([neutral, neutral + 0.3], ["neutral", "happy"], basis)
    assert how == OWN_NEUTRAL
    np.testing.assert_allclose(ref, FACE + 0.02, atol=1e-6)


def test_bad_input_is_named():
    with pytest.raises(NeutralReferenceError, match="at least 2 speakers"):
        fit_identity_basis([FACE], 0)
    with pytest.raises(NeutralReferenceError, match="components"):
        fit_identity_basis([FACE, FACE + 0.1], 2)
    with pytest.raises(NeutralReferenceError, match="one emotion per clip"):
        speaker_neutral_reference([np.zeros((3, 68, 3))], [], fit_identity_basis([FACE, FACE + 0.1], 1))


def test_reference_from_emotional_clips_is_nearer_the_real_neutral_than_baselines(prepared_tracks):
    """M030 and W009 were filmed neutral too: build their reference from their emotional clips
    only and compare with what they really look like neutral (mean of the neutral clip)."""
    from backend.motion.tracks_data import load_clips
    basis = identity_basis_from_tracks(prepared_tracks)
    assert not any(s.upper().startswith(("M0", "W0")) for s in basis.speakers), basis.speakers  # no MEAD id
    clips = [c for c in load_clips(prepared_tracks) if c.meta.get("corpus") == "mead"]
    for speaker in ("M030", "W009"):
        own = [c for c in clips if c.speaker == speaker]
        if not any(c.emotion == "neutral" for c in own):
            pytest.skip(f"{speaker} has no neutral clip in the tracks")
        real = np.concatenate([c.landmarks for c in own if c.emotion == "neutral"]).mean(0)
        emotional = [c for c in own if c.emotion != "neutral"]
        ref, how = speaker_neutral_reference([c.landmarks for c in emotional], [c.emotion for c in emotional], basis)
        assert how == IDENTITY_PROJECTION
        plain = np.concatenate([c.landmarks for c in emotional]).mean(0)
        ours = _distance(ref, real)
        assert ours < _distance(plain, real), (speaker, ours, _distance(plain, real))
        assert ours < _distance(basis.mean, real), (speaker, ours, _distance(basis.mean, real))
        # one emotional clip alone (the case of M003, M026, M901, W023, W902): better on most clips
        wins = [_distance(speaker_neutral_reference([c.landmarks], [c.emotion], basis)[0], real)
                < _distance(c.landmarks.mean(0), real) for c in emotional]
        assert np.mean(wins) >= 0.75, (speaker, wins)
