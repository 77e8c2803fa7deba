"""Subject preparation: one talking video, or a capture session (a folder of clips of one person
from one camera), -> a subject folder ready for NeRF training.

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
from bridge.landmarks import JAW, MOUTH, UPPER_FACE, as_slice

PREPARE_VERSION = 2   # 2: edit cuts found (shot_starts), smoothing per shot
SUBJECT_FORMAT_VERSION = 1
TRACK_FPS = 25.0


@dataclass
class PrepareConfig:
    resolution: int = 128            # working resolution: the longer image side, pixels
    heldout_fraction: float = 0.1    # the last 10 % of the video is held out
    max_seconds: float | None = None  # use only the start of the video (tests)
    mask_threshold: float = 0.5
    max_upscale: float = 4.0         # plates may be rendered up to this factor above the working size


def working_size(image_size: tuple[int, int], resolution: int) -> tuple[int, int]:
    width, height = image_size
    zoom = resolution / max(width, height)
    return max(8, int(round(width * zoom))), max(8, int(round(height * zoom)))


def head_mask(person: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
    """Head = person pixels above the jaw line and within ~1.5 face widths of the face centre."""
    h, w = person.shape
    jaw = landmarks_px[as_slice(JAW)]
    order = np.argsort(jaw[:, 0])
    cols = np.arange(w) + 0.5
    chin_y = np.interp(cols, jaw[order, 0], jaw[order, 1])   # ends held flat beyond the jaw
    half_width = 0.5 * (jaw[:, 0].max() - jaw[:, 0].min())
    centre_x = 0.5 * (jaw[:, 0].max() + jaw[:, 0].min())
    rows = np.arange(h)[:, None] + 0.5
    inside = (rows < chin_y[None, :] + 0.03 * half_width) & (np.abs(cols - centre_x)[None, :] < 1.5 * half_width)
    return person * inside


def landmark_box(landmarks_px: np.ndarray, indices: np.ndarray | slice, size: tuple[int, int],
                 grow: float = 1.5) -> np.ndarray:
    """[x0, y0, x1, y1) integer box around ``landmarks_px[indices]``, grown by ``grow`` about its centre."""
    points = landmarks_px[indices]
    centre = 0.5 * (points.min(0) + points.max(0))
    half = 0.5 * (points.max(0) - points.min(0)) * grow + 1.0
    x0, y0 = np.floor(centre - half).astype(int)
    x1, y1 = np.ceil(centre + half).astype(int)
    w, h = size
    return np.array([max(0, x0), max(0, y0), min(w, x1), min(h, y1)], dtype=np.int32)


def mouth_box(landmarks_px: np.ndarray, size: tuple[int, int], grow: float = 1.5) -> np.ndarray:
    """[x0, y0, x1, y1) integer box around iBUG 48-67, grown by ``grow``."""
    return landmark_box(landmarks_px, as_slice(MOUTH), size, grow)


def upper_face_box(landmarks_px: np.ndarray, size: tuple[int, int], grow: float = 1.3) -> np.ndarray:
    """[x0, y0, x1, y1) integer box around the brows and eyes (iBUG 17-26, 36-47), grown by ``grow``."""
    return landmark_box(landmarks_px, list(UPPER_FACE), size, grow)


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
    idx = resample_index(count, fps, target_fps)
    return {k: (v[idx] if v.ndim and v.shape[0] == count else v) for k, v in arrays.items()}


def resample_index(count: int, fps: float, target_fps: float = TRACK_FPS) -> np.ndarray:
    """The source frame each frame of :func:`resample_track`'s output shows (``arange(count)`` at 25 fps)."""
    if abs(fps - target_fps) < 1e-6:
        return np.arange(count)
    n_out = max(1, int(round(count / fps * target_fps)))
    return np.clip(np.round(np.arange(n_out) / target_fps * fps).astype(int), 0, count - 1)


@dataclass
class SessionClip:
    """One clip of a capture session (one person, one camera)."""
    video: Path
    size: tuple[int, int]           # source (width, height)
    speaker: str | None = None      # MEAD speaker id when the file name says it
    emotion: str | None = None      # MEAD emotion when the file name says it
    level: int | None = None
    audio: Path | None = None


def _video_size(path: Path) -> tuple[int, int]:
    import cv2
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise RuntimeError(f"{path}: not a readable video (OpenCV/ffmpeg could not open it)")
        return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()


