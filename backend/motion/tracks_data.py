"""Reading track files (docs/architecture.md "Track files") into what the motion models train on.

A :class:`TrackClip` is one clip at 25 fps: canonical landmarks, pose, mel rows
(4 per frame), the VAD mask and the labels from its JSON. :func:`load_clips`
reads a folder; :func:`split_clips` decides what is held out (by clip for the
talking data, by speaker for MEAD); the window samplers feed the training loops.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bridge.emotions import EMOTION_INDEX, level_intensity
from bridge.landmarks import NUM_LANDMARKS

MEL_PER_FRAME = 4
MEL_BINS = 80
#: talking clips whose mouth hardly follows their audio (data module's ``av_sync_corr``) teach no lip sync
MIN_AV_SYNC_CORR = 0.05


class TrackDataError(ValueError):
    """A track folder or file that cannot be used (missing arrays, wrong shapes, no clips)."""


@dataclass
class TrackClip:
    name: str
    landmarks: np.ndarray            # float32 [T, NUM_LANDMARKS, 3] canonical
    rotation: np.ndarray             # float32 [T, 3, 3]
    translation: np.ndarray          # float32 [T, 3]
    mel: np.ndarray | None           # float32 [4T, 80] or None without audio
    speech: np.ndarray               # bool [T]
    speaker: str = "unknown"
    emotion: str | None = None
    level: int | None = None
    split: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def has_audio(self) -> bool:
        return self.mel is not None

    @property
    def emotion_label(self) -> int | None:
        return None if self.emotion is None else EMOTION_INDEX[self.emotion]

    @property
    def intensity(self) -> float:
        if self.emotion in (None, "neutral"):
            return 0.0
        return level_intensity(self.level, 1.0)

    @property
    def val_start(self) -> int:
        """First frame of the clip's held-out tail (the data module's ``val_start_frame``, else 80 %)."""
        v = self.meta.get("val_start_frame")
        return int(v) if v is not None and 0 < int(v) < self.frames else int(round(0.8 * self.frames))

    def segment(self, start: int, end: int, suffix: str) -> "TrackClip":
        """Frames ``start .. end`` as a clip of their own (mel rows and masks cut to match)."""
        return TrackClip(
            name=f"{self.name}{suffix}", landmarks=self.landmarks[start:end], rotation=self.rotation[start:end],
            translation=self.translation[start:end],
            mel=None if self.mel is None else self.mel[start * MEL_PER_FRAME:end * MEL_PER_FRAME],
            speech=self.speech[start:end], speaker=self.speaker, emotion=self.emotion, level=self.level,
            split=self.split, meta={**self.meta, "segment": [start, end]})

    def frame_mel(self) -> np.ndarray:
        """Mel rows grouped per video frame: ``[T, 4, 80]``."""
        if self.mel is None:
            raise TrackDataError(f"clip {self.name} has no audio")
        return self.mel[: self.frames * MEL_PER_FRAME].reshape(self.frames, MEL_PER_FRAME, -1)


def load_clip(npz_path: str | Path) -> TrackClip:
    """One ``<clip>.npz`` (+ its ``.json`` beside it) as a :class:`TrackClip`."""
    npz_path = Path(npz_path)
    meta_path = npz_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta["_path"] = str(npz_path)
    with np.load(npz_path) as z:
        if "landmarks" not in z:
            raise TrackDataError(f"{npz_path} has no 'landmarks' array")
        lms = np.asarray(z["landmarks"], np.float32)
        if lms.ndim != 3 or lms.shape[1:] != (NUM_LANDMARKS, 3):
            raise TrackDataError(f"{npz_path}: landmarks must be [T,{NUM_LANDMARKS},3], got {list(lms.shape)}")
        T = lms.shape[0]
        rot = np.asarray(z["rotation"], np.float32) if "rotation" in z else np.tile(np.eye(3, dtype=np.float32), (T, 1, 1))
        trans = np.asarray(z["translation"], np.float32) if "translation" in z else np.zeros((T, 3), np.float32)
        mel = np.asarray(z["mel"], np.float32) if "mel" in z else None
        speech = np.asarray(z["speech"], bool) if "speech" in z else np.zeros(T, bool)
    has_audio = meta.get("has_audio", mel is not None)
    if mel is not None and (mel.ndim != 2 or mel.shape[0] < MEL_PER_FRAME * T or not np.any(mel)):
        if has_audio and mel.ndim == 2 and mel.shape[0] >= MEL_PER_FRAME * T - MEL_PER_FRAME:
            mel = np.concatenate([mel, np.repeat(mel[-1:], MEL_PER_FRAME * T - mel.shape[0], 0)], 0) \
                if mel.shape[0] < MEL_PER_FRAME * T else mel
        else:
            mel = None
    if not has_audio:
        mel = None
    emotion = meta.get("emotion")
    level = meta.get("level", meta.get("intensity_level"))
    return TrackClip(
        name=npz_path.stem, landmarks=lms, rotation=rot, translation=trans, mel=mel,
        speech=speech[:T], speaker=str(meta.get("speaker") or npz_path.stem),
        emotion=(str(emotion).lower() if emotion else None),
        level=(int(level) if level is not None else None), split=meta.get("split"), meta=meta)


def load_clips(tracks_dir: str | Path, min_frames: int = 8) -> list[TrackClip]:
    """Every clip in ``tracks_dir`` (sorted by name); clips shorter than ``min_frames`` are skipped."""
    tracks_dir = Path(tracks_dir)
    if not tracks_dir.is_dir():
        raise TrackDataError(f"track folder {tracks_dir} does not exist (run `emogene prepare` first)")
    clips = [load_clip(p) for p in sorted(tracks_dir.rglob("*.npz"))]
    clips = [c for c in clips if c.frames >= min_frames]
    if not clips:
        raise TrackDataError(f"no track files (*.npz with landmarks) in {tracks_dir}")
    return clips


#: the track files' ``split`` values that mean "held out"
HELD_OUT_SPLITS = ("val", "test", "held_out", "heldout")


def _is_held_out_talking(clip: TrackClip) -> bool:
    if clip.split in HELD_OUT_SPLITS:
        return True
    if clip.split == "train":
        return False
    return zlib.crc32(clip.name.encode()) % 5 == 0   # stable ~20 % when the data gives no split


@dataclass
class ClipSplits:
    talking_train: list[TrackClip]
    talking_test: list[TrackClip]
    mead_train: list[TrackClip]          # every labelled clip up to its held-out tail
    mead_test: list[TrackClip]           # the held-out tails
    mead_full: list[TrackClip]           # whole labelled clips (for leave-one-speaker-out folds)

    def mead_speakers(self) -> list[str]:
        return sorted({c.speaker for c in self.mead_full})


def split_clips(clips: list[TrackClip]) -> ClipSplits:
    """Talking clips (with audio) held out by the data's split (speaker-disjoint there); labelled
    (MEAD) clips by time: each clip's tail from ``val_start`` is held out. With only two MEAD
    speakers, holding one out would leave one speaker to learn emotions from, so speaker-held-out
    numbers come from leave-one-speaker-out folds in the evaluation (``mead_full``).

    Talking clips that cannot teach lip sync (:func:`lipsync_data.lip_sync_reason`: no usable,
    in-sync speech, or from ``video_only/``) are left out of both sides; a person with any
    held-out clip is held out entirely (:data:`lipsync_data.SAME_PERSON`).
    """
    from backend.motion.lipsync_data import lip_sync_reason, person
    held_people = {person(c) for c in clips if c.split in HELD_OUT_SPLITS}
    talking = [c for c in clips if c.has_audio and c.emotion is None and lip_sync_reason(c) is None
               and (c.meta.get("av_sync_corr") is None or c.meta["av_sync_corr"] >= MIN_AV_SYNC_CORR)]
    labelled = [c for c in clips if c.emotion is not None and c.emotion in EMOTION_INDEX]
    t_test = [c for c in talking if _is_held_out_talking(c) or person(c) in held_people]
    t_train = [c for c in talking if not any(c is t for t in t_test)]
    if talking and not t_train:
        t_train, t_test = talking[1:], talking[:1]
    if talking and not t_test and len(t_train) > 1:
        t_test = [t_train.pop(-1)]
    m_train = [c.segment(0, c.val_start, "") for c in labelled]
    m_test = [c.segment(c.val_start, c.frames, "#heldout") for c in labelled]
    return ClipSplits(t_train, t_test, m_train, m_test, labelled)
