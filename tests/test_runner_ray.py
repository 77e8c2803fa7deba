"""Jobs on a real local Ray cluster behind the ZeroMQ front: plates streamed back, concurrency, cancel,
a worker killed mid-job, the front restarting, `emogene serve --runner ray` as a process, and Blender's
batch through it. Real motion models and landmark jobs on real speech (the plates test uses the stand-in
stages). Skips (saying why) when the optional `ray` extra is absent."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the optional Ray runner needs `pip install -e .[ray]` (ray not installed)")

from backend.composition import StageSet  # noqa: E402
from backend.runners.ray_runner import RayRunner, RayRunnerConfig  # noqa: E402
from backend.server import BackendServer, ServerConfig  # noqa: E402
from backend.subjects import SubjectStore  # noqa: E402
from bridge.client import SyncClient  # noqa: E402
from bridge.errors import BridgeError  # noqa: E402
from bridge.emotion_spec import spec_to_frames  # noqa: E402
from bridge.protocol import MessageType  # noqa: E402
from bridge.requests import build_generate, frame_count_for  # noqa: E402
from test_server_support import REPO, free_tcp_port, generate_request, speech  # noqa: E402

pytestmark = pytest.mark.timeout(300)
# every test but the plates one takes 20-60 s here (real models, actors re-made after kills): slow

OBJECT_STORE_BYTES = 200 * 1024 * 1024


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-CPU Ray cluster in its own temp dir; afterwards no raylet or worker of it is left."""
    temp_dir = tempfile.mkdtemp(prefix="emo-ray-", dir="/tmp")   # short: Ray's sockets live under it
    # the workers can import tests/ too: one test hands its actors the stand-in renderer's stage set
    python_path = os.pathsep.join(p for p in (str(REPO / "tests"), os.environ.get("PYTHONPATH", "")) if p)
    context = ray.init(num_cpus=2, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
                       _temp_dir=temp_dir, log_to_driver=False, logging_level="WARNING",
                       runtime_env={"env_vars": {"PYTHONPATH": python_path}})
    yield context.address_info["gcs_address"]
    ray.shutdown()
    deadline = time.monotonic() + 20
    while _processes_mentioning(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    leaked = _processes_mentioning(temp_dir)
    for pid in leaked:   # do not leave them to the next test run, but fail
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(temp_dir, ignore_errors=True)   # Ray's logs and session files: every run left one behind
    assert not leaked, f"Ray processes left running after shutdown: {leaked}"


def start_front(jobs_dir: Path, workers: int = 2, front_stages=StageSet, subjects_dirs=None,
                **config) -> BackendServer:
    """The real server (ZeroMQ front, job store) with its jobs on Ray actors holding the real stage set."""
    subjects = SubjectStore(subjects_dirs)
    runner = RayRunner(RayRunnerConfig(workers=workers, subjects_dirs=subjects_dirs, **config))
    server = BackendServer(ServerConfig(bind="tcp://127.0.0.1:*", jobs_dir=jobs_dir),
                           front_stages("cpu", subjects), subjects, runner=runner)
    server.start()
    runner.worker_info()   # wait until every actor has loaded its models
    return server


def request(seconds: float, seed: int = 0):
    """A landmark job on ``seconds`` of real speech (the shipped clip, repeated when longer)."""
    clip = speech(13.0)
    audio = np.tile(clip, int(np.ceil(seconds * 16000 / len(clip))))[: int(seconds * 16000)]
    frames = frame_count_for(len(audio) / 16000, 25.0)
    weights, intensity = spec_to_frames("neutral@0,happy:0.8@2,sad@6", frames, 25.0)
    return build_generate(audio, 16000, 25.0, weights, intensity, landmarks_only=True, seed=seed)


def landmarks_of(messages) -> np.ndarray:
    chunks = sorted((m for m in messages if m.type == MessageType.LANDMARKS), key=lambda m: m.content["start"])
    by_start = {m.content["start"]: m.array(0) for m in chunks}   # a re-run sends the same chunks again
    return np.concatenate([by_start[s] for s in sorted(by_start)])


def actor_pid(server: BackendServer, job_id: str, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        actor = server.runner.actor_of(server.jobs[job_id])
        if actor is not None:
            return ray.get(actor.info.remote(), timeout=timeout_s)["pid"]
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never started on an actor")


@pytest.mark.slow
def test_two_jobs_run_at_once_on_two_actors_and_match_the_in_process_runner(ray_cluster, tmp_path):
    server = start_front(tmp_path / "jobs", workers=2)
    try:
        results: dict[int, list] = {}

        def run(index: int) -> None:
            with SyncClient(server.address, timeout_s=120) as client:
                job_id = client.submit(request(40.0, seed=index))
                results[index] = (job_id, list(client.iter_job(job_id)))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(200)
        metas = [server.store.read_meta(results[i][0]) for i in range(2)]
    finally:
        server.stop()
    for i in range(2):
        kinds = [m.type for m in results[i][1]]
        assert kinds[-1] == MessageType.DONE and MessageType.PROGRESS in kinds
        assert landmarks_of(results[i][1]).shape == (1000, 68, 3)
    # each on its own actor, and their running times overlap
    assert {m["ray_worker"] for m in metas} == {0, 1}
    assert max(m["started"] for m in metas) < min(m["updated"] for m in metas)
    # the same request through the in-process runner gives the same landmarks
    from backend.pipeline.local import run_generate_local
    from backend.server.validation import job_from_message
    from bridge.protocol import Limits

    subjects = SubjectStore(None)
    local = run_generate_local(job_from_message(request(40.0, seed=1), "f" * 32, subjects, Limits()),
                               StageSet("cpu", subjects))
    np.testing.assert_allclose(landmarks_of(results[1][1]), local.landmarks, atol=1e-5)


def test_plates_stream_back_from_the_actor_as_png(ray_cluster, tmp_path):
    """Plates are PNG-encoded on the actor and arrive, in order, as the in-process runner sends them
X"""
    from test_server_support import PlateStages, make_subject

    subjects_dir = make_subject(tmp_path / "subjects")
    server = start_front(tmp_path / "jobs", workers=1, front_stages=PlateStages,
                         subjects_dirs=[str(subjects_dir)], stage_set_factory=PlateStages)
    try:
        with SyncClient(server.address, timeout_s=120) as client:
            request = generate_request(seconds=2.0, subject="tester", landmarks_only=False, resolution=[64, 48])
            messages = list(client.iter_job(client.submit(request)))
    finally:
        server.stop()
    plates = [m for m in messages if m.type == MessageType.PLATE]
    assert messages[-1].type == MessageType.DONE and messages[-1].content["plates"] == 50
    assert [m.content["frame"] for m in plates] == list(range(50))
    from backend.pipeline.local import decode_png
    first = decode_png(plates[0].bytes(0))
    assert plates[0].media_type(0) == "image/png" and first.shape == (48, 64, 4) and first[..., 3].max() == 255


@pytest.mark.slow
def test_cancel_reaches_the_actor_and_the_other_job_finishes(ray_cluster, tmp_path):
    server = start_front(tmp_path / "jobs", workers=2)
    try:
        with SyncClient(server.address, timeout_s=120) as client, SyncClient(server.address, timeout_s=120) as other:
            long_job = client.submit(request(300.0))
            short_job = other.submit(request(13.0))
            got = []
            for msg in client.iter_job(long_job):
                got.append(msg)
                if msg.type == MessageType.PROGRESS and msg.content["stage_fraction"] > 0.05 and len(got) < 50:
                    reply = client.cancel(long_job)
                    assert reply.content["state"] == "cancelled"
            assert got[-1].type == MessageType.CANCELLED
            assert sum(m.content["count"] for m in got if m.type == MessageType.LANDMARKS) < 7500
            assert [m.type for m in other.iter_job(short_job)][-1] == MessageType.DONE
            assert server.store.read_meta(long_job)["state"] == "cancelled"
            # the actor is free again: a new job runs
            third = client.submit(request(5.0))
            assert [m.type for m in client.iter_job(third)][-1] == MessageType.DONE
    finally:
        server.stop()


@pytest.mark.slow
def test_an_actor_killed_mid_job_reruns_it_then_fails_it_clearly(ray_cluster, tmp_path):
    server = start_front(tmp_path / "jobs", workers=2, max_retries=1)
    try:
        with SyncClient(server.address, timeout_s=180) as client, SyncClient(server.address, timeout_s=180) as other:
            victim = client.submit(request(120.0))
            bystander = other.submit(request(60.0))
            kills, got = 0, []
            for msg in client.iter_job(victim):
                got.append(msg)
                if msg.type == MessageType.PROGRESS and msg.content["stage_fraction"] > 0.05 and kills == 0:
                    os.kill(actor_pid(server, victim), signal.SIGKILL)
                    kills += 1
            kinds = [m.type for m in got]
            assert kinds[-1] == MessageType.DONE, got[-1].content
            warnings = [m.content["message"] for m in got if m.type == MessageType.WARNING]
            assert any("died" in w and "again from the start" in w for w in warnings), warnings
            rerun = landmarks_of(got)
            assert rerun.shape == (3000, 68, 3)
            bystander_msgs = list(other.iter_job(bystander))
            assert bystander_msgs[-1].type == MessageType.DONE
            # frames delivered before the kill agree with the re-run (same request, same seed)
            reference = landmarks_of(list(client.iter_job(client.submit(request(120.0)))))
            np.testing.assert_allclose(rerun, reference, atol=1e-5)
            # fetch after the fact replays the same story from the job store
            replay = list(other.fetch(victim, client.tokens[victim]))
            assert [m.type for m in replay if m.type != MessageType.PROGRESS] == \
                [m.type for m in got if m.type != MessageType.PROGRESS]

            # killed again on its re-run: the job fails with an error that says why
            doomed = client.submit(request(120.0))
            got, phase = [], 0     # 0: kill once; 1: wait for the re-run's warning; 2: kill again; 3: done
            with pytest.raises(BridgeError) as failure:
                for msg in client.iter_job(doomed):
                    got.append(msg)
                    if phase == 1 and msg.type == MessageType.WARNING:
                        phase = 2
                    elif phase in (0, 2) and msg.type == MessageType.PROGRESS and msg.content["stage_fraction"] > 0.05:
                        os.kill(actor_pid(server, doomed), signal.SIGKILL)
                        phase += 1
            assert phase == 3
            assert failure.value.code == "job_failed"
            assert "Ray worker running it died" in failure.value.message and "2 time(s)" in failure.value.message
            assert server.store.read_meta(doomed)["state"] == "failed"
            assert client.ping() < 5.0
    finally:
        server.stop()


@pytest.mark.slow
def test_finished_and_queued_jobs_survive_a_restart_of_the_front(ray_cluster, tmp_path):
    jobs_dir = tmp_path / "jobs"
    server = start_front(jobs_dir, workers=1)
    try:
        with SyncClient(server.address, timeout_s=120) as client:
            finished = client.submit(request(13.0))
            before = list(client.iter_job(finished))
            running = client.submit(request(300.0))
            queued = client.submit(request(13.0))
            tokens = dict(client.tokens)
            for msg in client.iter_job(running):
                if msg.type == MessageType.PROGRESS and msg.content["stage_fraction"] > 0.05:
                    break
    finally:
        server.stop()
    server = start_front(jobs_dir, workers=1)
    try:
        with SyncClient(server.address, timeout_s=120) as client:
            again = list(client.fetch(finished, tokens[finished]))
            np.testing.assert_array_equal(landmarks_of(again), landmarks_of(before))
            later = list(client.fetch(queued, tokens[queued]))
            assert later[-1].type == MessageType.DONE and landmarks_of(later).shape == (325, 68, 3)
            assert list(client.fetch(running, tokens[running]))[-1].type in (MessageType.CANCELLED, MessageType.DONE)
    finally:
        server.stop()


@pytest.mark.slow
def test_serve_runner_ray_process_survives_a_crash_of_the_front(ray_cluster, tmp_path):
    """`emogene serve --runner ray --ray-address HOST:PORT` joins the cluster; SIGKILLed mid-job and started
    again, it runs the interrupted job again and the queued one, and both can be fetched."""
    jobs_dir, port = tmp_path / "jobs", free_tcp_port()

    def serve():
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--runner", "ray", "--ray-address", ray_cluster,
             "--workers", "1", "--bind", f"tcp://127.0.0.1:{port}", "--jobs-dir", str(jobs_dir),
             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "listening on" in line:
                assert "runner=ray" in line, line
                threading.Thread(target=proc.stdout.read, daemon=True).start()
                return proc
        raise AssertionError("serve --runner ray did not start:\n" + "".join(lines))

    proc = serve()
    try:
        with SyncClient(f"tcp://127.0.0.1:{port}", timeout_s=120) as client:
            assert client.hello().content["capabilities"]["runner"] == "ray"
            interrupted = client.submit(request(300.0))
            queued = client.submit(request(13.0))
            tokens = dict(client.tokens)
            for msg in client.iter_job(interrupted):
                if msg.type == MessageType.PROGRESS and msg.content["stage_fraction"] > 0.05:
                    break
        proc.kill()
        proc.wait(30)
        proc = serve()
        with SyncClient(f"tcp://127.0.0.1:{port}", timeout_s=180) as client:
            rerun = list(client.fetch(interrupted, tokens[interrupted]))
            assert rerun[-1].type == MessageType.DONE
            assert any("restarted" in m.content["message"] for m in rerun if m.type == MessageType.WARNING)
            assert landmarks_of(rerun).shape == (7500, 68, 3)
            assert list(client.fetch(queued, tokens[queued]))[-1].type == MessageType.DONE
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
@pytest.mark.bpy
def test_blender_batch_jobs_run_side_by_side_on_two_ray_workers(ray_cluster, shared_data, tmp_path):
    """Generate All Marked in Blender against `emogene serve --runner ray --workers 2`: the two scenes' jobs
    start on different workers before either is done, and each take lands in its scene."""
    import re

    from blender.support import Backend, build_test_zip, run_scenario

    for folder in ("zip", "serve"):
        (tmp_path / folder).mkdir()
    zip_path = build_test_zip(tmp_path / "zip")
    backend = Backend(tmp_path / "serve", extra_args=["--runner", "ray", "--ray-address", ray_cluster,
                                                      "--workers", "2"])
    try:
        assert backend.welcome["capabilities"]["runner"] == "ray" and backend.welcome["capabilities"]["workers"] == 2
        out = run_scenario("scenario_batch", zip_path, backend.address, shared_data / "speech" / "eng_60s.wav",
                           tmp_path / "out", 500, user_dir=tmp_path / "user", timeout=300)
        log = backend.log_path.read_text()
    finally:
        backend.stop()
    assert out["Shot_A"]["frames"] == 500 and out["Shot_B"]["frames"] == 510
    events = re.findall(r"job ([0-9a-f]{32}) (runs on Ray worker (\d)|done)", log)
    starts = [(job, worker) for job, what, worker in events if what.startswith("runs")]
    assert len(starts) == 2 and {w for _, w in starts} == {"0", "1"}, log[-3000:]
    first_done = next(i for i, (_, what, _) in enumerate(events) if what == "done")
    assert sum(what.startswith("runs") for _, what, _ in events[:first_done]) == 2, events
