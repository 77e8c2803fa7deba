"""Formant tracks (F1-F3) from log-mel rows by linear prediction on the mel spectrum (mel-LPC).

F1 follows jaw opening and F2 lip rounding / tongue position, so they are a compact,
speaker-normalisable description of the mouth shape a sound needs. They are computed
from the 80-band log-mel the motion models already read (``backend.data.audio``:
16 kHz, Slaney bands 55-7600 Hz), so no waveform and no extra audio pass is needed:

1. each row's log power is interpolated from the band centres onto a uniform grid
   0-4 kHz (the formant range of F1-F3), pre-emphasised and exponentiated;
2. its autocorrelation (cosine transform of the power spectrum) gives an order-8
   LPC polynomial (Levinson-Durbin, batched over rows);
3. the peaks of the LPC envelope ``1 / |A(f)|^2`` on a 31 Hz grid (parabolic refinement),
   sharp enough to be resonances, are the formant candidates; the three lowest are F1-F3
   (missing ones take :data:`NOMINAL`). Peak picking instead of polynomial roots: the same
   resonances at a third of the cost (no batched eigenvalue problem).

:func:`formant_features` turns them into network input: log-frequencies minus the
recording's mean over its louder rows (removes vocal-tract length, as per-speaker vowel
normalisation does), scaled to ~unit range, and 0 on rows far below the recording's
speech level (formants of silence or noise mean nothing). The features are computed once per
video frame (25 fps, the rate lips move at) and repeated on its four rows. Everything is
torch, batched, on the device of the input.

Measured as an extra input of the speech-motion model (``SpeechMotionConfig.formants``) on
a validation split of the training people, 3 seeds: no gain (averages of 3 networks follow
unseen mouths at 0.433 / 0.361 ungated / gated, against 0.430 / 0.363 without them); the
network reads the same information from the log-mel bands. Kept as a tested option.
"""
from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np
import torch

from backend.motion.audio_features import loud_rows
from backend.motion.tracks_data import MEL_BINS, MEL_PER_FRAME

#: band edges of the log-mel the tracks hold (``backend.data.audio``)
MEL_FMIN, MEL_FMAX, SAMPLE_RATE = 55.0, 7600.0, 16_000
#: analysis band and its grid: 0 .. F_MAX Hz in GRID points
F_MAX, GRID = 4000.0, 65
PRE_EMPHASIS = 0.8
ORDER = 8                         # LPC order: 4 resonances in 0-4 kHz
ENVELOPE_GRID = 129               # points on 0 .. F_MAX where the LPC envelope's peaks are looked for
SHARPNESS = 0.004                 # log-power rise of a peak over its grid neighbours (bandwidth under ~1 kHz)
MIN_FREQ = 120.0                  # Hz; lower roots are voicing / pitch energy
NOMINAL = (500.0, 1500.0, 2500.0)  # a neutral vowel's F1-F3, for rows with fewer candidates
COUNT = len(NOMINAL)              # features per row
#: rows quieter than the recording's loud-row mean energy by more than this (nats) get feature 0
QUIET_NATS = 6.0
FEATURE_SCALE = 0.25              # log-frequency spread of F1-F3 around a speaker's mean ~ 0.2-0.3


@lru_cache(maxsize=1)
def _grid_matrices() -> tuple[np.ndarray, ...]:
    """(interpolation ``[GRID, 80 + 1]`` from band centres to the uniform grid (last column: pre-emphasis), cosine ``[ORDER + 1, GRID]``,
    cosine and sine ``[ORDER + 1, ENVELOPE_GRID]`` that evaluate an LPC polynomial on 0 .. F_MAX)."""
    centres = librosa.mel_frequencies(n_mels=MEL_BINS + 2, fmin=MEL_FMIN, fmax=MEL_FMAX, htk=False)[1:-1]
    grid = np.linspace(0.0, F_MAX, GRID)
    interp = np.zeros((GRID, MEL_BINS))
    for i, f in enumerate(grid):
        j = int(np.clip(np.searchsorted(centres, f), 1, MEL_BINS - 1))
        w = float(np.clip((f - centres[j - 1]) / (centres[j] - centres[j - 1]), 0.0, 1.0))
        interp[i, j - 1], interp[i, j] = 1.0 - w, w
    # pre-emphasis (first-order difference at 16 kHz, added in the log-power domain): flattens the voice's
    # spectral tilt so the predictor spends its poles on resonances
    emphasis = np.log(1.0 + PRE_EMPHASIS ** 2 - 2.0 * PRE_EMPHASIS * np.cos(2 * np.pi * grid / SAMPLE_RATE))
    # autocorrelation of a real, even spectrum sampled on 0..pi (trapezoid weights at the ends)
    weights = np.ones(GRID)
    weights[[0, -1]] = 0.5
    lags = np.arange(ORDER + 1)[:, None]
    cosine = np.cos(np.pi * lags * np.arange(GRID)[None] / (GRID - 1)) * weights[None]
    w = np.pi * np.linspace(0.0, 1.0, ENVELOPE_GRID)[None] * lags
    return np.c_[interp, emphasis].astype(np.float32), cosine.astype(np.float32), np.cos(w).astype(np.float32), -np.sin(w).astype(np.float32)


