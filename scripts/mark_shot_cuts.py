"""Add the edit cuts of a subject's source video to pose tracks prepared before cuts were detected.

    python scripts/mark_shot_cuts.py ../shared/data/talking/cnn2_25fps.mp4 \
        backend/assets/subjects/default/track.npz backend/assets/models/default_pose.npz

Each track (one row per 25 fps frame of that one video) gets ``shot_starts`` (rows that start a new shot, the same
detector ``prepare-subject`` now runs); every other array is written back unchanged. A track of a different length
than the video's 25 fps resampling is refused.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from backend.data.shot_cuts import add_shot_starts

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("tracks", type=Path, nargs="+", help="track.npz / pose .npz files of that video")
    args = parser.parse_args(argv)
    try:
        cuts = add_shot_starts(args.video, args.tracks)
    except ValueError as exc:
        raise SystemExit(str(exc))
    print(f"{args.video.name}: {len(cuts)} cut(s) at 25 fps rows {cuts.tolist()}; written into "
          f"{', '.join(str(p) for p in args.tracks)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
