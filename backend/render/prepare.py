"""Subject preparation: one talking video -> a subject folder ready for NeRF training.

Writes into ``out_dir``: ``subject.json`` (camera, anchor, split, limits), ``track.npz``
(the face/pose track at 25 fps, which motion sampling draws head pose from),
``background.png`` (clean plate) and ``prepared/`` (frames, person and head masks, mouth
boxes at the working resolution; large, never shipped). A second run with the same video,
resolution and code version reuses ``prepared/``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from backend.render.camera import PinholeCamera, pinhole_to_blender, world_from_anchor_matrix

PREPARE_VERSION = 1
SUBJECT_FORMAT_VERSION = 1
TRACK_FPS = 25.0


@dataclass
class PrepareConfig:
    resolution: int = 128            # working resolution: the longer image side, pixels
    heldout_fraction: float = 0.1    # the last 10 % of the video is held out
    max_seconds: float | None = None  # use only the start of the video (tests)
    mask_threshold: float = 0.5
    max_upscale: float = 4.0         # plates may be rendered up to this factor above the working size


def _cache_key(video: Path, audio: Path | None, config: PrepareConfig) -> str:
    st = video.stat()
    payload = json.dumps({"video": str(video.resolve()), "size": st.st_size, "mtime": int(st.st_mtime),
                          "audio": str(audio) if audio else None, "config": asdict(config),
                          "version": PREPARE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def working_size(image_size: tuple[int, int], resolution: int) -> tuple[int, int]:
    width, height = image_size
    zoom = resolution / max(width, height)
    return max(8, int(round(width * zoom))), max(8, int(round(height * zoom)))


def head_mask(person: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
    """Head = person pixels above the jaw line and within ~1.5 face widths of the face centre."""
    h, w = person.shape
    jaw = landmarks_px[0:17]
    order = np.argsort(jaw[:, 0])
    cols = np.arange(w) + 0.5
    chin_y = np.interp(cols, jaw[order, 0], jaw[order, 1])   # ends held flat beyond the jaw
    half_width = 0.5 * (jaw[:, 0].max() - jaw[:, 0].min())
    centre_x = 0.5 * (jaw[:, 0].max() + jaw[:, 0].min())
    rows = np.arange(h)[:, None] + 0.5
    inside = (rows < chin_y[None, :] + 0.03 * half_width) & (np.abs(cols - centre_x)[None, :] < 1.5 * half_width)
    return person * inside


def mouth_box(landmarks_px: np.ndarray, size: tuple[int, int], grow: float = 1.5) -> np.ndarray:
    """[x0, y0, x1, y1) integer box around iBUG 48-67, grown by ``grow``."""
    mouth = landmarks_px[48:68]
    centre = 0.5 * (mouth.min(0) + mouth.max(0))
    half = 0.5 * (mouth.max(0) - mouth.min(0)) * grow + 1.0
    x0, y0 = np.floor(centre - half).astype(int)
    x1, y1 = np.ceil(centre + half).astype(int)
    w, h = size
    return np.array([max(0, x0), max(0, y0), min(w, x1), min(h, y1)], dtype=np.int32)


def clean_background(frames: np.ndarray, masks: np.ndarray, step: int = 3) -> np.ndarray:
    """Per-pixel median over frames where the pixel is not person; never-seen pixels inpainted."""
    import cv2
    sub_frames = frames[::step].astype(np.float32)
    visible = masks[::step] < 0.05
    stack = np.where(visible[..., None], sub_frames, np.nan)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(stack, axis=0)
    holes = np.isnan(median[..., 0])
    median = np.nan_to_num(median, nan=0.0).clip(0, 255).astype(np.uint8)
    if holes.any():
        median = cv2.inpaint(median, holes.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    return median


def resample_track(arrays: dict[str, np.ndarray], fps: float, target_fps: float = TRACK_FPS) -> dict[str, np.ndarray]:
    """Nearest-frame resampling of per-frame arrays to ``target_fps`` (identity at 25 fps)."""
    count = arrays["landmarks"].shape[0]
    if abs(fps - target_fps) < 1e-6:
        return dict(arrays)
    n_out = max(1, int(round(count / fps * target_fps)))
    idx = np.clip(np.round(np.arange(n_out) / target_fps * fps).astype(int), 0, count - 1)
    return {k: (v[idx] if v.ndim and v.shape[0] == count else v) for k, v in arrays.items()}


def prepare_subject(video: str | Path, out_dir: str | Path, audio: str | Path | None = None,
                    config: PrepareConfig | None = None, name: str | None = None, progress: bool = True) -> Path:
    """Prepare (or reuse) a subject folder; returns its path."""
    import cv2
    from tqdm import tqdm

    from backend.render.subject_data import iter_video_frames, track_subject_video

    config = config or PrepareConfig()
    video = Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"subject video {video} not found")
    audio = Path(audio) if audio else None
    if audio is not None and not audio.is_file():
        raise FileNotFoundError(f"subject audio {audio} not found")
    out_dir = Path(out_dir)
    prepared = out_dir / "prepared"
    key = _cache_key(video, audio, config)
    meta_path = prepared / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == key and (out_dir / "subject.json").is_file():
        if progress:
            print(f"prepare-subject: reusing {prepared} (same video, settings and version)")
        return out_dir
    prepared.mkdir(parents=True, exist_ok=True)

    bar = tqdm(desc="tracking face", unit="frame", disable=not progress)

    def on_progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    track = track_subject_video(video, progress=on_progress, max_seconds=config.max_seconds)
    bar.close()
    count = track.frame_count
    src_w, src_h = track.image_size
    w, h = working_size(track.image_size, config.resolution)
    zoom_x, zoom_y = w / src_w, h / src_h

    from mediapipe.python.solutions import selfie_segmentation
    frames = np.empty((count, h, w, 3), np.uint8)
    masks = np.empty((count, h, w), np.float32)
    segmenter = selfie_segmentation.SelfieSegmentation(model_selection=0)
    try:
        for i, rgb in enumerate(tqdm(iter_video_frames(video, count), total=count, desc="frames + person mask",
                                     unit="frame", disable=not progress)):
            frames[i] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            seg = segmenter.process(rgb).segmentation_mask
            masks[i] = cv2.resize((seg > config.mask_threshold).astype(np.float32), (w, h),
                                  interpolation=cv2.INTER_AREA)
    finally:
        segmenter.close()
    if i + 1 < count:
        raise RuntimeError(f"{video}: decoded {i + 1} frames but tracked {count}")

    lm_px = track.landmarks_image * np.array([zoom_x, zoom_y], np.float32)
    head = np.stack([head_mask(masks[i], lm_px[i]) for i in range(count)]).astype(np.float32)
    mouth = np.stack([mouth_box(lm_px[i], (w, h)) for i in range(count)])
    background = clean_background(frames, masks)

    n_heldout = max(1, int(round(count * config.heldout_fraction)))
    n_train = count - n_heldout
    np.save(prepared / "frames.npy", frames)
    np.save(prepared / "masks.npy", (masks * 255).round().astype(np.uint8))
    np.save(prepared / "head_masks.npy", (head * 255).round().astype(np.uint8))
    np.save(prepared / "mouth_boxes.npy", mouth)
    np.savez(prepared / "track_native.npz", **track.arrays(), landmarks_working=lm_px)
    cv2.imwrite(str(out_dir / "background.png"), cv2.cvtColor(background, cv2.COLOR_RGB2BGR))
    np.savez_compressed(out_dir / "track.npz", **resample_track(track.arrays(), track.fps))

    # anchor = the mean head pose of the training frames; world = the subject camera's frame
    from scipy.spatial.transform import Rotation
    train_rot = track.rotation[:n_train].astype(np.float64)
    mean_rotation = Rotation.from_matrix(train_rot).mean().as_matrix()
    mean_translation = track.translation[:n_train].astype(np.float64).mean(0)
    world_from_anchor = world_from_anchor_matrix(mean_rotation, mean_translation)
    fx, fy, cx, cy = (float(v) for v in track.intrinsics)
    camera = PinholeCamera(fx * zoom_x, fy * zoom_y, cx * zoom_x, cy * zoom_y, w, h, np.eye(4))
    blender_camera = pinhole_to_blender(camera, world_from_anchor)
    subject = {
        "name": name or out_dir.name,
        "version": SUBJECT_FORMAT_VERSION,
        "source_video": str(video), "source_audio": str(audio) if audio else None,
        "source_size": [src_w, src_h], "fps": track.fps, "frames": count,
        "image_size": [w, h], "max_resolution": [int(w * config.max_upscale), int(h * config.max_upscale)],
        "intrinsics": [camera.fx, camera.fy, camera.cx, camera.cy],
        "world_from_anchor": world_from_anchor.reshape(-1).tolist(),
        "mean_head_rotation": mean_rotation.reshape(-1).tolist(), "mean_head_translation": mean_translation.tolist(),
        "training_camera": {"focal_length_mm": blender_camera.focal_length_mm,
                            "sensor_width_mm": blender_camera.sensor_width_mm,
                            "sensor_height_mm": blender_camera.sensor_height_mm,
                            "sensor_fit": blender_camera.sensor_fit, "resolution": [w, h],
                            "shift_x": blender_camera.shift_x, "shift_y": blender_camera.shift_y,
                            "anchor_from_camera": blender_camera.anchor_from_camera.reshape(-1).tolist()},
        "split": {"train": [0, n_train], "heldout": [n_train, count]},
        "face_found_fraction": float(track.face_found.mean()),
        "background": "background.png", "track": "track.npz", "nerf": None,
    }
    (out_dir / "subject.json").write_text(json.dumps(subject, indent=2))
    meta_path.write_text(json.dumps({"key": key, "frames": count, "size": [w, h]}))
    return out_dir
