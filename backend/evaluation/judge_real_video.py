"""Train the emotion judge on the judge pool's real MEAD video and measure it on real video of unseen people.

The judge learns only from :data:`backend.data.mead_pools.JUDGE_SPEAKERS`; its bar is
its accuracy on the generator pool's speakers (:data:`GENERATOR_SPEAKERS`), whom it never
saw: per-emotion frame accuracy, their mean over the emotions present, clip-level
majority vote, beside the trivial always-neutral baseline. Disjointness of the two
clip lists is asserted (:func:`backend.data.mead_pools.assert_disjoint`) on the speakers
of the clips actually used. :func:`train_judge` is the one place a judge (or a seed ensemble) is trained from a pool;
:func:`judge_seed_spread` shows how far the bar moves with the judge's training seed alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backend.data.mead_pools import GENERATOR_SPEAKERS, JUDGE_SPEAKERS, assert_disjoint
from backend.evaluation.emotion_judge import EmotionJudge, JudgeConfig, fit_judge
from backend.evaluation.emotion_judge_data import (
    OWN_NEUTRAL, SpeakerSet, augmented_clip_features, balanced_frame_weights, clip_features, load_mead_clips, neutral_references, stack,
)
from bridge.emotions import EMOTIONS, NUM_EMOTIONS

if TYPE_CHECKING:
    from backend.evaluation.judge_pose_augment import PoseAugmentation


def accuracy_summary(labels: np.ndarray, predictions: np.ndarray, clip_index: np.ndarray | None = None) -> dict:
    """Per-emotion frame accuracy, their mean over the emotions present, overall frame accuracy,
    clip majority-vote accuracy and the confusion matrix (rows true, columns predicted, counts)."""
    labels = np.asarray(labels, np.int64)
    predictions = np.asarray(predictions, np.int64)
    confusion = np.zeros((NUM_EMOTIONS, NUM_EMOTIONS), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_emotion = {EMOTIONS[k]: float(confusion[k, k] / confusion[k].sum())
                   for k in range(NUM_EMOTIONS) if confusion[k].sum() > 0}
    out = {"per_emotion": per_emotion,
           "mean_over_emotions": float(np.mean(list(per_emotion.values()))) if per_emotion else float("nan"),
           "frame_accuracy": float((labels == predictions).mean()) if len(labels) else float("nan"),
           "frames": int(len(labels)), "confusion": confusion.tolist()}
    if clip_index is not None and len(labels):
        clip_index = np.asarray(clip_index)
        hits = []
        for c in np.unique(clip_index):
            sel = clip_index == c
            vote = np.bincount(predictions[sel], minlength=NUM_EMOTIONS).argmax()
            hits.append(vote == labels[sel][0])
        out["clip_majority_accuracy"] = float(np.mean(hits))
        out["clips"] = int(len(hits))
    return out


def bootstrap_interval(labels: np.ndarray, predictions: np.ndarray, units: np.ndarray,
                       strata: np.ndarray | None = None, reps: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean over emotions of per-emotion accuracy, resampling whole ``units``
    (bursts of plates, clips of video) with replacement, within each of ``strata`` (one per unit) when given.

    A burst holds frames of every emotion (the same job frames in every take), so resampling bursts keeps the
    pairing; clips hold one emotion each, so clips are resampled within their emotion.
    """
    labels, predictions, units = (np.asarray(a) for a in (labels, predictions, units))
    ids, inverse = np.unique(units, return_inverse=True)
    hits = np.zeros((len(ids), NUM_EMOTIONS))
    counts = np.zeros((len(ids), NUM_EMOTIONS))
    np.add.at(counts, (inverse, labels), 1)
    np.add.at(hits, (inverse, labels), (labels == predictions).astype(float))
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(ids))] if strata is None else \
        [np.flatnonzero(np.asarray(strata) == s) for s in np.unique(strata)]
    picks = np.concatenate([g[rng.integers(0, len(g), (reps, len(g)))] for g in groups], axis=1)
    h, c = hits[picks].sum(1), counts[picks].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.nanmean(np.where(c > 0, h / np.where(c > 0, c, 1), np.nan), axis=1)
    lo, hi = np.nanquantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def always_neutral_baseline(labels: np.ndarray, clip_index: np.ndarray | None = None) -> dict:
    """The trivial judge that says "neutral" to every frame."""
    return accuracy_summary(labels, np.zeros_like(np.asarray(labels)), clip_index)


