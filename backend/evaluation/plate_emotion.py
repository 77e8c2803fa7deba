"""Is the keyed emotion on the picture? Render takes, track the plates like real video, ask the judge.

For one subject: the same held-out speech (a speaker no model trained on) is generated
through the real pipeline (the composition root's motion stage on the whole clip, then its
render stage) once per emotion at each intensity, plus a neutral take at intensity 0. To fit a
CPU budget only a few short *bursts* of consecutive frames are rendered (the same frames
in every take); each burst is composited over the subject's background and tracked the
way ``emogene prepare`` tracks real video (FaceMesh in tracking mode -> iBUG ->
one-euro smoothing -> canonical fit). The plate person's neutral reference is the mean
tracked shape of the intensity-0 take (the same rule as a real speaker's neutral clip),
and the judge classifies every tracked frame. A diagnostic beside it: the judge on the
*driving* landmarks the renderer was asked to show (relative to the intensity-0 take's),
which separates "the motion has no emotion" from "the renderer does not show it".
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from backend.evaluation.emotion_judge import EmotionJudge, displacement_features
from backend.evaluation.judge_real_video import accuracy_summary
from bridge.emotions import EMOTION_INDEX, EMOTIONS, NUM_EMOTIONS
from bridge.landmarks import EYE_L, EYE_R, MOUTH, NUM_LANDMARKS, REGIONS, as_slice

#: the regions of the transfer ratio (iBUG indices)
MOUTH_CORNERS = (MOUTH[0], MOUTH[6])
TRANSFER_REGIONS: dict[str, tuple[int, ...]] = {
    "mouth_corners": MOUTH_CORNERS,
    "lips": tuple(i for i in MOUTH if i not in MOUTH_CORNERS),
    "brows": tuple(REGIONS["brow_r"]) + tuple(REGIONS["brow_l"]),
    "eyes": tuple(REGIONS["eye_r"]) + tuple(REGIONS["eye_l"]),
    "jaw": tuple(REGIONS["jaw"]),
}

REPO = Path(__file__).resolve().parents[2]
#: a held-out talking speaker (speaker-level split of issue 3): no model trained on andrew
DEFAULT_AUDIO = REPO.parent / "shared" / "data" / "talking" / "styletalk" / "andrew_clip_1.wav"
FPS = 25.0


class PlateTrackingError(RuntimeError):
    """FaceMesh found no face on the plates of a take (resolution too small, blank plates ...)."""


@dataclass
class PlateEvalConfig:
    audio: Path = DEFAULT_AUDIO
    seconds: float = 6.0                     # speech used (from the start of the file)
    frames: int = 18                         # plates rendered per take (split into bursts)
    burst: int = 9                           # consecutive frames per burst (the judge's window fits in one)
    intensities: tuple[float, ...] = (1.0, 0.5)
    resolution: int | None = None            # square plate size; None = each subject's native product size
    seed: int = 0
    device: str = "cpu"

    def burst_frames(self, frame_count: int) -> np.ndarray:
        """The job frames rendered in every take: ``ceil(frames / burst)`` bursts spread over the clip."""
        burst = max(1, min(self.burst, frame_count))
        bursts = max(1, int(np.ceil(self.frames / burst)))
        starts = np.linspace(0, frame_count - burst, bursts + 2)[1:-1] if bursts > 0 else []
        starts = np.unique(np.round(starts).astype(int)) if frame_count > burst else np.array([0])
        return np.concatenate([np.arange(s, s + burst) for s in starts])


@dataclass
class Take:
    emotion: str
    intensity: float
    plates: np.ndarray             # uint8 [n, H, W, 3] composited over the background
    landmarks: np.ndarray          # float32 [n, NUM_LANDMARKS, 3] tracked canonical (NaN rows where no face)
    found: np.ndarray              # bool [n]
    driving: np.ndarray            # float32 [n, NUM_LANDMARKS, 3] the landmarks the renderer was given
    bursts: np.ndarray             # int [n] burst id of each frame

    @property
    def label(self) -> str:
        return "neutral@0" if self.intensity == 0 else f"{self.emotion}@{self.intensity:g}"


@dataclass
class SubjectPlates:
    subject: str
    frames: np.ndarray                            # job frame indices rendered
    takes: list[Take] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def take(self, emotion: str, intensity: float) -> Take:
        for t in self.takes:
            if t.emotion == emotion and abs(t.intensity - intensity) < 1e-6:
                return t
        raise KeyError(f"no take {emotion}@{intensity}")

    @property
    def neutral(self) -> Take:
        return self.take("neutral", 0.0)


def load_speech(config: PlateEvalConfig) -> np.ndarray:
    from backend.data.audio import load_audio

    audio = load_audio(config.audio)
    n = int(round(config.seconds * 16000))
    if len(audio) < 16000:
        raise ValueError(f"{config.audio}: {len(audio) / 16000:.2f} s of audio; the plate evaluation needs >= 1 s")
    return np.ascontiguousarray(audio[:n], np.float32)


def subject_background(subject_dir: Path, size: tuple[int, int]) -> np.ndarray:
    """The subject's background plate (RGB, resized), else mid grey."""
    import cv2

    info_bg = subject_dir / "background.png"
    if info_bg.is_file():
        image = cv2.cvtColor(cv2.imread(str(info_bg), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA if image.shape[1] > size[0] else cv2.INTER_CUBIC)
    return np.full((size[1], size[0], 3), 128, np.uint8)


def native_plate_size(subject_dir: Path) -> int:
    """The square plate size the product gives a subject: its limit (``max_resolution``) when it has a
    super-resolution network (the NeRF at its working size, upscaled), else its working size."""
    from backend.render.sr_plates import sr_stem
    from backend.subjects import load_subject_info

    info = load_subject_info(Path(subject_dir))
    if sr_stem(Path(subject_dir), info) is not None:
        return int(max(info["max_resolution"]))
    return int(max(info["image_size"]))


def _job(subject: str, audio: np.ndarray, emotion: str, intensity: float, config: PlateEvalConfig):
    from backend.pipeline.base import GenerateJob

    frames = int(np.ceil(len(audio) / 16000 * FPS))
    weights = np.zeros((frames, NUM_EMOTIONS), np.float32)
    weights[:, EMOTION_INDEX[emotion]] = 1.0
    resolution = (config.resolution, config.resolution) if config.resolution else None
    return GenerateJob(job_id=f"plates-{subject}-{emotion}-{intensity:g}", audio=audio, fps=FPS, frame_count=frames,
                       emotion_weights=weights, emotion_intensity=np.full(frames, intensity, np.float32),
                       subject=subject, resolution=resolution, seed=config.seed)


def _subset_job(job, frames: np.ndarray):
    return dataclasses.replace(job, frame_count=len(frames), emotion_weights=job.emotion_weights[frames],
                               emotion_intensity=job.emotion_intensity[frames])


def render_take(stage_set: Any, job, frames: np.ndarray, cancel: threading.Event | None = None
                ) -> tuple[dict[int, np.ndarray], np.ndarray, list[str]]:
    """Run the motion stage on the whole job, then the render stage on ``frames`` only.

    Returns (plates by position in ``frames``, driving landmarks ``[n, NUM_LANDMARKS, 3]``, warnings).
    """
    from backend.pipeline.local import MessageStageContext, ResultAssembler, run_stages
    from bridge.protocol import MessageType

    motion_asm = ResultAssembler(job.frame_count, job.fps)
    motion_ctx = MessageStageContext(job, [stage_set.motion], stage_set.device, lambda m, s: motion_asm.add(m),
                                     cancel_event=cancel, encode_plates=False)
    terminal = run_stages(job, [stage_set.motion], motion_ctx)
    if terminal.type != MessageType.DONE:
        raise RuntimeError(f"motion stage failed for {job.job_id}: {terminal.content}")
    n_all = job.frame_count
    state = {k: (np.asarray(v)[frames] if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == n_all else v)
             for k, v in motion_ctx.state.items()}
    sub = _subset_job(job, frames)
    render_asm = ResultAssembler(sub.frame_count, sub.fps)
    render_ctx = MessageStageContext(sub, [stage_set.render], stage_set.device, lambda m, s: render_asm.add(m),
                                     cancel_event=cancel, encode_plates=False)
    render_ctx.state.update(state)
    terminal = run_stages(sub, [stage_set.render], render_ctx)
    if terminal.type != MessageType.DONE:
        raise RuntimeError(f"render stage failed for {job.job_id}: {terminal.content}")
    driving = np.asarray(state["landmarks"], np.float32)
    return render_asm.plates, driving, motion_ctx.warnings + render_ctx.warnings


def track_burst(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Track consecutive RGB frames as ``emogene prepare`` tracks video: canonical
    ``[n, NUM_LANDMARKS, 3]`` and found."""
    from mediapipe.python.solutions import face_mesh

    from backend.data.canonical import fit_canonical
    from backend.data.face_tracking import _quiet_native_logs, fill_gaps
    from backend.data.landmark_map import MEDIAPIPE_TO_IBUG68
    from backend.data.smoothing import smooth_points

    rows = []
    with _quiet_native_logs():
        mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True,
                                  min_detection_confidence=0.5, min_tracking_confidence=0.5)
    try:
        for rgb in images:
            h, w = rgb.shape[:2]
            result = mesh.process(np.ascontiguousarray(rgb))
            faces = result.multi_face_landmarks or []
            if faces:
                arr = np.array([(p.x * w, p.y * h, p.z * w) for p in faces[0].landmark], np.float32)
                rows.append(arr[MEDIAPIPE_TO_IBUG68])
            else:
                rows.append(np.full((NUM_LANDMARKS, 3), np.nan, np.float32))
    finally:
        mesh.close()
    points = np.stack(rows)
    detected = np.isfinite(points).all(axis=(1, 2))
    out = np.full((len(images), NUM_LANDMARKS, 3), np.nan, np.float32)
    if not detected.any():
        return out, detected
    filled, found, _ = fill_gaps(points, detected, max_gap=2)
    smoothed = smooth_points(filled, FPS) if len(filled) > 2 else filled
    h, w = images[0].shape[:2]
    fit = fit_canonical(smoothed, (w, h))
    out[found] = fit.landmarks[found]
    return out, found


def render_subject_takes(subject: str, stage_set: Any, subject_dir: Path, config: PlateEvalConfig,
                         progress: Callable[[str], None] | None = None,
                         cancel: threading.Event | None = None) -> SubjectPlates:
    """Every take of one subject: plates composited over its background and tracked."""
    audio = load_speech(config)
    frame_count = int(np.ceil(len(audio) / 16000 * FPS))
    frames = config.burst_frames(frame_count)
    burst_id = np.concatenate([[0], np.cumsum(np.diff(frames) != 1)])
    result = SubjectPlates(subject, frames)
    if config.resolution is None:
        config = dataclasses.replace(config, resolution=native_plate_size(subject_dir))
    plan = [("neutral", 0.0)] + [(e, i) for i in config.intensities for e in EMOTIONS]
    for emotion, intensity in plan:
        job = _job(subject, audio, emotion, intensity, config)
        plates, driving, warnings = render_take(stage_set, job, frames, cancel)
        if len(plates) != len(frames):
            raise RuntimeError(f"{subject} {emotion}@{intensity:g}: {len(plates)} plates for {len(frames)} frames")
        first = plates[0]
        background = subject_background(subject_dir, (first.shape[1], first.shape[0]))
        from backend.media.compositing import composite_over
        rgb = np.stack([composite_over(plates[i], background) for i in range(len(frames))])
        landmarks = np.full((len(frames), NUM_LANDMARKS, 3), np.nan, np.float32)
        found = np.zeros(len(frames), bool)
        for b in np.unique(burst_id):
            sel = np.flatnonzero(burst_id == b)
            landmarks[sel], found[sel] = track_burst([rgb[i] for i in sel])
        result.takes.append(Take(emotion, intensity, rgb, landmarks, found, driving, burst_id))
        result.warnings += [f"{emotion}@{intensity:g}: {w}" for w in dict.fromkeys(warnings)]
        if progress is not None:
            progress(f"{subject} {emotion}@{intensity:g}: face found on {int(found.sum())}/{len(found)} plates")
    return result


def _predict_take(judge: EmotionJudge, take: Take, landmarks: np.ndarray, valid: np.ndarray,
                  reference: np.ndarray) -> np.ndarray:
    """Judge prediction per frame (-1 where no face), the judge's window kept inside each burst."""
    pred = np.full(len(landmarks), -1, np.int64)
    for b in np.unique(take.bursts):
        sel = np.flatnonzero((take.bursts == b) & valid)
        if len(sel):
            pred[sel] = judge.predict(displacement_features(landmarks[sel], reference, judge.config))
    return pred


def transfer_ratio(plates: SubjectPlates, intensity: float = 1.0) -> dict:
    """How much of the asked expression the tracked plates show, per region.

    Per frame, the *asked* displacement is the driving landmarks minus the neutral take's, the
    *shown* one the tracked plate landmarks minus the neutral take's (both canonical x, y: the
    image plane in inter-ocular units, so pixels / inter-ocular distance). The ratio is the
    least-squares slope of shown on asked over every tracked frame and landmark of the region
    (1 = faithful; tracker noise on the plates does not bias it). ``per_emotion`` has it per take.
    """
    neutral = plates.neutral
    takes = [t for t in plates.takes if t.intensity == intensity and t.emotion != "neutral"]
    asked_all: dict[str, list] = {r: [] for r in TRANSFER_REGIONS}
    shown_all: dict[str, list] = {r: [] for r in TRANSFER_REGIONS}
    per_emotion: dict[str, dict[str, float]] = {}
    amplitude: dict[str, float] = {}

    def slope(a: np.ndarray, b: np.ndarray) -> float:
        den = float(a @ a)
        return float(a @ b / den) if den > 0 else float("nan")

    for take in takes:
        ok = take.found & neutral.found
        asked = (take.driving - neutral.driving)[ok][..., :2]
        shown = (take.landmarks - neutral.landmarks)[ok][..., :2]
        per_emotion[take.emotion] = {}
        for region, index in TRANSFER_REGIONS.items():
            a, b = asked[:, list(index)].ravel(), shown[:, list(index)].ravel()
            asked_all[region].append(a)
            shown_all[region].append(b)
            per_emotion[take.emotion][region] = slope(a, b)
    overall = {}
    for region in TRANSFER_REGIONS:
        a = np.concatenate(asked_all[region]) if asked_all[region] else np.zeros(0)
        b = np.concatenate(shown_all[region]) if shown_all[region] else np.zeros(0)
        overall[region] = slope(a, b)
        amplitude[region] = float(np.sqrt(np.mean(a ** 2) * 2)) if len(a) else float("nan")
    return {"intensity": intensity, "ratio": overall, "per_emotion": per_emotion,
            "asked_rms_displacement": amplitude}


def _pixel_landmarks(images: list[np.ndarray]) -> np.ndarray:
    """FaceMesh (still images) iBUG pixel positions ``[n, NUM_LANDMARKS, 2]`` (NaN where no face)."""
    from mediapipe.python.solutions import face_mesh

    from backend.data.face_tracking import _quiet_native_logs
    from backend.data.landmark_map import MEDIAPIPE_TO_IBUG68

    out = np.full((len(images), NUM_LANDMARKS, 2), np.nan, np.float32)
    with _quiet_native_logs():
        mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    try:
        for i, rgb in enumerate(images):
            h, w = rgb.shape[:2]
            faces = mesh.process(np.ascontiguousarray(rgb)).multi_face_landmarks or []
            if faces:
                out[i] = np.array([(p.x * w, p.y * h) for p in faces[0].landmark], np.float32)[MEDIAPIPE_TO_IBUG68]
    finally:
        mesh.close()
    return out


def image_warp(image: np.ndarray, points: np.ndarray, shift: np.ndarray, width: float) -> np.ndarray:
    """``image`` whose content at pixel ``points [NUM_LANDMARKS, 2]`` moves by ``shift [NUM_LANDMARKS, 2]``
    pixels (a smooth 2-D Gaussian RBF backward warp of ``width`` pixels, the image-plane twin of
    deformation.LandmarkWarp)."""
    import cv2

    h, w = image.shape[:2]
    target = points + shift
    kernel = np.exp(-((target[:, None] - target[None]) ** 2).sum(-1) / (2 * width ** 2))
    coefficients = np.linalg.solve(kernel + 1e-3 * np.eye(len(target)), -shift)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.zeros((h, w, 2), np.float32)
    for r0 in range(0, h, 64):          # rows in blocks (bounds memory at 512²)
        grid = np.stack([xs[r0:r0 + 64], ys[r0:r0 + 64]], -1).reshape(-1, 1, 2)
        weights = np.exp(-((grid - target[None]) ** 2).sum(-1) / (2 * width ** 2))
        flow[r0:r0 + 64] = (weights @ coefficients).reshape(-1, w, 2)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def tracker_ceiling(plates: SubjectPlates, intensity: float = 1.0) -> dict:
    """The transfer ratio FaceMesh gives a *pure image warp* of the neutral plates by the asked displacement.

    Each neutral plate is warped in 2-D so its tracked landmarks move by the asked displacement
    (canonical x, y scaled by the plate's inter-ocular distance and turned by its eye line), then
    tracked like the rendered takes. What this misses of 1 is lost in the tracker, not the renderer.
    """
    neutral = plates.neutral
    pixels = _pixel_landmarks(list(neutral.plates))
    right, left = np.nanmean(pixels[:, as_slice(EYE_R)], 1), np.nanmean(pixels[:, as_slice(EYE_L)], 1)
    eye_line = left - right
    iod = np.linalg.norm(eye_line, axis=-1)
    angle = np.arctan2(eye_line[:, 1], eye_line[:, 0])
    ok = np.isfinite(iod) & neutral.found
    takes = []
    for take in plates.takes:
        if take.intensity != intensity or take.emotion == "neutral":
            continue
        asked = (take.driving - neutral.driving)[..., :2] * np.array([1.0, -1.0], np.float32)   # image y is down
        warped = []
        for i in range(len(neutral.plates)):
            if not ok[i]:
                warped.append(neutral.plates[i])
                continue
            c, s_ = np.cos(angle[i]), np.sin(angle[i])
            shift = asked[i] @ np.array([[c, s_], [-s_, c]], np.float32) * iod[i]
            warped.append(image_warp(neutral.plates[i], pixels[i], shift, 0.3 * float(iod[i])))
        landmarks = np.full_like(neutral.landmarks, np.nan)
        found = np.zeros(len(warped), bool)
        for b in np.unique(neutral.bursts):
            sel = np.flatnonzero(neutral.bursts == b)
            landmarks[sel], found[sel] = track_burst([warped[i] for i in sel])
        takes.append(dataclasses.replace(take, plates=np.stack(warped), landmarks=landmarks, found=found & ok))
    return transfer_ratio(SubjectPlates(plates.subject, plates.frames, [neutral] + takes), intensity)


def judge_subject(judge: EmotionJudge, plates: SubjectPlates) -> dict:
    """Per-intensity accuracy summaries on the tracked plates and on the driving landmarks, pixel differences."""
    neutral = plates.neutral
    if not neutral.found.any():
        raise PlateTrackingError(f"FaceMesh found no face on subject {plates.subject!r}'s neutral plates "
                                 f"({neutral.plates.shape[2]}x{neutral.plates.shape[1]}): render larger plates "
                                 f"(--resolution)")
    plate_ref = np.nanmean(neutral.landmarks[neutral.found], axis=0)
    driving_ref = neutral.driving.mean(0)
    out: dict = {"frames_per_take": int(len(plates.frames)), "job_frames": plates.frames.tolist(),
                 "plate_size": list(neutral.plates.shape[1:3]), "face_found_fraction": {}, "takes": {},
                 "pixel_difference_vs_neutral": {}, "warnings": plates.warnings}
    groups: dict[float, tuple[list, list, list, list, list]] = {}
    for take in plates.takes:
        pred = _predict_take(judge, take, take.landmarks, take.found, plate_ref)
        dpred = _predict_take(judge, take, take.driving, np.ones(len(take.driving), bool), driving_ref)
        out["face_found_fraction"][take.label] = float(take.found.mean())
        counts = np.bincount(pred[pred >= 0], minlength=NUM_EMOTIONS)
        out["takes"][take.label] = {"predicted_counts": dict(zip(EMOTIONS, counts.tolist())),
                                    "untracked_frames": int((pred < 0).sum()),
                                    "driving_predicted_counts": dict(zip(EMOTIONS, np.bincount(
                                        dpred, minlength=NUM_EMOTIONS).tolist()))}
        diff = np.abs(take.plates.astype(np.float32) - neutral.plates.astype(np.float32)).mean()
        out["pixel_difference_vs_neutral"][take.label] = round(float(diff), 3)
        if take.intensity == 0:
            key = 0.0
        else:
            key = take.intensity
        g = groups.setdefault(key, ([], [], [], [], []))
        label = EMOTION_INDEX[take.emotion]
        # untracked frames count as wrong (the judge cannot see an emotion on a plate FaceMesh cannot read)
        g[0].append(np.full(len(pred), label))
        g[1].append(np.where(pred >= 0, pred, (label + 1) % NUM_EMOTIONS))
        g[2].append(np.full(len(pred), len(g[0]) - 1))
        g[3].append(np.full(len(dpred), label))
        g[4].append(dpred)
    out["by_intensity"] = {}
    for key, (y, p, idx, dy, dp) in groups.items():
        name = "neutral@0" if key == 0 else f"intensity {key:g}"
        out["by_intensity"][name] = {
            "plates": accuracy_summary(np.concatenate(y), np.concatenate(p), np.concatenate(idx)),
            "driving_landmarks": accuracy_summary(np.concatenate(dy), np.concatenate(dp), np.concatenate(idx))}
    # keyed neutral at intensity > 0 (the intensity-0 take is the reference itself, so it would flatter the rate)
    neutral_frames = [out["takes"][t.label] for t in plates.takes if t.emotion == "neutral" and t.intensity > 0]
    said_neutral = sum(t["predicted_counts"]["neutral"] for t in neutral_frames)
    total = sum(sum(t["predicted_counts"].values()) + t["untracked_frames"] for t in neutral_frames)
    out["neutral_stays_neutral"] = float(said_neutral / max(total, 1))
    out["transfer"] = transfer_ratio(plates)
    out["transfer"]["tracker_ceiling"] = tracker_ceiling(plates)["ratio"]
    return out
