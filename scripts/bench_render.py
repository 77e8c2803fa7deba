"""Renderer benchmark (CPU by default): frames per second at 128², 256², 512², side by side in one
run (interleaved per size, so all see the same machine load) for the current renderer
(screen-region ray culling, no torso marched behind an opaque head, 4 samples per marching step to 0.5 %
transmittance; above the working resolution
the NeRF at its working size + the subject's super-resolution network, its x2 head for plates up
to twice the working size), the session-start renderer (the same without the torso skip and
the x2 head: 256² was the x4 output area-downsampled) and the previous one (one ray per plate
pixel, no culling, no super-resolution); the machine's load average; the speed-up of hash grid + empty-space skipping over a plain
positional-encoding NeRF MLP with the same conditioning and sample counts (same rays); peak
memory at 512² for both; the demo's plate time estimate; and the training time to reach the
held-out PSNR of the trained subject (from its run).

    .venv/bin/python scripts/bench_render.py [--subject cache/subjects/default] [--threads 2]
        [--skip-previous] [--skip-plain] [--repeats 2]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _subject_dir(arg: str | None) -> Path:
    for candidate in ([arg] if arg else []) + [str(REPO / "cache/subjects/default"),
                                                str(REPO / "backend/assets/subjects/default")]:
        if candidate and (Path(candidate) / "nerf.json").is_file():
            return Path(candidate)
    raise SystemExit("no trained subject found: run scripts/train_default_subject.py first or pass --subject")


def _renderer_and_conditions(subject: Path, device: str):
    import numpy as np

    from backend.render.inference import SubjectRenderer
    renderer = SubjectRenderer(subject, device)
    track = np.load(subject / "track.npz")
    i = int(renderer.info["split"]["heldout"][0])
    prepared = renderer.conditions(track["landmarks"][i:i + 1], track["rotation"][i:i + 1],
                                   track["translation"][i:i + 1])
    return renderer, prepared.conditions


#: the previous renderer: one ray per plate pixel, no culling, no super-resolution
PREVIOUS = {"cull": False, "super_resolve": False}


@contextlib.contextmanager
def session_start(renderer):
    """The renderer as this session found it: the torso marched behind an opaque head too, rays
    marched 8 samples per step until 1 % of the light is left, and plates below 4x the working size made from the x4 output (no x2 head)."""
    model, sr = renderer.model, renderer.super_resolution
    saved = model.skip_occluded_torso, getattr(sr, "tail_x2", None), model.march_block, model.early_stop
    model.skip_occluded_torso, model.march_block, model.early_stop = False, 8, 1e-2
    if sr is not None:
        sr.tail_x2 = None
    try:
        yield
    finally:
        model.skip_occluded_torso, model.march_block, model.early_stop = saved[0], saved[2], saved[3]
        if sr is not None:
            sr.tail_x2 = saved[1]
DEMO_FRAMES = 325


def _warped_conditions(renderer, subject: Path):
    """The benchmark frame with a smile the code cannot render (mouth corners up and out by 0.12
    inter-ocular units, fading over the face), so every frame runs the deformation warp."""
    import numpy as np
    track = np.load(subject / "track.npz")
    i = int(renderer.info["split"]["heldout"][0])
    neutral = track["landmarks"][i:i + 1].astype(np.float32)
    smile = np.zeros_like(neutral)
    for corner, side in ((48, -1.0), (54, 1.0)):
        falloff = np.exp(-np.square(neutral[0] - neutral[0, corner]).sum(-1) / (2 * 0.35 ** 2))
        smile[0] += falloff[:, None] * np.array([0.06 * side, 0.1, 0.0], np.float32)
    prepared = renderer.conditions(neutral + smile, track["rotation"][i:i + 1], track["translation"][i:i + 1],
                                   neutral_landmarks=neutral)
    assert prepared.conditions.warp(0) is not None
    return prepared.conditions


def time_frames(renderer, conditions, size: int, repeats: int, **options) -> float:
    """Seconds per frame (best of ``repeats``) at ``size``² through the subject's camera;
    ``options`` go to ``SubjectRenderer.render`` (``PREVIOUS``: the renderer before culling/SR)."""
    from backend.render.camera import pinhole_rays
    camera = renderer.camera_for(None, (size, size))
    rays = pinhole_rays(camera, renderer.device)
    renderer.render(camera, conditions, 0, rays, **options)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        renderer.render(camera, conditions, 0, rays, **options)
        best = min(best, time.perf_counter() - t)
    return best


def time_plain_baseline(renderer, conditions, size: int, repeats: int) -> float:
    """Seconds per frame (best of ``repeats``, like ours) of the plain NeRF (frequency encoding,
    8x256 MLP, no empty-space skipping, same samples per ray), same rays."""
    import torch

    from backend.render.camera import pinhole_rays
    from backend.render.model import SubjectModelConfig, SubjectNeRF
    from backend.render.train import render_frame
    cfg = SubjectModelConfig(**{**renderer.model.config.__dict__, "plain_baseline": True})
    plain = SubjectNeRF(cfg, torso_box=renderer.model.torso_box.clone()).to(renderer.device).eval()
    plain.head_box.copy_(renderer.model.head_box)
    camera = renderer.camera_for(None, (size, size))
    origins, dirs = pinhole_rays(camera, renderer.device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.inference_mode():
            render_frame(plain, origins, dirs, conditions.head_from_world[:1], conditions.code[:1],
                         conditions.pose[:1])
        best = min(best, time.perf_counter() - t)
    return best


def _high_water_mib() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it is not inherited over fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_child(subject: str, size: int, threads: int, device: str, previous: bool = False) -> None:
    import torch
    torch.set_num_threads(threads)
    before = _high_water_mib()
    renderer, conditions = _renderer_and_conditions(Path(subject), device)
    loaded = _high_water_mib()
    camera = renderer.camera_for(None, (size, size))
    renderer.render(camera, conditions, 0, **(PREVIOUS if previous else {}))
    after = _high_water_mib()
    print(json.dumps({"peak_rss_mib": after, "model_loaded_rss_mib": loaded, "torch_imported_rss_mib": before}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="128,256,512")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline-size", type=int, default=128)
    parser.add_argument("--out", default=str(REPO / "eval_report" / "render" / "bench.json"))
    parser.add_argument("--skip-previous", action="store_true", help="do not time the previous renderer")
    parser.add_argument("--skip-plain", action="store_true", help="do not time the plain positional-encoding NeRF")
    parser.add_argument("--skip-warp", action="store_true", help="do not time the expression warp")
    parser.add_argument("--_memory-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_previous", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    subject = _subject_dir(args.subject)
    if args._memory_child:
        peak_memory_child(str(subject), args._memory_child, args.threads, args.device, args._previous)
        return 0

    import torch
    torch.set_num_threads(args.threads)
    renderer, conditions = _renderer_and_conditions(subject, args.device)
    results: dict = {"subject": str(subject), "device": args.device, "threads": args.threads, "fps": {},
                     "fps_session_start": {}, "fps_previous": {},
                     "super_resolution": renderer.super_resolution is not None,
                     "load_average_start": os.getloadavg()}
    print(f"load average (1, 5, 15 min) at the start: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    # interleaved per size, so the renderers see the same machine load
    for size in (int(s) for s in args.sizes.split(",")):
        seconds = time_frames(renderer, conditions, size, args.repeats)
        with session_start(renderer):
            start = time_frames(renderer, conditions, size, args.repeats)
        results["fps"][f"{size}x{size}"] = 1.0 / seconds
        results["fps_session_start"][f"{size}x{size}"] = 1.0 / start
        line = (f"ours  {size:4d}²: {seconds:7.3f} s/frame  {1 / seconds:6.2f} fps   | session start {start:7.3f} "
                f"s/frame {1 / start:6.2f} fps -> {start / seconds:4.2f}x")
        if not args.skip_previous:
            old = time_frames(renderer, conditions, size, args.repeats, **PREVIOUS)
            results["fps_previous"][f"{size}x{size}"] = 1.0 / old
            line += f"   | previous renderer {old:7.3f} s/frame {1 / old:6.2f} fps -> {old / seconds:4.1f}x"
        print(line, flush=True)
    if not args.skip_warp:
        # the deformation warp (an expression outside the code's range) vs none, interleaved, same frame
        size = args.baseline_size
        warped = _warped_conditions(renderer, subject)
        plain_s, warp_s = [], []
        for _ in range(args.repeats):
            plain_s.append(time_frames(renderer, conditions, size, 1))
            warp_s.append(time_frames(renderer, warped, size, 1))
        results["warp"] = {"size": size, "no_warp_s": min(plain_s), "warp_s": min(warp_s),
                           "ratio": min(warp_s) / min(plain_s)}
        print(f"expression warp {size}²: {min(warp_s):.3f} s/frame vs {min(plain_s):.3f} without "
              f"-> {min(warp_s) / min(plain_s):.2f}x the time", flush=True)
    for size in (256, 512):
        fps = results["fps"].get(f"{size}x{size}")
        if fps:
            results[f"demo_{size}_minutes"] = DEMO_FRAMES / fps / 60
            print(f"demo's {DEMO_FRAMES} plates at {size}²: {DEMO_FRAMES / fps / 60:.1f} min of rendering")
    size = args.baseline_size
    if not args.skip_plain:
        ours = time_frames(renderer, conditions, size, args.repeats)
        plain = time_plain_baseline(renderer, conditions, size, args.repeats)
        results["speedup"] = {"size": size, "ours_s": ours, "plain_nerf_s": plain, "ratio": plain / ours}
        print(f"plain positional-encoding NeRF {size}²: {plain:.2f} s/frame vs ours {ours:.3f} s/frame "
              f"-> speed-up {plain / ours:.1f}x (target >= 20x)", flush=True)
    for label, extra in (("", []), ("previous renderer, ", ["--_previous"])):
        if extra and args.skip_previous:
            continue
        child = subprocess.run([sys.executable, __file__, "--subject", str(subject), "--threads", str(args.threads),
                                "--device", args.device, "--_memory-child", "512", *extra],
                               capture_output=True, text=True)
        memory = (json.loads(child.stdout.strip().splitlines()[-1]) if child.returncode == 0
                  else {"error": child.stderr[-500:]})
        results["memory_512_previous" if extra else "memory_512"] = memory
        print(f"{label}peak memory rendering 512²: {memory.get('peak_rss_mib', float('nan')):.0f} MiB RSS "
              f"(after loading the model: {memory.get('model_loaded_rss_mib', float('nan')):.0f} MiB)")
    summary_path = subject / "train_summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        history = summary["psnr_history"]
        results["training"] = {"final_heldout_psnr": summary["heldout_psnr"], "train_seconds": summary["train_seconds"],
                               "steps": summary["steps"], "psnr_history": history}
        timed = [h for h in history if len(h) == 3]
        target = summary["heldout_psnr"] - 0.5
        reached = next((h for h in timed if h[1] >= target), None)
        if reached:
            results["training"]["seconds_to_within_0.5db"] = reached[2]
        print(f"training: held-out PSNR {summary['heldout_psnr']:.2f} dB after {summary['steps']} steps, "
              f"{summary['train_seconds'] / 60:.1f} min" +
              (f"; within 0.5 dB of it after {reached[2] / 60:.1f} min (step {reached[0]})" if reached else ""))
    results["load_average_end"] = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
