#!/usr/bin/env python
"""Train the phonetic front end (``backend.motion.phonetic.PhoneRecognizer``) on synthetic espeak-ng speech.

Needs espeak-ng (Debian: ``apt-get install -y espeak-ng libespeak-ng1``); run time does not.

1. Synthesise ``--minutes`` of random utterances with per-frame viseme labels
   (:mod:`backend.data.synthetic_speech`) in the training voices, and ``--test-minutes`` in
   voices held out entirely (base voices :data:`HELD_OUT_VOICES`, any variant).
2. Train on random 64-frame windows with the audio-to-motion model's mel augmentation
   (level, noise, reverb, vocal-tract warp, tilt, band masks) and per-window normalisation.
3. Report frame accuracy on the held-out voices, clean and augmented, against the majority
   class, and write the checkpoint (``--out``: .safetensors, .json with the metrics) and a confusion-matrix PNG.

Usage: ``python scripts/train_phone_recognizer.py [--minutes 60] [--steps 1200] [--out backend/assets/models/phones]``
(about 8 minutes on 2 shared cores with the defaults: 30 s synthesis, 1200 steps).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.data.synthetic_speech import (ENGLISH_VOICES, FOREIGN_VOICES, VISEMES, SynthConfig, load_words,  # noqa: E402
                                           random_utterance)
from backend.motion.audio_features import AugmentConfig, MelAugment, normalise_mel  # noqa: E402
from backend.motion.phonetic import PhoneRecognizer, PhoneticConfig, save_recognizer  # noqa: E402
from backend.motion.tracks_data import MEL_PER_FRAME  # noqa: E402
from backend.motion.training import fit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORDS = ROOT / "backend" / "assets" / "models" / "phones.words.txt"
HELD_OUT_VOICES = ("en-029", "it", "hi")


@dataclass
class RecognizerTrainConfig:
    steps: int = 1200
    batch: int = 32
    window: int = 64
    lr: float = 2e-3
    log_every: int = 50
    augment_prob: float = 0.8
    seed: int = 0


def synthesise(minutes: float, voices: tuple[str, ...], seed: int, desc: str) -> list:
    words = load_words(WORDS)
    rng = np.random.default_rng(seed)
    cfg = SynthConfig(voices=voices)
    out, frames = [], 0
    with tqdm(total=int(minutes * 60 * 25), desc=desc, unit="frame") as bar:
        while frames < minutes * 60 * 25:
            u = random_utterance(words, rng, cfg)
            out.append(u)
            frames += len(u.labels)
            bar.update(len(u.labels))
    return out


class Windows:
    def __init__(self, utterances: list, window: int, seed: int):
        self.mel = [torch.as_tensor(u.mel) for u in utterances if len(u.labels) > window]
        self.lab = [torch.as_tensor(u.labels) for u in utterances if len(u.labels) > window]
        n = np.array([len(x) for x in self.lab], float)
        self.p = n / n.sum()
        self.window = window
        self.rng = np.random.default_rng(seed)

    def sample(self, b: int):
        W = self.window
        mels, labs = [], []
        for i in self.rng.choice(len(self.lab), b, p=self.p):
            t0 = int(self.rng.integers(0, len(self.lab[i]) - W + 1))
            mels.append(self.mel[i][t0 * MEL_PER_FRAME:(t0 + W) * MEL_PER_FRAME])
            labs.append(self.lab[i][t0:t0 + W])
        return torch.stack(mels), torch.stack(labs)


@torch.no_grad()
def accuracy(model: PhoneRecognizer, utterances: list, augment: MelAugment | None = None) -> tuple[float, np.ndarray]:
    """Frame accuracy over whole utterances (each normalised on its own) and the confusion matrix."""
    model.eval()
    conf = np.zeros((len(VISEMES), len(VISEMES)), np.int64)
    for u in utterances:
        mel = torch.as_tensor(u.mel)[None]
        if augment is not None:
            mel = augment(mel)
        pred = model(normalise_mel(mel)).argmax(-1)[0].numpy()
        np.add.at(conf, (u.labels, pred), 1)
    return float(np.trace(conf) / conf.sum()), conf


def plot_confusion(conf: np.ndarray, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(rows, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(VISEMES)), VISEMES, rotation=90)
    ax.set_yticks(range(len(VISEMES)), VISEMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("label (espeak phone timing)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--minutes", type=float, default=60.0, help="synthetic training speech")
    ap.add_argument("--test-minutes", type=float, default=6.0, help="synthetic speech in held-out voices")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "backend" / "assets" / "models" / "phones",
                    help="checkpoint stem: <out>.safetensors, <out>.json (+ <out>.confusion.png)")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    t0 = time.time()
    train_voices = tuple(v for v in ENGLISH_VOICES + FOREIGN_VOICES if v not in HELD_OUT_VOICES)
    train = synthesise(args.minutes, train_voices, args.seed, "synthesise (training voices)")
    test = synthesise(args.test_minutes, HELD_OUT_VOICES, args.seed + 1000, "synthesise (held-out voices)")
    cfg = RecognizerTrainConfig(steps=args.steps, seed=args.seed)
    model = PhoneRecognizer(PhoneticConfig())
    data = Windows(train, cfg.window, cfg.seed)
    augment = MelAugment(AugmentConfig(), cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    counts = np.bincount(np.concatenate([u.labels for u in train]), minlength=len(VISEMES))

    def step(_: int):
        model.train()
        mel, lab = data.sample(cfg.batch)
        aug = torch.rand(cfg.batch, generator=gen) < cfg.augment_prob
        if aug.any():
            mel[aug] = augment(mel[aug])
        logits = model(normalise_mel(mel))
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), lab.flatten())
        acc = (logits.argmax(-1) == lab).float().mean()
        return loss, {"acc": acc.detach()}

    history = fit(model, step, cfg, "train phone recogniser", weight_decay=1e-3, clip_grad_norm=5.0)
    test_aug = MelAugment(AugmentConfig(), args.seed + 7)
    clean, conf = accuracy(model, test)
    noisy, _ = accuracy(model, test, test_aug)
    test_counts = np.bincount(np.concatenate([u.labels for u in test]), minlength=len(VISEMES))
    metrics = {
        "held_out_voices": list(HELD_OUT_VOICES), "train_minutes": args.minutes, "test_minutes": args.test_minutes,
        "steps": args.steps, "frame_accuracy_clean": round(clean, 4), "frame_accuracy_augmented": round(noisy, 4),
        "majority_class_accuracy": round(float(test_counts.max() / test_counts.sum()), 4),
        "per_class_recall": {v: round(float(conf[i, i] / max(conf[i].sum(), 1)), 3) for i, v in enumerate(VISEMES)},
        "train_label_share": {v: round(float(c / counts.sum()), 4) for v, c in zip(VISEMES, counts)},
        "final_train_loss": round(float(np.mean(history["loss"][-5:])), 4), "seconds": round(time.time() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_recognizer(model.eval(), args.out, metrics)
    plot_confusion(conf, args.out.parent / (args.out.name + ".confusion.png"),
                   f"held-out voices {HELD_OUT_VOICES}: frame accuracy {clean:.3f} clean, {noisy:.3f} augmented")
    print(json.dumps({k: metrics[k] for k in ("frame_accuracy_clean", "frame_accuracy_augmented",
                                              "majority_class_accuracy", "seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
