"""The backend server over real ZeroMQ sockets: conversation, jobs, cancel, fetch after a lost client."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from backend.pipeline.base import StageError
from bridge.client import PollingClient, SyncClient
from bridge.errors import BridgeError
from bridge.protocol import PROTOCOL_VERSION, ErrorCode, MessageType
from bridge.requests import build_ping
from test_server_support import KEY, REPO, generate_request, start_server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(tmp_path):
    srv = start_server(tmp_path / "jobs", delay_s=0.0)
    yield srv
    srv.stop()


@pytest.fixture
def slow_server(tmp_path):
    srv = start_server(tmp_path / "jobs", delay_s=0.15)
    yield srv
    srv.stop()


def test_hello_ping_subjects_over_tcp_and_ipc(tmp_path):
    for bind in ("tcp://127.0.0.1:*", f"ipc://{tmp_path}/backend.sock"):
        srv = start_server(tmp_path / "jobs", bind=bind)
        try:
            with SyncClient(srv.address, timeout_s=5) as client:
                welcome = client.hello()
                assert welcome.type == MessageType.WELCOME and welcome.content["protocol"] == PROTOCOL_VERSION
                assert welcome.content["device"] == "cpu"
                assert welcome.content["capabilities"]["motion"] == "SlowPlaceholder"
                assert 0 < client.ping() < 1.0
                assert isinstance(client.subjects(), list)
        finally:
            srv.stop()


def test_generate_streams_landmarks_and_keeps_results_until_ack(server):
    with SyncClient(server.address, timeout_s=10) as client:
        request = generate_request(seconds=2.0, fps=29.97)
        job_id = client.submit(request)
        messages = list(client.iter_job(job_id))
    kinds = [m.type for m in messages]
    assert kinds[-1] == MessageType.DONE and MessageType.PROGRESS in kinds
    chunks = [m for m in messages if m.type == MessageType.LANDMARKS]
    frames = np.concatenate([m.array(0) for m in chunks])
    assert frames.shape == (60, 68, 3)                                  # ceil(2.0 * 29.97)
    assert [m.content["start"] for m in chunks] == sorted(m.content["start"] for m in chunks)
    assert all(m.content["total"] == 60 and m.content["fps"] == pytest.approx(29.97) for m in chunks)
    assert all(m.parent_id == request.msg_id for m in messages)
    progress = [m.content["fraction"] for m in messages if m.type == MessageType.PROGRESS]
    assert progress == sorted(progress) and progress[-1] == 1.0
    # the mouth moves with the speech: the lower lip's height varies over the clip
    assert np.ptp(frames[:, 57, 1]) > 0.05
    assert messages[-1].content["frames"] == 60
    job_dir = server.store.root / job_id
    assert (job_dir / "job.json").is_file()
    token = client.tokens[job_id]
    with SyncClient(server.address, timeout_s=10) as other:
        replay = list(other.fetch(job_id, token))
        np.testing.assert_array_equal(
            np.concatenate([m.array(0) for m in replay if m.type == MessageType.LANDMARKS]), frames)
        assert other.ack(job_id, token).type == MessageType.ACKED
        assert not job_dir.exists()
        with pytest.raises(BridgeError) as err:
            list(other.fetch(job_id, token))
        assert err.value.code == ErrorCode.UNKNOWN_JOB


def test_two_clients_at_once_one_cancels(slow_server):
    results: dict[str, list] = {}

    def run(name: str, cancel: bool) -> None:
        with SyncClient(slow_server.address, timeout_s=10) as client:
            job_id = client.submit(generate_request(seconds=3.0))
            got = []
            for msg in client.iter_job(job_id):
                got.append(msg.type)
                if cancel and msg.type == MessageType.LANDMARKS:
                    reply = client.cancel(job_id)
                    got.append(f"reply:{reply.content['state']}")
            results[name] = got

    threads = [threading.Thread(target=run, args=("a", True)), threading.Thread(target=run, args=("b", False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # 3 s = 75 frames = 3 chunks; the cancelled job stops before its last chunk
    assert results["a"][-1] == MessageType.CANCELLED and "reply:cancelled" in results["a"]
    assert results["a"].count(MessageType.LANDMARKS) < 3
    assert results["b"][-1] == MessageType.DONE and results["b"].count(MessageType.LANDMARKS) == 3


def test_cancel_of_a_queued_job_is_immediate(slow_server):
    with SyncClient(slow_server.address, timeout_s=10) as client:
        first = client.submit(generate_request(seconds=8.0))    # 8 chunks, 1.2 s
        second = client.submit(generate_request(seconds=1.0))
        started = time.monotonic()
        assert client.cancel(second).content["state"] == "cancelled"
        assert time.monotonic() - started < 0.6          # did not wait for the first job
        assert [m.type for m in client.iter_job(second)] == [MessageType.CANCELLED]
        assert list(client.iter_job(first))[-1].type == MessageType.DONE
        with pytest.raises(BridgeError) as err:
            client.cancel("0" * 32)
        assert err.value.code == ErrorCode.UNKNOWN_JOB


CLIENT_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from bridge.client import SyncClient
from test_server_support import generate_request
client = SyncClient({address!r}, timeout_s=10)
job_id = client.submit(generate_request(seconds=4.0))
print(job_id, client.tokens[job_id], flush=True)
for msg in client.iter_job(job_id):
    if msg.type == "landmarks":
        print("chunk", flush=True)
"""