def session_clips(source: str | Path | list[str | Path]) -> list[SessionClip]:
    """The clips of a subject source: one video, a folder of videos (one person, one camera; not
    recursive) or a list of videos. Raises FileNotFoundError/RuntimeError naming the problem."""
    from backend.data.datasets import VIDEO_SUFFIXES, describe_clip

    paths = [Path(p) for p in source] if isinstance(source, (list, tuple)) else [Path(source)]
    if not paths:
        raise FileNotFoundError("no subject video given")
    videos: list[Path] = []
    for path in paths:
        if path.is_dir():
            entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
            if not entries:
                raise FileNotFoundError(f"subject folder {path} is empty: put the clips of one capture session in it")
            found = [p for p in entries if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
            if not found:
                shown = ", ".join(p.name for p in entries[:5]) + (", ..." if len(entries) > 5 else "")
                raise FileNotFoundError(f"subject folder {path} holds no video ({', '.join(sorted(VIDEO_SUFFIXES))}); "
                                        f"found: {shown}")
            videos += found
        elif not path.is_file():
            raise FileNotFoundError(f"subject video {path} not found")
        elif path.suffix.lower() not in VIDEO_SUFFIXES:
            raise RuntimeError(f"{path} is not a video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
        else:
            videos.append(path)
    clips = []
    for video in videos:
        described = describe_clip(video, video.parent)
        mead = described.corpus.startswith("mead")
        audio = described.audio if described.audio not in (None, video) else None
        clips.append(SessionClip(video, _video_size(video), described.speaker if mead else None,
                                 described.emotion, described.level, audio))
    sizes = {c.size for c in clips}
    if len(sizes) > 1:
        by_size: dict[tuple[int, int], list[str]] = {}
        for c in clips:
            by_size.setdefault(c.size, []).append(c.video.name)
        listed = "; ".join(f"{w}x{h}: {', '.join(names)}" for (w, h), names in sorted(by_size.items()))
        raise RuntimeError(f"the clips of one subject must come from one camera at one size, these differ: {listed}")
    speakers = {c.speaker for c in clips if c.speaker}
    if len(speakers) > 1:
        raise RuntimeError(f"the clips show several MEAD speakers ({', '.join(sorted(speakers))}): "
                           "a subject is one person; give one speaker's clips")
    return clips


def _cache_key(clips: list[SessionClip], audio: Path | None, config: PrepareConfig) -> str:
    videos = []
    for clip in clips:
        st = clip.video.stat()
        videos.append({"video": str(clip.video.resolve()), "size": st.st_size, "mtime": int(st.st_mtime)})
    payload = json.dumps({"videos": videos, "audio": str(audio) if audio else None, "config": asdict(config),
                          "version": PREPARE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class _PreparedClip:
    track: "SubjectTrack"   # noqa: F821 (backend.render.tracking)
    frames: np.ndarray      # uint8 [T, h, w, 3] at the working size
    masks: np.ndarray       # float32 [T, h, w] person mask
    landmarks_px: np.ndarray  # float32 [T, NUM_LANDMARKS, 2] at the working size


#: a clip whose face is found in fewer frames than this share is refused
MIN_FACE_FOUND = 0.5


def _working_frames_and_masks(video: Path, count: int, size: tuple[int, int], threshold: float, desc: str,
                              progress: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """The first ``count`` frames of ``video`` resized to ``size`` and their person masks (selfie segmentation at
    the source size, thresholded, resized), plus how many frames were decoded."""
    import cv2
    from mediapipe.python.solutions import selfie_segmentation
    from tqdm import tqdm

    from backend.render.tracking import iter_video_frames

    w, h = size
    frames = np.empty((count, h, w, 3), np.uint8)
    masks = np.empty((count, h, w), np.float32)
    segmenter = selfie_segmentation.SelfieSegmentation(model_selection=0)
    i = -1
    try:
        for i, rgb in enumerate(tqdm(iter_video_frames(video, count), total=count, desc=desc, unit="frame",
                                     disable=not progress)):
            frames[i] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            seg = segmenter.process(rgb).segmentation_mask
            masks[i] = cv2.resize((seg > threshold).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    finally:
        segmenter.close()
    return frames, masks, i + 1


def _prepare_clip(clip: SessionClip, config: PrepareConfig, label: str, progress: bool) -> _PreparedClip:
    """Track one clip and extract its frames and person masks at the working resolution."""
    from tqdm import tqdm

    from backend.render.tracking import track_subject_video

    bar = tqdm(desc=f"tracking face{label}", unit="frame", disable=not progress)

    def on_progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    track = track_subject_video(clip.video, progress=on_progress, max_seconds=config.max_seconds)
    bar.close()
    found = float(track.face_found.mean())
    if found < MIN_FACE_FOUND:
        raise RuntimeError(f"{clip.video}: a face was found in only {found:.0%} of its frames "
                           f"(need {MIN_FACE_FOUND:.0%}); leave this clip out or re-film it facing the camera")
    count = track.frame_count
    src_w, src_h = track.image_size
    w, h = working_size(track.image_size, config.resolution)
    frames, masks, decoded = _working_frames_and_masks(clip.video, count, (w, h), config.mask_threshold,
                                                       f"frames + person mask{label}", progress)
    if decoded < count:
        raise RuntimeError(f"{clip.video}: decoded {decoded} frames but tracked {count}")
    lm_px = track.landmarks_image * np.array([w / src_w, h / src_h], np.float32)
    return _PreparedClip(track, frames, masks, lm_px)


def neutral_landmarks(landmarks: np.ndarray, emotion_index: np.ndarray) -> list | None:
    """Mean canonical landmarks ``[NUM_LANDMARKS][3]`` of the rows labelled neutral (None when there are none):
    the subject's own neutral face, which a generated track should be retargeted onto when the
    subject was filmed with emotions (the mean over all its frames is half-way into an emotion)."""
    rows = np.asarray(emotion_index) == 0
    if not rows.any():
        return None
    return np.asarray(landmarks)[rows].astype(np.float64).mean(0).round(6).tolist()


def heldout_split(count: int, fraction: float) -> int:
    """Number of training frames of a clip of ``count`` frames: its last ``fraction`` is held out
    (at least one frame held out, at least one kept for training)."""
    n_heldout = min(max(1, int(round(count * fraction))), max(count - 1, 1))
    return count - n_heldout


def prepare_subject(video: str | Path | list[str | Path], out_dir: str | Path, audio: str | Path | None = None,
                    config: PrepareConfig | None = None, name: str | None = None, progress: bool = True) -> Path:
    """Prepare (or reuse) a subject folder from one video, a folder of clips or a list of clips
    of one person filmed by one camera; returns its path.

    With several clips, every clip is tracked on its own (no smoothing across clips), the last
    ``heldout_fraction`` of *each* clip is held out, and ``prepared/`` stores the training
    frames of all clips first and then their held-out frames, so the split stays two row
    ranges; ``subject.json["clips"]`` maps rows back to clips, frames and emotion labels.
    """
    import cv2

    config = config or PrepareConfig()
    clips = session_clips(video)
    audio = Path(audio) if audio else None
    if audio is not None and not audio.is_file():
        raise FileNotFoundError(f"subject audio {audio} not found")
    if audio is not None and len(clips) > 1:
        raise RuntimeError("--audio names one audio file, but the subject has several clips; "
                           "put each clip's audio beside it with the same name instead")
    out_dir = Path(out_dir)
    prepared = out_dir / "prepared"
    key = _cache_key(clips, audio, config)
    meta_path = prepared / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == key and (out_dir / "subject.json").is_file():
        if progress:
            print(f"prepare-subject: reusing {prepared} (same video, settings and version)")
        return out_dir
    prepared.mkdir(parents=True, exist_ok=True)

    parts = []
    for n, clip in enumerate(clips):
        label = f" [{n + 1}/{len(clips)} {clip.video.name}]" if len(clips) > 1 else ""
        parts.append(_prepare_clip(clip, config, label, progress))
    fps_values = {round(p.track.fps, 3) for p in parts}
    src_w, src_h = parts[0].track.image_size
    w, h = parts[0].frames.shape[2], parts[0].frames.shape[1]
    zoom_x, zoom_y = w / src_w, h / src_h

    # rows of prepared/: every clip's training frames (clip order), then every clip's held-out frames
    starts = np.cumsum([0] + [p.track.frame_count for p in parts])
    train_rows, held_rows, clip_info = [], [], []
    for n, (clip, part) in enumerate(zip(clips, parts)):
        count = part.track.frame_count
        n_train = heldout_split(count, config.heldout_fraction)
        train_rows.append(starts[n] + np.arange(n_train))
        held_rows.append(starts[n] + np.arange(n_train, count))
        clip_info.append({"video": str(clip.video), "audio": str(clip.audio) if clip.audio else None,
                          "frames": count, "fps": part.track.fps, "emotion": clip.emotion, "level": clip.level,
                          "face_found_fraction": float(part.track.face_found.mean()), "train_frames": n_train})
    order = np.concatenate(train_rows + held_rows)
    n_train_total = int(sum(len(r) for r in train_rows))
    row = n_train_total
    offset = 0
    for info_, tr, he in zip(clip_info, train_rows, held_rows):
        info_["train_rows"] = [offset, offset + len(tr)]
        info_["heldout_rows"] = [row, row + len(he)]
        offset += len(tr)
        row += len(he)

    from backend.render.tracking import SubjectTrack
    from bridge.emotions import EMOTION_INDEX, level_intensity
    native = {k: np.concatenate([p.track.arrays()[k] for p in parts])[order]
              for k in ("landmarks", "landmarks_image", "rotation", "translation", "scale", "face_found")}
    track = SubjectTrack(**native, intrinsics=parts[0].track.intrinsics, fps=parts[0].track.fps,
                         image_size=(src_w, src_h))
    count = track.frame_count
    frames = np.concatenate([p.frames for p in parts])[order]
    masks = np.concatenate([p.masks for p in parts])[order]
    lm_px = np.concatenate([p.landmarks_px for p in parts])[order]
    clip_index = np.concatenate([np.full(p.track.frame_count, n, np.int32) for n, p in enumerate(parts)])[order]
    clip_frame = np.concatenate([np.arange(p.track.frame_count, dtype=np.int32) for p in parts])[order]
    emotion_index = np.array([EMOTION_INDEX[c.emotion] if c.emotion else -1 for c in clips], np.int32)[clip_index]
    intensity = np.array([level_intensity(c.level, np.nan) for c in clips], np.float32)[clip_index]

    head = np.stack([head_mask(masks[i], lm_px[i]) for i in range(count)]).astype(np.float32)
    mouth = np.stack([mouth_box(lm_px[i], (w, h)) for i in range(count)])
    background = clean_background(frames, masks)   # one plate: the median over all clips

    np.save(prepared / "frames.npy", frames)
    np.save(prepared / "masks.npy", (masks * 255).round().astype(np.uint8))
    np.save(prepared / "head_masks.npy", (head * 255).round().astype(np.uint8))
    np.save(prepared / "mouth_boxes.npy", mouth)
    np.savez(prepared / "track_native.npz", **track.arrays(), landmarks_working=lm_px, clip_index=clip_index,
             clip_frame=clip_frame, emotion_index=emotion_index, emotion_intensity=intensity)
    cv2.imwrite(str(out_dir / "background.png"), cv2.cvtColor(background, cv2.COLOR_RGB2BGR))
    # the 25 fps pose track keeps each clip in its natural time order; clip_starts marks the clips, shot_starts the
    # edit cuts inside a clip (pose sampling crosses neither)
    per_clip = [resample_track(p.track.arrays(), p.track.fps) for p in parts]
    motion_track = {k: np.concatenate([t[k] for t in per_clip]) for k in per_clip[0] if k != "intrinsics"}
    motion_track["intrinsics"] = per_clip[0]["intrinsics"]
    clip_starts = np.cumsum([0] + [len(t["landmarks"]) for t in per_clip[:-1]]).astype(np.int32)
    motion_track["clip_starts"] = clip_starts
    motion_track["shot_starts"] = np.concatenate(
        [start + p.track.shot_starts_in(resample_index(p.track.frame_count, p.track.fps))
         for start, p in zip(clip_starts, parts)]).astype(np.int32)
    np.savez_compressed(out_dir / "track.npz", **motion_track)

    # anchor = the mean head pose of the training frames; world = the subject camera's frame
    from scipy.spatial.transform import Rotation
    train_rot = track.rotation[:n_train_total].astype(np.float64)
    mean_rotation = Rotation.from_matrix(train_rot).mean().as_matrix()
    mean_translation = track.translation[:n_train_total].astype(np.float64).mean(0)
    world_from_anchor = world_from_anchor_matrix(mean_rotation, mean_translation)
    fx, fy, cx, cy = (float(v) for v in track.intrinsics)
    camera = PinholeCamera(fx * zoom_x, fy * zoom_y, cx * zoom_x, cy * zoom_y, w, h, np.eye(4))
    blender_camera = pinhole_to_blender(camera, world_from_anchor)
    single = len(clips) == 1
    subject = {
        "name": name or out_dir.name,
        "version": SUBJECT_FORMAT_VERSION,
        "source_video": str(clips[0].video) if single else None,
        "source_audio": str(audio) if audio else None,
        "source_size": [src_w, src_h], "fps": track.fps, "frames": count,
        "image_size": [w, h], "max_resolution": [int(w * config.max_upscale), int(h * config.max_upscale)],
        "intrinsics": [camera.fx, camera.fy, camera.cx, camera.cy],
        "world_from_anchor": world_from_anchor.reshape(-1).tolist(),
        "mean_head_rotation": mean_rotation.reshape(-1).tolist(), "mean_head_translation": mean_translation.tolist(),
        "training_camera": blender_camera.to_content(),   # bridge.camera's wire form
        "split": {"train": [0, n_train_total], "heldout": [n_train_total, count]},
        "face_found_fraction": float(track.face_found.mean()),
        "background": "background.png", "track": "track.npz", "nerf": None,
    }
    if not single:
        subject["source_clips"] = [c["video"] for c in clip_info]
        subject["clips"] = clip_info
        neutral = neutral_landmarks(track.landmarks[:n_train_total], emotion_index[:n_train_total])
        if neutral is not None:
            subject["neutral_landmarks"] = neutral   # mean of the neutral clips' training frames
        if len(fps_values) > 1:
            subject["fps_note"] = f"clips differ in frame rate ({sorted(fps_values)}); track.npz is resampled to 25 fps"
    (out_dir / "subject.json").write_text(json.dumps(subject, indent=2))
    meta_path.write_text(json.dumps({"key": key, "frames": count, "size": [w, h], "clips": len(clips)}))
    return out_dir


def rescale_prepared(subject_dir: str | Path, out_dir: str | Path, resolution: int, progress: bool = True) -> Path:
    """A copy of a prepared single-video subject at another working ``resolution`` (e.g. 256 for
    fine-tuning a 128² NeRF on finer rays): frames and person masks re-extracted from the source
    video at that size, the *same* track (so the NeRF's landmark code stays valid), head masks and
    mouth boxes rescaled, camera intrinsics scaled. Reused when already made at that size."""
    import cv2

    subject_dir, out_dir = Path(subject_dir), Path(out_dir)
    info = json.loads((subject_dir / "subject.json").read_text())
    if info.get("source_clips"):
        raise ValueError(f"{subject_dir}: rescaling a multi-clip subject is not supported")
    video = Path(info["source_video"])
    if not video.is_absolute():
        video = (Path(__file__).resolve().parents[2] / video).resolve()
    src_w, src_h = info["source_size"]
    w, h = working_size((src_w, src_h), resolution)
    prepared = out_dir / "prepared"
    meta = {"from": str(subject_dir.resolve()), "size": [w, h], "version": PREPARE_VERSION}
    if (prepared / "meta.json").is_file() and json.loads((prepared / "meta.json").read_text()) == meta:
        return out_dir
    prepared.mkdir(parents=True, exist_ok=True)
    track = dict(np.load(subject_dir / "prepared" / "track_native.npz"))
    count = len(track["landmarks"])
    frames, masks, _ = _working_frames_and_masks(video, count, (w, h), PrepareConfig().mask_threshold,
                                                 f"frames + masks at {w}x{h}", progress)
    lm_px = track["landmarks_image"] * np.array([w / src_w, h / src_h], np.float32)
    track["landmarks_working"] = lm_px
    head = np.stack([head_mask(masks[i], lm_px[i]) for i in range(count)])
    np.save(prepared / "frames.npy", frames)
    np.save(prepared / "masks.npy", (masks * 255).round().astype(np.uint8))
    np.save(prepared / "head_masks.npy", (head * 255).round().astype(np.uint8))
    np.save(prepared / "mouth_boxes.npy", np.stack([mouth_box(lm_px[i], (w, h)) for i in range(count)]))
    np.savez(prepared / "track_native.npz", **track)
    background = clean_background(frames, masks)
    cv2.imwrite(str(out_dir / "background.png"), cv2.cvtColor(background, cv2.COLOR_RGB2BGR))
    zoom = w / info["image_size"][0]
    fx, fy, cx, cy = info["intrinsics"]
    camera = PinholeCamera(fx * zoom, fy * zoom, cx * zoom, cy * zoom, w, h, np.eye(4))
    world_from_anchor = np.asarray(info["world_from_anchor"], np.float64).reshape(4, 4)
    (out_dir / "track.npz").write_bytes((subject_dir / info["track"]).read_bytes())
    rescaled = dict(info, image_size=[w, h], intrinsics=[camera.fx, camera.fy, camera.cx, camera.cy],
                    training_camera=pinhole_to_blender(camera, world_from_anchor).to_content(),
                    background="background.png", track="track.npz", nerf=None)
    (out_dir / "subject.json").write_text(json.dumps(rescaled, indent=2))
    (prepared / "meta.json").write_text(json.dumps(meta))
    return out_dir
