"""The demo's emotion comparison: one stretch of speech rendered once per emotion, side by side.

The same audio, seed and subject go through the backend once per emotion (constant,
intensity 1), so the only difference between the columns is the emotion: a viewer
sees what keying *happy* or *sad* changes on the plates. Writes
``emotions_side_by_side.mp4`` (columns labelled, with the speech) and
``emotions_side_by_side.png`` (three moments of the stretch, one row each).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from backend.commands.generate import GenerateOptions

COMPARED_EMOTIONS = ("neutral", "happy", "sad")


@dataclass
class ComparisonSpan:
    start_s: float = 3.4          # inside the demo clip's second sentence
    seconds: float = 2.0
    emotions: tuple[str, ...] = COMPARED_EMOTIONS


def _label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = image.copy()
    scale = max(0.4, image.shape[0] / 320)
    cv2.putText(out, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _take_frames(take: Path, background: Callable[[tuple[int, int]], np.ndarray]) -> list[np.ndarray]:
    """A take's plates composited over the background, or its landmark drawings when it has no plates."""
    import cv2

    from backend.media.compositing import composite_over, draw_landmarks

    plates = sorted((take / "plates").glob("frame_*.png"))
    if plates:
        frames = []
        for path in plates:
            rgba = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
            frames.append(composite_over(rgba, background((rgba.shape[1], rgba.shape[0]))))
        return frames
    landmarks = np.load(take / "landmarks.npz")["landmarks"]
    return [draw_landmarks(points, size=256) for points in landmarks]


def render_comparison(span: ComparisonSpan, audio: np.ndarray, out: Path, fps: float,
                      generate_take: Callable[[Path, Path, str], int],
                      background: Callable[[tuple[int, int]], np.ndarray]) -> dict:
    """Render ``span`` of ``audio`` (16 kHz) once per emotion through ``generate_take(wav, take_dir, spec)``
    and write the side-by-side mp4 and png into ``out``. Returns a summary for timing.json."""
    from backend.media.video import write_mp4, write_wav

    rate = 16_000
    first = int(round(span.start_s * rate))
    piece = audio[first:first + int(round(span.seconds * rate))]
    if len(piece) < rate // 2:     # a short custom clip: compare its opening instead
        piece = audio[: int(round(span.seconds * rate))]
        first = 0
    work = out / "emotion_takes"
    work.mkdir(parents=True, exist_ok=True)
    wav = write_wav(work / "speech.wav", piece, rate)
    columns = []
    for emotion in span.emotions:
        take = work / emotion
        code = generate_take(wav, take, f"{emotion}:1@0")
        if code != 0:
            raise RuntimeError(f"the {emotion} take of the emotion comparison failed (exit code {code})")
        columns.append(_take_frames(take, background))
    count = min(len(c) for c in columns)
    rows = [np.concatenate([_label(col[i], name) for col, name in zip(columns, span.emotions)], axis=1)
            for i in range(count)]
    video = write_mp4(out / "emotions_side_by_side.mp4", iter(rows), fps, piece)
    moments = sorted({count // 4, count // 2, (3 * count) // 4})
    still = np.concatenate([rows[i] for i in moments], axis=0)
    import cv2
    cv2.imwrite(str(out / "emotions_side_by_side.png"), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
    return {"emotion_comparison": {"emotions": list(span.emotions), "start_s": first / rate,
                                   "seconds": round(len(piece) / rate, 3), "frames": count,
                                   "files": [video.name, "emotions_side_by_side.png"]}}


def generate_take_via(base: GenerateOptions) -> Callable[[Path, Path, str], int]:
    """A ``generate_take`` that runs ``emogene generate``'s client (``base``: backend, fps, subject ...)."""
    from dataclasses import replace

    from backend.commands.generate import generate_to_folder

    def run(wav: Path, take: Path, spec: str) -> int:
        return generate_to_folder(replace(base, audio=Path(wav), emotion=spec, out=Path(take)))

    return run
