"""Fitting the LDM's per-emotion fields from MEAD clips, with each speaker's identity factored out.

Recipe (settings chosen by the leave-one-speaker-out numbers of :mod:`backend.motion.ldm_eval`,
see the LDM section of the motion MODEL_CARD):

1. Each speaker's neutral reference (:func:`backend.data.neutral_reference.speaker_neutral_reference`):
   their neutral clips' mean, else the identity-model projection of their mean shape.
2. Each clip's target: the clip's mean canonical shape minus the reference. Means over a
   clip average the speech away (MEAD takes of different emotions speak different
   sentences, so frames cannot be paired in time). The canonical fit already removes
   head pose and scale; a further similarity alignment (``align``, used until session 2) also
   removed part of the expression (a jaw drop or a brow raise changes the fitted scale):
   held-out direction cosine 0.42-0.50 with it, 0.44-0.55 without.
3. Per speaker and emotion, least squares over the clips' intensities (MEAD level / 3).
   A speaker filmed in most emotions against a neutral clip also has a part common to
   all their emotions ("emotional vs neutral take": brows up, mouth set). It is mostly
   the person and the session (M030's and W009's common parts agree at cosine 0.46), and
   it is removed (``common_weight`` 0; session 3 kept half): leave one speaker out, the
   worse of M030 / W009 goes from 0.972 to 0.948 x "no deformation" at 0.8 x amplitude.
   It costs fidelity to M030's own takes (cosine 0.88 -> 0.78), not transfer.
4. Mean over speakers (each speaker counts once), averaged with its left-right mirror
   image (``symmetry``; contempt, one-sided by nature, exempt): a person's asymmetry is
   not the emotion's (held-out direction cosine M030 0.44 -> 0.46). Then projected onto
   the principal directions of within-person face motion of non-MEAD clips
   (``smooth_components``: keeps coherent deformations, drops per-point noise), and the
   inner-lip gaps are made exactly neutral's (lip motion stays the audio's).
5. Amplitude (``amplitude_per_region``): each face region of each field (brows, eyes, nose,
   mouth, jaw: ``REGION_GROUPS``) is scaled to ``amplitude`` x that region's real level-3
   displacement of the training speakers filmed neutral (clip mean minus own neutral, mean
   over points), so the whole field is ``amplitude`` x the real level 3 and its regions keep
   the real balance. One factor for the whole field (until session 8) left the fields
   brow-heavy (contempt / fear 70 % of their energy in the brows, M030's real 40-49 %; the
   mouth 6-7 %, real 22-40 %), and the plate-level judge read them as surprised.
   0.9: a direction that is half right across people (held-out cosine ~0.5) loses to
   "no deformation" at full real size (M030 1.019 x), wins at 0.9 x on every held-out
   speaker filmed neutral (M030 0.979, W009 0.950 x; 0.85 x: 0.961 / 0.927), and stays
   inside the ±30 % gate of real level 3 (0.79-1.00). The judge on the driving landmarks of the
   tuning clip, 5 motion draws: 45.2 % (0.85 x one factor, shipped before: 43.0 %).

Tried and dropped (leave one speaker out, no gain): taking each clip target's rigid part
out (translation, or rotation + translation), blink-free clip means, 20 instead of 30
smoothing directions. Session 8 (``cache/s8_ldm/decision.md``): amplitude matched in the
image plane (``amplitude_axes="xy"``: fear 0.69 x real, W009 1.008 x) and fields without depth
(``depth=False``: cosine with M030's own takes 0.78 -> 0.65, M030 1.06 x) fail the gates;
one factor at 1.0 x fails leave-one-out (1.021 / 1.034 x) for +2.5 judge points.

Closed form, no iterations: seconds on one thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from bridge.emotions import EMOTIONS
from bridge.landmarks import NUM_LANDMARKS
from backend.data.mead_pools import GENERATOR_SPEAKERS, JUDGE_SPEAKERS, assert_disjoint, pool_of
from backend.data.neutral_reference import (OWN_NEUTRAL, IdentityBasis, fit_identity_basis,
                                            speaker_neutral_reference, with_expression_directions)
from backend.motion.landmarks import INNER_LIP_PAIRS
from backend.motion.ldm import LandmarkDeformationModel, LDMConfig
from backend.motion.tracks_data import TrackClip, TrackDataError

NON_NEUTRAL = EMOTIONS[1:]
#: face-region groups (bridge.landmarks.REGIONS merged); together they cover every landmark once
REGION_GROUPS = {"brows": ("brow_r", "brow_l"), "eyes": ("eye_r", "eye_l"), "nose": ("nose_bridge", "nose_base"),
                 "mouth": ("lip_outer", "lip_inner"), "jaw": ("jaw",)}
#: non-MEAD track corpora whose clips may build the identity model (see backend.data.neutral_reference)
NON_MEAD_CORPORA = ("talking", "subject")


@dataclass
class LDMFitConfig:
    common_weight: float = 0.0          # share kept of a speaker's part common to all their emotions (step 3)
    min_emotions_for_common: int = 5    # only speakers with this many emotions get it estimated
    smooth_components: int = 30         # 0: no projection onto within-person motion directions
    amplitude: float = 0.9              # x real level-3 displacement; 0: the least-squares amplitude
    lip_preserving: bool = True         # inner-lip gaps exactly unchanged
    identity_components: int = 8
    expression_components: int = 12
    generator_pool_only: bool = True    # the shipped LDM: mead_pools.GENERATOR_SPEAKERS only
    align: bool = False                 # similarity-align each clip mean onto the reference (step 2)
    symmetry: float = 1.0               # 0: fields as fitted; 1: averaged with their left-right mirror image (step 4)
    symmetry_exempt: tuple[str, ...] = ("contempt",)   # one-sided by nature: never mirrored
    amplitude_axes: str = "xyz"         # "xy": ``amplitude`` matched on the image-plane (x, y) displacement
    depth: bool = True                  # False: the fields' depth (z) component set to 0
    amplitude_per_region: bool = True   # each REGION_GROUPS region scaled to its own real level-3 size (step 5)

    def __post_init__(self) -> None:
        if self.amplitude_axes not in ("xyz", "xy"):
            raise ValueError(f"amplitude_axes must be 'xyz' or 'xy', got {self.amplitude_axes!r}")


@dataclass
class SpeakerTargets:
    speaker: str
    reference: np.ndarray                       # [NUM_LANDMARKS, 3]
    reference_kind: str                         # own_neutral | identity_projection
    fields: dict[str, np.ndarray] = field(default_factory=dict)      # emotion -> [NUM_LANDMARKS, 3] at intensity 1
    real_level3: dict[str, float] = field(default_factory=dict)      # emotion -> mean |clip mean - ref|
    real_level3_xy: dict[str, float] = field(default_factory=dict)   # the same in the image plane (x, y)
    real_level3_regions: dict[str, dict[str, float]] = field(default_factory=dict)  # emotion -> region -> the same


def region_indices() -> dict[str, np.ndarray]:
    """Landmark indices of each :data:`REGION_GROUPS` region."""
    from bridge.landmarks import REGIONS
    return {g: np.concatenate([np.asarray(REGIONS[r]) for r in names]) for g, names in REGION_GROUPS.items()}


def mean_point_distance(a: np.ndarray) -> float:
    """Mean over points of the Euclidean norm of ``a [..., NUM_LANDMARKS, 3]`` (canonical units)."""
    return float(np.linalg.norm(a, axis=-1).mean())


def similarity_align(shape: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``shape [NUM_LANDMARKS, 3]`` rotated, scaled and moved onto ``reference`` (least squares, no reflection)."""
    ms, mr = shape.mean(0), reference.mean(0)
    a, b = shape - ms, reference - mr
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float((s * np.diag(d)).sum() / max((a ** 2).sum(), 1e-12))
    return scale * a @ rot + mr


