"""Which part of the renderer carries head pitch into the tracked brow height, with the driving landmarks held still?

On a tuning clip's neutral (intensity 0) take, chosen bursts are rendered with the motion stage's pose and again
with the head pitched by -D and +D degrees (same landmarks, same translation), under ablations of the renderer:

* ``full``        the product's plate (NeRF at the working size, x4 super-resolution to the plate size);
* ``nosr``        the NeRF at its working size (128²), bicubic-upscaled to the plate size only for FaceMesh;
* ``head``        the head field alone over the background (torso colour and alpha removed), super-resolved;
* ``head_nosr``   the head field alone at the working size (a rigid object: the head field has no pose input);
* ``torso_mean``  the torso field fed the subject's mean pose (pose code 0) while the head turns, super-resolved.

Per ablation it reports the tracked brow height slope (canonical y of the brows, milli-IOD per degree of pitch
asked, and per degree FaceMesh saw), the brows-minus-eyes slope, and the judge's reading of the -D / 0 / +D bursts
(reference: that ablation's unturned bursts). It also prints the head's accumulated alpha and the torso's share of
the pixel ((1 - head alpha) * torso alpha) at the brow and forehead pixels of the unturned 128² render. The ablation
whose removal takes the slope towards 0 is the pathway.

The judge is pinned (session 8's judge with neutral prior 2 = DEFAULT_JUDGE at 13:40 of session 10).

    python scripts/probe_render_brow_pathway.py [--subject default] [--subjects-root DIR] [--bursts 0,3]
        [--degrees 4] [--ablations full,nosr,head,head_nosr,torso_mean] [--out cache/brow_pathway]
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

ABLATIONS = ("full", "nosr", "head", "head_nosr", "torso_mean")


@dataclasses.dataclass
class Ablation:
    """How one ablation renders: plate size, head-only compositing, torso pose condition."""
    name: str
    super_resolve: bool
    head_only: bool = False
    torso_mean_pose: bool = False


def ablation(name: str) -> Ablation:
    table = {"full": Ablation("full", True), "nosr": Ablation("nosr", False),
             "head": Ablation("head", True, head_only=True), "head_nosr": Ablation("head_nosr", False, head_only=True),
             "torso_mean": Ablation("torso_mean", True, torso_mean_pose=True)}
    if name not in table:
        raise ValueError(f"unknown ablation {name!r}; choose from {', '.join(ABLATIONS)}")
    return table[name]


def pinned_judge():
    """DEFAULT_JUDGE as it was at 13:40 UTC of session 10 (TALKING_HEADS_JUDGE), copied so later edits don't move it."""
    from backend.evaluation.emotion_judge import JudgeConfig
    return JudgeConfig(window=9, use_depth=False, mouth_weight=0.25, hidden=32, weight_decay=1e-3, steps=300,
                       augment_scales=(0.5, 0.75, 1.5, 2.0), augment_mirror=False, seed=0, neutral_bias=2.0)


class PatchedForward:
    """Wraps a SubjectNeRF's forward for one ablation; optionally records per-ray head and torso alpha."""

    def __init__(self, model):
        self.model = model
        self.original = model.forward
        self.mode: Ablation | None = None
        self.records: list | None = None

    def __call__(self, origins, dirs, head_from_world, code, pose, jitter=False, skip_empty=True, warp=None):
        import torch
        if self.mode is not None and self.mode.torso_mean_pose:
            pose = torch.zeros_like(pose)
        out = self.original(origins, dirs, head_from_world, code, pose, jitter, skip_empty, warp)
        if self.mode is not None and self.mode.head_only:
            out = dict(out, rgb=out["head_rgb"], alpha=out["head_alpha"])
        if self.records is not None:
            self.records.append((dirs.clone(), out["head_alpha"].clone(), out["torso_alpha"].clone()))
        return out


def brow_and_eye_y(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from bridge.landmarks import REGIONS
    brows = list(REGIONS["brow_r"]) + list(REGIONS["brow_l"])
    eyes = list(REGIONS["eye_r"]) + list(REGIONS["eye_l"])
    return landmarks[:, brows, 1].mean(1), landmarks[:, eyes, 1].mean(1)


def image_landmarks(rgb: np.ndarray) -> np.ndarray | None:
    """iBUG-68 pixel positions of one image (FaceMesh, static), None when no face."""
    from mediapipe.python.solutions import face_mesh

    from backend.data.landmark_map import MEDIAPIPE_TO_IBUG68
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        result = mesh.process(np.ascontiguousarray(rgb))
    if not result.multi_face_landmarks:
        return None
    h, w = rgb.shape[:2]
    return np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark], np.float64)[
        MEDIAPIPE_TO_IBUG68]


