"""The emotion judge on real people talking neutrally with natural head motion, read as plates are read.

A plate take's neutral is judged on a few *bursts* of consecutive frames against the mean tracked
shape of those same bursts (:mod:`backend.evaluation.plate_emotion`). This module applies that protocol
to real talking-head video (unlabelled speech, mostly neutral): per clip, the bursts
:meth:`PlateEvalConfig.burst_frames` picks, the neutral reference = their mean tracked shape (or the
clip's whole-length mean), the judge's window kept inside each burst. A judge that calls such clips
emotional is sensitive to what a talking head does besides emotion (head motion, speech), so a plate
that moves like a real head cannot be expected to read more neutral than this.

Pose spread per clip (pitch / yaw standard deviation over the judged frames, from the tracks'
fitted head rotation) shows whether the misreadings grow with head motion. No I/O beyond reading tracks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.evaluation.emotion_judge import EmotionJudge, predict_in_bursts
from backend.evaluation.pose_leak import head_angles
from bridge.emotions import EMOTIONS, NUM_EMOTIONS

#: the reported clip of `emogene eval emotion` (its speech drives the plates): never read here
REPORTED_CLIPS = frozenset({"andrew_clip_1"})
BURST_REFERENCE = "bursts"   # neutral reference = mean tracked shape of the judged bursts (a plate take's)
CLIP_REFERENCE = "clip"      # neutral reference = the clip's whole-length mean shape


@dataclass
class TalkingClip:
    clip_id: str
    speaker: str
    landmarks: np.ndarray   # float32 [T, NUM_LANDMARKS, 3] canonical (face-found frames only)
    angles: np.ndarray      # float32 [T, 3] pitch, yaw, roll in degrees


@dataclass
class ClipReading:
    clip_id: str
    speaker: str
    reference: str
    predictions: np.ndarray  # int [n] judged frames
    bursts: np.ndarray       # int [n] burst id per judged frame
    pose_sd: np.ndarray      # [3] pitch, yaw, roll standard deviation (deg) over the judged frames

    @property
    def head_motion(self) -> float:
        """hypot(pitch SD, yaw SD) in degrees over the judged frames."""
        return float(np.hypot(self.pose_sd[0], self.pose_sd[1]))

    @property
    def neutral_share(self) -> float:
        return float((self.predictions == 0).mean()) if len(self.predictions) else float("nan")


def speaker_of(meta: dict) -> str:
    """The person of a track file (speaker ids that are one person merged, as the lip-sync split does)."""
    from backend.motion.lipsync_data import SAME_PERSON

    name = str(meta.get("speaker") or meta.get("clip_id") or "").lower()
    return SAME_PERSON.get(name, name)


def _track_clip(json_path: Path, meta: dict, speaker: str) -> TalkingClip:
    with np.load(json_path.with_suffix(".npz")) as z:
        found = np.asarray(z["face_found"], bool)
        landmarks = np.asarray(z["landmarks"], np.float32)[found]
        rotation = np.asarray(z["rotation"], np.float32)[found]
    return TalkingClip(str(meta.get("clip_id") or json_path.stem), speaker, landmarks,
                       head_angles(rotation).astype(np.float32) if len(rotation) else np.zeros((0, 3), np.float32))


def _tracks(tracks_dir: str | Path):
    tracks_dir = Path(tracks_dir)
    if not tracks_dir.is_dir():
        raise FileNotFoundError(f"no track folder {tracks_dir}: "
                                f"run `emogene prepare ../shared/data --out {tracks_dir}`")
    for json_path in sorted(tracks_dir.glob("*.json")):
        if json_path.with_suffix(".npz").is_file():
            yield json_path, json.loads(json_path.read_text())


def load_talking_clips(tracks_dir: str | Path, exclude: frozenset[str] | set[str] = REPORTED_CLIPS,
                       min_frames: int = 9) -> list[TalkingClip]:
    """Track files of ``../shared/data/talking/`` (incl. ``styletalk/`` and ``more/``), minus ``exclude``."""
    clips = []
    for json_path, meta in _tracks(tracks_dir):
        clip_id = str(meta.get("clip_id") or json_path.stem)
        source = "/" + str(meta.get("source") or "").replace("\\", "/")
        if "/talking/" not in source or clip_id in exclude:
            continue
        clip = _track_clip(json_path, meta, speaker_of(meta))
        if len(clip.landmarks) >= min_frames:
            clips.append(clip)
    return clips


def load_mead_neutral_clips(tracks_dir: str | Path, speakers: frozenset[str] | set[str]) -> list[TalkingClip]:
    """The MEAD neutral clips of ``speakers`` (upper-case ids) as :class:`TalkingClip` (for the same protocol)."""
    wanted = {s.upper() for s in speakers}
    return [_track_clip(p, m, str(m.get("speaker")).upper()) for p, m in _tracks(tracks_dir)
            if str(m.get("corpus") or "").lower() == "mead" and m.get("emotion") == "neutral"
            and str(m.get("speaker") or "").upper() in wanted]


def burst_frames(frame_count: int, frames: int = 27, burst: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices, burst id per index): the plate protocol's ``ceil(frames / burst)`` bursts of ``burst``
    consecutive frames spread over the clip (:meth:`PlateEvalConfig.burst_frames`)."""
    from backend.evaluation.plate_emotion import PlateEvalConfig

    idx = PlateEvalConfig(frames=frames, burst=burst, seeds=(0,)).burst_frames(frame_count)
    size = max(1, min(burst, frame_count))
    return idx, np.arange(len(idx)) // size


