"""Derive the two data-calibrated parts of the ARKit landmark basis from real tracks.

    .venv/bin/python scripts/calibrate_arkit.py [--tracks cache/tracks] [--write]

Uses only tracks of the train split (held-out speakers stay out):

* ``BLINK_CLOSURE``: at each blink trough (a local minimum of eye openness below
  0.4 x the clip's median), the fraction of the clip's open lid gap (70th
  percentile) that is closed; the median over troughs and eyes.
* ``JAW_OPEN_DIRECTION``: per-point displacement from each track's rest face
  regressed on the inner-lip opening, over all frames; kept on the mandible
  (lower jaw outline, lower lip, mouth corners), zero elsewhere, scaled so the
  lower inner lip (iBUG 66) drops by ``JAW_OPEN_LIP_DROP``.

``--write`` rewrites ``bridge/arkit_calibration.py`` with the numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge.arkit import estimate_neutral, mouth_opening  # noqa: E402
from bridge.arkit_basis import JAW_OPEN_LIP_DROP  # noqa: E402
from bridge.landmarks import NUM_LANDMARKS  # noqa: E402

MANDIBLE = [*range(2, 15), 48, 54, 55, 56, 57, 58, 59, 60, 64, 65, 66, 67]


def train_tracks(folder: Path):
    for npz in sorted(folder.glob("*.npz")):
        meta_path = npz.with_suffix(".json")
        if not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        if meta.get("split") == "train":
            with np.load(npz) as z:
                yield meta["clip_id"], z["landmarks"].astype(np.float64), z["blink"].astype(np.float64)


def blink_closures(landmarks: np.ndarray, openness: np.ndarray) -> list[float]:
    out = []
    med = np.median(openness)
    troughs = [t for t in range(1, len(openness) - 1) if openness[t] <= openness[t - 1]
               and openness[t] <= openness[t + 1] and openness[t] < 0.4 * med]
    for upper, lower in (([37, 38], [41, 40]), ([43, 44], [47, 46])):
        gap = (landmarks[:, upper, 1] - landmarks[:, lower, 1]).mean(axis=1)
        open_gap = np.percentile(gap, 70)
        out += [1.0 - gap[t] / open_gap for t in troughs]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", default=str(REPO / "cache" / "tracks"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    closures, gaps, moves, clips = [], [], [], []
    for clip, landmarks, openness in train_tracks(Path(args.tracks)):
        clips.append(clip)
        closures += blink_closures(landmarks, openness)
        rest = estimate_neutral(landmarks)
        gaps.append(mouth_opening(landmarks) - mouth_opening(rest[None])[0])
        moves.append((landmarks - rest).reshape(len(landmarks), -1))
    if not clips:
        print(f"no train-split tracks in {args.tracks}", file=sys.stderr)
        return 1
    g, d = np.concatenate(gaps), np.concatenate(moves)
    direction = ((g @ d) / (g @ g)).reshape(NUM_LANDMARKS, 3)
    keep = np.zeros(NUM_LANDMARKS, bool)
    keep[MANDIBLE] = True
    direction[~keep] = 0.0
    direction *= JAW_OPEN_LIP_DROP / -direction[66, 1]
    closure = float(np.median(closures))
    print(f"{len(clips)} train tracks, {len(g)} frames, {len(closures)} blink troughs (both eyes)")
    print(f"BLINK_CLOSURE = {closure:.3f} (quartiles {np.percentile(closures, 25):.3f}, "
          f"{np.percentile(closures, 75):.3f})")
    print(f"jaw direction: lower lip {direction[66].round(3)}, chin {direction[8].round(3)}")
    if args.write:
        rows = ",\n".join("    (" + ", ".join(f"{v:.4f}" for v in row) + ")" for row in direction)
        text = (
            '"""Numbers measured on real tracks by ``scripts/calibrate_arkit.py --write`` (do not edit by hand).\n\n'
            f"{len(clips)} train-split tracks of cache/tracks ({len(g)} frames, {len(closures)} blink troughs);\n"
            "held-out (val) speakers were not used.\n"
            '"""\n'
            f"BLINK_CLOSURE = {closure:.3f}\n\n"
            f"#: jawOpen at weight 1, canonical units [{NUM_LANDMARKS}][3]: regression of landmark motion on mouth opening,\n"
            "#: kept on the mandible (lower jaw outline, lower lip, corners)\n"
            f"JAW_OPEN_DIRECTION = (\n{rows},\n)\n"
        )
        (REPO / "bridge" / "arkit_calibration.py").write_text(text)
        print("wrote bridge/arkit_calibration.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
