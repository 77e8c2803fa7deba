"""Jobs per second through the ZeroMQ front: the in-process runner vs the Ray runner with 1 and 2 workers.

Each setup serves a real front (validation, job store, streaming) with the real
motion models; one client submits ``--jobs`` landmark jobs of ``--seconds`` of real
speech at once and waits for all of them. A warm-up job per worker runs first (not
timed), so model loading is not counted. Then a few short jobs (``--short-seconds``)
run one after another to measure each runner's fixed cost per job. Ray runs on a
local cluster started here (``--cpus`` CPUs, a small object store). The client runs
in its own process, as Blender would. One run; prints
a table and the ratios:

- throughput, 2 workers vs 1 (how well jobs spread over actors; bounded by the CPUs here),
- the front's overhead: in-process vs Ray with 1 worker (same one-at-a-time work), as a
  jobs/s ratio and as the extra latency of a short job.

    .venv/bin/python scripts/bench_runners.py [--jobs 8] [--seconds 13] [--cpus 2] [--json out.json]
"""
from __future__ import annotations

import os

# one thread per BLAS/OpenMP pool, as Ray gives its 1-CPU workers: the in-process runner is measured alike
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _request(seconds: float, seed: int):
    from bridge.emotion_spec import spec_to_frames
    from bridge.requests import build_generate, frame_count_for
    from test_server_support import speech

    clip = speech(13.0)
    audio = np.tile(clip, int(np.ceil(seconds * 16000 / len(clip))))[: int(seconds * 16000)]
    frames = frame_count_for(len(audio) / 16000, 25.0)
    weights, intensity = spec_to_frames("neutral@0,happy:0.8@2,sad@6", frames, 25.0)
    return build_generate(audio, 16000, 25.0, weights, intensity, landmarks_only=True, seed=seed)


def _client_batch(address: str, seconds: float, count: int, seed: int) -> float:
    """In the client process: submit ``count`` jobs at once, wait for every ``done``; seconds from the
    first submit to the last ``done``."""
    from bridge.client import SyncClient
    from bridge.protocol import MessageType

    requests = [_request(seconds, seed + i) for i in range(count)]
    with SyncClient(address, timeout_s=600) as client:
        started = time.perf_counter()
        ids = [client.submit(r) for r in requests]
        for job_id in ids:
            last = list(client.iter_job(job_id))[-1]
            assert last.type == MessageType.DONE, last.content
        return time.perf_counter() - started


def _run_batch(pool, address: str, seconds: float, count: int, seed: int) -> float:
    return pool.apply(_client_batch, (address, seconds, count, seed))


def _measure(name: str, runner, args, pool) -> dict:
    from backend.composition import StageSet
    from backend.server import BackendServer, ServerConfig
    from backend.subjects import SubjectStore

    subjects = SubjectStore(None)
    with tempfile.TemporaryDirectory(prefix="bench-runners-") as jobs:
        server = BackendServer(ServerConfig(bind="tcp://127.0.0.1:*", jobs_dir=Path(jobs)),
                               StageSet("cpu", subjects), subjects, runner=runner)
        server.start(timeout_s=60)
        try:
            workers = runner.status().workers
            _run_batch(pool, server.address, 2.0, workers, 100)   # warm-up (not timed)
            batch_s = _run_batch(pool, server.address, args.seconds, args.jobs, 0)
            short = [_run_batch(pool, server.address, args.short_seconds, 1, 50 + i) for i in range(args.short)]
        finally:
            server.stop()
    row = {"runner": name, "workers": workers, "jobs": args.jobs, "batch_s": round(batch_s, 3),
           "jobs_per_s": round(args.jobs / batch_s, 4), "short_job_median_s": round(statistics.median(short), 4)}
    print(f"{name:<14} workers={workers}  {args.jobs} jobs in {batch_s:7.2f} s = {row['jobs_per_s']:.3f} jobs/s   "
          f"short job ({args.short_seconds:g} s audio) median {row['short_job_median_s'] * 1000:7.1f} ms", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=13.0, help="audio per job (real speech, repeated)")
    parser.add_argument("--short", type=int, default=5, help="short jobs run one by one for the fixed cost")
    parser.add_argument("--short-seconds", type=float, default=1.0)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--object-store-mb", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch
    torch.set_num_threads(1)
    import ray

    from backend.composition import StageSet
    from backend.runners.in_process import InProcessRunner
    from backend.runners.ray_runner import RayRunner, RayRunnerConfig
    from backend.subjects import SubjectStore

    # the client runs in its own process (as Blender does), so it never competes with the front for the GIL
    pool = multiprocessing.get_context("spawn").Pool(1)
    rows = [_measure("in-process", InProcessRunner(StageSet("cpu", SubjectStore(None))), args, pool)]
    temp_dir = tempfile.mkdtemp(prefix="emo-ray-", dir="/tmp")
    ray.init(num_cpus=args.cpus, object_store_memory=args.object_store_mb * 1024 * 1024, include_dashboard=False,
             _temp_dir=temp_dir, log_to_driver=False, logging_level="WARNING")
    try:
        for workers in (1, 2):
            rows.append(_measure("ray", RayRunner(RayRunnerConfig(workers=workers)), args, pool))
    finally:
        ray.shutdown()
        pool.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
    local, ray1, ray2 = rows
    ratios = {
        "ray_2_vs_1_workers_jobs_per_s": round(ray2["jobs_per_s"] / ray1["jobs_per_s"], 3),
        "in_process_vs_ray_1_worker_jobs_per_s": round(local["jobs_per_s"] / ray1["jobs_per_s"], 3),
        "ray_short_job_extra_ms": round((ray1["short_job_median_s"] - local["short_job_median_s"]) * 1000, 1),
        "ray_vs_in_process_short_job_latency": round(ray1["short_job_median_s"] / local["short_job_median_s"], 3),
    }
    print(f"2 vs 1 Ray workers: {ratios['ray_2_vs_1_workers_jobs_per_s']:.2f}x jobs/s   "
          f"front overhead (in-process / Ray 1 worker jobs/s): {ratios['in_process_vs_ray_1_worker_jobs_per_s']:.2f}x   "
          f"short job: {ratios['ray_short_job_extra_ms']:+.0f} ms "
          f"({ratios['ray_vs_in_process_short_job_latency']:.2f}x)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ratios": ratios, "cpus": args.cpus}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
