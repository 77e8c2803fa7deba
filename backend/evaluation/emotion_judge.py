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
(:mod:`backend.evaluation.judge_talking_heads`). ``ensemble_seeds`` makes :func:`fit_judge` train one member per
training seed on the same data and return a :class:`JudgeEnsemble` (members' probabilities averaged, the neutral prior
on each member's logits): one judge's training seed alone moves its real-video bar by several points.
``augment_pose`` adds training copies shifted as a turning head shifts the landmarks
(:mod:`backend.evaluation.judge_pose_augment`); the judge still reads landmarks alone. No I/O here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from bridge import landmarks as ibug
from bridge.emotions import EMOTION_INDEX, NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS

KIND = "emogene.emotion_judge"
VERSION = 1
MOUTH = ibug.as_slice(ibug.MOUTH)


#: ``JudgeConfig.anchored``: (regions, anchor landmarks) - each region's displacement minus the mean displacement of
#: its anchor: brows and eyes from both eyes' centre, the nose from its bridge top, mouth and jaw from the nose base
ANCHORS: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...] = (
    (("brow_r", "brow_l", "eye_r", "eye_l"), (*ibug.EYE_R, *ibug.EYE_L)),
    (("nose_bridge", "nose_base"), (ibug.REGIONS["nose_bridge"][0],)),
    (("jaw", "lip_outer", "lip_inner"), tuple(ibug.NOSE_BASE)),
)


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
    ensemble_seeds: tuple[int, ...] = ()     # () = one judge trained with ``seed``; else one member per training
                                             # seed (``seed`` unused), their probabilities averaged
    anchored: bool = False                   # each region's displacement relative to a local anchor (see
                                             # ANCHORS): a head pose shifts whole regions, an expression deforms
                                             # them relative to each other
    augment_pose: int = 0                    # training copies of each clip shifted by the real pose leak at real
                                             # head-angle deviations (judge_pose_augment; needs a PoseAugmentation
                                             # at training time, nothing at prediction)
    augment_pose_scale: float = 1.0          # multiplier on those angle deviations

    def __post_init__(self) -> None:
        if isinstance(self.augment_pose, bool) or not isinstance(self.augment_pose, (int, np.integer)) \
                or self.augment_pose < 0:
            raise ValueError(f"augment_pose must be a non-negative integer, got {self.augment_pose!r}")
        self.augment_pose = int(self.augment_pose)
        seeds = tuple(self.ensemble_seeds)
        if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds) \
                or len(set(seeds)) != len(seeds):
            raise ValueError(f"ensemble_seeds must be distinct non-negative integers, got {self.ensemble_seeds!r}")
        self.ensemble_seeds = tuple(int(s) for s in seeds)

    @property
    def member_seeds(self) -> tuple[int, ...]:
        """The training seed of each member (one for a single judge)."""
        return self.ensemble_seeds or (self.seed,)

    def member(self, seed: int) -> "JudgeConfig":
        """The single-judge config of the member trained with ``seed``."""
        return replace(self, seed=int(seed), ensemble_seeds=())

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
    if config.anchored:
        raw = disp.copy()
        for regions, anchor in ANCHORS:
            disp[:, [i for name in regions for i in ibug.REGIONS[name]]] -= raw[:, list(anchor)].mean(1, keepdims=True)
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
    def probabilities(self, features: np.ndarray, neutral_bias: float | None = None) -> np.ndarray:
        """Softmax over the 8 emotions, with ``neutral_bias`` (default ``config.neutral_bias``) on the neutral logit."""
        bias = self.config.neutral_bias if neutral_bias is None else neutral_bias
        features = np.asarray(features, np.float32)
        if features.ndim != 2 or features.shape[1] != self.input_dims:
            raise ValueError(f"judge features must be [N, {self.input_dims}], got {list(features.shape)}")
        was_training = self.training
        self.eval()
        x = torch.as_tensor(features, device=self.feature_mean.device)
        logits = self(x)
        if bias:
            logits[:, EMOTION_INDEX["neutral"]] += float(bias)
        out = torch.softmax(logits, -1).cpu().numpy()
        self.train(was_training)
        return out


class JudgeEnsemble(nn.Module):
    """Judges trained alike but for their training seed: each member's logits get ``config.neutral_bias`` on the
    neutral logit, their softmax probabilities are averaged. One judge's training seed moves its real-video bar by
    several points; the average of a few is a steadier instrument. Same interface as :class:`EmotionJudge`."""

    def __init__(self, members: list[EmotionJudge], config: JudgeConfig):
        super().__init__()
        if not members:
            raise ValueError("a judge ensemble needs at least one member")
        if len({m.input_dims for m in members}) != 1:
            raise ValueError("ensemble members must read the same features")
        self.members = nn.ModuleList(members)
        self.config = config

    @property
    def input_dims(self) -> int:
        return self.members[0].input_dims

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class index per feature row."""
        return self.probabilities(features).argmax(-1)

    @torch.no_grad()
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Mean over members of their softmax (each with this ensemble's ``neutral_bias``)."""
        probs = [m.probabilities(features, self.config.neutral_bias) for m in self.members]
        return probs[0] if len(probs) == 1 else np.mean(probs, axis=0)


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
              sample_weight: np.ndarray | None = None) -> "EmotionJudge | JudgeEnsemble":
    """Train a judge on ``[N, D]`` features and ``[N]`` emotion indices (class-balanced, full batch); with
    ``config.ensemble_seeds`` one member per seed on the same data (a :class:`JudgeEnsemble`)."""
    config = config or JudgeConfig()
    if config.ensemble_seeds:
        return JudgeEnsemble([fit_judge(features, labels, config.member(s), sample_weight)
                              for s in config.ensemble_seeds], config)
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
