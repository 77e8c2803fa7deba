"""MotionStage: the generate job's motion step (audio -> emotional landmarks + head pose at the job's fps).

Steps: log-mel + VAD of ``job.audio`` at 25 fps -> audio-to-motion VAE (chunked,
seed + temperature) -> lips closed in silence -> the subject's identity face ->
head pose sampled from the subject's real pose track (idle segments in silent
spans when ``job.idle_pose``) -> everything resampled to ``job.fps`` -> the emotion deformer
(the LDM with a capture subject's own fields for the emotions it was filmed in, see subject_emotions.py; or the
``emotion_deformer`` given, see emotion_deformer.py) with the job's own
per-frame emotion arrays (applied at the output rate, so Blender's keyed values are used
exactly, not resampled) -> blinks -> streamed in chunks.

Documented behaviour for awkward input:
* silence only: lips stay closed at the rest pose, idle head pose, blinks continue;
* very short audio (0.2 s = 5 frames at 25 fps): works, the VAE pads with zeros;
* long audio (10 min): mel, VAE and LDM all run in chunks, so peak memory does not
  grow with the length beyond the output arrays themselves (~12 MB for 10 min);
* emotion weights that are negative / non-finite / not normalised or intensity
  outside [0, 1] (the server rejects or normalises these first): repaired with a
  warning, never fatal; rows that sum to 0 are neutral;
* any fps > 0 (23.976, 29.97, 60, ...): output frame i samples time i / fps;
* unknown subject or a subject without ``track.npz``: the shipped pose track and
  the models' mean face, with a warning;
* checkpoints of the wrong kind / version / shape: :class:`backend.checkpoints.CheckpointError`
  naming the file and both kinds or versions (the job ends with an error).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from backend.pipeline.base import AUDIO_SAMPLE_RATE, GenerateJob, StageContext, StageError

CHUNK_FRAMES = 250


class MotionStage:
    name = "motion"
    weight = 1.0

    def __init__(self, device: Any = None, subjects: Any = None, models_dir: str | Path | None = None,
                 chunk_frames: int = CHUNK_FRAMES, vad_backend: str = "silero", emotion_deformer: Any = None):
        self.device = device if device is not None else "cpu"
        self.subjects = subjects
        self.models_dir = models_dir
        self.chunk_frames = int(chunk_frames)
        self.vad_backend = vad_backend
        #: an ``emotion_deformer.EmotionDeformer`` used instead of the models' LDM (None: the LDM)
        self.emotion_deformer = emotion_deformer

    def models(self):
        from backend.motion.model_io import load_motion_models
        return load_motion_models(self.models_dir, self.device)

    def subject_motion(self, name: str, ctx: StageContext | None = None, models_folder=None):
        """The subject's identity face + pose track, else the shipped ones (with a warning)."""
        from backend.motion.generator import SubjectMotion
        from backend.subjects import load_subject_info
        reason = None
        if self.subjects is not None:
            try:
                folder = Path(self.subjects.path(name))
                track = folder / "track.npz"
                if track.is_file():
                    info = load_subject_info(folder) if (folder / "subject.json").is_file() else {}
                    return SubjectMotion.from_track(track, info.get("clips"))
                reason = f"subject {name!r} has no track.npz"
            except LookupError as exc:
                reason = str(exc)
            except (OSError, KeyError, ValueError) as exc:
                reason = f"subject {name!r} track unreadable ({exc})"
        if reason and ctx is not None:
            ctx.warn(f"{reason}: using the shipped default pose track and mean face")
        return SubjectMotion.shipped(models_folder)

    def run(self, job: GenerateJob, ctx: StageContext) -> None:
        import torch
        from backend.motion.blinks import apply_blinks, blink_schedule, frame_closure
        from backend.motion.generator import (apply_emotion, neutral_motion, resample_linear, resample_mask,
                                              resample_rotation, sanitise_emotion)
        from backend.motion.pose_sampling import sample_pose
        from backend.motion.subject_emotions import with_own_fields

        audio = np.asarray(job.audio, np.float32).reshape(-1)
        if audio.size == 0 or not np.all(np.isfinite(audio)):
            raise StageError("bad_audio", "audio is empty or contains NaN/inf samples")
        if not (np.isfinite(job.fps) and job.fps > 0):
            raise StageError("bad_fps", f"fps must be > 0, got {job.fps}")
        frames_out = int(job.frame_count)
        models = self.models()
        subject = self.subject_motion(job.subject, ctx, models.folder)
        deformer = (self.emotion_deformer if self.emotion_deformer is not None
                    else with_own_fields(models.ldm, subject.emotion_fields))
        ctx.progress(0.02, "audio features")

        def on_chunk(done: int, total: int) -> None:
            ctx.check_cancelled()
            ctx.progress(0.05 + 0.55 * done / max(total, 1), f"speech motion {done}/{total} frames")

        with torch.inference_mode():
            motion = neutral_motion(models, audio, subject.face, job.temperature, job.seed,
                                    self.vad_backend, on_chunk)
        ctx.check_cancelled()
        rot25, trans25 = sample_pose(subject.pose, len(motion.neutral), motion.speech, seed=job.seed,
                                     idle=bool(job.idle_pose))
        neutral = resample_linear(motion.neutral, frames_out, job.fps)
        rotation = resample_rotation(rot25, frames_out, job.fps)
        translation = resample_linear(trans25, frames_out, job.fps)
        speech = resample_mask(motion.speech, frames_out, job.fps)
        weights, intensity, notes = sanitise_emotion(job.emotion_weights, job.emotion_intensity, frames_out)
        for note in notes:
            ctx.warn(note)
        duration = len(audio) / AUDIO_SAMPLE_RATE
        closure = frame_closure(frames_out, job.fps, blink_schedule(duration, seed=job.seed))
        emotional = np.empty_like(neutral)
        for start in range(0, frames_out, self.chunk_frames):
            ctx.check_cancelled()
            end = min(frames_out, start + self.chunk_frames)
            with torch.inference_mode():
                chunk = apply_emotion(models, neutral[start:end], weights[start:end], intensity[start:end],
                                      deformer)
            emotional[start:end] = apply_blinks(chunk, closure[start:end])
            neutral[start:end] = apply_blinks(neutral[start:end], closure[start:end])
            ctx.emit_landmarks(start, emotional[start:end], rotation[start:end], translation[start:end])
            ctx.progress(0.6 + 0.4 * end / max(frames_out, 1), f"emotion + pose {end}/{frames_out} frames")
        ctx.state.update(landmarks=emotional, neutral_landmarks=neutral, rotation=rotation,
                         translation=translation, speech_mask=speech)
