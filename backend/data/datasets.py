"""Dataset adapters: find the clips under one or more paths and describe each as a :class:`ClipSource`.

Layouts recognised (all at once, per file):

* **MEAD flat** - ``{speaker}_front_{emotion}_level{n}_{take}.mp4`` (as in ../shared/data/mead);
  a trailing suffix (``_with_audio_1080p``) and a missing ``front_`` are accepted.
* **MEAD tree** - ``{speaker}/video/front/{emotion}/level_{n}/{take}.mp4`` with its audio at
  ``{speaker}/audio/{emotion}/level_{n}/{take}.m4a`` (MEAD's own release layout).
* **Talking videos** (VoxCeleb2/HDTF style) - any other video; its audio is the video's own
  track. Speaker: for VoxCeleb2 nesting (``id00012/<yt-id>/00001.mp4``, a numeric stem
  two folders deep) the ``id00012`` folder, otherwise the file stem without take/clip/
  duration suffixes (``Obama_clip1`` -> ``obama``, ``German_20s`` -> ``german``).
* **Subject video + separate wav** - a video with a same-stem audio file beside it
  (``sun.mp4`` + ``sun.wav``): that file is the audio.

Emotion labels come only from MEAD names (level n -> intensity ``bridge.emotions.level_intensity(n)``);
every other clip has ``emotion = None``. Splits: speakers are assigned to validation
deterministically (a stable hash of the speaker id, ``val_fraction`` of them), and every
clip also records ``val_start_frame`` for a split by time (its last ``val_fraction``).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bridge.emotions import EMOTIONS, level_intensity

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"}  # GRID ships .mpg
AUDIO_SUFFIXES = (".wav", ".flac", ".m4a", ".mp3", ".aac", ".ogg")

_MEAD_FLAT = re.compile(
    r"^(?P<speaker>[MW]\d{3})_(?:front_)?(?P<emotion>[a-z]+)_level_?(?P<level>[1-3])_(?P<take>\d{3})(?:_.*)?$",
    re.IGNORECASE)
_SPEAKER_SUFFIX = re.compile(r"([_\-. ](clip|take|part)?[_\-. ]?\d+(s|fps)?)+$", re.IGNORECASE)


@dataclass
class ClipSource:
    clip_id: str                 # unique, file-system safe name of the track files
    video: Path
    audio: Path | None           # None: no audio expected; == video: the video's own track
    corpus: str                  # "mead" | "mead_tree" | "talking" | "subject"
    speaker: str
    emotion: str | None = None
    level: int | None = None
    take: str | None = None

    @property
    def intensity(self) -> float | None:
        return level_intensity(self.level)


def speaker_from_stem(stem: str) -> str:
    """``Obama_clip1`` -> ``obama``, ``WDA_KatieHill_000`` -> ``wda_katiehill``, ``lieu_60s`` -> ``lieu``."""
    base = _SPEAKER_SUFFIX.sub("", stem) or stem
    return base.lower()


def safe_clip_id(text: str) -> str:
    """A file-system safe, ASCII id (unicode folded, odd characters -> ``_``)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._")
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:6]
    return cleaned if cleaned == text else f"{cleaned or 'clip'}_{digest}"


def _mead_tree_match(video: Path) -> dict | None:
    parts = video.parts
    # .../{speaker}/video/front/{emotion}/level_{n}/{take}.mp4
    if len(parts) >= 6 and parts[-5] == "video" and parts[-4].lower() == "front" \
            and parts[-2].lower().startswith("level_") and parts[-3].lower() in EMOTIONS:
        try:
            level = int(parts[-2].split("_", 1)[1])
        except ValueError:
            return None
        speaker = parts[-6]
        audio = Path(*parts[:-5]) / "audio" / parts[-3] / parts[-2] / f"{video.stem}.m4a"
        return {"speaker": speaker, "emotion": parts[-3].lower(), "level": level, "take": video.stem,
                "audio": audio}
    return None


def _companion_audio(video: Path) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        for candidate in (video.with_suffix(suffix), video.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def describe_clip(video: Path, root: Path | None = None) -> ClipSource:
    """Classify one video file (see the module doc for the rules)."""
    video = Path(video)
    tree = _mead_tree_match(video)
    if tree is not None:
        cid = safe_clip_id(f"{tree['speaker']}_front_{tree['emotion']}_level{tree['level']}_{tree['take']}")
        return ClipSource(cid, video, tree["audio"] if tree["audio"].is_file() else None, "mead_tree",
                          tree["speaker"], tree["emotion"], tree["level"], tree["take"])
    flat = _MEAD_FLAT.match(video.stem)
    if flat and flat["emotion"].lower() in EMOTIONS:
        audio = _companion_audio(video) or video  # the video's own track, if it has one
        return ClipSource(safe_clip_id(video.stem), video, audio, "mead", flat["speaker"].upper(),
                          flat["emotion"].lower(), int(flat["level"]), flat["take"])
    companion = _companion_audio(video)
    rel = video.relative_to(root) if root is not None and video.is_relative_to(root) else Path(video.name)
    if len(rel.parts) >= 3 and video.stem.isdigit():  # VoxCeleb2: <speaker>/<video-id>/00001.mp4
        speaker = rel.parts[-3]
        cid = safe_clip_id("_".join(rel.with_suffix("").parts[-3:]))
    else:
        speaker = speaker_from_stem(video.stem)
        cid = safe_clip_id(video.stem)
    if companion is not None:
        return ClipSource(cid, video, companion, "subject", speaker)
    return ClipSource(cid, video, video, "talking", speaker)


def discover_clips(paths: list[str | Path]) -> tuple[list[ClipSource], list[str]]:
    """All videos under ``paths`` (files or folders, recursive) -> (clips, problems).

    Problems are readable lines for paths that do not exist or hold no video. Clip ids
    are made unique (a numeric suffix) when two files would share one.
    """
    clips: list[ClipSource] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            problems.append(f"{path}: no such file or folder")
            continue
        if path.is_file():
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                problems.append(f"{path}: not a video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
                continue
            clips.append(describe_clip(path, path.parent))
            continue
        videos = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
                        and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not videos:
            problems.append(f"{path}: no video files found under this folder")
        clips.extend(describe_clip(v, path) for v in videos)
    seen: dict[str, int] = {}
    for clip in clips:
        n = seen.get(clip.clip_id, 0)
        seen[clip.clip_id] = n + 1
        if n:
            clip.clip_id = f"{clip.clip_id}_{n + 1}"
    return clips, problems


def _speaker_hash(speaker: str) -> str:
    return hashlib.sha1(speaker.lower().encode("utf-8")).hexdigest()


def validation_speakers(speakers: list[str], val_fraction: float = 0.2) -> set[str]:
    """Deterministic speaker split: the ``ceil(val_fraction * n)`` speakers whose stable hash
    sorts first (at least one when there are two or more speakers, never all of them).

    The choice depends only on the set of speaker ids, so the same corpus gives the same
    split on every machine; adding speakers can move the boundary (re-run with ``--force``).
    """
    unique = sorted(set(speakers), key=_speaker_hash)
    if len(unique) < 2 or val_fraction <= 0:
        return set()
    count = min(len(unique) - 1, max(1, int(np.ceil(val_fraction * len(unique)))))
    return set(unique[:count])


def time_split_start(frame_count: int, val_fraction: float = 0.2) -> int:
    """First frame of a clip's held-out tail for a split by time."""
    return int(round(frame_count * (1.0 - val_fraction)))