def read_clip(judge: EmotionJudge, clip: TalkingClip, reference: str = BURST_REFERENCE, frames: int = 27,
              burst: int = 9) -> ClipReading:
    """The judge on one clip's bursts, each burst judged on its own (the window stays inside it)."""
    if reference not in (BURST_REFERENCE, CLIP_REFERENCE):
        raise ValueError(f"reference must be {BURST_REFERENCE!r} or {CLIP_REFERENCE!r}, got {reference!r}")
    idx, bursts = burst_frames(len(clip.landmarks), frames, burst)
    lms = clip.landmarks[idx]
    ref = lms.mean(0) if reference == BURST_REFERENCE else clip.landmarks.mean(0)
    pred = predict_in_bursts(judge, lms, ref, bursts)
    return ClipReading(clip.clip_id, clip.speaker, reference, pred, bursts,
                       clip.angles[idx].std(0).astype(np.float32))


@dataclass
class NeutralSummary:
    neutral_share: float                  # frames read neutral, each speaker weighted equally
    ci95: tuple[float, float]             # bootstrap over speakers
    read_as: dict[str, float]             # share of frames per emotion (speaker-weighted)
    per_speaker: dict[str, float]
    clips: int
    speakers: int
    by_pose: list[dict] = field(default_factory=list)   # neutral share per pose-spread tercile of clips

    def to_dict(self) -> dict:
        return {"neutral_share": self.neutral_share, "ci95": list(self.ci95), "read_as": self.read_as,
                "per_speaker": self.per_speaker, "clips": self.clips, "speakers": self.speakers,
                "by_pose": self.by_pose}


def summarise(readings: list[ClipReading], reps: int = 2000, seed: int = 0) -> NeutralSummary:
    """Share read neutral (each speaker counts once: mean over their clips' frames), a 95 % interval resampling
    speakers, what the rest is read as, and the neutral share by tercile of the clips' pitch+yaw spread."""
    if not readings:
        raise ValueError("no clip readings to summarise")
    speakers = sorted({r.speaker for r in readings})
    dist = np.zeros((len(speakers), NUM_EMOTIONS))
    for k, s in enumerate(speakers):
        pred = np.concatenate([r.predictions for r in readings if r.speaker == s])
        dist[k] = np.bincount(pred, minlength=NUM_EMOTIONS) / len(pred)
    rng = np.random.default_rng(seed)
    boot = dist[rng.integers(0, len(speakers), (reps, len(speakers))), 0].mean(1)
    spread = np.array([r.head_motion for r in readings])
    edges = np.quantile(spread, [0, 1 / 3, 2 / 3, 1])
    by_pose = []
    for lo, hi, last in zip(edges[:-1], edges[1:], (False, False, True)):
        sel = [r for r, s in zip(readings, spread) if lo <= s and (s <= hi if last else s < hi)]
        if sel:
            by_pose.append({"pose_sd_deg": [round(float(lo), 2), round(float(hi), 2)], "clips": len(sel),
                            "neutral_share": float(np.mean([r.neutral_share for r in sel]))})
    return NeutralSummary(float(dist[:, 0].mean()), (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))),
                          {EMOTIONS[k]: float(dist[:, k].mean()) for k in range(NUM_EMOTIONS)},
                          {s: float(dist[k, 0]) for k, s in enumerate(speakers)}, len(readings), len(speakers),
                          by_pose)


def pose_correlation(readings: list[ClipReading]) -> float:
    """Spearman correlation over clips between pitch+yaw spread and the share read neutral (NaN if < 3 clips)."""
    if len(readings) < 3:
        return float("nan")
    from scipy.stats import spearmanr

    spread = np.array([r.head_motion for r in readings])
    share = np.array([r.neutral_share for r in readings])
    if spread.std() == 0 or share.std() == 0:
        return float("nan")
    return float(spearmanr(spread, share).statistic)


