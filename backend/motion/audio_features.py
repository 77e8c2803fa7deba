"""Speech features for the audio-to-motion model, and mel-domain augmentation for unseen voices and rooms.

The track files and the motion stage share one log-mel (``backend.data.audio``: 80
bands, natural log of power, 4 rows per 25 fps video frame). Two things make it
speaker- and room-independent enough for this little data:

* :func:`normalise_mel`: per-recording mean subtraction over its louder half of rows
  (cepstral-mean-style normalisation: removes level, microphone colour and part of the
  voice's spectral envelope), then a global scale. Computed once over a whole
  recording, so chunked inference gives the same features as one pass.
* :class:`MelAugment`: on batches of raw log-mel (``[B, R, 80]``, torch): level,
  additive noise at random SNR, exponential-decay reverb, a vocal-tract-length /
  pitch warp of the mel axis, and a random spectral tilt. Tempo changes are done by
  the data sampler (they must stretch audio and landmarks together).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: log-mel of digital silence (``log(1e-6)``, as ``backend.data.audio.SILENCE_LOG_MEL``)
SILENCE = float(np.log(1e-6))
#: global scale of the normalised features (std of normalised log-mel over the training data ~ 1)
FEATURE_SCALE = 2.5


def loud_rows(mel: torch.Tensor, quantile: float = 0.5) -> torch.Tensor:
    """Mask ``[..., R]`` of rows at or above the recording's ``quantile`` of frame energy."""
    energy = torch.logsumexp(mel, dim=-1)
    thr = torch.quantile(energy.float(), quantile, dim=-1, keepdim=True)
    return energy >= thr


def recording_mean(mel: torch.Tensor) -> torch.Tensor:
    """Per-band mean of the louder half of a recording's rows: ``[R, 80] -> [80]`` or ``[B, R, 80] -> [B, 80]``."""
    mask = loud_rows(mel).to(mel.dtype)[..., None]
    return (mel * mask).sum(-2) / mask.sum(-2).clamp(min=1.0)


