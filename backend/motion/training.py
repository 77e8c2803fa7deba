"""Training loops for the four motion models (data in, trained ``nn.Module`` + loss history out).

Each ``train_*`` takes a typed config, the clips from :mod:`tracks_data`, a torch
device and an optional ``should_stop`` callable (cancellation), shows a tqdm bar
and returns ``(model, history)``; the gradient-trained ones share one loop, :func:`fit`
(they only say how one step's loss is made); :func:`save_loss_curves` draws the history.
Statistics the models need at inference (mel normalisation, PCA basis, mean
face, silent rest pose) are fitted here from the training clips and stored as
model buffers, so checkpoints are self-contained.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from backend.motion.audio2motion import Audio2MotionConfig, Audio2MotionVAE, animated_mask
from backend.motion.emotion_classifier import EmotionClassifier, EmotionClassifierConfig
from backend.motion.landmarks import MOUTH, inner_lip_gaps
from backend.motion.ldm import LandmarkDeformationModel, LDMConfig
from backend.motion.ldm_training import LDMFitConfig, fit_ldm
from backend.motion.syncnet import LandmarkSyncNet, SyncNetConfig, mouth_displacements
from backend.motion.tracks_data import MEL_PER_FRAME, TrackClip, TrackDataError
from bridge.landmarks import NUM_LANDMARKS

History = dict[str, list[float]]


@dataclass
class LoopConfig:
    steps: int = 1500
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    log_every: int = 10


@dataclass
class SyncNetTrainConfig(LoopConfig):
    model: SyncNetConfig = field(default_factory=SyncNetConfig)
    batch: int = 128
    hard_negative_min: int = 3          # frames
    hard_negative_max: int = 12
    speech_fraction: float = 0.85       # share of windows centred on speech
    mouth_scale_jitter: float = 0.2     # random mouth size x [0.8, 1.2]
    mouth_noise: float = 0.004          # canonical units of tracking noise added to mouth points


@dataclass
class Audio2MotionTrainConfig(LoopConfig):
    model: Audio2MotionConfig = field(default_factory=Audio2MotionConfig)
    batch: int = 32
    window: int = 64                    # frames per training sequence
    kl_weight: float = 1.0
    sync_weight: float = 0.05           # 0 disables the SyncNet loss
    sync_stride: int = 4                # SyncNet windows every N frames of each sequence
    velocity_weight: float = 1.0
    mouth_weight: float = 4.0
    calibrate_gain: bool = True         # fit the output gain on speakers held out from a calibration fold
    min_gain: float = 0.5               # below this the lips barely part (mumbling) however the fold scores


@dataclass
class LDMTrainConfig(LoopConfig):
    model: LDMConfig = field(default_factory=LDMConfig)
    lip_weight: float = 1.0             # > 0: inner-lip gaps exactly the neutral input's (0 disables)
    identity_augment: float = 1.0       # unused since LDM version 2 (closed-form fit)
    fit: LDMFitConfig = field(default_factory=LDMFitConfig)


@dataclass
class EmotionTrainConfig(LoopConfig):
    model: EmotionClassifierConfig = field(default_factory=EmotionClassifierConfig)
    steps: int = 800
    identity_augment: float = 1.0
    noise: float = 0.005


# ---------------------------------------------------------------- shared statistics
def mel_statistics(clips: list[TrackClip]) -> tuple[np.ndarray, np.ndarray]:
    mel = np.concatenate([c.mel for c in clips if c.has_audio])
    return mel.mean(0).astype(np.float32), (mel.std(0) + 1e-3).astype(np.float32)


def mean_face(clips: list[TrackClip]) -> np.ndarray:
    return np.mean([c.landmarks.mean(0) for c in clips], axis=0).astype(np.float32)


def identity_offsets(clips: list[TrackClip]) -> np.ndarray:
    """Each speaker's mean face minus the mean over speakers ``[S, landmarks, 3]`` (identity augmentation)."""
    speakers: dict[str, list[np.ndarray]] = {}
    for c in clips:
        speakers.setdefault(c.speaker, []).append(c.landmarks.mean(0))
    faces = np.stack([np.mean(v, 0) for v in speakers.values()])
    return (faces - faces.mean(0)).astype(np.float32)


