"""Train the head + torso NeRF of a prepared subject: ``emogene train subject --subject DIR``.

Stops at --steps or after --minutes, whichever comes first; --resume continues from the
last checkpoint. Writes nerf.safetensors/.json, training_curves.png, train_summary.json.
"""
from __future__ import annotations

from backend.device import add_device_argument


def add_arguments(parser):
    parser.add_argument("--subject", required=True, help="prepared subject folder (from `emogene prepare-subject`)")
    parser.add_argument("--minutes", type=float, default=28.0, help="wall-clock budget in minutes (default 28)")
    parser.add_argument("--steps", type=int, default=20000, help="maximum optimisation steps (default 20000)")
    parser.add_argument("--rays", type=int, default=None, help="rays per step (default 1024; raise on a GPU)")
    parser.add_argument("--resume", action="store_true", help="continue from the subject's last checkpoint")
    add_device_argument(parser)
    parser.add_argument("--compile", action="store_true", help="torch.compile the fields (GPU; slow to start)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: on a shared 2-core machine 2 threads ran 5x slower)")


def run(args) -> int:
    from backend.device import resolve_device
    from backend.render.train import TrainConfig, train_subject

    config = TrainConfig(steps=args.steps, minutes=args.minutes, threads=args.threads, compile=args.compile)
    if args.rays:
        config.rays_per_step = args.rays
    try:
        summary = train_subject(args.subject, config, device=resolve_device(args.device), resume=args.resume)
    except FileNotFoundError as exc:
        print(f"train subject: {exc}")
        return 2
    print(f"trained {summary['steps']} steps in {summary['train_seconds'] / 60:.1f} min: held-out PSNR "
          f"{summary['heldout_psnr']:.2f} dB (mean training frame: {summary['mean_frame_psnr']:.2f} dB)")
    return 0