@dataclass
class RealVideoResult:
    judge: EmotionJudge
    config: JudgeConfig
    train: SpeakerSet
    test: SpeakerSet
    metrics: dict = field(default_factory=dict)
    pose: "PoseAugmentation | None" = None   # the pose augmentation it was trained with (config.augment_pose > 0)


def judge_pools(tracks_dir: str | Path, allow_projection: bool = True) -> tuple[SpeakerSet, SpeakerSet]:
    """(judge training speakers, unseen generator-pool test speakers), disjointness asserted on the clips."""
    train_clips = load_mead_clips(tracks_dir, JUDGE_SPEAKERS)
    test_clips = load_mead_clips(tracks_dir, GENERATOR_SPEAKERS)
    assert_disjoint({c.speaker for c in test_clips}, {c.speaker for c in train_clips})
    train = neutral_references(train_clips, tracks_dir, allow_projection)
    test = neutral_references(test_clips, tracks_dir, allow_projection)
    if not train.clips:
        raise FileNotFoundError(f"no usable judge-pool MEAD clips ({', '.join(sorted(JUDGE_SPEAKERS))}) in "
                                f"{tracks_dir}: run `emogene prepare ../shared/data --out {tracks_dir}`")
    assert_disjoint({c.speaker for c in test.clips}, {c.speaker for c in train.clips})
    return train, test


def own_neutral_only(speakers: SpeakerSet) -> SpeakerSet:
    """Only the speakers whose reference is their own neutral clip (like a plate person's neutral take)."""
    keep = {s for s, r in speakers.references.items() if r.source == OWN_NEUTRAL}
    return SpeakerSet([c for c in speakers.clips if c.speaker in keep],
                      {s: r for s, r in speakers.references.items() if s in keep},
                      {**speakers.skipped, **{s: "reference reconstructed, not measured" for s in
                                              set(speakers.references) - keep}})


def train_judge(train: SpeakerSet, config: JudgeConfig, pose: "PoseAugmentation | None" = None) -> EmotionJudge:
    """A judge (or seed ensemble) trained on ``train`` with ``config``'s augmentation (``pose``: the leak and angle
    pool ``config.augment_pose`` draws from; unused when it is 0)."""
    clips = augmented_clip_features(train, config, pose)
    x, y, _ = stack(clips)
    return fit_judge(x, y, config, sample_weight=balanced_frame_weights(clips))


def evaluate_judge(judge: EmotionJudge, test: SpeakerSet, config: JudgeConfig) -> dict:
    """Accuracy summary over all test clips, and per speaker."""
    clips = clip_features(test, config)
    if not clips:
        return {}
    x, y, idx = stack(clips)
    pred = judge.predict(x)
    out = accuracy_summary(y, pred, idx)
    # 95 % interval: clips resampled within their emotion (a clip holds one emotion)
    out["ci95"] = bootstrap_interval(y, pred, idx, strata=np.array([c.labels[0] if len(c.labels) else -1
                                                                    for c in clips]))
    out["always_neutral"] = always_neutral_baseline(y, idx)
    out["per_speaker"] = {}
    for speaker in test.speakers:
        sel = np.isin(idx, [i for i, c in enumerate(clips) if c.speaker == speaker])
        out["per_speaker"][speaker] = accuracy_summary(y[sel], pred[sel], idx[sel])
    return out


def leave_one_speaker_out(speakers: SpeakerSet, config: JudgeConfig, pose: "PoseAugmentation | None" = None) -> dict:
    """Inside one pool: train on all speakers but one, test on that one (every speaker in turn)."""
    results = {}
    for held in speakers.speakers:
        rest = SpeakerSet([c for c in speakers.clips if c.speaker != held],
                          {k: v for k, v in speakers.references.items() if k != held})
        if not rest.clips:
            continue
        held_set = SpeakerSet([c for c in speakers.clips if c.speaker == held],
                              {held: speakers.references[held]})
        results[held] = evaluate_judge(train_judge(rest, config, pose), held_set, config)
    return results