def mirror_field(field: np.ndarray) -> np.ndarray:
    """``field [..., NUM_LANDMARKS, 3]`` mirrored left-right (canonical x is the face's across-axis)."""
    from backend.data.landmark_map import IBUG68_MIRROR
    return np.asarray(field)[..., IBUG68_MIRROR, :] * np.array([-1.0, 1.0, 1.0])


def preserve_inner_lips(fields: np.ndarray) -> np.ndarray:
    """Fields ``[..., NUM_LANDMARKS, 3]`` whose two points of every inner-lip pair move alike vertically."""
    out = np.array(fields, np.float64, copy=True)
    for upper, lower in INNER_LIP_PAIRS:
        mid = 0.5 * (out[..., upper, 1] + out[..., lower, 1])
        out[..., upper, 1] = mid
        out[..., lower, 1] = mid
    return out


def mead_clips(clips: list[TrackClip]) -> list[TrackClip]:
    return [c for c in clips if c.emotion in EMOTIONS and str(c.meta.get("corpus", "mead")).lower() == "mead"]


def _non_mead(clips: list[TrackClip]):
    """``(speaker, expressive_only, landmarks)`` of the non-MEAD unlabelled clips."""
    for c in clips:
        if c.emotion is None and str(c.meta.get("corpus", "")).lower() in NON_MEAD_CORPORA:
            parts = str(c.meta.get("source", "")).replace("\\", "/").split("/")
            yield c.speaker.lower(), "video_only" in parts, c.landmarks


