"""Why does keyed neutral depend on the motion draw? A look at eval emotion's cached intensity-0 takes, burst by burst.

Keyed neutral is judged on the intensity-0 take's plates against their own mean tracked shape (3 bursts of 9 frames
per draw), so a burst whose tracked shape sits away from that mean reads as an emotion. For every cached draw of one
subject (cache/eval_emotion/<subject>_s<seed>_*.npz; nothing is rendered) this reports per burst:
* the judge's reading of each frame and which face region's displacement carries it (the region reset to the mean);
* the head pose FaceMesh fits on the plates (pitch, yaw, roll deviation from the take's mean, degrees);
* the mean displacement per region of the tracked plates and of the driving landmarks (milli inter-ocular distances);
and per draw the judge on the *driving* landmarks plus real video's FaceMesh pose leak at the plates' pose (what a
person moving like that draw would read if the renderer turned the face as real video does).
Beside it, the same 3 x 9 protocol on real talking video (non-MEAD clips; the reported person excluded): keyed
neutral by the bursts' pose spread, and the burst-level brow-height slope per degree of pitch / yaw / roll, real
video against the plates. Writes draw_pose.json and draw_pose.png (brow height against pitch, by burst).

    python scripts/probe_render_draw_pose.py [--subject default] [--seeds 0,1,2] [--cache cache/eval_emotion]
        [--tracks cache/tracks] [--out cache/draw_pose_probe] [--neutral-bias B]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge.landmarks import MOUTH, REGIONS  # noqa: E402


def _merged(*names: str) -> list[int]:
    return [i for name in names for i in REGIONS[name]]


#: regions whose displacement is reported (iBUG indices)
BROWS = _merged("brow_r", "brow_l")
PROBE_REGIONS = {"brows": BROWS, "eyes": _merged("eye_r", "eye_l"), "nose": _merged("nose_bridge", "nose_base"),
                 "mouth": list(MOUTH), "jaw": _merged("jaw")}
ANGLES = ("pitch", "yaw", "roll")


def burst_slope(deviations: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``values [B]`` on pose ``deviations [B, 3]`` (per degree of pitch, yaw, roll)."""
    return np.linalg.lstsq(np.asarray(deviations, np.float64), np.asarray(values, np.float64), rcond=None)[0]


def region_shift(displacement: np.ndarray) -> dict[str, float]:
    """Mean x-y displacement ``[n, NUM_LANDMARKS, 2]`` of a burst -> its length per region, milli-IOD."""
    mean = displacement.mean(0)
    return {r: round(float(np.linalg.norm(mean[idx], axis=-1).mean() * 1000), 1) for r, idx in PROBE_REGIONS.items()}


def cached_draw(cache: Path, subject: str, seed: int) -> Path:
    """The cache file of one draw with the most judged frames (a short smoke run may sit beside the real one),
    the newest of those."""
    files = list(cache.glob(f"{subject}_s{seed}_*.npz"))
    if not files:
        raise FileNotFoundError(f"no cached takes of {subject!r} draw {seed} in {cache}: run `emogene eval emotion` first")

    def frames(path: Path) -> int:
        with np.load(path) as z:
            return int(len(z["frames"]))
    return max(files, key=lambda p: (frames(p), p.stat().st_mtime))