def _augment_identity(x: torch.Tensor, offsets: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Add ``u * offset_i`` (random speaker i, u ~ U(-amount, amount)) to every sample of ``x [B, ..., landmarks, 3]``."""
    if amount <= 0 or offsets.shape[0] < 2:
        return x
    B = x.shape[0]
    i = torch.randint(0, offsets.shape[0], (B,), generator=gen)
    u = (torch.rand(B, generator=gen) * 2 - 1) * amount
    off = (offsets[i] * u[:, None, None]).to(x)
    return x + off.view(B, *([1] * (x.dim() - 3)), NUM_LANDMARKS, 3)


def _progress(steps: int, desc: str, show: bool = True):
    return tqdm(range(steps), desc=desc, unit="step", mininterval=1.0, dynamic_ncols=True, disable=not show)


def _record(history: History, step: int, every: int, **values: torch.Tensor | float) -> None:
    if step % every == 0:
        history.setdefault("step", []).append(step)
        for k, v in values.items():
            history.setdefault(k, []).append(float(v))


#: one optimisation step: ``step index -> (loss to minimise, {name: float} to record besides the loss)``
StepFn = Callable[[int], tuple[torch.Tensor, dict[str, float]]]


def fit(model: torch.nn.Module, step_fn: StepFn, cfg: LoopConfig, desc: str,
        should_stop: Callable[[], bool] | None = None, weight_decay: float = 1e-4,
        clip_grad_norm: float | None = None, progress: bool = True) -> History:
    """The loop every gradient-trained motion model shares: AdamW with a one-cycle schedule over
    ``cfg.steps``, a tqdm bar, cancellation between steps, optional gradient clipping, and the
    loss plus ``step_fn``'s values recorded every ``cfg.log_every`` steps. The model is trained
    in place; the caller builds batches and losses inside ``step_fn`` (``progress=False``: no bar)."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    history: History = {}
    for step in _progress(cfg.steps, desc, progress):
        if should_stop and should_stop():
            break
        loss, values = step_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        opt.step()
        sched.step()
        _record(history, step, cfg.log_every, loss=loss.item(), **values)
    return history


# ---------------------------------------------------------------- talking-clip windows
class TalkingWindows:
    """Random windows of talking clips: log-mel rows, landmark displacements from the clip mean, VAD."""

    def __init__(self, clips: list[TrackClip], window: int, seed: int = 0):
        self.clips = [c for c in clips if c.has_audio and c.frames > window + 1]
        if not self.clips:
            raise TrackDataError(f"no talking clips with audio longer than {window + 1} frames")
        self.window = window
        self.rng = np.random.default_rng(seed)
        self.disp = [c.landmarks - c.landmarks.mean(0, keepdims=True) for c in self.clips]
        self.weights = np.array([c.frames for c in self.clips], float)
        self.weights /= self.weights.sum()

    def starts(self, n: int, speech_fraction: float | None = None, max_start_pad: int = 0):
        out = []
        for ci in self.rng.choice(len(self.clips), n, p=self.weights):
            c = self.clips[ci]
            hi = c.frames - self.window - max_start_pad
            lo = max_start_pad
            t = int(self.rng.integers(lo, max(lo + 1, hi)))
            if speech_fraction is not None and self.rng.random() < speech_fraction and c.speech.any():
                voiced = np.flatnonzero(c.speech[lo + self.window // 2: hi + self.window // 2])
                if voiced.size:
                    t = int(lo + voiced[self.rng.integers(voiced.size)])
            out.append((int(ci), t))
        return out

    def mel(self, ci: int, t: int, frames: int | None = None) -> np.ndarray:
        frames = frames or self.window
        return self.clips[ci].mel[t * MEL_PER_FRAME:(t + frames) * MEL_PER_FRAME]


# ---------------------------------------------------------------- SyncNet
def train_syncnet(cfg: SyncNetTrainConfig, clips: list[TrackClip], device: torch.device,
                  should_stop: Callable[[], bool] | None = None) -> tuple[LandmarkSyncNet, History]:
    torch.manual_seed(cfg.seed)
    w = cfg.model.window
    data = TalkingWindows(clips, w, cfg.seed)
    model = LandmarkSyncNet(cfg.model)
    mm, ms = mel_statistics(data.clips)
    model.mel_mean.copy_(torch.from_numpy(mm))
    model.mel_std.copy_(torch.from_numpy(ms))
    model.to(device).train()
    mouths = [mouth_displacements(c.landmarks) for c in data.clips]
    gain = 0.5 * float(ms.mean())

    def step_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        picks = data.starts(cfg.batch, cfg.speech_fraction, max_start_pad=0)
        mel = np.stack([data.mel(ci, t) for ci, t in picks])
        mel += data.rng.uniform(-gain, gain, (len(picks), 1, 1)).astype(np.float32)
        pos = np.stack([mouths[ci][t:t + w] for ci, t in picks])
        neg = []
        for ci, t in picks:
            T = data.clips[ci].frames
            for _ in range(10):
                s = int(data.rng.integers(cfg.hard_negative_min, cfg.hard_negative_max + 1)) * data.rng.choice([-1, 1])
                if 0 <= t + s <= T - w:
                    break
            else:
                s = -t if t > 0 else T - w - t
            neg.append(mouths[ci][t + s:t + s + w])
        mel_t = torch.as_tensor(mel, device=device)
        # speakers differ in mouth size and tracking noise: augment both (same scale for pos / neg)
        scale = data.rng.uniform(1 - cfg.mouth_scale_jitter, 1 + cfg.mouth_scale_jitter, (len(picks), 1, 1, 1))
        pos = (pos * scale + data.rng.normal(0, cfg.mouth_noise, pos.shape)).astype(np.float32)
        neg = (np.stack(neg) * scale + data.rng.normal(0, cfg.mouth_noise, pos.shape)).astype(np.float32)
        a = model.embed_audio(mel_t)
        m = model.embed_mouth(torch.as_tensor(pos, device=device))
        mn = model.embed_mouth(torch.as_tensor(neg, device=device))
        logit_scale = model.logit_scale.exp().clamp(max=100)
        logits = logit_scale * torch.cat([a @ m.T, (a * mn).sum(-1, keepdim=True)], 1)
        target = torch.arange(len(picks), device=device)
        loss = F.cross_entropy(logits, target) + F.cross_entropy(logit_scale * (m @ a.T), target)
        with torch.no_grad():
            acc = (logits.argmax(1) == target).float().mean()
        return loss, {"accuracy": acc.item()}

    history = fit(model, step_fn, cfg, "train syncnet", should_stop)
    return model.eval(), history


# ---------------------------------------------------------------- audio-to-motion VAE
def fit_motion_statistics(model: Audio2MotionVAE, clips: list[TrackClip]) -> None:
    """PCA basis of displacements, per-component std, silent rest pose, mean face, mel stats."""
    mask = animated_mask(model.config)
    disp = np.concatenate([c.landmarks - c.landmarks.mean(0, keepdims=True) for c in clips])
    disp[:, ~mask] = 0
    disp = disp.reshape(-1, NUM_LANDMARKS * 3)
    K = model.config.pca_components
    _, s, vt = np.linalg.svd(disp - disp.mean(0), full_matrices=False)
    basis = vt[:K].astype(np.float32)
    coef_std = (disp @ basis.T).std(0) + 1e-4
    silent = np.concatenate([(c.landmarks - c.landmarks.mean(0, keepdims=True))[~c.speech] for c in clips])
    rest = silent.mean(0) if len(silent) else np.zeros((NUM_LANDMARKS, 3))
    rest[~mask] = 0
    mm, ms = mel_statistics(clips)
    for name, value in (("pca_basis", basis), ("coef_std", coef_std), ("rest_displacement", rest),
                        ("mean_face", mean_face(clips)), ("mel_mean", mm), ("mel_std", ms)):
        getattr(model, name).copy_(torch.as_tensor(np.asarray(value, np.float32)))


def calibrate_output_gain(cfg: Audio2MotionTrainConfig, clips: list[TrackClip], device: torch.device,
                          syncnet: LandmarkSyncNet | None = None) -> float:
    """Gain that best scales motion predicted for *unseen* speakers (least squares, in [min_gain, 1]).

    A model trained with MSE on a few speakers predicts motion as large as theirs; for
    a new speaker, whose motion it predicts only partly, the error-minimising output
    is smaller. Two folds over the training speakers: train on half (same config),
    predict the other half, fit one gain over the animated points. Training data only.
    """
    speakers = sorted({c.speaker for c in clips})
    if len(speakers) < 2:
        return 1.0
    rng = np.random.default_rng(cfg.seed)
    order = list(rng.permutation(speakers))
    halves = [set(order[: len(order) // 2]), set(order[len(order) // 2:])]
    num, den = 0.0, 0.0
    sub = dataclasses.replace(cfg, calibrate_gain=False)
    for held in halves:
        train = [c for c in clips if c.speaker not in held]
        test = [c for c in clips if c.speaker in held]
        model, _ = train_audio2motion(sub, train, device, syncnet)
        mask = animated_mask(cfg.model)
        for c in test:
            with torch.no_grad():
                pred = model.generate(torch.as_tensor(c.mel[: 4 * c.frames]), temperature=0.0).cpu().numpy()
            true = c.landmarks - c.landmarks.mean(0, keepdims=True)
            num += float((pred[:, mask] * true[:, mask]).sum())
            den += float((pred[:, mask] ** 2).sum())
    return float(np.clip(num / max(den, 1e-12), cfg.min_gain, 1.0))


def train_audio2motion(cfg: Audio2MotionTrainConfig, clips: list[TrackClip], device: torch.device,
                       syncnet: LandmarkSyncNet | None = None,
                       should_stop: Callable[[], bool] | None = None) -> tuple[Audio2MotionVAE, History]:
    output_gain = calibrate_output_gain(cfg, clips, device, syncnet) if cfg.calibrate_gain else 1.0
    torch.manual_seed(cfg.seed)
    data = TalkingWindows(clips, cfg.window, cfg.seed)
    model = Audio2MotionVAE(cfg.model)
    fit_motion_statistics(model, data.clips)
    model.to(device).train()
    if syncnet is not None:
        syncnet = syncnet.to(device).eval()
        for p in syncnet.parameters():
            p.requires_grad_(False)
    point_w = torch.as_tensor(animated_mask(cfg.model), dtype=torch.float32, device=device)
    point_w[MOUTH] = cfg.mouth_weight
    point_w /= point_w.mean()
    gain = 0.5 * float(model.mel_std.mean())

    def step_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        picks = data.starts(cfg.batch, speech_fraction=None)
        mel = np.stack([data.mel(ci, t) for ci, t in picks])
        mel += data.rng.uniform(-gain, gain, (len(picks), 1, 1)).astype(np.float32)
        disp = torch.as_tensor(np.stack([data.disp[ci][t:t + cfg.window] for ci, t in picks]), device=device)
        mel_t = torch.as_tensor(mel, device=device)
        coefs = model.to_coefficients(disp)
        pred, mu, logvar = model(mel_t, coefs)
        pred_disp = model.to_displacement(pred)
        err = ((pred_disp - disp) * 10).pow(2).sum(-1)                       # [B, T, landmarks]
        recon = (err * point_w).mean()
        vel = (((pred_disp[:, 1:] - pred_disp[:, :-1]) - (disp[:, 1:] - disp[:, :-1])) * 10).pow(2).sum(-1).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()
        loss = recon + cfg.velocity_weight * vel + cfg.kl_weight * kl
        sync = torch.zeros((), device=device)
        if syncnet is not None and cfg.sync_weight > 0:
            sync = syncnet.sync_loss(mel_t, pred_disp[:, :, MOUTH], stride=cfg.sync_stride)
            loss = loss + cfg.sync_weight * sync
        return loss, {"recon": recon.item(), "kl": kl.item(), "sync": sync.item()}

    history = fit(model, step_fn, cfg, "train audio2motion", should_stop, clip_grad_norm=5.0)
    model.output_gain.fill_(output_gain)
    history["output_gain"] = [output_gain] * len(history.get("step", [0]))
    return model.eval(), history


# ---------------------------------------------------------------- LDM
@dataclass
class DeformationPairs:
    """Frame pairs of one speaker: a neutral frame matched to each emotional frame by mouth opening."""
    neutral: np.ndarray       # [N, landmarks, 3]
    emotional: np.ndarray     # [N, landmarks, 3]
    label: np.ndarray         # [N] emotion index (1..7)
    intensity: np.ndarray     # [N]
    speaker: list[str]


def deformation_pairs(clips: list[TrackClip], neutral_pool: list[TrackClip] | None = None) -> DeformationPairs:
    """Pair every emotional frame with the same speaker's neutral frame of most similar inner-lip gaps.

    MEAD takes of different emotions speak different sentences, so frames cannot be
    aligned in time; matching by mouth opening makes the target displacement carry the
    expression rather than the speech. Neutral frames come from ``neutral_pool`` when
    given (e.g. whole neutral clips while the emotional targets are held-out tails).
    """
    by_speaker: dict[str, dict[str, list[TrackClip]]] = {}
    for c in clips:
        if c.emotion is not None and (neutral_pool is None or c.emotion != "neutral"):
            by_speaker.setdefault(c.speaker, {}).setdefault(c.emotion, []).append(c)
    for c in neutral_pool or []:
        if c.emotion == "neutral":
            by_speaker.setdefault(c.speaker, {}).setdefault("neutral", []).append(c)
    neu, emo, lab, inten, spk = [], [], [], [], []
    for speaker, by_emotion in by_speaker.items():
        if "neutral" not in by_emotion:
            continue
        neutral = np.concatenate([c.landmarks for c in by_emotion["neutral"]])
        n_gaps = inner_lip_gaps(neutral)
        for emotion, cs in by_emotion.items():
            if emotion == "neutral":
                continue
            for c in cs:
                gaps = inner_lip_gaps(c.landmarks)
                match = np.argmin(((gaps[:, None] - n_gaps[None]) ** 2).sum(-1), axis=1)
                neu.append(neutral[match])
                emo.append(c.landmarks)
                lab.append(np.full(c.frames, c.emotion_label))
                inten.append(np.full(c.frames, c.intensity, np.float32))
                spk += [speaker] * c.frames
    if not neu:
        raise TrackDataError("no speaker has both a neutral and an emotional labelled clip")
    return DeformationPairs(np.concatenate(neu), np.concatenate(emo), np.concatenate(lab),
                            np.concatenate(inten), spk)


def train_ldm(cfg: LDMTrainConfig, clips: list[TrackClip], device: torch.device,
              identity_clips: list[TrackClip] | None = None,
              should_stop: Callable[[], bool] | None = None) -> tuple[LandmarkDeformationModel, History]:
    """Per-emotion fields fitted in closed form (:mod:`backend.motion.ldm_training`); ``identity_clips``
    (non-MEAD talking clips) build the neutral-reference model for MEAD speakers never filmed neutral."""
    fit_cfg = dataclasses.replace(cfg.fit, lip_preserving=cfg.lip_weight > 0)
    seen = {id(c) for c in clips}
    extra = [c for c in identity_clips or [] if id(c) not in seen and c.emotion is None]
    model, info = fit_ldm(list(clips) + extra, fit_cfg, should_stop=should_stop)
    amplitudes = [v["amplitude"] for v in info["per_emotion"].values()]
    return model.to(device).eval(), {"step": list(range(len(amplitudes))), "field_amplitude": amplitudes}


# ---------------------------------------------------------------- emotion classifier
def train_emotion_classifier(cfg: EmotionTrainConfig, clips: list[TrackClip], device: torch.device,
                             identity_clips: list[TrackClip] | None = None,
                             should_stop: Callable[[], bool] | None = None) -> tuple[EmotionClassifier, History]:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    labelled = [c for c in clips if c.emotion is not None and c.frames >= cfg.model.window]
    if not labelled:
        raise TrackDataError(f"no emotion-labelled clips of at least {cfg.model.window} frames")
    model = EmotionClassifier(cfg.model)
    model.mean_face.copy_(torch.from_numpy(mean_face(labelled)))
    offsets = torch.from_numpy(identity_offsets(list(labelled) + list(identity_clips or [])))
    model.to(device).train()
    rng = np.random.default_rng(cfg.seed)
    w = cfg.model.window

    def step_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        cs = rng.integers(0, len(labelled), cfg.batch)
        x = np.stack([labelled[i].landmarks[t:t + w] for i in cs
                      for t in [int(rng.integers(0, labelled[i].frames - w + 1))]])
        y = torch.as_tensor([labelled[i].emotion_label for i in cs], device=device)
        x = _augment_identity(torch.as_tensor(x), offsets, cfg.identity_augment, gen)
        x = x + torch.randn(x.shape, generator=gen) * cfg.noise
        logits = model(x.to(device))
        loss = F.cross_entropy(logits, y, label_smoothing=0.05)
        return loss, {"accuracy": (logits.argmax(1) == y).float().mean().item()}

    history = fit(model, step_fn, cfg, "train emotion", should_stop, weight_decay=1e-3)
    return model.eval(), history


# ---------------------------------------------------------------- plots
def save_loss_curves(history: History, path: str | Path, title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [k for k in history if k != "step"]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    for ax, k in zip(axes[0], keys):
        ax.plot(history.get("step", range(len(history[k]))), history[k])
        ax.set_title(k)
        ax.set_xlabel("step")
        if k not in ("accuracy",) and min(history[k], default=1) > 0:
            ax.set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
