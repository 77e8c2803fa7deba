"""Training a subject's super-resolution network on its own frames (I/O lives here).

Input: the subject NeRF's renders of training frames at the working resolution (the real
input domain; see sr_data.py), mixed with the real frames area-downsampled to that size.
Target: the real frames at the source resolution and their person mask. Loss: squared error of
the composite over each frame's own background (the real frame outside its dilated person mask,
as the plate evaluation measures; ``background="clean"``: the clean plate) plus a light alpha term
against the mask (optionally colour vs frame * mask, an image-gradient term, extra weight on
the mouth box); the x2 head (256² plates) gets the same loss against the targets
area-downsampled x2. Crops favour the person and the mouth. Selection frames (held-out frames
that the plate evaluation does not use, see sr_data.py) are never trained on; their PSNR
(composite over the same background) vs plain bicubic upscaling is logged. Writes
``<out>/sr.safetensors`` + ``sr.json``, a curve PNG and ``background_full.png`` (the clean plate
at the source resolution).

    .venv/bin/python -m backend.render.train_sr --subject backend/assets/subjects/default --minutes 20
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from backend.render.sr_data import SRDataConfig, SRPairs, load_or_make_pairs
from backend.render.super_resolution import (SR_KIND, SR_VERSION, SuperResolutionConfig, SuperResolutionNet,
                                             bicubic_plate)

SR_STEM = "sr"
BACKGROUND_FULL = "background_full.png"   # the clean plate at the source resolution (evaluation, compositing)


@dataclass
class SRTrainConfig:
    minutes: float = 20.0          # wall-clock budget
    # with 101 training frames, longer runs fitted the training frames' NeRF errors and lost on unseen
    # frames (25.63 dB after 500 steps, 25.49 after 2000); now 201 frames, and the best selection-frame
    # checkpoint is kept (keep_best)
    steps: int = 1000
    batch: int = 8
    crop: int = 32                 # low-resolution crop side (x4 at the target)
    learning_rate: float = 2e-3
    final_lr_ratio: float = 0.05
    real_input_share: float = 0.25  # crops whose input is the real frame downsampled instead of the NeRF
    person_share: float = 0.5       # crops centred on the person (render alpha > 0.5)
    mouth_share: float = 0.3        # crops centred on the mouth
    # measured (500 steps, 8 held-out frames, bicubic 25.60 dB): L1 on colour + alpha + composite 25.37;
    # the same with MSE 25.44; MSE on the composite only (alpha weight 0.1) 25.60, and with a quarter
    # of real inputs 25.63: matching the segmentation mask's hard edges costs more than it gains
    colour_weight: float = 0.0      # premultiplied colour vs frame * person mask
    alpha_weight: float = 0.1       # alpha vs the person mask: keeps alpha near the truth, loosely
    loss: str = "mse"               # "l1" or "mse" (the held-out metric is PSNR, i.e. MSE)
    input_shift: float = 0.0        # random sub-pixel shift of the NeRF input (low-res px): robustness to misfit
    composite_weight: float = 1.0
    # selection frames, 500 steps (bicubic 25.337 dB / SSIM 0.8477): plain 25.345 / 0.8492 with the gradient
    # term 0.5, 25.349 / 0.8493 with it and mouth weight 3 (mouth landmarks 1.56 px vs bicubic's 1.60); half
    # real inputs 25.295 at 250 steps (the NeRF's own renders are the domain that matters)
    gradient_weight: float = 0.5    # L1 of the composite's image gradients vs the real frame's (sharpness)
    mouth_weight: float = 3.0       # extra loss weight on pixels in the mouth box (1.5x the lip landmarks' box)
    x2_weight: float = 0.5          # loss weight of the x2 head (plates at twice the working size)
    # what the composite is laid over, in the loss and the selection score: "frame" = that frame's own
    # background (the real frame outside its dilated person mask, the clean plate behind it), as the plate
    # evaluation does: the studio wall is an animated graphic whose drift no plate can (or should) learn;
    # "clean" = the subject's clean plate (sessions 2-3)
    background: str = "frame"
    eval_every: int = 250
    eval_frames: int = 24           # selection frames scored (all 23 of the default pairs)
    keep_best: bool = True          # ship the weights of the best selection-frame PSNR seen (checked every eval_every)
    seed: int = 0
    threads: int = 1
    model: SuperResolutionConfig = field(default_factory=lambda: SuperResolutionConfig(x2_head=True))
    data: SRDataConfig = field(default_factory=SRDataConfig)


def composite(premultiplied: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """``[B, 4, H, W]`` premultiplied RGBA over ``[B or 1, 3, H, W]`` background."""
    return premultiplied[:, :3] + (1 - premultiplied[:, 3:]) * background


class FrameBackgrounds:
    """``[3, H, W]`` float background of pair ``k``: its own (``"frame"``, made once per pair) or the clean plate."""

    def __init__(self, pairs: SRPairs, kind: str):
        if kind not in ("frame", "clean"):
            raise ValueError(f"SR background must be 'frame' or 'clean', not {kind!r}")
        self.pairs, self.kind, self._cache = pairs, kind, {}
        self.clean = torch.from_numpy(np.ascontiguousarray(pairs.background)).permute(2, 0, 1).float() / 255

    def __call__(self, k: int) -> torch.Tensor:
        if self.kind == "clean":
            return self.clean
        if k not in self._cache:
            from backend.render.evaluate_plates import frame_background
            self._cache[k] = torch.from_numpy(np.ascontiguousarray(frame_background(  # uint8: 0.8 MB a pair
                np.asarray(self.pairs.frames[k]), self.pairs.masks[k] / 255.0, np.asarray(self.pairs.background))))
        return self._cache[k].permute(2, 0, 1).float() / 255


class CropSampler:
    """Random aligned crops: low-resolution input ``[B, 4, c, c]``; target RGBA + real frame, background
    and loss weight (1, plus ``mouth_weight`` in the mouth box) x4."""

    def __init__(self, pairs: SRPairs, mouth_boxes: np.ndarray, config: SRTrainConfig):
        self.pairs, self.config = pairs, config
        self.train = np.nonzero(~pairs.heldout)[0]
        self.scale = pairs.frames.shape[1] // pairs.renders.shape[1]
        self.mouth_boxes = mouth_boxes                # [N, 4] x0, y0, x1, y1 in source pixels
        self.mouth = 0.5 * (mouth_boxes[:, :2] + mouth_boxes[:, 2:]) / self.scale  # centres, low-resolution px
        self.h, self.w = pairs.renders.shape[1:3]
        self.backgrounds = FrameBackgrounds(pairs, config.background)

    def _centre(self, k: int, rng: np.random.Generator) -> tuple[float, float]:
        u = rng.random()
        c = self.config
        if u < c.mouth_share:
            return tuple(self.mouth[k] + rng.normal(0, 4, 2))
        if u < c.mouth_share + c.person_share:
            ys, xs = np.nonzero(self.pairs.renders[k, ..., 3] > 0.5)
            if len(xs):
                j = rng.integers(len(xs))
                return float(xs[j]), float(ys[j])
        return float(rng.uniform(0, self.w)), float(rng.uniform(0, self.h))

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        c, s = self.config.crop, self.scale
        inputs, targets, backgrounds, weights = [], [], [], []
        for _ in range(self.config.batch):
            k = int(self.train[rng.integers(len(self.train))])
            cx, cy = self._centre(k, rng)
            x0 = int(np.clip(round(cx - c / 2), 0, self.w - c))
            y0 = int(np.clip(round(cy - c / 2), 0, self.h - c))
            frame = torch.from_numpy(np.ascontiguousarray(
                self.pairs.frames[k, y0 * s:(y0 + c) * s, x0 * s:(x0 + c) * s])).permute(2, 0, 1).float() / 255
            mask = torch.from_numpy(self.pairs.masks[k, y0 * s:(y0 + c) * s, x0 * s:(x0 + c) * s]).float()[None] / 255
            target = torch.cat([frame * mask, mask, frame])          # premultiplied RGB, alpha, real frame
            if rng.random() < self.config.real_input_share:
                low = F.avg_pool2d(target[None, :4], s)[0]
            else:
                low = torch.from_numpy(self.pairs.renders[k, y0:y0 + c, x0:x0 + c].astype(np.float32)).permute(2, 0, 1)
                if self.config.input_shift > 0:
                    low = _shifted(low, rng.uniform(-1, 1, 2) * self.config.input_shift)
            inputs.append(low)
            targets.append(target)
            backgrounds.append(self.backgrounds(k)[:, y0 * s:(y0 + c) * s, x0 * s:(x0 + c) * s])
            weight = torch.ones(1, c * s, c * s)
            bx0, by0, bx1, by1 = (int(v) for v in self.mouth_boxes[k] - [x0 * s, y0 * s, x0 * s, y0 * s])
            weight[:, max(0, by0):max(0, by1), max(0, bx0):max(0, bx1)] += self.config.mouth_weight
            weights.append(weight)
        return {"input": torch.stack(inputs), "target": torch.stack(targets), "background": torch.stack(backgrounds),
                "weight": torch.stack(weights)}


def _shifted(image: torch.Tensor, shift: np.ndarray) -> torch.Tensor:
    """``image [C, h, w]`` moved by ``shift`` (x, y) pixels, bilinear, edges repeated."""
    _, h, w = image.shape
    theta = torch.tensor([[1.0, 0.0, -2 * shift[0] / w], [0.0, 1.0, -2 * shift[1] / h]], dtype=torch.float32)
    grid = F.affine_grid(theta[None], [1, *image.shape], align_corners=False)
    return F.grid_sample(image[None], grid, padding_mode="border", align_corners=False)[0]


def sr_loss(pred: torch.Tensor, target: torch.Tensor, background: torch.Tensor, config: SRTrainConfig,
            weight: torch.Tensor | None = None) -> torch.Tensor:
    """``pred [B, 4, H, W]``; ``target [B, 7, H, W]`` (premultiplied RGB, alpha, real frame);
    ``weight [B, 1, H, W]`` per-pixel loss weight (None: uniform)."""
    weight = torch.ones_like(pred[:, :1]) if weight is None else weight
    power = 2 if config.loss == "mse" else 1

    def distance(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor = weight) -> torch.Tensor:
        return ((a - b).abs() ** power * w).mean() / w.mean()

    comp = composite(pred, background)
    loss = (config.colour_weight * distance(pred[:, :3], target[:, :3])
            + config.alpha_weight * distance(pred[:, 3:], target[:, 3:4])
            + config.composite_weight * distance(comp, target[:, 4:7]))
    if config.gradient_weight:
        for axis in (2, 3):
            grad_pred, grad_real = comp.diff(dim=axis), target[:, 4:7].diff(dim=axis)
            w = weight.narrow(axis, 1, weight.shape[axis] - 1)
            loss = loss + config.gradient_weight * ((grad_pred - grad_real).abs() * w).mean() / w.mean()
    return loss


def sr_losses(net: SuperResolutionNet, batch: dict[str, torch.Tensor], config: SRTrainConfig) -> torch.Tensor:
    """The x4 loss plus, for a net with a x2 head, ``x2_weight`` x the same loss at half the size."""
    outputs = net.both(batch["input"], net.scales)
    loss = sr_loss(outputs[4], batch["target"], batch["background"], config, batch.get("weight"))
    if 2 in outputs and config.x2_weight:
        half = {k: F.avg_pool2d(batch[k], 2) for k in ("target", "background", "weight") if k in batch}
        loss = loss + config.x2_weight * sr_loss(outputs[2], half["target"], half["background"], config,
                                                 half.get("weight"))
    return loss


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


@torch.no_grad()
def heldout_psnr(net: SuperResolutionNet | None, pairs: SRPairs, count: int, scale: int = 4,
                 backgrounds: FrameBackgrounds | None = None) -> float:
    """Mean PSNR of the composite over the background (default: each frame's own) vs the real selection
    frames (None: bicubic); ``scale`` 2: the x2 output vs the frames area-downsampled x2."""
    held = np.nonzero(pairs.heldout)[0]
    held = held[np.linspace(0, len(held) - 1, min(count, len(held))).round().astype(int)]
    backgrounds = backgrounds or FrameBackgrounds(pairs, "frame")
    down = 4 // scale
    scores = []
    for k in held:
        background = backgrounds(int(k))[None]
        background = F.avg_pool2d(background, down) if down > 1 else background
        low = torch.from_numpy(pairs.renders[k].astype(np.float32)).permute(2, 0, 1)[None]
        up = net(low, scale=scale) if net is not None else bicubic_plate(low, scale)
        real = torch.from_numpy(np.ascontiguousarray(pairs.frames[k])).permute(2, 0, 1).float()[None] / 255
        real = F.avg_pool2d(real, down) if down > 1 else real
        scores.append(_psnr(composite(up, background).clamp(0, 1), real))
    return float(np.mean(scores))


def mouth_boxes(subject_dir: Path, pairs: SRPairs, grow: float = 1.5) -> np.ndarray:
    """``[N, 4]`` mouth box (x0, y0, x1, y1, source pixels) per pair: the lip landmarks' box grown
    ``grow`` times about its centre (as the plate evaluation's mouth PSNR), from the subject's track."""
    from bridge.landmarks import MOUTH
    info = json.loads((subject_dir / "subject.json").read_text())
    track = np.load(subject_dir / info["track"])
    lips = track["landmarks_image"][pairs.indices][:, MOUTH]
    centre, half = 0.5 * (lips.min(1) + lips.max(1)), 0.5 * (lips.max(1) - lips.min(1)) * grow + 1
    return np.concatenate([np.floor(centre - half), np.ceil(centre + half)], axis=1)


def train_super_resolution(subject_dir: str | Path, cache_dir: str | Path, out_dir: str | Path | None = None,
                           config: SRTrainConfig | None = None, progress: bool = True) -> dict:
    """Train (from scratch) and save the subject's SR network; returns a summary dict."""
    from tqdm import tqdm

    from backend.checkpoints import save_checkpoint

    config = config or SRTrainConfig()
    subject_dir = Path(subject_dir)
    out_dir = Path(out_dir or subject_dir)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    pairs = load_or_make_pairs(subject_dir, cache_dir, config.data, progress)
    info = json.loads((subject_dir / "subject.json").read_text())
    sampler = CropSampler(pairs, mouth_boxes(subject_dir, pairs), config)
    net = SuperResolutionNet(config.model)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    bicubic = heldout_psnr(None, pairs, config.eval_frames, backgrounds=sampler.backgrounds)
    history: list[tuple[int, float, float]] = []   # (step, loss, seconds)
    evals: list[tuple[int, float, float]] = []     # (step, held-out PSNR, seconds)
    start = time.time()
    budget = config.minutes * 60 if config.minutes else float("inf")
    bar = tqdm(total=config.steps, desc="train SR", unit="step", disable=not progress)
    step = 0
    best = (-float("inf"), 0, None)                # (selection PSNR, step, weights)
    while step < config.steps and time.time() - start < budget:
        progress_share = max(step / config.steps, (time.time() - start) / budget)
        lr = config.learning_rate * (config.final_lr_ratio ** min(1.0, progress_share))
        for group in optimiser.param_groups:
            group["lr"] = lr
        batch = sampler.sample(rng)
        loss = sr_losses(net, batch, config)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        history.append((step, float(loss.detach()), time.time() - start))
        bar.update(1)
        if step % config.eval_every == 0:
            net.eval()
            evals.append((step, heldout_psnr(net, pairs, config.eval_frames, backgrounds=sampler.backgrounds),
                          time.time() - start))
            net.train()
            if config.keep_best and evals[-1][1] > best[0]:
                best = (evals[-1][1], step, {k: v.detach().clone() for k, v in net.state_dict().items()})
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", heldout=f"{evals[-1][1]:.2f}", bicubic=f"{bicubic:.2f}")
    bar.close()
    net.eval()
    final = heldout_psnr(net, pairs, config.eval_frames, backgrounds=sampler.backgrounds)
    seconds = time.time() - start
    evals.append((step, final, seconds))
    selected_step = step
    if config.keep_best and best[2] is not None and best[0] > final:
        net.load_state_dict(best[2])
        final, selected_step = best[0], best[1]
    summary = {"subject": info["name"], "steps": step, "selected_step": selected_step, "train_seconds": seconds,
               "heldout_psnr": final, "heldout_psnr_bicubic": bicubic,
               "heldout_frames": min(config.eval_frames, int(pairs.heldout.sum())),
               "training_pairs": int((~pairs.heldout).sum()), "threads": config.threads,
               **({"heldout_psnr_x2": heldout_psnr(net, pairs, config.eval_frames, 2, sampler.backgrounds),
                   "heldout_psnr_x2_bicubic": heldout_psnr(None, pairs, config.eval_frames, 2, sampler.backgrounds)}
                  if 2 in net.scales else {}),
               "psnr_history": [[int(a), round(b, 3), round(c, 1)] for a, b, c in evals]}
    import cv2
    # written under temporary names and renamed at the end: an interrupted run leaves the old files whole
    cv2.imwrite(str(out_dir / f"tmp_{BACKGROUND_FULL}"),
                cv2.cvtColor(np.ascontiguousarray(pairs.background), cv2.COLOR_RGB2BGR))
    save_checkpoint(out_dir / f"{SR_STEM}_tmp", net, kind=SR_KIND, version=SR_VERSION, config=config.model,
                    extra={**summary, "train_config": {k: v for k, v in asdict(config).items() if k != "model"}})
    _plot(history, evals, bicubic, out_dir / "tmp_sr_training_curves.png")
    for tmp, final in ((f"tmp_{BACKGROUND_FULL}", BACKGROUND_FULL),
                       (f"{SR_STEM}_tmp.safetensors", f"{SR_STEM}.safetensors"),
                       (f"{SR_STEM}_tmp.json", f"{SR_STEM}.json"),
                       ("tmp_sr_training_curves.png", "sr_training_curves.png")):
        (out_dir / tmp).replace(out_dir / final)
    return summary


def _plot(history, evals, bicubic: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps, losses = np.array([h[0] for h in history]), np.array([h[1] for h in history])
    window = max(1, len(losses) // 50)
    a.plot(steps[window - 1:], np.convolve(losses, np.ones(window) / window, mode="valid"))
    a.set(xlabel="step", ylabel="loss (moving average)", title="SR training loss")
    b.plot([e[0] for e in evals], [e[1] for e in evals], "o-", label="SR (ours)")
    b.axhline(bicubic, color="grey", ls="--", label="bicubic")
    b.set(xlabel="step", ylabel="PSNR (dB)", title="selection frames (held out, not evaluated): PSNR at full size")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject", default="backend/assets/subjects/default")
    parser.add_argument("--cache", default="cache/sr_pairs/default")
    parser.add_argument("--out", default=None, help="where sr.* go (default: the subject folder)")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--steps", type=int, default=SRTrainConfig.steps)
    args = parser.parse_args(argv)
    summary = train_super_resolution(args.subject, args.cache, args.out,
                                     SRTrainConfig(minutes=args.minutes, steps=args.steps))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
