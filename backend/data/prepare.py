"""The batch driver behind ``emogene prepare``: clips -> track files, resumable, one clip at a time.

Per clip: face tracking at the native rate -> resampling to 25 fps (points linear,
flags nearest) -> zero-lag one-euro smoothing -> similarity fit (canonical landmarks +
head pose) -> eye openness -> audio (decode, log-mel aligned 4 rows per frame, VAD) ->
atomic write of ``<clip>.npz`` + ``<clip>.json`` (+ ``<clip>.preview.png`` on request).

Policy for bad input (each named in the summary, the batch goes on):
* missing/zero-length/corrupt video, or no face in any frame: the clip **fails** (no track);
* a video without an audio stream and no separate audio file (MEAD crops), or a separate
  audio file that cannot be decoded: the clip is **kept as a visual-only track**
  (``has_audio: false``, zero mel, no speech) with a note, since its landmarks and pose
  still train the emotion and pose models;
* long face-less stretches (> 0.3 s) or a second face: kept, with a warning and the
  frames listed in the JSON;
* edit cuts (an edited video jumping between takes, :mod:`shot_cuts`): kept, with a
  warning and their 25 fps rows in the JSON's ``shot_starts`` (the track jumps there; the
  shipped motion models trained across them, a retrain can split there);
* audio that does not follow the lips (an unrelated recording, or an offset of more than
  a few frames, measured by ``quality.lip_audio_lag``): kept, with a warning and
  ``lip_sync_usable: false`` so lip-sync training can leave it out.

A clip is skipped when its JSON exists with the same extractor version, source file
size and options; ``force=True`` redoes it.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.data import tracks as track_files
from backend.data.audio import AudioError, MEL_ROWS_PER_FRAME, N_MELS, load_audio, mel_for_frames, voice_activity
from backend.data.canonical import DEFAULT_FOV_DEGREES, fit_canonical, project
from backend.data.datasets import ClipSource, discover_clips, time_split_start, validation_speakers
from backend.data.face_tracking import TrackerConfig, VideoError, read_video_info, track_video
from backend.data.quality import lip_audio_lag
from backend.data.shot_cuts import track_shot_starts
from backend.data.smoothing import OneEuroConfig, smooth_points
from backend.data.tracks import TRACK_FPS, Track, resample_track
from bridge.landmarks import EYE_L, EYE_R, as_slice


@dataclass
class PrepareConfig:
    out_dir: Path = Path("cache/tracks")
    preview: bool = False
    force: bool = False
    max_seconds: float | None = None      # subsample: only the first N seconds of each clip
    val_fraction: float = 0.2
    vad_backend: str = "silero"            # or "energy"
    smoothing: OneEuroConfig = field(default_factory=OneEuroConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)


@dataclass
class ClipResult:
    clip_id: str
    source: Path
    status: str                 # "done" | "skipped" | "failed"
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0


@dataclass
class PrepareSummary:
    results: list[ClipResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # paths that held no clips

    def of(self, status: str) -> list[ClipResult]:
        return [r for r in self.results if r.status == status]

    def lines(self) -> list[str]:
        done, skipped, failed = self.of("done"), self.of("skipped"), self.of("failed")
        out = [f"prepare: {len(done)} done, {len(skipped)} skipped (already prepared), {len(failed)} failed"]
        if not done and skipped and not failed:
            out.append("nothing to do: every clip is already prepared with this extractor version")
        for r in failed:
            out.append(f"  FAILED  {r.source}: {r.message}")
        for r in self.results:
            for w in r.warnings:
                out.append(f"  note    {r.clip_id}: {w}")
        for p in self.problems:
            out.append(f"  skipped {p}")
        return out


#: lip-sync heuristics (see ``quality.lip_audio_lag``): on the sample clips the mouth-vs-energy
#: cross-correlation of well-synced clips peaks at -2..0 frames (the mouth leads the sound),
#: with correlation 0.13-0.44; an unrelated recording scores ~0.01-0.03.
MIN_SYNC_CORR = 0.08
SYNC_LAG_RANGE = (-6, 4)


def is_lip_sync_usable(lag: int, corr: float) -> bool:
    """Whether a clip's audio seems to be its own, in sync: strong enough and near the usual lag."""
    return corr >= MIN_SYNC_CORR and SYNC_LAG_RANGE[0] <= lag <= SYNC_LAG_RANGE[1]


def eye_openness(landmarks: np.ndarray) -> np.ndarray:
    """Mean eye aspect ratio of both eyes, ``[T]`` (lid distances over corner distance)."""
    def ear(eye: np.ndarray) -> np.ndarray:
        v = np.linalg.norm(eye[:, 1] - eye[:, 5], axis=-1) + np.linalg.norm(eye[:, 2] - eye[:, 4], axis=-1)
        h = np.linalg.norm(eye[:, 0] - eye[:, 3], axis=-1)
        return v / (2.0 * np.maximum(h, 1e-6))
    return (0.5 * (ear(landmarks[:, as_slice(EYE_R)]) + ear(landmarks[:, as_slice(EYE_L)]))).astype(np.float32)