def judge_on_real_video(tracks_dir: str | Path, config: JudgeConfig | None = None,
                        allow_projection: bool = True) -> RealVideoResult:
    """Train on the judge pool, evaluate on the unseen generator pool; also the per-speaker references.

    ``unseen_speakers`` (the bar for the plates) keeps the test speakers with a measured neutral clip,
    the same kind of reference a plate person gets (its intensity-0 take); ``unseen_speakers_all`` adds
    those whose reference had to be reconstructed. With ``config.augment_pose`` the pose augmentation is built from
    the real talking heads' selection half (:func:`~backend.evaluation.judge_pose_augment.selection_pose_augmentation`).
    """
    config = config or JudgeConfig()
    train, test = judge_pools(tracks_dir, allow_projection)
    pose = None
    if config.augment_pose:
        from backend.evaluation.judge_pose_augment import selection_pose_augmentation
        pose = selection_pose_augmentation(tracks_dir)
    judge = train_judge(train, config, pose)
    metrics = {"unseen_speakers": evaluate_judge(judge, own_neutral_only(test), config),
               "unseen_speakers_all": evaluate_judge(judge, test, config),
               "train_clips": train.clip_ids, "test_clips": test.clip_ids,
               "references": {s: {"source": r.source, "detail": r.detail}
                              for s, r in {**train.references, **test.references}.items()},
               "skipped_speakers": {**train.skipped, **test.skipped},
               "config": config.to_dict()}
    return RealVideoResult(judge, config, train, test, metrics, pose)


#: training seeds of the single judges whose bars show the instrument's spread (session 10: one judge's bar moves
#: 24-40 % with its training seed alone, mostly because M030's happy clips read 0 % or 100 %)
SPREAD_SEEDS: tuple[int, ...] = tuple(range(10))


def seed_judges(train: SpeakerSet, config: JudgeConfig, seeds: tuple[int, ...] = SPREAD_SEEDS,
                pose: "PoseAugmentation | None" = None, trained: "EmotionJudge | None" = None) -> dict[int, EmotionJudge]:
    """Single judges that differ from ``config`` only in their training seed (``config.member(seed)``), by seed.
    ``trained``: a judge already trained on ``train`` with ``config`` itself, reused for its seed when ``config`` is
    a single judge (training is seeded, so it equals the member it replaces)."""
    if not seeds:
        raise ValueError("seed_judges needs at least one training seed")
    reuse = {config.seed: trained} if trained is not None and not config.ensemble_seeds else {}
    return {int(s): reuse.get(int(s)) or train_judge(train, config.member(s), pose) for s in seeds}


def judge_seed_spread(judges: dict[int, EmotionJudge], test: SpeakerSet, talking_clips: list | None = None,
                      frames: int = 27, burst: int = 9) -> dict:
    """The bar (mean over emotions on ``own_neutral_only(test)``) and its neutral of each of :func:`seed_judges`'
    judges, and their mean, SD (ddof 1), min and max; with ``talking_clips``
    (:class:`~backend.evaluation.judge_talking_heads.TalkingClip`) also each judge's neutral share on them (burst
    protocol: ``frames`` in bursts of ``burst``; speakers weighted equally)."""
    from backend.evaluation.judge_talking_heads import read_clip, summarise

    if not judges:
        raise ValueError("judge_seed_spread needs at least one judge")
    seeds = list(judges)
    unseen = own_neutral_only(test)
    rows: dict[str, list[float]] = {"bar": [], "bar_neutral": []}
    if talking_clips:
        rows["talking_heads_neutral"] = []
    for seed in seeds:
        judge = judges[seed]
        m = evaluate_judge(judge, unseen, judge.config)
        rows["bar"].append(m["mean_over_emotions"])
        rows["bar_neutral"].append(m["per_emotion"].get("neutral", float("nan")))
        if talking_clips:
            rows["talking_heads_neutral"].append(summarise([read_clip(judge, c, frames=frames, burst=burst)
                                                                  for c in talking_clips]).neutral_share)
    out: dict = {"seeds": list(seeds)}
    for key, values in rows.items():
        v = np.asarray(values, np.float64)
        out[key] = {"per_seed": v.tolist(), "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "min": float(v.min()), "max": float(v.max())}
    return out
