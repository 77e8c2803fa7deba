"""Phonetic front end: log-mel -> per-frame viseme posteriors, learnt from synthetic speech only.

The recogniser is trained on espeak-ng speech with known phone timing
(:mod:`backend.data.synthetic_speech`, ``scripts/train_phone_recognizer.py``) in many
voices, pitches, rates and rooms, so what it has learnt is *which sound* is being said,
not *who* says it. Its weights ship (``backend/assets/models/phones.safetensors`` + ``.json``); nothing here
needs espeak.

* Input: the project's log-mel, normalised per recording exactly as the audio-to-motion
  model's input (:func:`audio_features.normalise_mel`), ``[B, 4T, 80]``.
* Network: convolutions only (so chunked decoding with :attr:`PhoneRecognizer.receptive_field`
  frames of context equals one pass): mel bands pooled by 2, a 100 Hz front end, a stride-4
  step to 25 fps, dilated residual convolutions, logits over :data:`synthetic_speech.VISEMES`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F

from backend.checkpoints import CheckpointError, load_checkpoint, read_checkpoint_meta, save_checkpoint
from backend.data.synthetic_speech import VISEMES
from backend.motion.tracks_data import MEL_BINS, MEL_PER_FRAME

KIND = "emogene.phones"
VERSION = 1
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "assets" / "models" / "phones"   # .safetensors + .json


@dataclass
class PhoneticConfig:
    classes: int = len(VISEMES)
    band_pool: int = 2
    front: int = 64
    hidden: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    dropout: float = 0.1


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x.transpose(1, 2)).transpose(1, 2)       # over channels per time step: chunk-independent
        return x + self.mix(self.dropout(F.gelu(self.conv(F.gelu(h)))))


class PhoneRecognizer(nn.Module):
    """Normalised log-mel ``[B, 4T, 80]`` -> viseme logits ``[B, T, classes]`` (see the module docstring)."""

    def __init__(self, config: PhoneticConfig | None = None):
        super().__init__()
        self.config = c = config or PhoneticConfig()
        if MEL_BINS % c.band_pool:
            raise ValueError(f"band_pool {c.band_pool} does not divide {MEL_BINS} mel bands")
        self.front = nn.Sequential(
            nn.Conv1d(MEL_BINS // c.band_pool, c.front, 5, padding=2), nn.GELU(),
            nn.Conv1d(c.front, c.front, 5, padding=2), nn.GELU(),
            nn.Conv1d(c.front, c.hidden, MEL_PER_FRAME, stride=MEL_PER_FRAME))
        self.blocks = nn.ModuleList([_Block(c.hidden, d, c.dropout) for d in c.dilations])
        self.out = nn.Conv1d(c.hidden, c.classes, 1)

    @property
    def receptive_field(self) -> int:
        """Video frames of context on each side that can influence one output frame."""
        return 2 + sum(self.config.dilations)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 3 or features.shape[-1] != MEL_BINS or features.shape[1] % MEL_PER_FRAME:
            raise ValueError(f"expected normalised log-mel [B, 4T, {MEL_BINS}], got {list(features.shape)}")
        x = features.unflatten(-1, (-1, self.config.band_pool)).mean(-1).transpose(1, 2)
        x = self.front(x)
        for block in self.blocks:
            x = block(x)
        return self.out(x).transpose(1, 2)

    @torch.no_grad()
    def posteriors(self, features: torch.Tensor) -> torch.Tensor:
        """Viseme probabilities ``[B, T, classes]`` of normalised log-mel ``[B, 4T, 80]``."""
        return self(features).softmax(-1)


def save_recognizer(model: PhoneRecognizer, stem: str | Path, metrics: dict | None = None) -> Path:
    """``<stem>.safetensors`` + ``<stem>.json`` (config, viseme names, training metrics)."""
    return save_checkpoint(stem, model, kind=KIND, version=VERSION, config=model.config,
                           extra={"visemes": list(VISEMES), "metrics": metrics or {}})


def load_recognizer(stem: str | Path = DEFAULT_WEIGHTS) -> PhoneRecognizer:
    """The recogniser saved by :func:`save_recognizer` (eval mode, CPU, frozen)."""
    try:
        meta = read_checkpoint_meta(stem, kind=KIND, version=VERSION)
    except CheckpointError as e:
        raise CheckpointError(f"{e} (train the phone recogniser with scripts/train_phone_recognizer.py)") from None
    if list(meta.get("visemes", [])) != list(VISEMES):
        raise CheckpointError(f"{stem} was trained for other viseme classes: {meta.get('visemes')}")
    cfg = dict(meta["config"])
    cfg["dilations"] = tuple(cfg["dilations"])
    model = PhoneRecognizer(PhoneticConfig(**cfg))
    load_checkpoint(stem, model, kind=KIND, version=VERSION)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


@lru_cache(maxsize=2)
def shipped_recognizer(path: str = str(DEFAULT_WEIGHTS)) -> PhoneRecognizer:
    """The shipped recogniser, loaded once per process."""
    return load_recognizer(path)


def viseme_features(features: torch.Tensor, recognizer: PhoneRecognizer | None = None) -> torch.Tensor:
    """Viseme posteriors repeated to the mel row rate: normalised log-mel ``[..., 4T, 80]`` -> ``[..., 4T, classes]``
    (the extra input channels of the audio-to-motion model's phonetic option)."""
    rec = recognizer or shipped_recognizer()
    squeeze = features.ndim == 2
    x = features[None] if squeeze else features
    rec = rec.to(x.device)
    post = rec.posteriors(x.float()).repeat_interleave(MEL_PER_FRAME, dim=1).to(features.dtype)
    return post[0] if squeeze else post
