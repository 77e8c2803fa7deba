"""How much does head pose leak into the landmarks the emotion judge reads, and how far does the pose sampler go?

Real video only (track files of ``emogene prepare``; the reported clip's person, andrew, is left out):
* the linear leak (backend/evaluation/pose_leak.py) fitted on every non-MEAD clip: landmark shift per degree of
  pitch / yaw / roll for jaw, brows, eyes, nose, mouth (milli inter-ocular distances per degree);
* how much of the jaw + brow variance of *held-out people* the head pose explains, before and after removing a
  leak fitted on the other people (2 folds of the non-MEAD people);
* head-pose spread: each shipped subject's own footage (track.npz), the pose sampler on a tuning clip's speech
  (KristiNoem's VAD track by default), MEAD's frontal clips (within each clip).
Writes OUT/pose_leak.json and OUT/pose_ranges.png.

    python scripts/measure_pose_leak.py [--tracks cache/tracks] [--clip KristiNoem] [--out cache/pose_leak]
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.evaluation.pose_leak import PoseLeak, fit_pose_leak, head_angles  # noqa: E402
from bridge.landmarks import MOUTH, REGIONS  # noqa: E402

REPORTED_PERSON = "andrew"       # andrew_clip_1 is the reported clip: never used to measure or tune
GROUPS = {"jaw": list(REGIONS["jaw"]), "brows": list(REGIONS["brow_r"]) + list(REGIONS["brow_l"]),
          "eyes": list(REGIONS["eye_r"]) + list(REGIONS["eye_l"]),
          "nose": list(REGIONS["nose_bridge"]) + list(REGIONS["nose_base"]), "mouth": list(MOUTH)}
SUBJECTS = ("default", "mead_m030")


def load_tracks(tracks: Path) -> list[dict]:
    out = []
    for path in sorted(tracks.glob("*.json")):
        meta = json.loads(path.read_text())
        if str(meta.get("speaker", "")).lower() == REPORTED_PERSON or not path.with_suffix(".npz").is_file():
            continue
        with np.load(path.with_suffix(".npz")) as z:
            ok = z["face_found"].astype(bool)
            if ok.sum() < 10:
                continue
            out.append({"clip": meta["clip_id"], "speaker": str(meta.get("speaker")),
                        "mead": str(meta.get("corpus", "")).lower() == "mead",
                        "landmarks": z["landmarks"][ok].astype(np.float32), "angles": head_angles(z["rotation"][ok]),
                        "speech": z["speech"].astype(bool) if "speech" in z.files else None})
    if not out:
        raise FileNotFoundError(f"no track files in {tracks}: run `emogene prepare ../shared/data --out {tracks}`")
    return out


def pose_share(clips: list[dict], leak: PoseLeak | None, idx: list[int]) -> float:
    """Share of the (x, y) variance of landmarks ``idx`` that the head pose explains (lip opening as covariate),
    each clip centred on its own mean; with ``leak`` removed first when given."""
    xs, ys = [], []
    for c in clips:
        lm, a = c["landmarks"], c["angles"]
        if leak is not None:
            lm = leak.remove(lm, a, a.mean(0))
        x = np.concatenate([a, (lm[:, MOUTH[18], 1] - lm[:, MOUTH[14], 1])[:, None]], 1)
        xs.append(x - x.mean(0))
        ys.append((lm - lm.mean(0))[:, idx, :2].reshape(len(lm), -1))
    x, y = np.concatenate(xs), np.concatenate(ys)
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    return float(((x[:, :3] @ beta[:3]) ** 2).sum() / (y ** 2).sum())


def spread(angles: np.ndarray, centre: np.ndarray) -> dict:
    d = angles - centre
    return {"std": np.round(d.std(0), 2).tolist(), "p0.5": np.round(np.percentile(d, 0.5, 0), 1).tolist(),
            "p99.5": np.round(np.percentile(d, 99.5, 0), 1).tolist()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=Path, default=REPO / "cache" / "tracks")
    parser.add_argument("--clip", default="KristiNoem", help="tuning clip whose VAD drives the sampler")
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds of the clip sampled (eval emotion: 12)")
    parser.add_argument("--out", type=Path, default=REPO / "cache" / "pose_leak")
    args = parser.parse_args()
    from backend.motion.pose_sampling import PoseTrack, sample_pose

    clips = load_tracks(args.tracks)
    real = [c for c in clips if not c["mead"]]
    mead = [c for c in clips if c["mead"]]
    leak = fit_pose_leak([(c["landmarks"], c["angles"]) for c in real])
    result: dict = {"non_mead_clips": len(real), "mead_clips": len(mead), "leak_milliIOD_per_deg(pitch,yaw,roll)": {
        name: np.round(1000 * np.linalg.norm(leak.coefficients[:, idx, :2].astype(np.float64), axis=-1).mean(1), 2).tolist()
        for name, idx in GROUPS.items()}}
    fold = {c["speaker"]: zlib.crc32(c["speaker"].encode()) % 2 for c in real}
    jaw_brows = GROUPS["jaw"] + GROUPS["brows"]
    result["heldout_people_pose_share_jaw_brows(before,after)"] = {}
    for k in (0, 1):
        fitted = fit_pose_leak([(c["landmarks"], c["angles"]) for c in real if fold[c["speaker"]] != k])
        held = [c for c in real if fold[c["speaker"]] == k]
        result["heldout_people_pose_share_jaw_brows(before,after)"][f"fold {k}"] = [
            round(pose_share(held, None, jaw_brows), 4), round(pose_share(held, fitted, jaw_brows), 4)]
    mead_dev = np.concatenate([c["angles"] - c["angles"].mean(0) for c in mead]) if mead else np.zeros((0, 3))
    result["mead_within_clip"] = spread(mead_dev, np.zeros(3)) if len(mead_dev) else {}
    tuning = next((c for c in clips if c["clip"] == args.clip), None)
    if tuning is None or tuning["speech"] is None:
        raise FileNotFoundError(f"no track with a speech mask for --clip {args.clip} in {args.tracks}")
    frames = min(len(tuning["speech"]), int(args.seconds * 25))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(SUBJECTS), 3, figsize=(12, 3.2 * len(SUBJECTS)), squeeze=False)
    for row, subject in enumerate(SUBJECTS):
        path = REPO / "backend" / "assets" / "subjects" / subject / "track.npz"
        if not path.is_file():
            continue
        track = PoseTrack.from_npz(path)
        own = head_angles(track.rotation)
        centre = np.median(own, 0)
        sampled = head_angles(sample_pose(track, frames, tuning["speech"][:frames], seed=0)[0])
        lo, hi = np.percentile(own, 0.5, 0), np.percentile(own, 99.5, 0)
        result[subject] = {"own_footage_median_deg": np.round(centre, 1).tolist(), "own_footage": spread(own, centre),
                           f"sampled_on_{args.clip}": spread(sampled, centre),
                           "sampled_outside_own_p0.5_p99.5_plus_0.5deg": np.round(
                               ((sampled < lo - 0.5) | (sampled > hi + 0.5)).mean(0), 3).tolist(),
                           "sampled_std_over_own_std": np.round(sampled.std(0) / own.std(0), 2).tolist()}
        for k, name in enumerate(("pitch", "yaw", "roll")):
            ax = axes[row, k]
            bins = np.linspace(-12, 12, 49)
            ax.hist(own[:, k] - centre[k], bins, density=True, alpha=0.5, label=f"{subject} own footage")
            ax.hist(sampled[:, k] - centre[k], bins, density=True, alpha=0.5, label=f"sampled on {args.clip}")
            if len(mead_dev):
                ax.hist(mead_dev[:, k], bins, density=True, histtype="step", color="k", label="MEAD (within clip)")
            ax.set_title(f"{subject}: {name}, deg from its median", fontsize=9)
            if k == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "pose_ranges.png", dpi=90)
    (args.out / "pose_leak.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
