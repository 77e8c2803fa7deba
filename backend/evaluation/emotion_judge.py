"""The plate-level emotion judge: face geometry relative to the person's own neutral face -> 8 emotions.

Input per frame: the canonical iBUG landmarks (``backend.data.canonical``, inter-ocular
distance 1) minus the same person's *neutral reference shape*, so identity is removed
and only the expression is left. :func:`displacement_features` turns a clip's
landmarks into one feature row per frame (optionally the mean over a short centred
window of neighbouring frames, and x/y only: FaceMesh's depth is its noisiest axis).
:class:`EmotionJudge` standardises those features (statistics of its training data),
down-weights the mouth (speech moves it in every emotion) and applies a linear or
one-hidden-layer classifier over the 8 MEAD emotions in ``bridge.emotions`` order.
:func:`fit_judge` trains it (class-balanced cross-entropy, full batch). ``neutral_bias`` is a neutral prior added to
the neutral logit when judging (not in training): trained class-balanced (1/8 neutral), the judge otherwise reads
real people talking neutrally with head motion as emotional on about half their frames
(:mod:`backend.evaluation.judge_talking_heads`). No I/O here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from bridge import landmarks as ibug
from bridge.emotions import EMOTION_INDEX, NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS

KIND = "emogene.emotion_judge"
VERSION = 1
MOUTH = ibug.as_slice(ibug.MOUTH)


@dataclass
class JudgeConfig:
    window: int = 1              # frames averaged (centred, truncated at the clip's ends); 1 = per frame
    use_depth: bool = False      # include the z displacement (FaceMesh depth is noisy)
    mouth_weight: float = 0.5    # multiplier on the standardised mouth features
    hidden: int = 0              # 0 = linear (multinomial logistic regression); > 0 = one hidden layer
    weight_decay: float = 1e-2
    steps: int = 400
    learning_rate: float = 0.05
    seed: int = 0
    augment_scales: tuple[float, ...] = ()   # training copies with the expression scaled (people differ in amplitude)
    augment_mirror: bool = False             # training copies mirrored left-right
    drop_regions: tuple[str, ...] = ()       # bridge.landmarks.REGIONS whose features are zeroed (e.g. "jaw")
    neutral_bias: float = 0.0                # added to the neutral logit when judging (a neutral prior; training
                                             # is class-balanced and unaffected)

    def to_dict(self) -> dict:
        return asdict(self)


def displacement_features(landmarks: np.ndarray, reference: np.ndarray, config: JudgeConfig) -> np.ndarray:
    """``[T, NUM_LANDMARKS, 3]`` canonical landmarks and a ``[NUM_LANDMARKS, 3]`` neutral reference
    -> ``[T, D]`` features."""
    landmarks = np.asarray(landmarks, np.float32)
    reference = np.asarray(reference, np.float32)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"landmarks must be [frames, {NUM_LANDMARKS}, 3], got {list(landmarks.shape)}")
    if reference.shape != (NUM_LANDMARKS, 3):
        raise ValueError(f"neutral reference must be [{NUM_LANDMARKS}, 3], got {list(reference.shape)}")
    if not (np.all(np.isfinite(landmarks)) and np.all(np.isfinite(reference))):
        raise ValueError("landmarks or neutral reference contain NaN or infinity")
    disp = landmarks - reference
    if config.window > 1 and disp.shape[0] > 1:
        disp = _centred_mean(disp, config.window)
    if not config.use_depth:
        disp = disp[..., :2]
    return disp.reshape(disp.shape[0], -1)


def _centred_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean over ``window`` frames centred on each frame (fewer at the ends)."""
    half = window // 2
    csum = np.concatenate([np.zeros_like(x[:1]), np.cumsum(x, axis=0)])
    t = np.arange(x.shape[0])
    lo, hi = np.maximum(t - half, 0), np.minimum(t + half + 1, x.shape[0])
    return (csum[hi] - csum[lo]) / (hi - lo).reshape(-1, *([1] * (x.ndim - 1)))


def feature_scale(config: JudgeConfig) -> np.ndarray:
    """Per-feature multiplier applied after standardisation (mouth down-weighted, dropped regions 0)."""
    dims = 3 if config.use_depth else 2
    scale = np.ones((NUM_LANDMARKS, dims), np.float32)
    scale[MOUTH] = config.mouth_weight
    for name in config.drop_regions:
        if name not in ibug.REGIONS:
            raise ValueError(f"unknown face region {name!r} in drop_regions; known: {', '.join(ibug.REGIONS)}")
        scale[list(ibug.REGIONS[name])] = 0.0
    return scale.reshape(-1)


