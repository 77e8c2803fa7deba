"""Audio-to-motion model (checkpoint version 3): speech -> neutral lower-face landmark displacements.

Replaces the version-2 conditional VAE (``audio2motion.Audio2MotionVAE``, whose latent
collapsed and whose output was damped to a quarter of real motion). Same contract for
the stage: :meth:`SpeechMotionModel.generate` turns ``[4T, 80]`` log-mel (25 fps) into
displacements ``[T, NUM_LANDMARKS, 3]`` from the subject's mean face; ``rest_displacement`` is the
closed-lips pose the silence gate pulls to; ``mean_face`` the training speakers' mean.

* Input: log-mel normalised per recording (:func:`audio_features.normalise_mel`), so
  level and microphone colour do not matter; the network sees the 100 Hz rows.
* Network: mel bands pooled by ``band_pool`` (smooths out pitch harmonics), a 100 Hz
  convolutional front end, a stride-4 step to 25 fps, then dilated residual temporal
  convolutions (receptive field +-13 frames = +-0.52 s), output = ``pca_components``
  normalised PCA coefficients of the lower face. Small and heavily regularised on
  purpose: with ~5 minutes of lip-sync video, bigger nets fitted the training people
  and generalised worse to unseen ones (held-out sweeps in MODEL_CARD / the report).
* Speaking style: every training speaker has a learnt style code (FiLM on the hidden
  features); an "unseen speaker" code is trained on a share of each batch. At
  inference the code is ``unseen + temperature * sigma * eps`` (``eps`` from the seed,
  ``sigma`` the spread of the training speakers' codes): seeds pick a plausible
  speaking style (how wide, how rounded), temperature 0 is the deterministic mean style.
* Ensemble (``members``): networks trained apart with different seeds, their PCA coefficients
  averaged (each with its own style table, the same random draw); ``output_gain`` gives the
  average the members' mouth speed back (averaging damps motion). On a validation split of
  the training people 3 averaged networks followed unseen mouths better than any one of them
  (gated opening correlation 0.362 -> 0.392).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from backend.motion.audio2motion import LOWER_FACE
from backend.motion.audio_features import normalise_mel, recording_mean, recording_scale
from backend.motion.formants import COUNT as FORMANTS, formant_features, recording_formant_mean
from backend.motion.tracks_data import MEL_BINS, MEL_PER_FRAME
from bridge.landmarks import NUM_LANDMARKS

KIND = "emogene.audio2motion"
VERSION = 3


@dataclass
class SpeechMotionConfig:
    pca_components: int = 20
    hidden: int = 64
    front: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 4)   # receptive field +-13 frames (0.52 s)
    style_dim: int = 4
    speakers: int = 32            # rows of the style table (training speakers; the last row = unseen)
    dropout: float = 0.3
    band_pool: int = 4            # average this many neighbouring mel bands first (smooths out pitch harmonics)
    feature_norm: str = "mean"    # per recording: "mean" (mean spectrum removed) or "meanvar" (+ per-band spread;
                                  # no gain on the training people's validation split: 0.405 vs 0.405, 3 seeds)
    formants: bool = False        # add mel-LPC F1-F3 (speaker-normalised, :mod:`formants`) to the pooled bands; no gain
                                  # on the training people's validation split (3 seeds, single networks ungated / gated
                                  # 0.409 / 0.350 vs 0.405 / 0.352; 3-network averages 0.433 / 0.361 vs 0.430 / 0.363)
    members: int = 1              # networks trained apart (seeds) whose outputs are averaged (:meth:`SpeechMotionModel.merge`)
    lower_face_only: bool = True  # kept for ``audio2motion.animated_mask``


def animated_points() -> np.ndarray:
    mask = np.zeros(NUM_LANDMARKS, bool)
    mask[LOWER_FACE] = True
    return mask


class ChannelNorm(nn.Module):
    """LayerNorm over channels at each time step (per frame, so chunked decoding matches one pass)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int, style_dim: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.film = nn.Linear(style_dim, 2 * channels) if style_dim else None
        self.norm = ChannelNorm(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(x)
        if self.film is not None and style is not None:
            scale, shift = self.film(style).unsqueeze(-1).chunk(2, dim=1)
            h = h * (1 + scale) + shift
        return x + self.mix(self.dropout(F.gelu(self.conv(F.gelu(h)))))


class _Network(nn.Module):
    """One member network: front end, style table, residual blocks, output head (see the module docstring)."""

    def __init__(self, c: SpeechMotionConfig):
        super().__init__()
        self.register_buffer("style_sigma", torch.zeros(max(1, c.style_dim)))
        self.front = nn.Sequential(
            nn.Conv1d(MEL_BINS // c.band_pool + (FORMANTS if c.formants else 0), c.front, 3, padding=1), nn.GELU(),
            nn.Conv1d(c.front, c.front, 3, padding=1), nn.GELU(),
            nn.Conv1d(c.front, c.hidden, MEL_PER_FRAME, stride=MEL_PER_FRAME))
        self.style = nn.Embedding(c.speakers, c.style_dim) if c.style_dim else None
        if self.style is not None:
            nn.init.normal_(self.style.weight, std=0.1)
        self.blocks = nn.ModuleList([_Block(c.hidden, d, c.style_dim, c.dropout) for d in c.dilations])
        self.out = nn.Sequential(ChannelNorm(c.hidden), nn.GELU(), nn.Conv1d(c.hidden, c.pca_components, 1))


def _run(net, band_pool: int, features: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
    extra = features[..., MEL_BINS:]          # formant features (when the config has them) are not pooled
    features = features[..., :MEL_BINS]
    if band_pool > 1:
        features = features.unflatten(-1, (-1, band_pool)).mean(-1)
    if extra.shape[-1]:
        features = torch.cat([features, extra], -1)
    x = net.front(features.transpose(1, 2))
    for block in net.blocks:
        x = block(x, style)
    return net.out(x).transpose(1, 2)


def _sample_style(net, unseen: int, style_dim: int, temperature: float, seed: int) -> torch.Tensor | None:
    if net.style is None:
        return None
    base = net.style.weight[unseen].detach().cpu()
    if temperature <= 0:
        return base[None]
    g = torch.Generator().manual_seed(int(seed))
    eps = torch.randn(style_dim, generator=g)
    return (base + float(temperature) * net.style_sigma.cpu() * eps)[None]


class SpeechMotionModel(nn.Module):
    """The audio-to-motion model: member 0's network lives on the model itself (checkpoint keys as before
    ensembles), members 1.. in ``others``; their PCA coefficients are averaged."""

    def __init__(self, config: SpeechMotionConfig | None = None):
        super().__init__()
        self.config = c = config or SpeechMotionConfig()
        K = c.pca_components
        self.register_buffer("pca_basis", torch.zeros(K, NUM_LANDMARKS * 3))
        self.register_buffer("coef_std", torch.ones(K))
        self.register_buffer("rest_displacement", torch.zeros(NUM_LANDMARKS, 3))
        self.register_buffer("mean_face", torch.zeros(NUM_LANDMARKS, 3))
        self.register_buffer("output_gain", torch.tensor(1.0))
        first = _Network(c)
        self.register_buffer("style_sigma", first.style_sigma)
        self.front, self.style, self.blocks, self.out = first.front, first.style, first.blocks, first.out
        self.others = nn.ModuleList([_Network(c) for _ in range(c.members - 1)])

    @classmethod
    def merge(cls, models: list["SpeechMotionModel"], output_gain: float = 1.0) -> "SpeechMotionModel":
        """One model averaging single-network ``models`` trained on the same data (same PCA statistics)."""
        if any(m.config.members != 1 for m in models):
            raise ValueError("merge takes single-network models")
        config = replace(models[0].config, members=len(models))
        merged = cls(config)
        state = models[0].state_dict()
        for k, m in enumerate(models[1:]):
            for name, value in m.state_dict().items():
                if name in ("pca_basis", "coef_std", "rest_displacement", "mean_face", "output_gain"):
                    if not torch.equal(value, state[name]):
                        raise ValueError(f"members differ in {name}: trained on different data")
                    continue
                state[f"others.{k}.{name}"] = value
        merged.load_state_dict(state)
        merged.output_gain.fill_(float(output_gain))
        return merged.eval()

    def members(self) -> list:
        return [self, *self.others]

    # --- representation ------------------------------------------------------------------
    def to_coefficients(self, displacement: torch.Tensor) -> torch.Tensor:
        return (displacement.flatten(-2) @ self.pca_basis.T) / self.coef_std

    def to_displacement(self, coefs: torch.Tensor) -> torch.Tensor:
        return ((coefs * self.coef_std) @ self.pca_basis).unflatten(-1, (NUM_LANDMARKS, 3))

    @property
    def unseen_speaker(self) -> int:
        return self.config.speakers - 1

    @property
    def receptive_field(self) -> int:
        """Video frames of context on each side that can influence one output frame."""
        return 2 + sum(self.config.dilations)

    # --- network -----------------------------------------------------------------------
    def recording_stats(self, mel: torch.Tensor) -> tuple:
        """(mean, scale, formant mean) that :meth:`normalise` uses for raw log-mel ``[..., R, 80]`` (scale None:
        the global one; formant mean None: no formant input)."""
        mean = recording_mean(mel)
        scale = recording_scale(mel, mean) if self.config.feature_norm == "meanvar" else None
        return mean, scale, recording_formant_mean(mel) if self.config.formants else None

    def normalise(self, mel: torch.Tensor, stats: tuple | None = None) -> torch.Tensor:
        """Network input from raw log-mel (stats of ``mel`` itself unless given): ``[..., R, 80 (+ 3 formants)]``."""
        mean, scale, formant_mean = self.recording_stats(mel) if stats is None else stats
        features = normalise_mel(mel, mean, scale)
        if not self.config.formants:
            return features
        return torch.cat([features, formant_features(mel, formant_mean).to(features.dtype)], -1)

    def style_code(self, speaker: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
        if self.style is None:
            return None
        if speaker is None:
            speaker = torch.full((batch,), self.unseen_speaker, dtype=torch.long, device=device)
        return self.style(speaker)

    def forward(self, features: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """``features [B, 4T, 80]`` (normalised) + style ``[B, S]`` -> coefficients ``[B, T, K]`` (member 0: training)."""
        return _run(self, self.config.band_pool, features, style)

    def ensemble(self, features: torch.Tensor, styles: list[torch.Tensor | None]) -> torch.Tensor:
        """Mean coefficients of all members, member ``k`` with style code ``styles[k]``."""
        outs = [_run(net, self.config.band_pool, features, code) for net, code in zip(self.members(), styles)]
        return outs[0] if len(outs) == 1 else torch.stack(outs).mean(0)

    def sample_style(self, temperature: float, seed: int) -> torch.Tensor | None:
        """Member 0's style code of one generated sequence (drawn on CPU so seeds agree across devices)."""
        return _sample_style(self, self.unseen_speaker, self.config.style_dim, temperature, seed)

    def sample_styles(self, temperature: float, seed: int) -> list[torch.Tensor | None]:
        """Every member's style code (the same random draw, scaled by each member's spread)."""
        return [_sample_style(net, self.unseen_speaker, self.config.style_dim, temperature, seed)
                for net in self.members()]

    @torch.no_grad()
    def generate(self, mel: torch.Tensor, temperature: float = 1.0, seed: int = 0, chunk: int = 500,
                 style: torch.Tensor | None = None, on_chunk=None) -> torch.Tensor:
        """Displacements ``[T, NUM_LANDMARKS, 3]`` for raw log-mel ``[4T, 80]``, decoded in chunks of ``chunk`` frames.

        The recording's normalisation is computed once over all of ``mel``; each chunk is
        decoded with ``receptive_field`` frames of real context on both sides, so the
        result does not depend on ``chunk``. ``on_chunk(done, total)`` after each chunk.
        """
        device = self.mean_face.device
        mel = torch.as_tensor(mel, dtype=torch.float32)
        T = mel.shape[0] // MEL_PER_FRAME
        mel = mel[: T * MEL_PER_FRAME]
        stats = self.recording_stats(mel)
        codes = [style] * len(self.members()) if style is not None else self.sample_styles(temperature, seed)
        codes = [None if code is None else code.to(device) for code in codes]
        margin = self.receptive_field
        out = torch.empty(T, NUM_LANDMARKS, 3, device=device)
        for start in range(0, T, chunk):
            end = min(T, start + chunk)
            a, b = max(0, start - margin), min(T, end + margin)
            feats = self.normalise(mel[a * MEL_PER_FRAME: b * MEL_PER_FRAME], stats).to(device)[None]
            coefs = self.ensemble(feats, codes)
            out[start:end] = self.to_displacement(coefs[0, start - a: end - a]) * self.output_gain
            if on_chunk is not None:
                on_chunk(end, T)
        return out
