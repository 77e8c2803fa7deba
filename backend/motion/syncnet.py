"""Landmark SyncNet: a contrastive audio-window <-> mouth-window model.

Audio: the log-mel rows of ``window`` video frames (4 rows per frame).
Mouth: the 20 mouth points over the same frames, as displacements from the
clip's own mean mouth (so identity does not matter). Both are embedded on the
unit sphere; cosine similarity is high for in-sync pairs.

Two uses: :meth:`LandmarkSyncNet.sync_loss` (differentiable, for the VAE) and
:func:`sync_profile` (the metric: confidence and best offset in frames).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from backend.motion.landmarks import MOUTH
from backend.motion.tracks_data import MEL_BINS, MEL_PER_FRAME

KIND = "emogene.syncnet"
VERSION = 1


@dataclass
class SyncNetConfig:
    window: int = 5              # video frames per window
    hidden: int = 128
    embed: int = 64
    mouth_scale: float = 10.0    # mouth displacements are ~0.05 canonical units: scale to ~unit
    dropout: float = 0.2


class LandmarkSyncNet(nn.Module):
    def __init__(self, config: SyncNetConfig | None = None):
        super().__init__()
        self.config = c = config or SyncNetConfig()
        self.register_buffer("mel_mean", torch.zeros(MEL_BINS))
        self.register_buffer("mel_std", torch.ones(MEL_BINS))
        self.audio_encoder = nn.Sequential(
            nn.Conv1d(MEL_BINS, c.hidden, 3, padding=1), nn.GELU(),
            nn.Conv1d(c.hidden, c.hidden, 3, padding=1, stride=2), nn.GELU(),
            nn.Conv1d(c.hidden, c.hidden, 3, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(c.dropout), nn.Linear(c.hidden, c.embed))
        self.mouth_encoder = nn.Sequential(
            nn.Linear(c.window * len(MOUTH) * 3, 2 * c.hidden), nn.GELU(), nn.Dropout(c.dropout),
            nn.Linear(2 * c.hidden, c.hidden), nn.GELU(), nn.Linear(c.hidden, c.embed))
        self.logit_scale = nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))

    def embed_audio(self, mel_windows: torch.Tensor) -> torch.Tensor:
        """``[B, 4*window, 80]`` raw log-mel -> unit vectors ``[B, embed]``."""
        x = (mel_windows - self.mel_mean) / self.mel_std
        return F.normalize(self.audio_encoder(x.transpose(1, 2)), dim=-1)

    def embed_mouth(self, mouth_windows: torch.Tensor) -> torch.Tensor:
        """``[B, window, 20, 3]`` mouth displacements -> unit vectors ``[B, embed]``."""
        x = mouth_windows.flatten(1) * self.config.mouth_scale
        return F.normalize(self.mouth_encoder(x), dim=-1)

    def forward(self, mel_windows: torch.Tensor, mouth_windows: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each aligned pair ``[B]``."""
        return (self.embed_audio(mel_windows) * self.embed_mouth(mouth_windows)).sum(-1)

    def sync_loss(self, mel: torch.Tensor, mouth_displacement: torch.Tensor, stride: int = 2) -> torch.Tensor:
        """Differentiable lip-sync loss for sequences: mean ``1 - cos`` over sliding windows.

        ``mel``: ``[B, 4T, 80]``; ``mouth_displacement``: ``[B, T, 20, 3]`` (mouth minus its clip mean).
        """
        mel_w, mouth_w = sliding_windows(mel, mouth_displacement, self.config.window, stride)
        return (1.0 - self(mel_w, mouth_w)).mean()


def sliding_windows(mel: torch.Tensor, mouth: torch.Tensor, window: int, stride: int = 1,
                    offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """All windows (audio at frame t, mouth at frame t + offset) of batched sequences, flattened to ``[N, ...]``."""
    T = mouth.shape[1]
    starts = [t for t in range(0, T - window + 1, stride) if 0 <= t + offset <= T - window]
    if not starts:
        raise ValueError(f"sequence of {T} frames is too short for window {window} at offset {offset}")
    idx = torch.as_tensor(starts, device=mouth.device)
    frame_idx = idx[:, None] + torch.arange(window, device=mouth.device)                     # [N, w]
    mel_idx = (frame_idx[:, :, None] * MEL_PER_FRAME + torch.arange(MEL_PER_FRAME, device=mel.device)).flatten(1)
    mel_w = mel[:, mel_idx]                                                                    # [B, N, 4w, 80]
    mouth_w = mouth[:, frame_idx + offset]                                                     # [B, N, w, 20, 3]
    return mel_w.flatten(0, 1), mouth_w.flatten(0, 1)


def mouth_displacements(landmarks: np.ndarray | torch.Tensor):
    """Mouth points minus their mean over the clip: ``[..., T, 20, 3]``."""
    mouth = landmarks[..., MOUTH, :]
    return mouth - mouth.mean(-3, keepdims=True) if isinstance(mouth, np.ndarray) else mouth - mouth.mean(-3, keepdim=True)


@dataclass
class SyncResult:
    offset: int              # frames; > 0: the mouth lags the audio
    confidence: float        # similarity at the best offset minus the median over all offsets
    similarity: float        # mean cosine similarity at offset 0
    profile: list[float]     # mean similarity for offsets -max_offset .. +max_offset


@torch.no_grad()
def sync_profile(model: LandmarkSyncNet, mel: np.ndarray, landmarks: np.ndarray, max_offset: int = 10,
                 speech: np.ndarray | None = None) -> SyncResult:
    """SyncNet confidence and best offset of one track (``mel [4T,80]``, ``landmarks [T,NUM_LANDMARKS,3]``).

    Only windows whose audio frame is speech count when ``speech`` is given (silence
    carries no sync information); falls back to all windows if too few are speech.
    """
    device = next(model.parameters()).device
    w = model.config.window
    T = landmarks.shape[0]
    mel_t = torch.as_tensor(mel[: T * MEL_PER_FRAME], dtype=torch.float32, device=device)[None]
    mouth_t = torch.as_tensor(mouth_displacements(landmarks), dtype=torch.float32, device=device)[None]
    audio_emb = model.embed_audio(sliding_windows(mel_t, mouth_t, w)[0])                     # [T-w+1, E]
    starts = np.arange(T - w + 1)
    all_mouth = torch.as_tensor(mouth_t[0][starts[:, None] + np.arange(w)])
    mouth_emb = model.embed_mouth(all_mouth)                                                  # [T-w+1, E]
    keep = np.ones(len(starts), bool)
    if speech is not None:
        voiced = np.convolve(np.asarray(speech[:T], float), np.ones(w), "valid")[: len(starts)] > w / 2
        if voiced.sum() >= 10:
            keep = voiced
    profile = []
    for off in range(-max_offset, max_offset + 1):
        a = np.arange(len(starts))
        m = a + off
        ok = (m >= 0) & (m < len(starts)) & keep
        if ok.sum() == 0:
            profile.append(float("nan"))
            continue
        sims = (audio_emb[a[ok]] * mouth_emb[m[ok]]).sum(-1)
        profile.append(float(sims.mean()))
    prof = np.array(profile)
    best = int(np.nanargmax(prof))
    return SyncResult(offset=best - max_offset, confidence=float(prof[best] - np.nanmedian(prof)),
                      similarity=float(prof[max_offset]), profile=[float(x) for x in prof])
