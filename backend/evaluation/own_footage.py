"""The subject's own real footage at the plates' head poses: does the renderer add emotion the person's face lacks?

A motion draw asks for a head rotation per judged frame. For each, the nearest tracked real frame of the subject (by
rotation angle) is taken from their *neutral* footage: the track rows of ``subject.json`` clips labelled ``neutral``
when the subject's clips carry emotion labels, every tracked frame when they carry none (one unlabelled talking
video, taken as neutral). Those real landmarks are read by the same judge with the plates' burst protocol (the window
inside each burst, reference = their own mean), so "keyed neutral on the plates X %" stands beside "the person's own
face at the same poses Y %". A diagnostic, not the acceptance bar. No rendering here; the caller passes the draw's
rotations (the motion stage's state).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from backend.evaluation.emotion_judge import predict_in_bursts
from bridge.emotions import EMOTION_INDEX


class NoNeutralFootage(LookupError):
    """The subject has no tracked neutral footage to compare the plates with (the reason is the message)."""


@dataclass
class NeutralFootage:
    """A subject's tracked real frames usable as the reference: neutral footage with a face found."""
    rows: np.ndarray          # int [N] rows of track.npz
    landmarks: np.ndarray     # float32 [N, NUM_LANDMARKS, 3] canonical landmarks of those rows
    rotation: np.ndarray      # float [N, 3, 3] their tracked head rotations
    source: str               # which footage, in words


