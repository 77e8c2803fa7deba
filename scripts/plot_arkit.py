"""Plot ARKit weights solved from a real track against what they should follow.

    .venv/bin/python scripts/plot_arkit.py [--track cache/tracks/lieu_60s.npz] [--frames 250]
        [--out cache/arkit/arkit_weights.png]

Panels: jawOpen vs the inner-lip opening; eyeBlink L/R vs the track's eye
openness; the most active other shapes; and, for MEAD M030, smile weights of
the happy take vs the neutral take (both against the neutral take's rest face).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge import arkit  # noqa: E402
from bridge.arkit_names import ARKIT_INDEX, ARKIT_NAMES  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default=str(REPO / "cache" / "tracks" / "lieu_60s.npz"))
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--out", default=str(REPO / "cache" / "arkit" / "arkit_weights.png"))
    args = parser.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with np.load(args.track) as z:
        points, openness = z["landmarks"][: args.frames], z["blink"][: args.frames]
    w = arkit.solve(points).weights
    t = np.arange(len(w))
    fig, axes = plt.subplots(4, 1, figsize=(11, 11))
    ax = axes[0]
    ax.plot(t, w[:, ARKIT_INDEX["jawOpen"]], label="jawOpen")
    ax.plot(t, arkit.mouth_opening(points) / 0.6, "--", label="inner-lip opening / 0.6")
    ax.set_title(f"{Path(args.track).stem}: mouth"), ax.legend(loc="upper right")
    ax = axes[1]
    for name in ("eyeBlinkLeft", "eyeBlinkRight"):
        ax.plot(t, w[:, ARKIT_INDEX[name]], label=name)
    ax.plot(t, openness / np.median(openness), "k--", label="eye openness / median")
    ax.set_title("eyes"), ax.legend(loc="upper right")
    ax = axes[2]
    others = [k for k in np.argsort(-w.mean(axis=0)) if ARKIT_NAMES[k] not in
              ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight")][:6]
    for k in others:
        ax.plot(t, w[:, k], label=ARKIT_NAMES[k])
    ax.set_title("most active other shapes"), ax.legend(loc="upper right", fontsize=8)
    ax = axes[3]
    folder = Path(args.track).parent
    neutral_path, happy_path = folder / "M030_front_neutral_level1_001.npz", folder / "M030_front_happy_level3_001.npz"
    if neutral_path.is_file() and happy_path.is_file():
        calm, happy = np.load(neutral_path)["landmarks"], np.load(happy_path)["landmarks"]
        rest = arkit.estimate_neutral(calm)
        for label, pts, style in (("neutral", calm, "--"), ("happy", happy, "-")):
            weights = arkit.solve(pts, rest).weights
            for name in ("mouthSmileLeft", "mouthSmileRight"):
                ax.plot(weights[:, ARKIT_INDEX[name]], style, label=f"M030 {label}: {name}")
        ax.set_title("MEAD M030 happy vs neutral (rest face of the neutral take)"), ax.legend(fontsize=8)
    for ax in axes:
        ax.set_ylim(-0.05, 1.1), ax.set_xlabel("frame (25 fps)")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
