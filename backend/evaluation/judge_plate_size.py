"""The bar at a plate's size: is a small plate a handicap for the judge?

A subject without a super-resolution network gives plates at its working size (mead_m030: 128²), while the bar
reads the unseen speaker's real video at its own size (MEAD's 256² face crops). Here the same real crops are
tracked the way plates are (:func:`~backend.evaluation.plate_emotion.track_burst`), once at their own size and
once area-downsampled to each smaller plate size, and read by the same judges; the reference is the speaker's
neutral clip tracked at the same size. Only square sources are used (face crops framed like a subject's plates;
MEAD's uncropped 1080p clips are left out).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backend.evaluation.emotion_judge import EmotionJudge
from backend.evaluation.emotion_judge_data import MeadClip, SpeakerSet, neutral_references


def square_source(tracks_dir: Path, clip_id: str) -> tuple[Path, int] | None:
    """(source video, side) of a clip whose source frames are square, else None."""
    meta = json.loads((Path(tracks_dir) / f"{clip_id}.json").read_text())
    width, height = meta.get("image_size") or (0, 0)
    source = Path(meta.get("source") or "")
    return (source, int(width)) if width and width == height and source.is_file() else None


def square_frames(speakers: SpeakerSet, tracks_dir: str | Path) -> list[tuple[MeadClip, list[np.ndarray], int]]:
    """Each of ``speakers``' clips with a square source: (clip, its decoded RGB frames, their side)."""
    from backend.data.face_tracking import iter_frames_rgb

    out = []
    for clip in speakers.clips:
        found_source = square_source(Path(tracks_dir), clip.clip_id)
        if found_source is not None:
            out.append((clip, list(iter_frames_rgb(found_source[0])), found_source[1]))
    return out


def retracked(sources: list[tuple[MeadClip, list[np.ndarray], int]], tracks_dir: str | Path,
              size: int | None) -> SpeakerSet:
    """The :func:`square_frames` clips tracked as plates are, at ``size``² (None: the source's own size)."""
    import cv2

    from backend.evaluation.plate_emotion import track_burst

    clips = []
    for clip, frames, side in sources:
        if size is not None and size != side:
            frames = [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames]
        landmarks, found = track_burst(frames)
        if found.any():
            clips.append(MeadClip(clip.clip_id, clip.speaker, clip.emotion, clip.level, landmarks[found]))
    return neutral_references(clips, tracks_dir, allow_projection=False)


def bar_at_plate_sizes(judges: dict[int, EmotionJudge], speakers: SpeakerSet, tracks_dir: str | Path,
                       sizes: list[int]) -> dict:
    """Per judge (by training seed) the mean over emotions on ``speakers``' square crops at their own size and at
    each of ``sizes`` smaller than it; mean and SD over the judges. ``{}`` when no clip has a square source."""
    from backend.evaluation.judge_real_video import evaluate_judge

    sources = square_frames(speakers, tracks_dir)
    native = retracked(sources, tracks_dir, None)
    if not native.clips:
        return {}
    side = min(s for _, _, s in sources)
    sets = {"source": native, **{str(s): retracked(sources, tracks_dir, s) for s in sorted(set(sizes)) if s < side}}
    out: dict = {"clips": native.clip_ids, "source_size": side, "seeds": [int(s) for s in judges], "sizes": {}}
    for name, subset in sets.items():
        per_seed = [evaluate_judge(j, subset, j.config).get("mean_over_emotions", float("nan")) for j in judges.values()]
        v = np.asarray(per_seed, np.float64)
        out["sizes"][name] = {"per_seed": v.tolist(), "mean": float(v.mean()),
                              "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
    return out
