"""Regenerate ``backend/data/mean_face.py`` from real clips: ``python -m backend.data.derive_mean_face [DATA]``.

Uses every frame of the MEAD front clips and every 4th frame of the short talking
clips in ``DATA`` (default ``../shared/data``), through :func:`canonical.derive_mean_face`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from backend.data.canonical import derive_mean_face
from backend.data.face_tracking import track_video

SKIP_LONG = ("cnn2_25fps", "lieu_60s")  # long single-speaker clips would dominate the mean


def main(data: Path) -> None:
    tracks, sources = [], []
    for p in sorted((data / "mead").glob("*_front_*.mp4")):
        tracks.append(track_video(p).points)
        sources.append(p.name)
    for p in sorted((data / "talking").glob("*.mp4")) + sorted((data / "talking" / "styletalk").glob("*.mp4")):
        if p.stem in SKIP_LONG:
            continue
        tracks.append(track_video(p).points[::4])
        sources.append(p.name)
    mean = derive_mean_face(tracks)
    frames = sum(len(t) for t in tracks)
    rows = ",\n".join(f"    ({x: .6f}, {y: .6f}, {z: .6f})" for x, y, z in mean.tolist())
    text = (f'"""The mean face: iBUG points in canonical space (generated, do not edit).\n\n'
            f"Made by ``python -m backend.data.derive_mean_face`` from {frames} frames of {len(tracks)} real\n"
            f"clips in ../shared/data (MEAD front clips, HDTF/retalking/styletalk/sun talking clips):\n"
            f"generalised Procrustes on mediapipe FaceMesh points, symmetrised left/right.\n"
            f'"""\n\nMEAN_FACE_68 = (\n{rows},\n)\n')
    Path(__file__).with_name("mean_face.py").write_text(text)
    print(f"wrote mean_face.py from {frames} frames of {len(tracks)} clips")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared" / "data")
