"""Training/evaluation pairs for a subject's super-resolution network, cached on disk.

For chosen frames of the subject's source video: the real frame at the source resolution
(512² for the default subject), its person mask (mediapipe selfie segmentation at that
resolution, like subject preparation's masks), and the subject NeRF's own render of the
frame at the working resolution (premultiplied RGB + alpha, driven by the frame's track) —
the SR network's real input domain. Plus a clean background plate at the source resolution.

The NeRF weights are part of the cache key: retraining the NeRF invalidates the renders.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

SR_DATA_VERSION = 2


@dataclass
class SRDataConfig:
    train_stride: int = 8          # every 8th training frame (201 of 1601)
    # selection frames (never trained on, never evaluated): the held-out frames half-way between consecutive
    # frames of an even grid of this many (23 of 178); the plate evaluation skips them
    evaluation_frames: int = 24
    mask_threshold: float = 0.5    # as subject preparation


@dataclass
class SRPairs:
    """Cached pairs, all uint8/float16 numpy arrays indexed like ``indices``."""
    indices: np.ndarray      # int [N] frame numbers in the source video
    frames: np.ndarray       # uint8 [N, H, W, 3] real frames at the source resolution
    masks: np.ndarray        # uint8 [N, H, W] person mask (0..255)
    renders: np.ndarray      # float16 [N, h, w, 4] NeRF premultiplied RGB + alpha at the working resolution
    background: np.ndarray   # uint8 [H, W, 3] clean plate at the source resolution
    heldout: np.ndarray      # bool [N] a selection frame (held out, not in the plate evaluation's set)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def resolve_source_video(subject_dir: Path, info: dict) -> Path:
    video = Path(info["source_video"])
    if not video.is_absolute():
        video = (Path(__file__).resolve().parents[2] / video).resolve()
    if not video.is_file():
        raise FileNotFoundError(f"subject {info['name']!r} was trained on {info['source_video']}, which is not "
                                f"here: its super-resolution pairs cannot be made")
    return video


def chosen_frames(info: dict, config: SRDataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Training frames, then selection frames: held-out frames the plate evaluation never uses
    (evaluate_plates.selection_frames). Returns the frame numbers and a flag per frame (True: selection)."""
    from backend.render.evaluate_plates import selection_frames
    train = np.arange(*info["split"]["train"])[::config.train_stride]
    selection = selection_frames(info, config.evaluation_frames)
    return (np.concatenate([train, selection]),
            np.concatenate([np.zeros(len(train), bool), np.ones(len(selection), bool)]))


def extract_frames(video: Path, indices: np.ndarray, threshold: float, progress: bool = True):
    """Real frames at the source resolution and their person masks for sorted ``indices``."""
    from mediapipe.python.solutions import selfie_segmentation
    from tqdm import tqdm

    from backend.render.tracking import iter_video_frames

    wanted = {int(i): k for k, i in enumerate(indices)}
    frames, masks = [None] * len(indices), [None] * len(indices)
    segmenter = selfie_segmentation.SelfieSegmentation(model_selection=0)
    bar = tqdm(total=len(indices), desc="source frames + person masks", unit="frame", disable=not progress)
    try:
        for i, rgb in enumerate(iter_video_frames(video, int(indices.max()) + 1)):
            k = wanted.get(i)
            if k is None:
                continue
            seg = segmenter.process(rgb).segmentation_mask
            frames[k] = rgb
            masks[k] = ((seg > threshold) * 255).astype(np.uint8)
            bar.update(1)
    finally:
        segmenter.close()
        bar.close()
    missing = [int(indices[k]) for k, f in enumerate(frames) if f is None]
    if missing:
        raise RuntimeError(f"{video}: frames {missing[:5]}... could not be decoded")
    return np.stack(frames), np.stack(masks)


@torch.no_grad()
def nerf_renders(subject_dir: Path, indices: np.ndarray, progress: bool = True) -> np.ndarray:
    """The subject NeRF's premultiplied RGBA at the working resolution for frames ``indices``."""
    from tqdm import tqdm

    from backend.render.inference import SubjectRenderer
    renderer = SubjectRenderer(subject_dir, "cpu")
    track = np.load(subject_dir / renderer.info["track"])
    prepared = renderer.conditions(track["landmarks"][indices], track["rotation"][indices],
                                   track["translation"][indices], track["scale"][indices])
    camera = renderer.training_camera
    out = np.empty((len(indices), camera.height, camera.width, 4), np.float16)
    for k in tqdm(range(len(indices)), desc="NeRF renders (SR input)", unit="frame", disable=not progress):
        out[k] = renderer.render_premultiplied(camera, prepared.conditions, k).cpu().numpy()
    return out


def load_or_make_pairs(subject_dir: str | Path, cache_dir: str | Path, config: SRDataConfig | None = None,
                       progress: bool = True) -> SRPairs:
    """Cached :class:`SRPairs` of a trained subject (made on first use; a few minutes on CPU)."""
    from backend.render.prepare import clean_background

    config = config or SRDataConfig()
    subject_dir, cache_dir = Path(subject_dir), Path(cache_dir)
    info = json.loads((subject_dir / "subject.json").read_text())
    video = resolve_source_video(subject_dir, info)
    indices, heldout = chosen_frames(info, config)
    key = hashlib.sha256(json.dumps({"video": str(video), "size": video.stat().st_size, "config": asdict(config),
                                     "nerf": _file_digest(subject_dir / f"{info['nerf']}.safetensors"),
                                     "version": SR_DATA_VERSION}, sort_keys=True).encode()).hexdigest()[:16]
    meta_path = cache_dir / "meta.json"
    names = ("indices", "frames", "masks", "renders", "background", "heldout")
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == key:
        return SRPairs(**{n: np.load(cache_dir / f"{n}.npy", mmap_mode="r" if n == "frames" else None)
                          for n in names})
    cache_dir.mkdir(parents=True, exist_ok=True)
    frames, masks = extract_frames(video, indices, config.mask_threshold, progress)
    renders = nerf_renders(subject_dir, indices, progress)
    train = ~heldout
    background = clean_background(frames[train], masks[train].astype(np.float32) / 255, step=1)
    pairs = SRPairs(indices=indices, frames=frames, masks=masks, renders=renders, background=background,
                    heldout=heldout)
    for n in names:
        tmp = cache_dir / f"{n}.tmp.npy"
        np.save(tmp, getattr(pairs, n))
        tmp.replace(cache_dir / f"{n}.npy")
    meta_path.write_text(json.dumps({"key": key, "frames": len(indices)}))
    return pairs
