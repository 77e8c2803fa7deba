"""``emogene serve``'s runner options and the runner they choose (ray is imported only for ``--runner ray``)."""
from __future__ import annotations

from typing import Any


class RunnerSetupError(Exception):
    """The runner asked for cannot be set up (ray missing, cluster unreachable, no room for a worker)."""


def add_runner_arguments(parser) -> None:
    parser.add_argument("--runner", choices=("in-process", "ray"), default="in-process",
                        help="where jobs run: in this process, one at a time (default), or on Ray actors "
                             "across a cluster, several at once (needs the `ray` extra)")
    parser.add_argument("--ray-address", metavar="ADDR", default=None,
                        help="with --runner ray: 'auto' (a cluster already started with `ray start` on this "
                             "machine), HOST:PORT of a head node, or 'local' (start a private one here; the "
                             "default unless RAY_ADDRESS is set)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="with --runner ray: how many actors (jobs at once); default one per GPU in the "
                             "cluster, or one per --cpus-per-worker CPUs when it has none")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C",
                        help="with --runner ray: CPUs each actor reserves (default 1)")
    parser.add_argument("--max-retries", type=int, default=1, metavar="R",
                        help="with --runner ray: re-runs of a job whose worker died (default 1)")


def make_runner(args: Any, stage_set: Any, subjects_dirs: list[str] | None = None):
    """The runner ``args`` ask for. The in-process one uses ``stage_set``; Ray actors build their own."""
    if args.runner == "in-process":
        from backend.runners.in_process import InProcessRunner
        return InProcessRunner(stage_set)
    try:
        from backend.runners.ray_runner import RayRunner, RayRunnerConfig
    except ImportError as exc:
        raise RunnerSetupError(f"--runner ray needs Ray: pip install -e '.[ray]' ({exc})") from None
    if args.workers is not None and args.workers < 1:
        raise RunnerSetupError(f"--workers must be >= 1, got {args.workers}")
    if args.cpus_per_worker <= 0:
        raise RunnerSetupError(f"--cpus-per-worker must be > 0, got {args.cpus_per_worker}")
    if args.max_retries < 0:
        raise RunnerSetupError(f"--max-retries must be >= 0, got {args.max_retries}")
    config = RayRunnerConfig(address=args.ray_address, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                             device=args.device, subjects_dirs=subjects_dirs, max_retries=args.max_retries)
    try:
        return RayRunner(config)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise RunnerSetupError(str(exc)) from None