def neutral_rows(info: dict, frames: int, clip_starts: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """Track rows of a subject's neutral footage and a description: the rows of ``track.npz`` (clips one after another
    in filmed order, each starting at its ``clip_starts`` entry) of the clips labelled ``neutral`` when any clip
    carries an emotion label, else all ``frames``. Raises :class:`NoNeutralFootage` when labelled clips include no
    neutral one, ValueError when the track does not mark one start per listed clip."""
    from backend.motion.pose_sampling import clip_segments

    clips = info.get("clips") or []
    labelled = [c for c in clips if c.get("emotion")]
    if not labelled:
        return np.arange(frames), f"all {frames} tracked frames (no clip carries an emotion label: the subject's " \
                                  "source video, taken as neutral talking)"
    neutral = [n for n, c in enumerate(clips) if c.get("emotion") == "neutral"]
    if not neutral:
        raise NoNeutralFootage(f"no neutral footage: its clips are labelled "
                               f"{', '.join(sorted({c['emotion'] for c in labelled}))}")
    segments = clip_segments(clip_starts, frames) if clip_starts is not None else ()
    if len(segments) != len(clips):
        raise ValueError(f"the track marks {len(segments) or 1} clip(s) (clip_starts) but subject.json lists "
                         f"{len(clips)}")
    rows = np.concatenate([np.arange(*segments[n]) for n in neutral])
    return rows, f"{len(rows)} frames of {len(neutral)} clip(s) labelled neutral (of {len(labelled)} labelled clips)"


def load_neutral_footage(subject_dir: Path) -> NeutralFootage:
    """The subject's neutral tracked frames (face found) from ``subject.json`` and its track file."""
    from backend.subjects import load_subject_info

    info = load_subject_info(subject_dir)
    path = Path(subject_dir) / info.get("track", "track.npz")
    if not path.is_file():
        raise NoNeutralFootage(f"no track file ({path.name}) in {subject_dir}")
    with np.load(path) as z:
        landmarks, rotation, found = z["landmarks"], z["rotation"], z["face_found"].astype(bool)
        clip_starts = z["clip_starts"] if "clip_starts" in z else None
    rows, source = neutral_rows(info, len(found), clip_starts)
    rows = rows[found[rows]]
    if not len(rows):
        raise NoNeutralFootage(f"no face was tracked in its neutral footage ({source})")
    return NeutralFootage(rows, landmarks[rows].astype(np.float32), rotation[rows].astype(np.float64), source)


def nearest_frames(footage: NeutralFootage, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``rotation [T, 3, 3]``: the index into ``footage`` of the real frame nearest in rotation angle, and
    that angle in degrees."""
    rotation = np.asarray(rotation, np.float64)
    if rotation.ndim != 3 or rotation.shape[1:] != (3, 3):
        raise ValueError(f"rotations must be [frames, 3, 3], got {list(rotation.shape)}")
    asked = Rotation.from_matrix(rotation)
    own = Rotation.from_matrix(footage.rotation)
    nearest = np.abs(asked.as_quat() @ own.as_quat().T).argmax(1)       # |q.q'| = cos(half the angle between)
    mismatch = np.degrees((asked.inv() * own[nearest]).magnitude())
    return nearest, mismatch


@dataclass
class OwnReading:
    """The judge on the subject's own real frames at one draw's poses."""
    seed: int
    rows: np.ndarray          # int [T] track rows used
    mismatch_deg: np.ndarray  # [T] rotation angle between the asked pose and the real frame's
    predicted: np.ndarray     # int [T] emotion index per frame
    bursts: np.ndarray        # int [T]


def read_own_footage(judge, footage: NeutralFootage, rotation: np.ndarray, bursts: np.ndarray,
                     seed: int = 0) -> OwnReading:
    """The subject's nearest neutral real frames to a draw's judged poses, read like a plate take."""
    bursts = np.asarray(bursts)
    if len(bursts) != len(rotation):
        raise ValueError(f"{len(rotation)} rotations but {len(bursts)} burst ids")
    index, mismatch = nearest_frames(footage, rotation)
    real = footage.landmarks[index]
    predicted = predict_in_bursts(judge, real, real.mean(0), bursts)
    return OwnReading(int(seed), footage.rows[index], mismatch, predicted, bursts)


def own_footage_report(judge, subject_dir: Path, draws: list, rotations: dict[int, np.ndarray],
                       plates_keyed: dict[int, float]) -> dict:
    """Per motion draw and pooled: the subject's own neutral footage at the draw's poses read neutral, the pose
    mismatch, beside the plates' keyed neutral (``plates_keyed`` per seed). ``draws``: the subject's
    :class:`~backend.evaluation.plate_emotion.SubjectPlates`; ``rotations[seed]``: the motion stage's rotations on
    that draw's job frames (``draws[i].frames``). ``{"skipped": reason}`` when the subject has no neutral footage."""
    from backend.evaluation.plate_emotion import UNIT_STRIDE, share_interval

    try:
        footage = load_neutral_footage(Path(subject_dir))
    except NoNeutralFootage as e:
        return {"skipped": str(e)}
    neutral = EMOTION_INDEX["neutral"]
    readings = []
    for d in draws:
        take = d.neutral
        rotation = np.asarray(rotations[d.seed])
        if len(rotation) != len(d.frames):
            raise ValueError(f"draw {d.seed}: {len(rotation)} rotations for {len(d.frames)} judged job frames")
        readings.append(read_own_footage(judge, footage, rotation[take.position_array()], take.bursts, d.seed))
    hits = np.concatenate([r.predicted == neutral for r in readings])
    units = np.concatenate([k * UNIT_STRIDE + np.asarray(r.bursts, np.int64) for k, r in enumerate(readings)])
    rows = [{"seed": r.seed, "read_neutral": float((r.predicted == neutral).mean()),
             "plates_keyed_neutral": plates_keyed.get(r.seed),
             "pose_mismatch_deg_max": round(float(r.mismatch_deg.max()), 2),
             "pose_mismatch_deg_mean": round(float(r.mismatch_deg.mean()), 2),
             "frames": int(len(r.predicted)), "distinct_real_frames": int(len(np.unique(r.rows)))}
            for r in readings]
    keyed = [plates_keyed[r.seed] for r in readings if plates_keyed.get(r.seed) is not None]
    return {"source": footage.source, "neutral_frames": int(len(footage.rows)),
            "read_neutral": float(hits.mean()), "read_neutral_ci95": share_interval(hits, units),
            "plates_keyed_neutral": float(np.mean(keyed)) if len(keyed) == len(readings) else None,
            "pose_mismatch_deg_max": round(float(max(r.mismatch_deg.max() for r in readings)), 2),
            "frames": int(len(hits)), "draws": rows}