def alpha_at(records, camera, points: np.ndarray) -> tuple[float, float]:
    """Mean head alpha and torso share at the pixels ``points [N, 2]`` (camera pixels) of one recorded render."""
    import torch
    dirs = torch.cat([r[0] for r in records]).double()
    head = torch.cat([r[1] for r in records]).double()
    torso = torch.cat([r[2] for r in records]).double()
    u = (dirs[:, 0] / dirs[:, 2] * camera.fx + camera.cx - 0.5).round().long()
    v = (dirs[:, 1] / dirs[:, 2] * camera.fy + camera.cy - 0.5).round().long()
    head_map = torch.zeros(camera.height, camera.width, dtype=torch.float64)
    share_map = torch.zeros_like(head_map)
    head_map[v, u] = head
    share_map[v, u] = (1 - head) * torso
    px = np.clip(np.round(points).astype(int), 0, [camera.width - 1, camera.height - 1])
    return float(head_map[px[:, 1], px[:, 0]].mean()), float(share_map[px[:, 1], px[:, 0]].mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subject", default="default")
    parser.add_argument("--subjects-root", type=Path, default=None, help="extra subject folder root, searched first")
    parser.add_argument("--size", type=int, default=512, help="plate size of the super-resolved ablations")
    parser.add_argument("--bursts", default="0,3", help="burst numbers of the 54-frame layout (default 0,3)")
    parser.add_argument("--degrees", type=float, default=4.0)
    parser.add_argument("--ablations", default=",".join(ABLATIONS))
    parser.add_argument("--seed", type=int, default=0, help="motion draw")
    parser.add_argument("--audio", type=Path, default=REPO.parent / "shared" / "data" / "talking" / "styletalk" /
                        "KristiNoem.wav", help="tuning speech (never the reported andrew_clip_1)")
    parser.add_argument("--tracks", type=Path, default=REPO / "cache" / "tracks")
    parser.add_argument("--out", type=Path, default=REPO / "cache" / "brow_pathway")
    parser.add_argument("--no-alpha", action="store_true", help="skip the head-alpha measurement")
    args = parser.parse_args()
    if "andrew" in args.audio.name:
        raise ValueError("andrew_clip_1 is the reported clip: probe on a tuning clip")
    modes = [ablation(a) for a in args.ablations.split(",")]
    import cv2
    import torch
    from scipy.spatial.transform import Rotation
    from tqdm import tqdm

    from backend.composition import StageSet
    from backend.evaluation import plate_emotion as pe
    from backend.evaluation.emotion_judge import displacement_features
    from backend.evaluation.judge_real_video import judge_pools, train_judge
    from backend.evaluation.pose_leak import head_angles
    from backend.media.compositing import composite_over
    from backend.subjects import SubjectStore
    from bridge.emotions import EMOTIONS
    from bridge.landmarks import REGIONS

    torch.set_num_threads(1)
    from backend.data import canonical
    fitted: list = []   # the pixel tracks FaceMesh gave, as fit_canonical received them (refit below)
    mean_face_fit = canonical.fit_canonical

    def recording_fit(points, image_size, *a, **k):
        fitted.append((np.array(points, copy=True), tuple(image_size)))
        return mean_face_fit(points, image_size, *a, **k)
    canonical.fit_canonical = recording_fit
    judge = train_judge(judge_pools(args.tracks)[0], pinned_judge())
    store = SubjectStore([args.subjects_root] if args.subjects_root else None)
    stages = StageSet(device="cpu", subjects=store)
    renderer = stages.render.renderer(args.subject)
    patch = PatchedForward(renderer.model)
    renderer.model.forward = patch
    work = max(renderer.training_camera_size)
    config = pe.PlateEvalConfig(audio=args.audio, resolution=args.size, frames=54, seeds=(args.seed,))
    audio = pe.load_speech(config)
    frames = config.burst_frames(int(np.ceil(len(audio) / 16000 * pe.FPS)))
    backgrounds = {s: pe.subject_background(store.path(args.subject), (s, s)) for s in (args.size, work)}
    job = dataclasses.replace(pe._job(args.subject, audio, "neutral", 0.0, config), seed=args.seed)
    state, _ = pe.run_motion(stages, job)
    bursts = [int(b) for b in args.bursts.split(",")]
    rest_face = renderer.rest_face().astype(np.float64)

    def render(mode: Ablation, sel: np.ndarray, degrees: float, record: bool = False):
        st = dict(state)
        rot = np.asarray(state["rotation"]).copy()
        turn = Rotation.from_euler("x", degrees, degrees=True).as_matrix()
        rot[sel] = (turn[None] @ rot[sel]).astype(rot.dtype)
        st["rotation"] = rot
        size = args.size if mode.super_resolve else work
        patch.mode, patch.records = mode, ([] if record else None)
        plates, _ = pe.render_frames(stages, dataclasses.replace(job, resolution=(size, size)), st, sel)
        images = [np.asarray(composite_over(plates[j], backgrounds[size])) for j in range(len(sel))]
        if size != args.size:
            images = [cv2.resize(im, (args.size, args.size), interpolation=cv2.INTER_CUBIC) for im in images]
        landmarks, found, rotation = pe.track_burst(images, with_rotation=True)
        if not found.all():
            raise RuntimeError(f"{mode.name}: FaceMesh lost the face on {int((~found).sum())} plates")
        points, image_size = fitted[-1]
        own = mean_face_fit(points, image_size, template=rest_face).landmarks
        return landmarks, head_angles(rotation), images, patch.records, own

    result: dict = {"subject": args.subject, "subjects_root": str(args.subjects_root), "audio": args.audio.name,
                    "seed": args.seed, "degrees": args.degrees, "bursts": bursts, "judge": pinned_judge().to_dict()}
    plan = [(m, b, s) for m in modes for b in bursts for s in (0.0, -1.0, 1.0)]
    renders = {}
    for m, b, s in tqdm(plan, desc="render + track", unit="burst"):
        sel = frames[b * config.burst:(b + 1) * config.burst]
        renders[(m.name, b, s)] = render(m, sel, s * args.degrees)
    # alpha at brows / forehead: one unturned frame per burst at the working size, full renderer
    camera = renderer.training_camera.scaled_to(work, work)
    alpha_rows = []
    for b in ([] if args.no_alpha else bursts):
        sel = frames[b * config.burst:b * config.burst + 1]
        _, _, images, records, _ = render(ablation("nosr"), sel, 0.0, record=True)
        full_image = renders[(modes[0].name, b, 0.0)][2][0]
        pts = image_landmarks(full_image)
        if pts is None:
            continue
        pts = pts * work / args.size
        brows = pts[list(REGIONS["brow_r"]) + list(REGIONS["brow_l"])]
        iod = np.linalg.norm(pts[list(REGIONS["eye_l"])].mean(0) - pts[list(REGIONS["eye_r"])].mean(0))
        forehead = np.concatenate([brows - [0, f * iod] for f in (0.25, 0.5)])
        alpha_rows.append([*alpha_at(records, camera, brows), *alpha_at(records, camera, forehead)])
    if alpha_rows:
        a = np.mean(alpha_rows, axis=0)
        result["alpha_128(head@brows, torso_share@brows, head@forehead, torso_share@forehead)"] = np.round(a, 4).tolist()

    for m in modes:
        lo_y, hi_y, lo_e, hi_e, seen, readings, own_d = [], [], [], [], [], {}, []
        reference = np.concatenate([renders[(m.name, b, 0.0)][0] for b in bursts]).mean(0)
        for s in (-1.0, 0.0, 1.0):
            labels = []
            for b in bursts:
                feats = displacement_features(renders[(m.name, b, s)][0], reference, judge.config)
                counts = np.bincount(judge.predict(feats), minlength=len(EMOTIONS))
                labels.append(EMOTIONS[int(counts.argmax())])
            readings[f"{s * args.degrees:+g}"] = labels
        for b in bursts:
            (lo_lm, lo_ang, *_), (hi_lm, hi_ang, *_) = renders[(m.name, b, -1.0)], renders[(m.name, b, 1.0)]
            by_lo, ey_lo = brow_and_eye_y(lo_lm)
            by_hi, ey_hi = brow_and_eye_y(hi_lm)
            lo_y.append(by_lo.mean()), hi_y.append(by_hi.mean()), lo_e.append(ey_lo.mean()), hi_e.append(ey_hi.mean())
            seen.append(float((hi_ang - lo_ang).mean(0)[0]))
            own_d.append((brow_and_eye_y(renders[(m.name, b, 1.0)][4])[0].mean()
                          - brow_and_eye_y(renders[(m.name, b, -1.0)][4])[0].mean()) * 1000)
        brow = (np.array(hi_y) - np.array(lo_y)) * 1000
        rel = brow - (np.array(hi_e) - np.array(lo_e)) * 1000
        result[m.name] = {
            "brow_slope_mIOD_per_deg_asked": round(float(brow.mean() / (2 * args.degrees)), 2),
            "brow_slope_per_burst": np.round(brow / (2 * args.degrees), 2).tolist(),
            "brow_slope_mIOD_per_deg_seen": round(float(brow.sum() / np.sum(seen)), 2),
            "brow_minus_eye_slope_mIOD_per_deg_asked": round(float(rel.mean() / (2 * args.degrees)), 2),
            "brow_slope_subject_template_fit": round(float(np.mean(own_d) / (2 * args.degrees)), 2),
            "facemesh_deg_per_deg": round(float(np.mean(seen) / (2 * args.degrees)), 2),
            "judge(-D, 0, +D) by burst": readings}
    args.out.mkdir(parents=True, exist_ok=True)
    # tracked landmarks and FaceMesh angles of every render, for per-landmark leak fits
    np.savez(args.out / f"brow_pathway_{args.subject}_tracks.npz",
             **{f"{name}_b{b}_{int(s * args.degrees):+d}_{kind}": renders[(name, b, s)][k]
                for (name, b, s) in renders for kind, k in (("landmarks", 0), ("angles", 1))})
    (args.out / f"brow_pathway_{args.subject}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
