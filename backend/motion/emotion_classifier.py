"""Emotion classifier on landmark windows: the project's "emotion score" metric.

Input: a window of canonical landmarks ``[B, W, NUM_LANDMARKS, 3]``; each frame is encoded by
an MLP (as an offset from the mean face), features are averaged over the
window, and a linear head gives logits over the 8 MEAD emotions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bridge.emotions import NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS

KIND = "emogene.emotion_classifier"
VERSION = 1


@dataclass
class EmotionClassifierConfig:
    window: int = 10
    hidden: int = 128
    dropout: float = 0.2
    input_scale: float = 10.0


class EmotionClassifier(nn.Module):
    def __init__(self, config: EmotionClassifierConfig | None = None):
        super().__init__()
        self.config = c = config or EmotionClassifierConfig()
        self.register_buffer("mean_face", torch.zeros(NUM_LANDMARKS, 3))
        self.frame_encoder = nn.Sequential(
            nn.Linear(NUM_LANDMARKS * 3, c.hidden), nn.GELU(), nn.Dropout(c.dropout),
            nn.Linear(c.hidden, c.hidden), nn.GELU())
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.hidden, NUM_EMOTIONS))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = ((windows - self.mean_face) * self.config.input_scale).flatten(-2)
        return self.head(self.frame_encoder(x).mean(1))


@torch.no_grad()
def classify_track(model: EmotionClassifier, landmarks: np.ndarray, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predicted label and window start for every window of a track ``[T, NUM_LANDMARKS, 3]``."""
    w = model.config.window
    stride = stride or max(1, w // 2)
    T = landmarks.shape[0]
    if T < w:
        landmarks = np.concatenate([landmarks, np.repeat(landmarks[-1:], w - T, 0)])
        T = w
    starts = np.arange(0, T - w + 1, stride)
    device = model.mean_face.device
    x = torch.as_tensor(np.stack([landmarks[s:s + w] for s in starts]), dtype=torch.float32, device=device)
    was_training = model.training
    model.eval()
    pred = model(x).argmax(-1).cpu().numpy()
    model.train(was_training)
    return pred, starts