def _levinson(r: torch.Tensor) -> torch.Tensor:
    """LPC polynomials ``[N, ORDER + 1]`` (leading 1) from autocorrelations ``[N, ORDER + 1]``."""
    n = r.shape[0]
    a = torch.zeros(n, ORDER + 1, dtype=r.dtype, device=r.device)
    a[:, 0] = 1.0
    err = r[:, 0].clone()
    for i in range(1, ORDER + 1):
        acc = (a[:, :i] * r[:, 1:i + 1].flip(-1)).sum(-1)
        k = -acc / err.clamp(min=1e-12)
        prev = a.clone()
        a[:, 1:i] = prev[:, 1:i] + k[:, None] * prev[:, 1:i].flip(-1)
        a[:, i] = k
        err = err * (1.0 - k * k).clamp(min=1e-6)
    return a


def formants_hz(mel: torch.Tensor) -> torch.Tensor:
    """F1-F3 in Hz ``[..., R, 3]`` of raw log-mel rows ``[..., R, 80]``."""
    interp, cosine, env_cos, env_sin = (torch.as_tensor(m, device=mel.device) for m in _grid_matrices())
    rows = mel.reshape(-1, MEL_BINS).float()
    if rows.shape[0] == 0:
        return mel.new_zeros(*mel.shape[:-1], COUNT)
    logp = rows @ interp[:, :-1].T + interp[:, -1]
    power = torch.exp(logp - logp.amax(-1, keepdim=True))          # per-row scale does not change the LPC
    r = power @ cosine.T
    r[:, 0] = r[:, 0] * (1.0 + 1e-5) + 1e-12                        # white-noise floor: a stable predictor
    a = _levinson(r.double()).float()                               # the recursion wants double precision
    # |A(e^jw)|^2 on the envelope grid: its minima are the LPC envelope's peaks (the resonances)
    gain = torch.log((a @ env_cos).pow(2) + (a @ env_sin).pow(2) + 1e-12)
    mid = gain[:, 1:-1]
    is_min = (mid < gain[:, :-2]) & (mid <= gain[:, 2:])
    # parabolic refinement of each minimum's position (in grid steps)
    den = gain[:, :-2] - 2 * mid + gain[:, 2:]
    shift = torch.where(den > 1e-9, 0.5 * (gain[:, :-2] - gain[:, 2:]) / den.clamp(min=1e-9), torch.zeros_like(den))
    step = F_MAX / (ENVELOPE_GRID - 1)
    freq = (torch.arange(1, ENVELOPE_GRID - 1, device=mel.device, dtype=torch.float32) + shift.clamp(-0.5, 0.5)) * step
    # sharp peaks only: the envelope must rise by SHARPNESS (log power) over the neighbouring grid points
    sharp = (0.5 * (gain[:, :-2] + gain[:, 2:]) - mid) > SHARPNESS
    ok = is_min & sharp & (freq > MIN_FREQ)
    rank = ok.cumsum(-1)
    out = []
    for k, nominal in enumerate(NOMINAL, start=1):
        hit = ok & (rank == k)
        found = hit.any(-1)
        fk = (freq * hit).sum(-1)
        out.append(torch.where(found, fk, torch.full_like(fk, nominal)))
    return torch.stack(out, -1).to(mel.dtype).reshape(*mel.shape[:-1], COUNT)


def frame_formants_hz(mel: torch.Tensor, rows_per_frame: int = MEL_PER_FRAME) -> torch.Tensor:
    """:func:`formants_hz` once per video frame (its ``rows_per_frame`` log-mel rows averaged), repeated on each row:
    ``[..., R, 80] -> [..., R, 3]`` at a quarter of the cost (lips move at 25 fps)."""
    R = mel.shape[-2]
    frames = -(-R // rows_per_frame)
    pad = frames * rows_per_frame - R
    padded = torch.cat([mel, mel[..., -1:, :].expand(*mel.shape[:-2], pad, mel.shape[-1])], -2) if pad else mel
    pooled = padded.unflatten(-2, (frames, rows_per_frame)).mean(-2)
    return formants_hz(pooled).repeat_interleave(rows_per_frame, dim=-2)[..., :R, :]


def formant_features(mel: torch.Tensor, loud_mean: torch.Tensor | None = None) -> torch.Tensor:
    """Network input ``[..., R, 3]`` from raw log-mel ``[..., R, 80]`` (see the module docstring).

    ``loud_mean``: the recording's per-feature mean log-frequency over its louder rows
    (:func:`recording_formant_mean`; computed from ``mel`` itself when None).
    """
    logf = torch.log(frame_formants_hz(mel))
    energy = torch.logsumexp(mel, dim=-1)
    loud = loud_rows(mel)
    if loud_mean is None:
        loud_mean = recording_formant_mean(mel, logf)
    level = (energy * loud).sum(-1, keepdim=True) / loud.sum(-1, keepdim=True).clamp(min=1)
    voiced = (energy >= level - QUIET_NATS).to(mel.dtype)[..., None]
    return (logf - loud_mean.unsqueeze(-2)) / FEATURE_SCALE * voiced


def recording_formant_mean(mel: torch.Tensor, logf: torch.Tensor | None = None) -> torch.Tensor:
    """Mean log F1-F3 over the louder half of a recording's rows: ``[R, 80] -> [3]`` (batched: ``[B, 3]``)."""
    logf = torch.log(frame_formants_hz(mel)) if logf is None else logf
    loud = loud_rows(mel).to(mel.dtype)
    return (logf * loud[..., None]).sum(-2) / loud.sum(-1, keepdim=True).clamp(min=1)
