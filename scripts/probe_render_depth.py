"""Is a subject NeRF's face too flat? Rendered head depth vs FaceMesh's 3-D landmarks on training frames.

For chosen training frames of each subject, the head field's expected depth (sum w t / sum w) is rendered at
the pixels of the tracked landmarks and compared with the depth of FaceMesh's canonical landmarks brought into
the camera (``p = scale * R @ FLIP @ c + t``), both relative to the nose tip (landmark 30). Per region it reports
the mean signed error (rendered - FaceMesh, inter-ocular distances; positive: the rendered feature lies
further behind the nose tip than FaceMesh says) and the depth gain (least-squares slope of rendered vs FaceMesh
relative depth over the inner-face landmarks: 1 = right relief, < 1 = flatter). Jaw contour landmarks sit on
the silhouette, where a ray grazes the surface: reported apart, not in the gain.
Writes OUT/depth_probe.json, OUT/depth_<subject>.png (frame, depth map, side views with the landmarks drawn
where FaceMesh puts them) and OUT/depth_scatter.png.

    python scripts/probe_render_depth.py [--subjects default,mead_m030,path/to/subject_dir] [--frames 12] [--out cache/s6_geom/probe]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NOSE_TIP = 30


def region_indices() -> dict[str, list[int]]:
    from bridge.landmarks import REGIONS
    return {"brows": list(REGIONS["brow_r"]) + list(REGIONS["brow_l"]),
            "eyes": list(REGIONS["eye_r"]) + list(REGIONS["eye_l"]),
            "nose": [i for i in list(REGIONS["nose_bridge"]) + list(REGIONS["nose_base"]) if i != NOSE_TIP],
            "mouth": list(REGIONS["lip_outer"]) + list(REGIONS["lip_inner"]),
            "chin": [7, 8, 9],
            "jaw_contour": [i for i in REGIONS["jaw"] if i not in (7, 8, 9)]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", default="default,mead_m030")
    parser.add_argument("--subjects-root", type=Path, default=None, help="extra subject folder root, searched first")
    parser.add_argument("--frames", type=int, default=12, help="training frames per subject, evenly spaced")
    parser.add_argument("--samples", type=int, default=192, help="samples per ray for the depth")
    parser.add_argument("--prepared", action="append", default=[], metavar="NAME=DIR",
                        help="the prepared subject folder whose prepared/track_native.npz (the rows training used) "
                             "replaces the subject's 25 fps track.npz; a subject folder's own prepared/ is used "
                             "when it has one")
    parser.add_argument("--split", choices=("train", "heldout"), default="train")
    parser.add_argument("--out", type=Path, default=REPO / "cache" / "s6_geom" / "probe")
    args = parser.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from scipy.spatial.transform import Rotation
    from tqdm import tqdm

    from backend.render.camera import pinhole_rays
    from backend.render.compositing import straight_alpha
    from backend.render.depth_probe import head_depth, landmark_rays, landmarks_in_camera
    from backend.render.frame_render import frame_conditions, render_frame
    from backend.render.inference import SubjectRenderer
    from backend.subjects import SubjectStore

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    store = SubjectStore([args.subjects_root] if args.subjects_root else None)
    regions = region_indices()
    inner = sorted(set(sum((regions[k] for k in ("brows", "eyes", "nose", "mouth", "chin")), [])))
    result: dict = {"frames_per_subject": args.frames, "samples": args.samples, "subjects": {}}
    scatter = {}
    for name in args.subjects.split(","):
        folder = Path(name) if "/" in name else store.path(name)
        name = name if "/" not in name else name.strip("/").replace("/", "_")
        renderer = SubjectRenderer(folder)
        model, camera = renderer.model, renderer.training_camera
        prepared = dict(p.split("=", 1) for p in args.prepared)
        native = Path(prepared[name]) if name in prepared else folder
        native = native / "prepared" / "track_native.npz"
        if not native.is_file() and len(renderer.info.get("clips", [])) > 1:
            raise FileNotFoundError(f"{native} not found: a multi-clip subject's track.npz is not in training "
                                    f"row order; pass --prepared {name}=DIR")
        track = dict(np.load(native if native.is_file() else folder / renderer.info.get("track", "track.npz")))
        train = np.arange(*renderer.info["split"][args.split])
        frames = train[np.linspace(0, len(train) - 1, args.frames).round().astype(int)]
        frames = frames[track["face_found"][frames].astype(bool)] if "face_found" in track else frames
        cond = frame_conditions(model, track["landmarks"][frames], track["rotation"][frames],
                                track["translation"][frames], track["scale"][frames])
        rendered_rel, facemesh_rel, alphas, spreads, poses = [], [], [], [], []
        for j, i in enumerate(tqdm(frames, desc=f"{name}: landmark depth", unit="frame")):
            points = landmarks_in_camera(track["landmarks"][i], track["rotation"][i], track["translation"][i],
                                         float(track["scale"][i]))
            origins, dirs, t_true = landmark_rays(camera, points)
            hd = head_depth(model, origins, dirs, cond.head_from_world[j:j + 1], cond.code[j:j + 1], args.samples)
            t_render = hd.depth.numpy().astype(np.float64)
            rendered_rel.append(t_render - t_render[NOSE_TIP])
            facemesh_rel.append(t_true - t_true[NOSE_TIP])
            alphas.append(hd.alpha.numpy())
            spreads.append(hd.spread.numpy())
            poses.append(Rotation.from_matrix(track["rotation"][i]).as_euler("xyz", degrees=True))
        rr, fr, al, sp = np.array(rendered_rel), np.array(facemesh_rel), np.array(alphas), np.array(spreads)
        err = rr - fr
        gain_per_frame = [float((rr[f, inner] @ fr[f, inner]) / (fr[f, inner] @ fr[f, inner])) for f in range(len(rr))]
        row = {"track": str(native if native.is_file() else "track.npz"), "split": args.split,
               "frames": frames.tolist(),
               "pose_xyz_deg_mean": np.round(np.mean(poses, 0), 1).tolist(),
               "pose_xyz_deg_std": np.round(np.std(poses, 0), 1).tolist(),
               "depth_gain_inner_face": round(float(np.median(gain_per_frame)), 3),
               "depth_gain_per_frame_range": [round(min(gain_per_frame), 3), round(max(gain_per_frame), 3)],
               "regions": {}}
        for key, idx in regions.items():
            row["regions"][key] = {
                "facemesh_rel_depth_IOD": round(float(fr[:, idx].mean()), 3),
                "rendered_rel_depth_IOD": round(float(rr[:, idx].mean()), 3),
                "mean_error_IOD": round(float(err[:, idx].mean()), 3),
                "mean_abs_error_IOD": round(float(np.abs(err[:, idx]).mean()), 3),
                # a feature drawn |e| off its true depth slides |e| * theta across the face when the head turns
                # by theta (pitch: vertically, yaw: sideways): the non-rigid shift this depth error predicts
                "predicted_shift_milliIOD_per_deg": round(float(np.abs(err[:, idx]).mean() * np.pi / 180 * 1000), 2),
                "head_alpha": round(float(al[:, idx].mean()), 3),
                "surface_spread_IOD": round(float(sp[:, idx].mean()), 3)}
        result["subjects"][name] = row
        scatter[name] = (fr, rr)
        print(name, json.dumps(row["regions"]), "gain", row["depth_gain_inner_face"], flush=True)
        _figure(plt, name, renderer, track, frames[len(frames) // 2], args.samples, args.out,
                head_depth, landmarks_in_camera, frame_conditions, render_frame, pinhole_rays, straight_alpha,
                Rotation)
    (args.out / "depth_probe.json").write_text(json.dumps(result, indent=2))
    fig, axes = plt.subplots(1, len(scatter), figsize=(5 * len(scatter), 5), squeeze=False)
    for ax, (name, (fr, rr)) in zip(axes[0], scatter.items()):
        for key, idx in regions.items():
            ax.scatter(fr[:, idx].ravel(), rr[:, idx].ravel(), s=6, label=key)
        lim = [min(fr.min(), rr.min()), max(fr.max(), rr.max())]
        ax.plot(lim, lim, "k--", lw=1, label="right relief")
        ax.set(title=f"{name}: depth behind the nose tip", xlabel="FaceMesh (IOD)", ylabel="rendered (IOD)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "depth_scatter.png", dpi=110)
    print(f"wrote {args.out}")
    return 0


def _figure(plt, name, renderer, track, i, samples, out, head_depth, landmarks_in_camera, frame_conditions,
            render_frame, pinhole_rays, straight_alpha, Rotation) -> None:
    """Frame i: the rendered plate, the head depth map behind the nose tip, and side views (yaw 40/80 deg)
    with FaceMesh's landmarks projected where the same turn puts them."""
    model, camera = renderer.model, renderer.training_camera
    origins, dirs = pinhole_rays(camera)
    panels = []
    for yaw in (0.0, 40.0, 80.0):
        rot = (Rotation.from_euler("y", yaw, degrees=True).as_matrix() @ track["rotation"][i]).astype(np.float32)
        cond = frame_conditions(model, track["landmarks"][i:i + 1], rot[None], track["translation"][i:i + 1],
                                track["scale"][i:i + 1])
        rgb, alpha = render_frame(model, origins, dirs, cond.head_from_world, cond.code, cond.pose)
        image = straight_alpha(rgb, alpha).clamp(0, 1).reshape(camera.height, camera.width, 3).numpy()
        points = landmarks_in_camera(track["landmarks"][i], rot, track["translation"][i], float(track["scale"][i]))
        uv, _ = camera.project(points)
        panels.append((yaw, image, uv))
        if yaw == 0.0:
            hd = head_depth(model, origins, dirs, cond.head_from_world, cond.code, samples)
            uv0, t_nose = uv, float(np.linalg.norm(points[NOSE_TIP]))
            depth = (hd.depth.numpy() - t_nose).reshape(camera.height, camera.width)
            depth[hd.alpha.numpy().reshape(camera.height, camera.width) < 0.5] = np.nan
            true_rel = np.linalg.norm(points, axis=1) - t_nose
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.4))
    axes[0].imshow(panels[0][1])
    axes[0].set_title(f"{name} frame {i}: render")
    im = axes[1].imshow(depth, cmap="viridis", vmin=-0.2, vmax=2.0)
    axes[1].scatter(uv0[:, 0] - 0.5, uv0[:, 1] - 0.5, c=true_rel, cmap="viridis", vmin=-0.2, vmax=2.0, s=14,
                    edgecolors="w", linewidths=0.4)
    axes[1].set_title("head depth behind nose tip (IOD);\ndots: FaceMesh, same scale")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    row = int(round(float(uv0[36:48, 1].mean())))
    axes[2].plot(np.nanmean(depth[row - 2:row + 3], axis=0), label="rendered, rows at eye level +-2")
    eyes = np.abs(uv0[:, 1] - row) < 3
    axes[2].scatter(uv0[eyes, 0] - 0.5, true_rel[eyes], c="r", s=10, label="FaceMesh landmarks near that row")
    axes[2].set(title="horizontal depth profile", xlabel="x pixel", ylabel="IOD behind nose tip")
    axes[2].invert_yaxis()
    axes[2].legend(fontsize=7)
    for ax, (yaw, image, uv) in zip(axes[3:], panels[1:]):
        ax.imshow(image)
        ax.scatter(uv[:, 0] - 0.5, uv[:, 1] - 0.5, s=5, c="r")
        ax.set_title(f"head turned {yaw:.0f} deg; red: FaceMesh landmarks")
    for ax in axes[[0, 1, 3, 4]]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / f"depth_{name}.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