def _fingerprint(clip: ClipSource, config: PrepareConfig) -> dict:
    stat = clip.video.stat()
    return {"source_size": stat.st_size, "max_seconds": config.max_seconds}


def is_prepared(clip: ClipSource, config: PrepareConfig) -> bool:
    """True when a complete track of this clip, extractor version and options exists."""
    _, json_path = track_files.track_paths(config.out_dir, clip.clip_id)
    if not json_path.is_file():
        return False
    try:
        meta = track_files.read_track_meta(json_path)
    except track_files.TrackError:
        return False
    if meta.get("extractor_version") != track_files.EXTRACTOR_VERSION:
        return False
    fp = _fingerprint(clip, config)
    return all(meta.get(k) == v for k, v in fp.items()) and json_path.with_suffix(".npz").is_file()


def _load_clip_audio(clip: ClipSource, warnings: list[str]) -> np.ndarray | None:
    if clip.audio is None:
        warnings.append("no audio given or found: visual-only track (has_audio false)")
        return None
    try:
        return load_audio(clip.audio)
    except AudioError as exc:
        if clip.audio == clip.video and "no audio stream" in str(exc):
            warnings.append("video has no audio stream and no separate audio file: "
                            "visual-only track (has_audio false)")
        else:
            warnings.append(f"audio unusable, visual-only track (has_audio false): {exc}")
        return None


def prepare_clip(clip: ClipSource, config: PrepareConfig, split: str,
                 progress: Callable[[int, int], None] | None = None) -> ClipResult:
    """Extract and write one clip's track. Raises VideoError for an unusable video."""
    start = time.perf_counter()
    warnings: list[str] = []
    tracker = dataclasses.replace(config.tracker, max_seconds=config.max_seconds)
    face = track_video(clip.video, progress=progress, config=tracker)
    if face.multi_face_frames:
        warnings.append(f"{face.multi_face_frames} frames show more than one face; "
                        "followed the largest face of the first frame")
    if face.long_gaps:
        secs = sum(b - a for a, b in face.long_gaps) / face.fps
        warnings.append(f"no face for {secs:.1f} s in {len(face.long_gaps)} stretch(es) "
                        "longer than 0.3 s (face_found false there)")
    points = resample_track(face.points, face.fps, TRACK_FPS)
    face_found = resample_track(face.face_found, face.fps, TRACK_FPS)
    n = points.shape[0]
    shot_starts = track_shot_starts(face.frame_change, face.fps)[0]   # edit cuts, as rows of this track
    if len(shot_starts):
        warnings.append(f"{len(shot_starts)} edit cut(s) (jump cuts) at "
                        f"{', '.join(f'{c / TRACK_FPS:.2f}' for c in shot_starts[:8])} s: the track jumps there "
                        "(shot_starts lists them)")
    smoothed = smooth_points(points, TRACK_FPS, config.smoothing) if n > 2 else points
    fit = fit_canonical(smoothed, face.image_size)
    reproj = np.linalg.norm(project(fit.landmarks, fit.rotation, fit.translation, fit.intrinsics, fit.scale)
                            - smoothed[..., :2], axis=-1)
    audio = _load_clip_audio(clip, warnings)
    if audio is not None:
        audio_seconds = len(audio) / 16_000
        video_seconds = n / TRACK_FPS
        if config.max_seconds is not None:
            audio = audio[:int(round(video_seconds * 16_000))]
        elif abs(audio_seconds - video_seconds) > 0.5:
            warnings.append(f"audio lasts {audio_seconds:.2f} s but video {video_seconds:.2f} s "
                            "(mel padded/trimmed to the video)")
        mel = mel_for_frames(audio, n, TRACK_FPS)
        speech = voice_activity(audio, n, TRACK_FPS, backend=config.vad_backend)
    else:
        mel = np.zeros((MEL_ROWS_PER_FRAME * n, N_MELS), np.float32)
        speech = np.zeros(n, dtype=bool)
    track = Track(landmarks=fit.landmarks, landmarks_image=smoothed[..., :2].astype(np.float32),
                  rotation=fit.rotation, translation=fit.translation, scale=fit.scale,
                  face_found=face_found.astype(bool), mel=mel.astype(np.float32), speech=speech.astype(bool),
                  blink=eye_openness(fit.landmarks), meta={})
    sync_lag, sync_corr = lip_audio_lag(track.landmarks, track.mel) if audio is not None and n >= 50 else (None, None)
    lip_sync_usable = audio is not None and (sync_corr is None or is_lip_sync_usable(sync_lag, sync_corr))
    if sync_corr is not None and sync_corr < MIN_SYNC_CORR:
        warnings.append(f"mouth motion hardly follows the audio (best correlation {sync_corr:.2f} at lag "
                        f"{sync_lag} frames): is this audio the clip's own recording? (lip_sync_usable false)")
    elif not lip_sync_usable and sync_corr is not None:
        warnings.append(f"mouth motion follows the audio best {sync_lag} frames off (correlation "
                        f"{sync_corr:.2f}): audio and video may be offset (lip_sync_usable false)")
    track.meta = {
        "source": str(clip.video), "audio_source": str(clip.audio) if audio is not None else None,
        "corpus": clip.corpus, "speaker": clip.speaker, "emotion": clip.emotion, "level": clip.level,
        "intensity": clip.intensity, "take": clip.take, "source_fps": face.fps,
        "source_frame_count": face.frame_count, "image_size": list(face.image_size),
        "intrinsics": fit.intrinsics.tolist(),
        "intrinsics_assumption": f"{DEFAULT_FOV_DEGREES:g} deg field of view across the longer side",
        "has_audio": audio is not None, "split": split,
        "val_start_frame": time_split_start(n, config.val_fraction),
        "face_found_fraction": float(track.face_found.mean()),
        "face_detected_fraction": float(face.detected.mean()),
        "long_gaps_source_frames": [list(g) for g in face.long_gaps],
        "multi_face_frames": face.multi_face_frames,
        "shot_starts": [int(c) for c in shot_starts],
        "fit_residual": float(np.median(fit.residual)),
        "reprojection_px": float(np.median(reproj)),
        "speech_fraction": float(speech.mean()) if n else 0.0,
        "av_sync_lag_frames": sync_lag, "av_sync_corr": sync_corr, "lip_sync_usable": lip_sync_usable,
        "warnings": warnings, **_fingerprint(clip, config),
    }
    track_files.save_track(track, config.out_dir, clip.clip_id)
    if config.preview:
        _write_preview(track, clip, config, warnings)
    return ClipResult(clip.clip_id, clip.video, "done", warnings=warnings, frames=n,
                      seconds=time.perf_counter() - start)


