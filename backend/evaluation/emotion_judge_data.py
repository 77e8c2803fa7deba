"""Real MEAD video for the emotion judge: clips from track files, each speaker's neutral reference, features.

Clips come from the track files ``emogene prepare`` writes (``cache/tracks``: the same
FaceMesh -> canonical iBUG extraction the plates are tracked with); only MEAD clips with
an emotion label are used. Which speakers may train the judge and which are unseen test
speakers is decided by :mod:`backend.data.mead_pools`, never here.

Neutral reference of a speaker: the mean shape of their neutral clip(s) when they have one
(``own_neutral``); otherwise the reconstruction of
:func:`backend.data.neutral_reference.speaker_neutral_reference` (the speaker's mean shape with
the expression part of a linear face model fitted on non-MEAD clips taken out,
``identity_projection``); speakers with neither are skipped and listed.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backend.evaluation.emotion_judge import JudgeConfig, displacement_features
from bridge.emotions import EMOTION_INDEX

if TYPE_CHECKING:
    from backend.evaluation.judge_pose_augment import PoseAugmentation

OWN_NEUTRAL = "own_neutral"
IDENTITY_PROJECTION = "identity_projection"


@dataclass
class MeadClip:
    clip_id: str
    speaker: str          # upper case MEAD id, e.g. "W009"
    emotion: str          # bridge.emotions name
    level: int | None
    landmarks: np.ndarray  # float32 [T, NUM_LANDMARKS, 3] canonical

    @property
    def label(self) -> int:
        return EMOTION_INDEX[self.emotion]


@dataclass
class NeutralReference:
    speaker: str
    shape: np.ndarray     # [NUM_LANDMARKS, 3]
    source: str           # OWN_NEUTRAL | IDENTITY_PROJECTION
    detail: str = ""


@dataclass
class ClipFeatures:
    """One clip's per-frame features and labels."""
    clip_id: str
    speaker: str
    emotion: str
    features: np.ndarray  # [T, D]

    @property
    def labels(self) -> np.ndarray:
        return np.full(len(self.features), EMOTION_INDEX[self.emotion], np.int64)


@dataclass
class SpeakerSet:
    """Clips with references, and what was left out (with why)."""
    clips: list[MeadClip] = field(default_factory=list)
    references: dict[str, NeutralReference] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)   # speaker -> reason

    @property
    def speakers(self) -> list[str]:
        return sorted({c.speaker for c in self.clips})

    @property
    def clip_ids(self) -> list[str]:
        return [c.clip_id for c in self.clips]


def load_mead_clips(tracks_dir: str | Path, speakers: set[str] | frozenset[str] | None = None) -> list[MeadClip]:
    """MEAD clips with an emotion label in ``tracks_dir`` (optionally only these speakers), sorted by id."""
    tracks_dir = Path(tracks_dir)
    if not tracks_dir.is_dir():
        raise FileNotFoundError(f"no track folder {tracks_dir}: run `emogene prepare ../shared/data --out {tracks_dir}`")
    wanted = None if speakers is None else {s.upper() for s in speakers}
    clips = []
    for json_path in sorted(tracks_dir.glob("*.json")):
        npz_path = json_path.with_suffix(".npz")
        if not npz_path.is_file():
            continue
        meta = json.loads(json_path.read_text())
        if str(meta.get("corpus") or "").lower() != "mead" or meta.get("emotion") not in EMOTION_INDEX:
            continue
        speaker = str(meta.get("speaker") or "").upper()
        if wanted is not None and speaker not in wanted:
            continue
        with np.load(npz_path) as z:
            landmarks = np.asarray(z["landmarks"], np.float32)
            found = np.asarray(z["face_found"], bool)
        if found.any():
            landmarks = landmarks[found]
        clips.append(MeadClip(str(meta.get("clip_id") or json_path.stem), speaker, str(meta["emotion"]),
                              meta.get("level"), landmarks))
    return clips


def _identity_basis(tracks_dir: Path):
    """The neutral-reference model of ``backend.data.neutral_reference`` (fitted on non-MEAD clips only),
    or ``(None, reason)`` when that module or its data is not available. Cached per folder state."""
    stamp = max((p.stat().st_mtime_ns for p in Path(tracks_dir).glob("*.json")), default=0)
    return _identity_basis_cached(str(Path(tracks_dir).resolve()), stamp)


@functools.lru_cache(maxsize=4)
def _identity_basis_cached(tracks_dir: str, _stamp: int):
    try:
        from backend.data.neutral_reference import identity_basis_from_tracks
    except ImportError as exc:
        return None, f"no identity basis ({exc})"
    try:
        return identity_basis_from_tracks(tracks_dir), ""
    except (ValueError, OSError, KeyError) as exc:
        return None, f"no identity basis ({exc})"