def identity_basis_from_clips(clips: list[TrackClip], cfg: LDMFitConfig) -> IdentityBasis | None:
    """The neutral-reference model from the non-MEAD clips in ``clips`` (None when too few speakers)."""
    means: dict[str, list[np.ndarray]] = {}
    deviations = []
    for speaker, expressive, lms in _non_mead(clips):
        deviations.append((lms - lms.mean(0))[::2])
        if not expressive:
            means.setdefault(speaker, []).append(lms)
    if len(means) < cfg.identity_components + 1:
        return None
    basis = fit_identity_basis([np.concatenate(v).mean(0) for v in means.values()], cfg.identity_components,
                               tuple(means))
    return with_expression_directions(basis, np.concatenate(deviations), cfg.expression_components)


def motion_directions(clips: list[TrackClip], components: int) -> np.ndarray | None:
    """Top ``components`` principal directions ``[m, 3 * NUM_LANDMARKS]`` of within-clip face motion of the
    non-MEAD clips."""
    deviations = [(lms - lms.mean(0))[::2].reshape(-1, 3 * NUM_LANDMARKS) for _, _, lms in _non_mead(clips)]
    if components <= 0 or not deviations:
        return None
    d = np.concatenate(deviations).astype(np.float64)
    if len(d) < components:
        return None
    return np.linalg.svd(d, full_matrices=False)[2][:components].copy()


def _clip_shape(clip: TrackClip, reference: np.ndarray, align: bool) -> np.ndarray:
    mean = clip.landmarks.mean(0).astype(np.float64)
    return similarity_align(mean, reference) if align else mean


def speaker_targets(clips: list[TrackClip], basis: IdentityBasis | None,
                    cfg: LDMFitConfig) -> dict[str, SpeakerTargets]:
    """Reference and per-emotion field of every MEAD speaker in ``clips`` (step 1-3 of the module doc)."""
    by_speaker: dict[str, list[TrackClip]] = {}
    for c in mead_clips(clips):
        by_speaker.setdefault(c.speaker, []).append(c)
    out = {}
    for speaker, cs in sorted(by_speaker.items()):
        has_neutral = any(c.emotion == "neutral" for c in cs)
        if not has_neutral and basis is None:
            continue                       # no neutral clip and no identity model: no reference
        ref_basis = basis or fit_identity_basis([np.zeros((NUM_LANDMARKS, 3)), np.zeros((NUM_LANDMARKS, 3))], 0)
        reference, kind = speaker_neutral_reference([c.landmarks for c in cs], [c.emotion for c in cs], ref_basis)
        reference = reference.astype(np.float64)
        t = SpeakerTargets(speaker, reference, kind)
        for emotion in NON_NEUTRAL:
            own = [c for c in cs if c.emotion == emotion]
            if not own:
                continue
            num = sum(c.intensity * (_clip_shape(c, reference, cfg.align) - reference) for c in own)
            t.fields[emotion] = num / sum(c.intensity ** 2 for c in own)
            level3 = [c for c in own if (c.level or 3) == 3]
            if level3:
                t.real_level3[emotion] = float(np.mean([mean_point_distance(c.landmarks.mean(0) - reference)
                                                        for c in level3]))
                t.real_level3_xy[emotion] = float(np.mean([mean_point_distance((c.landmarks.mean(0) - reference)[:, :2])
                                                           for c in level3]))
                t.real_level3_regions[emotion] = {
                    g: float(np.mean([mean_point_distance((c.landmarks.mean(0) - reference)[idx]) for c in level3]))
                    for g, idx in region_indices().items()}
        if kind == OWN_NEUTRAL and len(t.fields) >= cfg.min_emotions_for_common:
            common = np.mean(list(t.fields.values()), axis=0)
            t.fields = {e: f - (1.0 - cfg.common_weight) * common for e, f in t.fields.items()}
        out[speaker] = t
    return out


def _real_level3(targets: dict[str, SpeakerTargets], emotion: str, measure) -> list:
    """``measure(target)[emotion]`` of the speakers filmed neutral (own-neutral reference), else of every speaker
    that has the emotion: real level-3 sizes the fields are scaled to."""
    has = [t for t in targets.values() if emotion in measure(t)]
    filmed_neutral = [t for t in has if t.reference_kind == OWN_NEUTRAL]
    return [measure(t)[emotion] for t in (filmed_neutral or has)]