def preview_path(config: PrepareConfig, clip_id: str) -> Path:
    return config.out_dir / f"{clip_id}.preview.png"


def _write_preview(track: Track, clip: ClipSource, config: PrepareConfig, warnings: list[str]) -> None:
    """A preview is a convenience: failing to draw one is a note, never a failed clip."""
    from backend.data.preview import write_contact_sheet
    try:
        write_contact_sheet(track, clip.video, preview_path(config, clip.clip_id))
    except Exception as exc:  # noqa: BLE001 - any drawing/reading problem
        warnings.append(f"preview not written: {type(exc).__name__}: {exc}")


def prepare_paths(paths: list[str | Path], config: PrepareConfig, show_progress: bool = True) -> PrepareSummary:
    """Discover clips under ``paths`` and prepare each; never stops on one bad clip."""
    from tqdm import tqdm
    clips, problems = discover_clips(paths)
    summary = PrepareSummary(problems=problems)
    val = validation_speakers([c.speaker for c in clips], config.val_fraction)
    todo = []
    for clip in clips:
        if not config.force and is_prepared(clip, config):
            skipped = ClipResult(clip.clip_id, clip.video, "skipped", "already prepared")
            if config.preview and not preview_path(config, clip.clip_id).is_file():
                track = track_files.load_track(track_files.track_paths(config.out_dir, clip.clip_id)[0])
                _write_preview(track, clip, config, skipped.warnings)
            summary.results.append(skipped)
        else:
            todo.append(clip)
    estimates = {}
    for clip in todo:
        try:
            fps, count, _ = read_video_info(clip.video)
            seconds = count / fps if config.max_seconds is None else min(count / fps, config.max_seconds)
            estimates[clip.clip_id] = max(1, int(round(seconds * fps)))
        except VideoError:
            estimates[clip.clip_id] = 1
    bar = tqdm(total=sum(estimates.values()), unit="frame", disable=not show_progress or not todo,
               desc="prepare", dynamic_ncols=True)
    try:
        for clip in todo:
            bar.set_postfix_str(clip.clip_id[:40])
            base = bar.n
            def progress(done: int, total: int, base=base, cap=estimates[clip.clip_id]):
                bar.n = base + min(done, cap)
                bar.refresh() if done % 25 == 0 else None
            split = "val" if clip.speaker in val else "train"
            try:
                result = prepare_clip(clip, config, split, progress)
            except (VideoError, AudioError, track_files.TrackError) as exc:
                result = ClipResult(clip.clip_id, clip.video, "failed", str(exc))
                bar.write(f"failed: {exc}")
            except Exception as exc:  # noqa: BLE001 - one broken clip must not stop the batch
                result = ClipResult(clip.clip_id, clip.video, "failed",
                                    f"{clip.video}: unexpected {type(exc).__name__}: {exc}")
                bar.write(f"failed: {result.message}")
            bar.n = base + estimates[clip.clip_id]
            bar.refresh()
            summary.results.append(result)
    finally:
        bar.close()
    return summary
