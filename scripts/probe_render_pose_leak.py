"""Does the *rendered* face leak head pose into the landmarks the emotion judge reads, more than real video does?

A controlled test on one subject: the neutral (intensity 0) take of a tuning clip is generated once; chosen bursts
are rendered with the motion stage's own head pose and again with the head turned by -D and +D degrees about each
camera axis (same driving landmarks, same translation), composited, tracked like real video. Per axis it reports:
* how many degrees FaceMesh's fit sees per degree asked (1.0: the face turns with the head);
* the tracked canonical landmark shift per degree (jaw, brows: mean length; chin: vertical), milli inter-ocular
  distances, beside what the linear FaceMesh leak fitted on real non-MEAD video predicts for the same tracked turn;
* the plate judge's reading (majority over the burst; reference: the tracked mean of the unturned bursts).
A renderer whose brows or chin move much more per degree than real video's leak shows pose as expression.

    python scripts/probe_render_pose_leak.py [--subject default] [--size 512] [--bursts 0,3] [--degrees 3]
        [--audio ../shared/data/talking/styletalk/KristiNoem.wav] [--subjects-root DIR] [--out cache/pose_probe]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

AXES = (("pitch", "x"), ("yaw", "y"), ("roll", "z"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subject", default="default")
    parser.add_argument("--size", type=int, default=512, help="square plate size (default 512)")
    parser.add_argument("--bursts", default="0,3", help="burst numbers of eval emotion's layout (default 0,3)")
    parser.add_argument("--degrees", type=float, default=3.0)
    parser.add_argument("--audio", type=Path, default=REPO.parent / "shared" / "data" / "talking" / "styletalk" /
                        "KristiNoem.wav", help="tuning speech (never the reported andrew_clip_1)")
    parser.add_argument("--subjects-root", type=Path, default=None, help="extra subject folder root, searched first")
    parser.add_argument("--tracks", type=Path, default=REPO / "cache" / "tracks")
    parser.add_argument("--out", type=Path, default=REPO / "cache" / "pose_probe")
    args = parser.parse_args()
    if "andrew" in args.audio.name:
        raise ValueError("andrew_clip_1 is the reported clip: probe on a tuning clip")
    import torch
    from scipy.spatial.transform import Rotation
    from tqdm import tqdm

    from backend.composition import StageSet
    from backend.evaluation import plate_emotion as pe
    from backend.evaluation.emotion_judge import displacement_features
    from backend.evaluation.emotion_report import DEFAULT_JUDGE
    from backend.evaluation.judge_real_video import judge_on_real_video
    from backend.evaluation.pose_leak import fit_pose_leak, head_angles
    from backend.media.compositing import composite_over
    from backend.subjects import SubjectStore
    from bridge.emotions import EMOTIONS
    from bridge.landmarks import REGIONS

    torch.set_num_threads(1)
    sys.path.insert(0, str(REPO / "scripts"))
    from measure_pose_leak import load_tracks

    real = [c for c in load_tracks(args.tracks) if not c["mead"]]
    leak = fit_pose_leak([(c["landmarks"], c["angles"]) for c in real]).coefficients[..., :2] * 1000
    judge = judge_on_real_video(args.tracks, DEFAULT_JUDGE).judge   # builds its pose augmentation too
    store = SubjectStore([args.subjects_root] if args.subjects_root else None)
    stages = StageSet(device="cpu", subjects=store)
    # eval emotion's layout of sessions 6-7 (54 frames = 6 bursts of 9, motion draw 0), fixed here so that burst
    # numbers keep meaning the same frames when eval emotion's defaults change (b448ddf: 27 frames per draw)
    config = pe.PlateEvalConfig(audio=args.audio, resolution=args.size, frames=54, seeds=(0,))
    audio = pe.load_speech(config)
    frames = config.burst_frames(int(np.ceil(len(audio) / 16000 * pe.FPS)))
    background = pe.subject_background(store.path(args.subject), (args.size, args.size))
    job = pe._job(args.subject, audio, "neutral", 0.0, config)
    state, _ = pe.run_motion(stages, job)
    bursts = [int(b) for b in args.bursts.split(",")]
    jaw, brows, chin = list(REGIONS["jaw"]), list(REGIONS["brow_r"]) + list(REGIONS["brow_l"]), [7, 8, 9]

    def render(sel: np.ndarray, axis: str | None, degrees: float):
        st = dict(state)
        if axis is not None:
            rot = np.asarray(state["rotation"]).copy()
            turn = Rotation.from_euler(axis, degrees, degrees=True).as_matrix()
            rot[sel] = (turn[None] @ rot[sel]).astype(rot.dtype)
            st["rotation"] = rot
        plates, _ = pe.render_frames(stages, job, st, sel)
        landmarks, found, rotation = pe.track_burst([np.asarray(composite_over(plates[j], background)) for j in range(len(sel))],
                                                    with_rotation=True)
        if not found.all():
            raise RuntimeError(f"FaceMesh lost the face on {int((~found).sum())} plates")
        return landmarks, head_angles(rotation)

    renders = {}
    plan = [(b, axis, d) for b in bursts for axis, d in [(None, 0.0)] + [(a, s * args.degrees) for _, a in AXES
                                                                          for s in (-1, 1)]]
    for b, axis, d in tqdm(plan, desc="render + track", unit="burst"):
        renders[(b, axis, d)] = render(frames[b * config.burst:(b + 1) * config.burst], axis, d)
    reference = np.concatenate([renders[(b, None, 0.0)][0] for b in bursts]).mean(0)

    def reading(landmarks):
        counts = np.bincount(judge.predict(displacement_features(landmarks, reference, judge.config)),
                             minlength=len(EMOTIONS))
        return EMOTIONS[int(counts.argmax())]

    result: dict = {"subject": args.subject, "subjects_root": str(args.subjects_root), "size": args.size,
                    "audio": args.audio.name, "degrees": args.degrees}
    for b in bursts:
        base_lm, base_ang = renders[(b, None, 0.0)]
        row: dict = {"pose_deg(pitch,yaw,roll)": np.round(base_ang.mean(0), 1).tolist(),
                     "judge_unturned": reading(base_lm)}
        for k, (name, axis) in enumerate(AXES):
            (lo_lm, lo_ang), (hi_lm, hi_ang) = renders[(b, axis, -args.degrees)], renders[(b, axis, args.degrees)]
            turned = (hi_ang - lo_ang).mean(0)
            shift = (hi_lm - lo_lm).mean(0)[:, :2].astype(np.float64) * 1000 / (2 * args.degrees)
            expected = np.einsum("k,kld->ld", turned / (2 * args.degrees), leak.astype(np.float64))
            row[name] = {
                "tracked_deg_per_deg": round(float(turned[k] / (2 * args.degrees)), 2),
                "plates_milliIOD_per_deg(jaw,brows,chin_y)": [round(float(np.linalg.norm(shift[jaw], axis=1).mean()), 2),
                                                              round(float(np.linalg.norm(shift[brows], axis=1).mean()), 2),
                                                              round(float(shift[chin, 1].mean()), 2)],
                "real_video_leak_same_turn": [round(float(np.linalg.norm(expected[jaw], axis=1).mean()), 2),
                                              round(float(np.linalg.norm(expected[brows], axis=1).mean()), 2),
                                              round(float(expected[chin, 1].mean()), 2)],
                "judge(-D,+D)": [reading(lo_lm), reading(hi_lm)]}
        result[f"burst {b}"] = row
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"render_pose_leak_{args.subject}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