def fit_fields(targets: dict[str, SpeakerTargets], smoothing: np.ndarray | None,
               cfg: LDMFitConfig) -> tuple[np.ndarray, dict]:
    """Per-emotion fields ``[7, NUM_LANDMARKS, 3]`` from the speakers' targets (steps 4-5) and a summary per emotion."""
    fields = np.zeros((len(NON_NEUTRAL), NUM_LANDMARKS, 3))
    summary = {}
    for k, emotion in enumerate(NON_NEUTRAL):
        fs = [t.fields[emotion] for t in targets.values() if emotion in t.fields]
        if not fs:
            summary[emotion] = {"speakers": [], "amplitude": 0.0}
            continue
        f = np.mean(fs, axis=0)
        if cfg.symmetry > 0 and emotion not in cfg.symmetry_exempt:
            f = (1.0 - cfg.symmetry) * f + cfg.symmetry * 0.5 * (f + mirror_field(f))
        if smoothing is not None:
            f = (smoothing.T @ (smoothing @ f.reshape(-1))).reshape(NUM_LANDMARKS, 3)
        if not cfg.depth:
            f = f * np.array([1.0, 1.0, 0.0])
        if cfg.lip_preserving:
            f = preserve_inner_lips(f)
        plane = cfg.amplitude_axes == "xy"
        real = _real_level3(targets, emotion, lambda t: t.real_level3_xy if plane else t.real_level3)
        size = mean_point_distance(f[:, :2] if plane else f)
        if cfg.amplitude > 0 and real and size > 0:
            f = f * (cfg.amplitude * float(np.mean(real)) / size)
        if cfg.amplitude > 0 and cfg.amplitude_per_region:
            regional = _real_level3(targets, emotion, lambda t: t.real_level3_regions)
            for g, idx in region_indices().items():
                part = mean_point_distance(f[idx])
                if regional and part > 0:
                    f[idx] = f[idx] * (cfg.amplitude * float(np.mean([r[g] for r in regional])) / part)
        fields[k] = f
        summary[emotion] = {"speakers": sorted(t.speaker for t in targets.values() if emotion in t.fields),
                            "amplitude": mean_point_distance(f),
                            "real_level3_of_training_speakers": float(np.mean(real)) if real else None}
    return fields, summary


def generator_clips(clips: list[TrackClip]) -> list[TrackClip]:
    """The MEAD clips the shipped LDM may learn from (generator pool, checked disjoint from the judge's),
    plus every non-MEAD clip (identity model)."""
    assert_disjoint(GENERATOR_SPEAKERS, JUDGE_SPEAKERS)
    kept = [c for c in clips if str(c.meta.get("corpus", "mead")).lower() != "mead" or c.emotion is None
            or pool_of(c.speaker) == "generator"]
    assert_disjoint({c.speaker for c in mead_clips(kept)}, JUDGE_SPEAKERS)
    return kept


def fit_ldm(clips: list[TrackClip], cfg: LDMFitConfig | None = None, basis: IdentityBasis | None = None,
            smoothing: np.ndarray | None = None,
            should_stop: Callable[[], bool] | None = None) -> tuple[LandmarkDeformationModel, dict]:
    """The LDM from ``clips`` (MEAD clips + non-MEAD clips for the identity model unless ``basis`` is given)."""
    cfg = cfg or LDMFitConfig()
    if cfg.generator_pool_only:
        clips = generator_clips(clips)
    if basis is None:
        basis = identity_basis_from_clips(clips, cfg)
    if smoothing is None:
        smoothing = motion_directions(clips, cfg.smooth_components)
    targets = speaker_targets(clips, basis, cfg)
    if not targets:
        raise TrackDataError("no MEAD speaker with a neutral reference: need a neutral clip, "
                             "or non-MEAD talking clips for the identity model")
    if should_stop and should_stop():
        raise KeyboardInterrupt("LDM fit cancelled")
    fields, summary = fit_fields(targets, smoothing, cfg)
    model = LandmarkDeformationModel(LDMConfig())
    model.fields.copy_(torch.as_tensor(fields, dtype=torch.float32))
    model.mean_face.copy_(torch.as_tensor(np.mean([t.reference for t in targets.values()], 0), dtype=torch.float32))
    info = {"speakers": {s: {"reference": t.reference_kind, "emotions": sorted(t.fields)} for s, t in targets.items()},
            "per_emotion": summary,
            "identity_model_speakers": list(basis.speakers) if basis is not None else []}
    return model.eval(), info