def recording_scale(mel: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Per-band spread (std, floored at 1 nat) of the louder half of a recording's rows around ``mean``: ``[..., 80]``."""
    mask = loud_rows(mel).to(mel.dtype)[..., None]
    x = (mel - mean.unsqueeze(-2)).clamp(min=-8.0)
    var = (x.pow(2) * mask).sum(-2) / mask.sum(-2).clamp(min=1.0)
    return var.sqrt().clamp(min=1.0)


def normalise_mel(mel: torch.Tensor, mean: torch.Tensor | None = None, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Log-mel minus the recording's mean spectrum (see :func:`recording_mean`), scaled to ~unit range.

    Rows quieter than the recording mean by more than 8 nats are clamped there, so
    digital silence and a noise floor look alike. ``scale``: per-band spread
    (:func:`recording_scale`) instead of the global :data:`FEATURE_SCALE`.
    """
    mean = recording_mean(mel) if mean is None else mean
    x = (mel - mean.unsqueeze(-2)).clamp(min=-8.0)
    return x / FEATURE_SCALE if scale is None else x / scale.unsqueeze(-2)


def frame_energy(mel: np.ndarray) -> np.ndarray:
    """Log energy per video frame ``[T]`` from ``[4T, 80]`` log-mel (the loudness envelope)."""
    rows = np.logaddexp.reduce(np.asarray(mel, np.float64), axis=-1)
    return rows.reshape(-1, 4).mean(-1).astype(np.float32)


@dataclass
class AugmentConfig:
    level_nats: float = 2.0          # +- overall level (log power); 2 nats ~ 8.7 dB
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (0.0, 30.0)
    reverb_prob: float = 0.35
    reverb_rows: tuple[float, float] = (2.0, 25.0)   # decay time constant in 10 ms rows (20-250 ms)
    warp_prob: float = 0.6
    warp: tuple[float, float] = (0.85, 1.18)         # mel-axis scale (vocal tract length / pitch)
    tilt_prob: float = 0.4
    tilt_nats: float = 1.5                           # +- difference between lowest and highest band
    band_masks: int = 2                              # SpecAugment-style masks of the mel axis (set to the mean)
    band_mask_width: int = 8


class MelAugment:
    """Random, label-preserving changes of raw log-mel batches ``[B, R, 80]`` (see the module docstring)."""

    def __init__(self, config: AugmentConfig | None = None, seed: int = 0):
        self.config = config or AugmentConfig()
        self.gen = torch.Generator().manual_seed(seed)

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.gen)

    def _pick(self, n: int, p: float) -> torch.Tensor:
        return torch.rand(n, generator=self.gen) < p

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        c = self.config
        B, R, M = mel.shape
        power = torch.exp(mel.double())
        # reverb: each band's power smeared forward in time by an exponential decay
        rv = self._pick(B, c.reverb_prob)
        if rv.any():
            tau = self._u(B, *c.reverb_rows)[rv]
            k = torch.arange(64, dtype=torch.float64)
            kernels = torch.exp(-k[None] / tau[:, None].double())
            kernels = kernels / kernels.sum(-1, keepdim=True)
            x = power[rv].transpose(1, 2)                                    # [b, M, R]
            x = F.pad(x, (63, 0))
            out = torch.stack([F.conv1d(x[i:i + 1].reshape(M, 1, -1), kernels[i].flip(0).view(1, 1, -1))[:, 0]
                               for i in range(x.shape[0])])
            power[rv] = out.transpose(1, 2)
        # warp of the mel axis: band b takes the power of band b * s (linear interpolation)
        wp = self._pick(B, c.warp_prob)
        if wp.any():
            s = self._u(B, *c.warp)[wp].double()
            src = (torch.arange(M, dtype=torch.float64)[None] * s[:, None]).clamp(0, M - 1)
            lo = src.floor().long()
            hi = (lo + 1).clamp(max=M - 1)
            w = (src - lo)[:, None, :]
            x = power[wp]
            power[wp] = torch.gather(x, 2, lo[:, None].expand(-1, R, -1)) * (1 - w) + \
                torch.gather(x, 2, hi[:, None].expand(-1, R, -1)) * w
        # additive noise: coloured (random tilt) Gaussian-ish noise at a random SNR to the speech power
        nz = self._pick(B, c.noise_prob)
        if nz.any():
            n = int(nz.sum())
            speech_power = power[nz].mean((1, 2))
            snr = 10 ** (self._u(n, *c.snr_db).double() / 10)
            tilt = torch.linspace(-1, 1, M, dtype=torch.float64)[None] * self._u(n, -2.0, 2.0).double()[:, None]
            shape = torch.exp(tilt)
            shape = shape / shape.mean(-1, keepdim=True)
            # noise power fluctuates per cell: mean of 4 unit exponentials (Gamma(4, 4)), from the seeded generator
            fluct = -torch.log(torch.rand((n, R, M, 4), generator=self.gen, dtype=torch.float64).clamp(min=1e-12)).mean(-1)
            power[nz] = power[nz] + (speech_power / snr)[:, None, None] * shape[:, None, :] * fluct
        out = torch.log(power + 1e-6)
        tl = self._pick(B, c.tilt_prob)
        if tl.any():
            slope = self._u(B, -c.tilt_nats, c.tilt_nats)[tl].double()
            out[tl] = out[tl] + torch.linspace(-0.5, 0.5, M, dtype=torch.float64)[None, None] * slope[:, None, None]
        out = out + self._u(B, -c.level_nats, c.level_nats).double()[:, None, None]
        for _ in range(c.band_masks):
            width = torch.randint(0, c.band_mask_width + 1, (B,), generator=self.gen)
            start = (torch.rand(B, generator=self.gen) * (M - width)).long()
            bands = torch.arange(M)[None]
            masked = (bands >= start[:, None]) & (bands < (start + width)[:, None])        # [B, M]
            fill = out.mean(2, keepdim=True).expand_as(out)
            out = torch.where(masked[:, None, :], fill, out)
        return out.clamp(min=SILENCE).float()