def test_killed_client_leaves_server_up_and_results_fetchable(slow_server):
    script = CLIENT_SCRIPT.format(tests=str(REPO / "tests"), address=slow_server.address)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        job_id, token = proc.stdout.readline().split()
        assert proc.stdout.readline().strip() == "chunk"   # mid-job
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with SyncClient(slow_server.address, timeout_s=10) as client:
        assert client.ping() < 1.0
        replay = list(client.fetch(job_id, token))   # stored chunks first, then the rest live
        assert replay[-1].type == MessageType.DONE
        chunks = [m for m in replay if m.type == MessageType.LANDMARKS]
        assert sum(m.content["count"] for m in chunks) == 100
        assert sorted(m.content["start"] for m in chunks) == [0, 25, 50, 75]
        client.ack(job_id)


def test_results_survive_a_server_restart(tmp_path):
    srv = start_server(tmp_path / "jobs")
    with SyncClient(srv.address, timeout_s=10) as client:
        job_id = client.submit(generate_request(seconds=1.0))
        token = client.tokens[job_id]
        first = list(client.iter_job(job_id))
    srv.stop()
    srv = start_server(tmp_path / "jobs")
    try:
        with SyncClient(srv.address, timeout_s=10) as client:
            replay = list(client.fetch(job_id, token))
            assert [m.type for m in replay] == [m.type for m in first if m.type != MessageType.PROGRESS]
            assert client.cancel(job_id, token).content["state"] == "done"
    finally:
        srv.stop()


def test_polling_client_never_blocks_and_survives_bad_frames(server):
    with PollingClient(server.address) as client:
        started = time.perf_counter()
        assert client.poll(max_wait_ms=1000) == []
        assert time.perf_counter() - started < 0.1   # 5 ms budget; generous for a loaded machine
        assert client.last_heard is None
        ping_id = client.send(build_ping())
        deadline = time.monotonic() + 5
        received = []
        while not received and time.monotonic() < deadline:
            received = client.poll(max_wait_ms=5)
        assert received[0].type == MessageType.PONG and received[0].parent_id == ping_id
        assert client.last_heard is not None
    # a client with a key gets the unsigned server's replies as local errors, not exceptions
    with PollingClient(server.address, key=KEY) as client:
        client.send(build_ping())
        deadline = time.monotonic() + 5
        received = []
        while not received and time.monotonic() < deadline:
            received = client.poll(max_wait_ms=5)
        assert received[0].type == MessageType.ERROR and received[0].content["local"] is True
        assert received[0].content["code"] == ErrorCode.BAD_SIGNATURE


def test_sync_client_times_out_without_a_backend():
    with SyncClient("tcp://127.0.0.1:1", timeout_s=0.3) as client:
        started = time.monotonic()
        with pytest.raises(BridgeError) as err:
            client.ping()
        assert err.value.code == ErrorCode.TIMEOUT and time.monotonic() - started < 2


def test_server_answers_while_a_job_runs(slow_server):
    with SyncClient(slow_server.address, timeout_s=10) as client:
        job_id = client.submit(generate_request(seconds=3.0))
        with SyncClient(slow_server.address, timeout_s=2) as other:
            assert other.ping() < 0.5   # the socket thread is not blocked by the worker
        assert list(client.iter_job(job_id))[-1].type == MessageType.DONE


class _BrokenStage:
    name = "broken"
    weight = 1.0

    def __init__(self, error):
        self.error = error

    def run(self, job, ctx):
        ctx.emit_landmarks(0, np.zeros((1, 68, 3), np.float32), np.eye(3, dtype=np.float32)[None],
                           np.zeros((1, 3), np.float32))
        raise self.error


@pytest.mark.parametrize("error, code", [
    (RuntimeError("stage bug"), ErrorCode.JOB_FAILED),
    (StageError("unsupported", "no such camera"), ErrorCode.UNSUPPORTED),
])
def test_a_failing_stage_fails_only_its_job(server, error, code):
    working = server.stage_set.motion
    server.stage_set.motion = _BrokenStage(error)
    try:
        with SyncClient(server.address, timeout_s=10) as client:
            job_id = client.submit(generate_request(seconds=1.0))
            seen = []
            with pytest.raises(BridgeError) as err:
                for msg in client.iter_job(job_id):
                    seen.append(msg.type)
            assert err.value.code == code and str(error) in err.value.message
            assert MessageType.LANDMARKS in seen
            assert server.store.read_meta(job_id)["state"] == "failed"
            server.stage_set.motion = working
            job_id = client.submit(generate_request(seconds=1.0))
            assert list(client.iter_job(job_id))[-1].type == MessageType.DONE
    finally:
        server.stage_set.motion = working


def test_polling_client_returns_partial_batches_instead_of_blocking(tmp_path):
    from test_server_support import make_subject, start_plate_server
    server = start_plate_server(tmp_path / "jobs", make_subject(tmp_path / "subjects"), key=KEY)
    try:
        with PollingClient(server.address, key=KEY) as client:
            client.send(generate_request(seconds=1.0, landmarks_only=False, subject="tester", resolution=(512, 512)))
            deadline = time.monotonic() + 30   # let the whole job arrive in the client's queue first
            while not any(job.terminal_forwarded for job in list(server.jobs.values())):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.5)
            batches, durations = [], []
            while True:
                started = time.perf_counter()
                batch = client.poll(max_wait_ms=0, max_messages=1000)
                durations.append(time.perf_counter() - started)
                if not batch:
                    break
                batches.append(batch)
            messages = [m for b in batches for m in b]
            assert messages[-1].type == MessageType.DONE
            assert sum(m.type == MessageType.PLATE for m in messages) == 25
            assert len(batches) > 1            # 25 signed 1 MiB plates cannot all be verified within 5 ms
            assert max(durations) < 0.2        # each call stopped soon after its budget (one message past it)
    finally:
        server.stop()
