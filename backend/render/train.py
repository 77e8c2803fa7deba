"""Training loop of a subject NeRF: photometric loss (extra weight on the mouth), alpha loss
against the person mask, head/torso split losses, periodic held-out PSNR, resumable
checkpoints and loss/PSNR curves. I/O lives here; the model stays pure."""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from backend.render.camera import pinhole_rays
from backend.render.frame_render import CHECKPOINT_STEM, render_frame
from backend.render.model import MODEL_KIND, MODEL_VERSION, SubjectModelConfig, SubjectNeRF
from backend.render.subject_dataset import SubjectDataset


@dataclass
class TrainConfig:
    steps: int = 20000
    minutes: float | None = 28.0        # wall-clock budget (None: steps only)
    rays_per_step: int = 1024
    mouth_ray_share: float = 0.2        # share of rays drawn inside the mouth box
    mouth_weight: float = 4.0           # extra photometric weight on mouth pixels
    #: opt-in: share of rays drawn inside the brow-and-eye box (prepare.upper_face_box), where most emotions
    #: other than happy show and which a uniform draw covers with few rays (0: off)
    upper_face_ray_share: float = 0.0
    #: opt-in: draw training frames ∝ rarity of their mouth shape (frame_weights.py), capped at
    #: this many times the median frame (None: every frame equally often)
    rare_mouth_cap: float | None = None
    alpha_weight: float = 0.5           # accumulated opacity vs person mask
    head_alpha_weight: float = 0.2      # head opacity vs head mask
    torso_in_head_weight: float = 0.1   # torso must not cover the head region
    learning_rate: float = 1e-2
    final_lr_ratio: float = 0.05
    #: opt-in: decay the learning rate by the larger of the step share and the wall-clock share of
    #: ``minutes``, so a run the clock stops still ends annealed (off: decay by steps only)
    anneal_by_time: bool = False
    code_noise: float = 0.05            # condition noise (smooths the code -> image map)
    #: opt-in: std of isotropic noise per canonical landmark coordinate, added to the code through
    #: its whitening (so ~1/std_k on PCA component k: large on the minor components a whitened code
    #: otherwise lets the net use to tell training frames apart; 0: off)
    landmark_noise: float = 0.0
    #: opt-in: weight of a sparse depth loss at the tracked inner-face landmarks' pixels (head field's
    #: expected depth vs FaceMesh's, relative to the nose tip; depth_probe.py), on
    #: ``landmark_depth_frames`` random training frames per step (0: off, nothing drawn)
    landmark_depth_weight: float = 0.0
    landmark_depth_frames: int = 2
    #: opt-in, on top of ``landmark_depth_weight``: weight of the same depth error at the lower jaw contour
    #: (depth_probe.lower_jaw_contour_landmarks), whose rays meet the face obliquely (0: off, inner face only)
    landmark_depth_contour_weight: float = 0.0
    occupancy_every: int = 16
    occupancy_warmup: int = 300
    eval_every: int = 2000
    eval_frames: int = 4
    checkpoint_every: int = 1000
    #: opt-in: also keep each checkpoint's weights as ``nerf_step<N>`` (for picking a step count later)
    keep_checkpoints: bool = False
    seed: int = 0
    compile: bool = False               # torch.compile the fields' forward (worth it on a GPU)
    threads: int = 1                    # 1 beats 2 on a shared 2-core machine (measured 5x)
    model: SubjectModelConfig = field(default_factory=SubjectModelConfig)


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    mse = float(np.mean((pred.astype(np.float64) - target.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


class RaySampler:
    """Draws training rays: random training frames, random pixels, a share inside the mouth box and (opt-in) a
    share inside the brow-and-eye box."""

    def __init__(self, data: SubjectDataset, device: torch.device, frame_weights: np.ndarray | None = None):
        self.device = device
        #: per training frame (None: uniform); drawn with replacement by torch.multinomial
        self.frame_weights = None if frame_weights is None else torch.as_tensor(frame_weights, dtype=torch.float64)
        self.frames = torch.from_numpy(data.frames)
        self.masks = torch.from_numpy(data.masks)
        self.head_masks = torch.from_numpy(data.head_masks)
        self.mouth = torch.from_numpy(data.mouth_boxes).long()
        self.h, self.w = data.frames.shape[1:3]
        self.upper_face = None if data.upper_face_boxes is None else torch.from_numpy(data.upper_face_boxes).long()
        self.background = torch.from_numpy(data.background).float() / 255
        self.train = torch.from_numpy(data.train_indices)
        origins, dirs = pinhole_rays(data.camera)
        self.origins, self.dirs = origins, dirs

    def _in_boxes(self, boxes: torch.Tensor, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> None:
        """Redraw ``x``, ``y`` in place uniformly inside ``boxes [n, 4]`` (one per ray)."""
        u = torch.rand(len(boxes), 2, generator=generator)
        x[:] = (boxes[:, 0] + u[:, 0] * (boxes[:, 2] - boxes[:, 0]).clamp(min=1)).long().clamp(0, self.w - 1)
        y[:] = (boxes[:, 1] + u[:, 1] * (boxes[:, 3] - boxes[:, 1]).clamp(min=1)).long().clamp(0, self.h - 1)

    def sample(self, count: int, mouth_share: float, generator: torch.Generator,
               upper_face_share: float = 0.0) -> dict[str, torch.Tensor]:
        if self.frame_weights is None:
            pick = torch.randint(len(self.train), (count,), generator=generator)
        else:
            pick = torch.multinomial(self.frame_weights, count, replacement=True, generator=generator)
        frame = self.train[pick]
        n_mouth = int(count * mouth_share)
        x = torch.randint(self.w, (count,), generator=generator)
        y = torch.randint(self.h, (count,), generator=generator)
        self._in_boxes(self.mouth[frame[:n_mouth]], x[:n_mouth], y[:n_mouth], generator)
        if upper_face_share > 0:
            if self.upper_face is None:
                raise ValueError("upper_face_ray_share needs the prepared track's working-resolution landmarks "
                                 "(landmarks_working), which this subject folder lacks: re-run "
                                 "`emogene prepare-subject`")
            n_upper = min(int(count * upper_face_share), count - n_mouth)
            rows = slice(n_mouth, n_mouth + n_upper)
            self._in_boxes(self.upper_face[frame[rows]], x[rows], y[rows], generator)
        pix = y * self.w + x
        mb = self.mouth[frame]
        in_mouth = (x >= mb[:, 0]) & (x < mb[:, 2]) & (y >= mb[:, 1]) & (y < mb[:, 3])
        batch = {"frame": frame, "origins": self.origins[pix], "dirs": self.dirs[pix],
                 "rgb": self.frames[frame, y, x].float() / 255, "mask": self.masks[frame, y, x].float() / 255,
                 "head_mask": self.head_masks[frame, y, x].float() / 255, "background": self.background[y, x],
                 "mouth": in_mouth.float()}
        return {k: v.to(self.device) for k, v in batch.items()}


def render_dataset_frames(model: SubjectNeRF, data: SubjectDataset, indices: np.ndarray,
                          device: torch.device, progress: bool = False) -> np.ndarray:
    """Composites over the background plate, float [N, H, W, 3] in [0, 1]."""
    from tqdm import tqdm
    origins, dirs = pinhole_rays(data.camera, device)
    cond = data.conditions(model, indices, device)
    bg = torch.from_numpy(data.background).float().to(device).reshape(-1, 3) / 255
    h, w = data.frames.shape[1:3]
    out = []
    for j in tqdm(range(len(indices)), desc="render held-out frames", unit="frame", disable=not progress):
        rgb, alpha = render_frame(model, origins, dirs, cond.head_from_world[j:j + 1], cond.code[j:j + 1],
                                  cond.pose[j:j + 1])
        out.append((rgb + (1 - alpha[:, None]) * bg).clamp(0, 1).reshape(h, w, 3).cpu().numpy())
    return np.stack(out)


def heldout_psnr(model: SubjectNeRF, data: SubjectDataset, count: int, device: torch.device) -> float:
    idx = data.heldout_indices
    idx = idx[np.linspace(0, len(idx) - 1, min(count, len(idx))).round().astype(int)]
    model.eval()
    pred = render_dataset_frames(model, data, idx, device)
    model.train()
    return float(np.mean([psnr(p, data.frames[i] / 255.0) for p, i in zip(pred, idx)]))


def mean_frame_psnr(data: SubjectDataset, count: int) -> float:
    """The trivial baseline: the mean training frame, scored on the same held-out frames."""
    idx = data.heldout_indices
    idx = idx[np.linspace(0, len(idx) - 1, min(count, len(idx))).round().astype(int)]
    mean = data.frames[data.train_indices].astype(np.float64).mean(0) / 255
    return float(np.mean([psnr(mean, data.frames[i] / 255.0) for i in idx]))


def schedule_share(config: TrainConfig, step: int, elapsed: float) -> float:
    """How far along the learning-rate decay is, in [0, 1]: the step share, or with
    ``anneal_by_time`` the larger of it and the share of the wall-clock budget spent."""
    share = step / max(config.steps, 1)
    if config.anneal_by_time and config.minutes:
        share = max(share, elapsed / (config.minutes * 60))
    return min(share, 1.0) if config.anneal_by_time else share


def compute_losses(model: SubjectNeRF, batch: dict[str, torch.Tensor], cond, config: TrainConfig,
                   generator: torch.Generator) -> dict[str, torch.Tensor]:
    frame = batch["frame"]
    code = cond.code[frame]
    if config.code_noise > 0:
        code = code + config.code_noise * torch.randn(code.shape, generator=generator).to(code)
    if config.landmark_noise > 0:
        scale = config.landmark_noise / model.landmark_code.std
        code = code + scale * torch.randn(code.shape, generator=generator).to(code)
    out = model(batch["origins"], batch["dirs"], cond.head_from_world[frame], code, cond.pose[frame], jitter=True)
    composite = out["rgb"] + (1 - out["alpha"][:, None]) * batch["background"]
    weight = 1 + config.mouth_weight * batch["mouth"]
    photometric = (weight[:, None] * (composite - batch["rgb"]) ** 2).mean()
    alpha = ((out["alpha"] - batch["mask"]) ** 2).mean()
    head = ((out["head_alpha"] - batch["head_mask"]) ** 2).mean()
    torso_in_head = (out["torso_alpha"] * batch["head_mask"]).square().mean()
    total = (photometric + config.alpha_weight * alpha + config.head_alpha_weight * head
             + config.torso_in_head_weight * torso_in_head)
    mse = ((composite - batch["rgb"]) ** 2).mean()
    return {"total": total, "photometric": photometric, "alpha": alpha, "head": head, "mse": mse.detach()}


def save_curves(history: dict, path: Path, baseline_psnr: float | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    if history["loss"]:
        steps, losses = zip(*history["loss"])
        axes[0].plot(steps, losses)
        axes[0].set_yscale("log")
    axes[0].set(title="training loss", xlabel="step")
    if history["psnr"]:
        steps, values = zip(*[(entry[0], entry[1]) for entry in history["psnr"]])
        axes[1].plot(steps, values, marker="o", label="NeRF (held-out)")
    if baseline_psnr is not None:
        axes[1].axhline(baseline_psnr, color="gray", linestyle="--", label="mean training frame")
    axes[1].set(title="held-out PSNR (dB)", xlabel="step")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compile_fields(model: SubjectNeRF) -> None:
    """Compile the fields' forward in place (state-dict keys unchanged, so checkpoints stay portable)."""
    for fld in (model.head_field, model.torso_field):
        fld.forward = torch.compile(fld.forward, dynamic=True)


def _save(model: SubjectNeRF, optimizer, step: int, history: dict, elapsed: float, out_dir: Path,
          config: TrainConfig, subject_name: str) -> None:
    from backend.checkpoints import save_checkpoint
    save_checkpoint(out_dir / CHECKPOINT_STEM, model, kind=MODEL_KIND, version=MODEL_VERSION, config=config.model,
                    extra={"subject": subject_name, "step": step, "train_seconds": elapsed})
    torch.save({"step": step, "optimizer": optimizer.state_dict(), "history": history, "elapsed": elapsed},
               out_dir / "train_state.pt")
    if config.keep_checkpoints:
        save_checkpoint(out_dir / f"{CHECKPOINT_STEM}_step{step}", model, kind=MODEL_KIND, version=MODEL_VERSION,
                        config=config.model, extra={"subject": subject_name, "step": step, "train_seconds": elapsed})


def train_subject(subject_dir: str | Path, config: TrainConfig | None = None, device: torch.device | str = "cpu",
                  resume: bool = False, progress: bool = True,
                  should_stop: Callable[[], bool] | None = None, init_from: str | Path | None = None) -> dict:
    """Train (or resume) the NeRF of a prepared subject; returns a summary with held-out PSNR.
    ``init_from``: a checkpoint stem whose weights (fields, landmark code, occupancy, banks) start
    the run: fine-tuning, e.g. a 128² NeRF on the same subject's 256² frames."""
    from tqdm import tqdm

    from backend.checkpoints import load_checkpoint
    from backend.render.model_growth import load_grown_checkpoint

    config = config or TrainConfig()
    device = torch.device(device)
    if device.type == "cpu" and config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    out_dir = Path(subject_dir)
    data = SubjectDataset(out_dir)
    subject_name = data.info["name"]
    model = data.build_model(config.model).to(device)
    step, elapsed = 0, 0.0
    #: loss: (step, value); psnr: (step, held-out dB, seconds since start); occupancy: (step, head, torso)
    history: dict = {"loss": [], "psnr": [], "occupancy": []}
    state_path = out_dir / "train_state.pt"
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=1e-15, betas=(0.9, 0.99))
    if init_from is not None and not (resume and state_path.is_file()):
        grown = load_grown_checkpoint(Path(init_from), model, kind=MODEL_KIND, version=MODEL_VERSION, device=device)
        if grown and progress:
            print(f"started from {init_from}, grown (output unchanged): {', '.join(grown)}")
    if resume and state_path.is_file():
        load_checkpoint(out_dir / CHECKPOINT_STEM, model, kind=MODEL_KIND, version=MODEL_VERSION, device=device)
        state = torch.load(state_path, map_location=device, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        step, history, elapsed = state["step"], state["history"], state["elapsed"]
    if config.compile:
        compile_fields(model)
    weights = None
    if config.rare_mouth_cap is not None:
        from backend.render.frame_weights import RareMouthWeighting, rare_mouth_weights
        weights = rare_mouth_weights(data.track["landmarks"][data.train_indices],
                                     RareMouthWeighting(cap=config.rare_mouth_cap))
    sampler = RaySampler(data, device, weights)
    cond = data.conditions(model, data.train_indices, device)
    depth_targets = None
    if config.landmark_depth_contour_weight > 0 and not config.landmark_depth_weight > 0:
        raise ValueError("landmark_depth_contour_weight adds to the landmark depth loss: set landmark_depth_weight > 0")
    if config.landmark_depth_weight > 0:
        from backend.render.depth_probe import LandmarkDepthTargets, inner_face_landmarks, lower_jaw_contour_landmarks
        t, train = data.track, data.train_indices
        contour = lower_jaw_contour_landmarks() if config.landmark_depth_contour_weight > 0 else []
        depth_targets = LandmarkDepthTargets(t["landmarks"][train], t["rotation"][train], t["translation"][train],
                                             t["scale"][train], data.camera, inner_face_landmarks(),
                                             contour_indices=contour,
                                             contour_ratio=config.landmark_depth_contour_weight / config.landmark_depth_weight)
    # the sampler indexes by absolute frame; conditions are per training frame starting at 0
    baseline = mean_frame_psnr(data, config.eval_frames)
    start = time.time() - elapsed
    bar = tqdm(total=config.steps, initial=step, desc="train subject", unit="step", disable=not progress)
    last_psnr = history["psnr"][-1][1] if history["psnr"] else float("nan")
    model.train()
    while step < config.steps:
        if config.minutes is not None and time.time() - start > config.minutes * 60:
            break
        if should_stop is not None and should_stop():
            break
        lr = config.learning_rate * config.final_lr_ratio ** schedule_share(config, step, time.time() - start)
        for g in optimizer.param_groups:
            g["lr"] = lr
        if step >= config.occupancy_warmup and step % config.occupancy_every == 0:
            head_occ, torso_occ = model.update_occupancy()
            history["occupancy"].append((step, head_occ, torso_occ))
        batch = sampler.sample(config.rays_per_step, config.mouth_ray_share, generator, config.upper_face_ray_share)
        batch["frame"] = batch["frame"] - data.train_range[0]
        losses = compute_losses(model, batch, cond, config, generator)
        if depth_targets is not None:
            losses["landmark_depth"] = depth_targets.loss(model, cond.head_from_world, cond.code,
                                                          config.landmark_depth_frames, generator)
            losses["total"] = losses["total"] + config.landmark_depth_weight * losses["landmark_depth"]
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        step += 1
        if step % 50 == 0:
            history["loss"].append((step, float(losses["total"].detach())))
            bar.set_postfix(loss=f"{float(losses['total'].detach()):.4f}", psnr=f"{last_psnr:.2f}")
        if step % config.eval_every == 0:
            last_psnr = heldout_psnr(model, data, config.eval_frames, device)
            history["psnr"].append((step, last_psnr, time.time() - start))
        if step % config.checkpoint_every == 0:
            _save(model, optimizer, step, history, time.time() - start, out_dir, config, subject_name)
        bar.update(1)
    bar.close()
    elapsed = time.time() - start
    if not history["psnr"] or history["psnr"][-1][0] != step:
        last_psnr = heldout_psnr(model, data, config.eval_frames, device)
        history["psnr"].append((step, last_psnr, elapsed))
    _save(model, optimizer, step, history, elapsed, out_dir, config, subject_name)
    save_curves(history, out_dir / "training_curves.png", baseline)
    info = json.loads((out_dir / "subject.json").read_text())
    info["nerf"] = CHECKPOINT_STEM
    (out_dir / "subject.json").write_text(json.dumps(info, indent=2))
    summary = {"steps": step, "train_seconds": elapsed, "heldout_psnr": history["psnr"][-1][1],
               "mean_frame_psnr": baseline, "resolution": data.info["image_size"], "device": str(device),
               "psnr_history": history["psnr"], "config": asdict(config)}
    (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