def real_video_protocol(clips: list[dict], judge, triples: int, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """eval emotion's keyed-neutral protocol on real talking clips: random triples of 9-frame bursts, reference =
    their mean. Returns (neutral share by pose spread, burst pose deviations [N, 3], burst brow heights [N] mIOD)."""
    from backend.evaluation.emotion_judge import predict_in_bursts

    rng = np.random.default_rng(seed)
    shares, spreads, devs, brow = [], [], [], []
    for c in clips:
        lm, ang = c["landmarks"], c["angles"]
        if len(lm) < 120:
            continue
        for _ in range(triples):
            starts = np.sort(rng.choice(len(lm) - 9, 3, replace=False))
            if np.any(np.diff(starts) < 9):
                continue
            idx = np.concatenate([np.arange(s, s + 9) for s in starts])
            ref = lm[idx].mean(0)
            ids = np.repeat(np.arange(3), 9)
            shares.append(float((predict_in_bursts(judge, lm[idx], ref, ids) == 0).mean()))
            mean_pose = np.stack([ang[s:s + 9].mean(0) for s in starts])
            dev = mean_pose - mean_pose.mean(0)
            spreads.append(np.abs(dev).max(0))
            devs.append(dev)
            brow += [float((lm[s:s + 9, BROWS, 1] - ref[BROWS, 1]).mean() * 1000) for s in starts]
    shares, spreads = np.array(shares), np.array(spreads)
    worst = np.maximum(spreads[:, 0], spreads[:, 2])          # the larger of pitch and roll
    table = {"triples": int(len(shares)), "keyed_neutral_all": round(float(shares.mean()), 3)}
    for lo, hi in ((0, 1.5), (1.5, 3), (3, 4.5), (4.5, 90)):
        sel = (worst >= lo) & (worst < hi)
        table[f"max |pitch|,|roll| burst deviation {lo}-{hi} deg"] = {
            "triples": int(sel.sum()), "keyed_neutral": round(float(shares[sel].mean()), 3) if sel.any() else None}
    return table, np.concatenate(devs), np.array(brow)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subject", default="default")
    parser.add_argument("--seeds", default="0,1,2", help="cached motion draws to read (default 0,1,2)")
    parser.add_argument("--cache", type=Path, default=REPO / "cache" / "eval_emotion")
    parser.add_argument("--tracks", type=Path, default=REPO / "cache" / "tracks")
    parser.add_argument("--triples", type=int, default=150, help="burst triples per real clip (default 150)")
    parser.add_argument("--out", type=Path, default=REPO / "cache" / "draw_pose_probe")
    parser.add_argument("--neutral-bias", type=float, default=None,
                        help="the judge's neutral prior (default: eval emotion's judge as it is now)")
    args = parser.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from collections import Counter

    from backend.evaluation import plate_emotion as pe
    from backend.evaluation.emotion_judge import predict_in_bursts
    from backend.evaluation.emotion_report import DEFAULT_JUDGE, _load_plates
    from backend.evaluation.judge_real_video import judge_on_real_video
    from backend.evaluation.pose_leak import fit_pose_leak, head_angles
    from bridge.emotions import EMOTIONS

    torch.set_num_threads(1)
    sys.path.insert(0, str(REPO / "scripts"))
    from measure_pose_leak import load_tracks

    real = [c for c in load_tracks(args.tracks) if not c["mead"]]
    leak = fit_pose_leak([(c["landmarks"], c["angles"]) for c in real]).coefficients
    judge_config = DEFAULT_JUDGE if args.neutral_bias is None else \
        dataclasses.replace(DEFAULT_JUDGE, neutral_bias=args.neutral_bias)
    judge = judge_on_real_video(args.tracks, judge_config).judge   # builds its pose augmentation too
    result: dict = {"subject": args.subject, "judge": judge_config.to_dict(), "draws": {}}
    plate_dev, plate_brow, plate_label = [], [], []
    for seed in pe.parse_seeds(args.seeds):
        path = cached_draw(args.cache, args.subject, seed)
        plates = _load_plates(path)
        neutral = plates.neutral
        if not neutral.found.all():
            raise RuntimeError(f"{path.name}: FaceMesh lost the face on {int((~neutral.found).sum())} neutral plates")
        angles = []
        for b in np.unique(neutral.bursts):
            sel = np.flatnonzero(neutral.bursts == b)
            angles.append(head_angles(pe.track_burst([neutral.plates[i] for i in sel], with_rotation=True)[2]))
        deviation = np.concatenate(angles) - np.concatenate(angles).mean(0)
        ref, driving_ref = neutral.landmarks.mean(0), neutral.driving.mean(0)
        reading = predict_in_bursts(judge, neutral.landmarks, ref, neutral.bursts)
        with_leak = neutral.driving.copy()
        with_leak[..., :2] += np.einsum("tk,kld->tld", deviation, leak)[..., :2]
        leak_reading = predict_in_bursts(judge, with_leak, with_leak.mean(0), neutral.bursts)
        draw = {"file": path.name, "keyed_neutral": round(float((reading == 0).mean()), 3),
                "driving_keyed_neutral": round(float((predict_in_bursts(judge, neutral.driving, driving_ref,
                                                                         neutral.bursts) == 0).mean()), 3),
                "driving_plus_real_video_leak_keyed_neutral": round(float((leak_reading == 0).mean()), 3), "bursts": {}}
        for b in np.unique(neutral.bursts):
            s = neutral.bursts == b
            carried = {}
            for region, idx in PROBE_REGIONS.items():      # the reading with this region put back on the mean
                moved = neutral.landmarks[s].copy()
                moved[:, idx] = ref[idx]
                carried[region] = round(float((predict_in_bursts(judge, moved, ref, np.zeros(int(s.sum()))) == 0).mean()), 2)
            brow = float((neutral.landmarks[s][:, BROWS, 1] - ref[BROWS, 1]).mean() * 1000)
            draw["bursts"][int(b)] = {
                "job_frames": [int(plates.frames[neutral.position_array()[s][0]]),
                               int(plates.frames[neutral.position_array()[s][-1]])],
                "judge": dict(Counter(EMOTIONS[i] for i in reading[s])),
                "neutral_share_with_region_reset": carried,
                "tracked_pose_deviation_deg": dict(zip(ANGLES, np.round(deviation[s].mean(0), 1).tolist())),
                "plates_region_shift_mIOD": region_shift((neutral.landmarks[s] - ref)[..., :2]),
                "driving_region_shift_mIOD": region_shift((neutral.driving[s] - driving_ref)[..., :2]),
                "brow_height_mIOD": round(brow, 1)}
            plate_dev.append(deviation[s].mean(0))
            plate_brow.append(brow)
            plate_label.append((seed, Counter(reading[s]).most_common(1)[0][0]))
        result["draws"][seed] = draw
        print(json.dumps({seed: draw}), flush=True)
    table, real_dev, real_brow = real_video_protocol(real, judge, args.triples)
    result["real_talking_video"] = table
    slopes = {"plates": burst_slope(np.array(plate_dev), np.array(plate_brow)),
              "real talking video": burst_slope(real_dev, real_brow)}
    result["burst_brow_height_slope_mIOD_per_deg"] = {k: dict(zip(ANGLES, np.round(v, 2).tolist()))
                                                      for k, v in slopes.items()}
    result["real_video_leak_brow_height_mIOD_per_deg"] = dict(zip(ANGLES, np.round(
        leak[:, BROWS, 1].mean(1) * 1000, 2).tolist()))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "draw_pose.json").write_text(json.dumps(result, indent=1))

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    keep = np.random.default_rng(0).choice(len(real_brow), min(3000, len(real_brow)), replace=False)
    ax.scatter(real_dev[keep, 0], real_brow[keep], s=3, c="0.75", label="real talking video bursts")
    pd, pb = np.array(plate_dev), np.array(plate_brow)
    for seed in dict.fromkeys(s for s, _ in plate_label):
        sel = [i for i, (s, _) in enumerate(plate_label) if s == seed]
        ax.scatter(pd[sel, 0], pb[sel], s=40, label=f"plates, draw {seed}")
        for i in sel:
            ax.annotate(EMOTIONS[plate_label[i][1]], (pd[i, 0], pb[i]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    x = np.linspace(-6, 6, 2)
    for name, style in (("plates", "-"), ("real talking video", "--")):
        ax.plot(x, slopes[name][0] * x, style, c="k", lw=1, label=f"{name}: {slopes[name][0]:.2f} mIOD/deg pitch")
    ax.set_xlabel("burst pitch deviation from the take mean (deg, FaceMesh fit)")
    ax.set_ylabel("burst brow height deviation (milli-IOD, canonical y)")
    ax.set_title(f"{args.subject}: brow height vs pitch, burst means (keyed neutral reading labelled)", fontsize=9)
    ax.set_xlim(-7, 7)
    ax.set_ylim(-30, 30)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "draw_pose.png", dpi=120)
    print(json.dumps({k: result[k] for k in ("real_talking_video", "burst_brow_height_slope_mIOD_per_deg",
                                             "real_video_leak_brow_height_mIOD_per_deg")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