def neutral_references(clips: list[MeadClip], tracks_dir: str | Path | None = None,
                       allow_projection: bool = True) -> SpeakerSet:
    """Each speaker's neutral reference; speakers without one are dropped into ``skipped``."""
    by_speaker: dict[str, list[MeadClip]] = {}
    for clip in clips:
        by_speaker.setdefault(clip.speaker, []).append(clip)
    out = SpeakerSet()
    basis, basis_problem = (None, "identity projection not allowed")
    if allow_projection and tracks_dir is not None and any(
            all(c.emotion != "neutral" for c in cs) for cs in by_speaker.values()):
        basis, basis_problem = _identity_basis(Path(tracks_dir))
    for speaker, own in sorted(by_speaker.items()):
        neutral = [c for c in own if c.emotion == "neutral"]
        if neutral:
            shape = np.concatenate([c.landmarks for c in neutral]).mean(0)
            ref = NeutralReference(speaker, shape.astype(np.float32), OWN_NEUTRAL,
                                   "mean of " + ", ".join(c.clip_id for c in neutral))
        elif basis is not None:
            from backend.data.neutral_reference import speaker_neutral_reference
            shape, how = speaker_neutral_reference([c.landmarks for c in own], [c.emotion for c in own], basis)
            ref = NeutralReference(speaker, np.asarray(shape, np.float32), IDENTITY_PROJECTION,
                                   f"{how}: mean of {len(own)} emotional clip(s) projected onto "
                                   f"{basis.components} identity components")
        else:
            out.skipped[speaker] = f"no neutral clip and {basis_problem}"
            continue
        out.references[speaker] = ref
        out.clips += own
    return out


def clip_features(speaker_set: SpeakerSet, config: JudgeConfig) -> list[ClipFeatures]:
    """Per-frame judge features of every clip, relative to its speaker's neutral reference."""
    return [ClipFeatures(c.clip_id, c.speaker, c.emotion,
                         displacement_features(c.landmarks, speaker_set.references[c.speaker].shape, config))
            for c in speaker_set.clips]


def augmented_clip_features(speaker_set: SpeakerSet, config: JudgeConfig,
                            pose: "PoseAugmentation | None" = None) -> list[ClipFeatures]:
    """:func:`clip_features` plus the training copies ``config`` asks for: the expression (landmarks minus
    reference) scaled by each of ``augment_scales``, the face mirrored left-right, and ``augment_pose`` copies of
    each clip shifted by ``pose``'s leak at angle deviations drawn from its pool (copy ``k`` of clip ``i``: drawn
    with ``np.random.default_rng([config.seed, i, k])``, scaled by ``augment_pose_scale``)."""
    from backend.data.landmark_map import IBUG68_MIRROR

    if config.augment_pose and pose is None:
        raise ValueError("JudgeConfig.augment_pose needs a PoseAugmentation (the leak and the angle pool): "
                         "judge_pose_augment.selection_pose_augmentation(tracks_dir)")

    flip = np.array([-1.0, 1.0, 1.0], np.float32)
    out = clip_features(speaker_set, config)
    for c in speaker_set.clips:
        ref = speaker_set.references[c.speaker].shape
        variants = [(c.landmarks, ref)]
        if config.augment_mirror:
            variants.append((c.landmarks[:, IBUG68_MIRROR] * flip, ref[IBUG68_MIRROR] * flip))
        for k, (lms, r) in enumerate(variants):
            scaled = [(r + s * (lms - r), r) for s in config.augment_scales]
            for lm, rr in ([(lms, r)] if k else []) + scaled:
                out.append(ClipFeatures(c.clip_id, c.speaker, c.emotion, displacement_features(lm, rr, config)))
    for i, c in enumerate(speaker_set.clips if config.augment_pose else []):
        ref = speaker_set.references[c.speaker].shape
        for k in range(config.augment_pose):
            d = pose.draw(len(c.landmarks), np.random.default_rng([config.seed, i, k]), config.augment_pose_scale)
            out.append(ClipFeatures(c.clip_id, c.speaker, c.emotion,
                                    displacement_features(pose.shift(c.landmarks, d), ref, config)))
    return out


def stack(clips: list[ClipFeatures]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features ``[N, D]``, labels ``[N]`` and per-frame clip index ``[N]`` of several clips."""
    if not clips:
        raise ValueError("no clips to stack")
    x = np.concatenate([c.features for c in clips])
    y = np.concatenate([c.labels for c in clips])
    idx = np.concatenate([np.full(len(c.features), i) for i, c in enumerate(clips)])
    return x, y, idx


def balanced_frame_weights(clips: list[ClipFeatures]) -> np.ndarray:
    """Per-frame weights (mean 1) so each clip counts equally, whatever its length."""
    w = np.concatenate([np.full(len(c.features), 1.0 / max(len(c.features), 1)) for c in clips])
    return w / w.mean()