def speaker_pose_spread(clips: list[TalkingClip], frames: int = 27, burst: int = 9) -> dict[str, float]:
    """Per speaker: the median over their clips of hypot(pitch SD, yaw SD) (deg) on the judged burst frames."""
    per: dict[str, list[float]] = {}
    for c in clips:
        idx, _ = burst_frames(len(c.landmarks), frames, burst)
        sd = c.angles[idx].std(0)
        per.setdefault(c.speaker, []).append(float(np.hypot(sd[0], sd[1])))
    return {s: float(np.median(v)) for s, v in per.items()}


def split_speakers(clips: list[TalkingClip], confirmation_only: frozenset[str] = frozenset({"andrew"}),
                   frames: int = 27, burst: int = 9) -> tuple[list[str], list[str]]:
    """(selection, confirmation) halves of the talking speakers: ranked by pose spread, assigned alternately
    (selection first) so both halves span the same head motion; ``confirmation_only`` speakers (the reported
    clip's person) are swapped into the confirmation half with the next-ranked speaker."""
    spread = speaker_pose_spread(clips, frames, burst)
    ranked = sorted(spread, key=lambda s: (spread[s], s))
    for i, s in enumerate(ranked):
        if s in confirmation_only and i % 2 == 0:
            j = next((k for k in range(i + 1, len(ranked)) if k % 2 == 1 and ranked[k] not in confirmation_only),
                     next((k for k in range(i - 1, -1, -1) if k % 2 == 1 and ranked[k] not in confirmation_only), None))
            if j is not None:
                ranked[i], ranked[j] = ranked[j], ranked[i]
    return ranked[0::2], ranked[1::2]


def talking_head_neutral(judge: EmotionJudge, tracks_dir: str | Path, mead_speakers: frozenset[str] | set[str],
                         frames: int = 27, burst: int = 9) -> dict:
    """The report's numbers: the judge's neutral share on real talking heads (burst protocol; reference = the
    bursts' mean as a plate take's, and the clip's whole-length mean), per half of :func:`split_speakers`, and on
    the MEAD neutral clips of ``mead_speakers`` under the same protocol. The halves are always those of the
    default protocol (3 bursts of 9), whatever ``frames``/``burst`` the reading uses."""
    clips = load_talking_clips(tracks_dir)
    if not clips:
        raise FileNotFoundError(f"no talking-head track files (../shared/data/talking) in {tracks_dir}")
    selection, confirmation = split_speakers(clips)      # the halves the neutral prior was chosen with (27 / 9)
    out: dict = {"frames": frames, "burst": burst, "excluded": sorted(REPORTED_CLIPS),
                 "selection_speakers": selection, "confirmation_speakers": confirmation}
    for reference in (BURST_REFERENCE, CLIP_REFERENCE):
        readings = [read_clip(judge, c, reference, frames, burst) for c in clips]
        row = summarise(readings).to_dict()
        row["spearman_pose_spread_vs_neutral"] = pose_correlation(readings)
        row["halves"] = {name: summarise([r for r in readings if r.speaker in half]).neutral_share
                         for name, half in (("selection", selection), ("confirmation", confirmation))}
        row["per_clip"] = {r.clip_id: {"speaker": r.speaker, "neutral": r.neutral_share,
                                       "pose_sd_deg": [round(float(v), 2) for v in r.pose_sd],
                                       "counts": np.bincount(r.predictions, minlength=NUM_EMOTIONS).tolist()}
                           for r in readings}
        out[reference] = row
    mead = {}
    for c in load_mead_neutral_clips(tracks_dir, mead_speakers):
        r = read_clip(judge, c, BURST_REFERENCE, frames, burst)
        mead[c.clip_id] = {"neutral": r.neutral_share, "pose_sd_deg": [round(float(v), 2) for v in r.pose_sd],
                           "counts": np.bincount(r.predictions, minlength=NUM_EMOTIONS).tolist()}
    out["mead_neutral_bursts"] = mead
    return out


def neutral_share_in_motion_range(per_clip: dict, low: float, high: float) -> dict:
    """Speaker-weighted share read neutral of the clips (``talking_head_neutral``'s ``per_clip``) whose head motion
    (hypot of pitch and yaw SD) lies in ``[low, high]`` degrees: real heads that move as much as a plate's."""
    shares: dict[str, list[float]] = {}
    for row in per_clip.values():
        if low <= float(np.hypot(*row["pose_sd_deg"][:2])) <= high:
            shares.setdefault(row["speaker"], []).append(float(row["neutral"]))
    return {"range_deg": [round(float(low), 2), round(float(high), 2)],
            "neutral_share": float(np.mean([np.mean(v) for v in shares.values()])) if shares else float("nan"),
            "clips": int(sum(len(v) for v in shares.values())), "speakers": len(shares)}
