"""The seam where emotion enters the landmarks: any model that turns neutral landmarks plus
per-frame emotion weights and intensity into emotional landmarks.

The generator and the motion stage only use this protocol, so a second emotion model (another
LDM, a learned prior, a rig-driven one) is swapped in by handing it to ``MotionStage(...,
emotion_deformer=...)`` or by loading it in ``MotionModels.ldm``; the shipped one is
``ldm.LandmarkDeformationModel``. An implementation keeps intensity 0 an exact no-op.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class EmotionDeformer(Protocol):
    def deform(self, neutral: torch.Tensor, weights: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
        """Emotional landmarks ``[N, landmarks, 3]`` from neutral ``[N, landmarks, 3]`` (canonical space),
        ``weights [N, NUM_EMOTIONS]`` (bridge.emotions order, rows sum to 1) and ``intensity [N]`` in [0, 1]."""


def deformer_device(deformer: EmotionDeformer) -> torch.device:
    """Where the deformer's tensors live (its first buffer or parameter; CPU when it has none)."""
    if isinstance(deformer, torch.nn.Module):
        for tensor in (*deformer.buffers(), *deformer.parameters()):
            return tensor.device
    return torch.device("cpu")


def deform_track(deformer: EmotionDeformer, neutral: np.ndarray, weights: np.ndarray,
                 intensity: np.ndarray) -> np.ndarray:
    """``deformer`` over a numpy track (weights already normalised), on the deformer's device."""
    device = deformer_device(deformer)
    out = deformer.deform(torch.as_tensor(neutral, device=device), torch.as_tensor(weights, device=device),
                          torch.as_tensor(intensity, device=device))
    return out.cpu().numpy()