class EmotionJudge(nn.Module):
    """Standardised displacement features -> logits over the 8 emotions."""

    def __init__(self, config: JudgeConfig | None = None):
        super().__init__()
        self.config = c = config or JudgeConfig()
        dims = NUM_LANDMARKS * (3 if c.use_depth else 2)
        self.register_buffer("feature_mean", torch.zeros(dims))
        self.register_buffer("feature_std", torch.ones(dims))
        self.register_buffer("feature_scale", torch.as_tensor(feature_scale(c)))
        if c.hidden > 0:
            self.classifier = nn.Sequential(nn.Linear(dims, c.hidden), nn.GELU(), nn.Linear(c.hidden, NUM_EMOTIONS))
        else:
            self.classifier = nn.Linear(dims, NUM_EMOTIONS)

    @property
    def input_dims(self) -> int:
        return int(self.feature_mean.shape[0])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = (features - self.feature_mean) / self.feature_std * self.feature_scale
        return self.classifier(x)

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class index per feature row."""
        return self.probabilities(features).argmax(-1)

    @torch.no_grad()
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Softmax over the 8 emotions, with ``config.neutral_bias`` on the neutral logit."""
        features = np.asarray(features, np.float32)
        if features.ndim != 2 or features.shape[1] != self.input_dims:
            raise ValueError(f"judge features must be [N, {self.input_dims}], got {list(features.shape)}")
        was_training = self.training
        self.eval()
        x = torch.as_tensor(features, device=self.feature_mean.device)
        logits = self(x)
        if self.config.neutral_bias:
            logits[:, EMOTION_INDEX["neutral"]] += float(self.config.neutral_bias)
        out = torch.softmax(logits, -1).cpu().numpy()
        self.train(was_training)
        return out


def predict_in_bursts(judge: "EmotionJudge", landmarks: np.ndarray, reference: np.ndarray, bursts: np.ndarray,
                      valid: np.ndarray | None = None) -> np.ndarray:
    """``judge``'s class index per frame of ``landmarks [T, NUM_LANDMARKS, 3]`` against ``reference``, its window
    kept inside each run of frames sharing a ``bursts [T]`` id (as a plate take is read); -1 where ``valid`` is False."""
    bursts = np.asarray(bursts)
    valid = np.ones(len(landmarks), bool) if valid is None else np.asarray(valid, bool)
    pred = np.full(len(landmarks), -1, np.int64)
    for b in np.unique(bursts):
        sel = np.flatnonzero((bursts == b) & valid)
        if len(sel):
            pred[sel] = judge.predict(displacement_features(landmarks[sel], reference, judge.config))
    return pred


def fit_judge(features: np.ndarray, labels: np.ndarray, config: JudgeConfig | None = None,
              sample_weight: np.ndarray | None = None) -> EmotionJudge:
    """Train a judge on ``[N, D]`` features and ``[N]`` emotion indices (class-balanced, full batch)."""
    config = config or JudgeConfig()
    features = np.asarray(features, np.float32)
    labels = np.asarray(labels, np.int64)
    if features.ndim != 2 or len(features) != len(labels) or len(labels) == 0:
        raise ValueError(f"need [N, D] features and [N] labels, got {list(features.shape)} and {list(labels.shape)}")
    if labels.min() < 0 or labels.max() >= NUM_EMOTIONS:
        raise ValueError(f"labels must be emotion indices 0..{NUM_EMOTIONS - 1}")
    torch.manual_seed(config.seed)
    judge = EmotionJudge(config)
    if features.shape[1] != judge.input_dims:
        raise ValueError(f"features have {features.shape[1]} columns, the judge config expects {judge.input_dims}")
    x = torch.as_tensor(features)
    y = torch.as_tensor(labels)
    judge.feature_mean.copy_(x.mean(0))
    judge.feature_std.copy_(x.std(0).clamp_min(1e-4))
    counts = np.bincount(labels, minlength=NUM_EMOTIONS).astype(np.float64)
    per_class = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
    w = per_class[labels]
    if sample_weight is not None:
        w = w * np.asarray(sample_weight, np.float64)
    w = torch.as_tensor(w / w.mean(), dtype=torch.float32)
    optimiser = torch.optim.Adam(judge.classifier.parameters(), lr=config.learning_rate,
                                 weight_decay=config.weight_decay)
    judge.train()
    for _ in range(config.steps):
        optimiser.zero_grad()
        loss = (nn.functional.cross_entropy(judge(x), y, reduction="none") * w).mean()
        loss.backward()
        optimiser.step()
    judge.eval()
    return judge
