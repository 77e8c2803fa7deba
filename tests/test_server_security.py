"""The bridge under attack and under faults, against `emogene serve` as a real process (issue 13):
clients survive an unread burst, jobs belong to their token, replays are refused, restarts are noticed
and lose nothing, a fetch always ends, the job store is private."""
from __future__ import annotations

import resource
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from bridge.client import SyncClient
from bridge.errors import BridgeError
from bridge.messages import Message
from bridge.protocol import ErrorCode, MessageType
from bridge.requests import build_fetch
from bridge.wire import deserialize, serialize
from test_server_support import (KEY, REPO, free_tcp_port, generate_request, make_subject, raw_dealer, recv_frames,
                                 serve_process, stop_process)

pytestmark = pytest.mark.timeout(180)

BURST_CLIENT = textwrap.dedent("""
    import sys, time
    from bridge import requests
    from bridge.client import PollingClient, SyncClient
    from bridge.errors import BridgeError
    address, kind, count, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    client = SyncClient(address, timeout_s=5) if kind == "sync" else PollingClient(address)
    for _ in range(count):
        while True:
            try:
                client.send(requests.build_ping())
                break
            except BridgeError as exc:   # the polling client never blocks: 'busy' while its send queue is full
                if exc.code != "busy":
                    raise
                time.sleep(0.01)
    time.sleep(pause)          # stop reading while the answers pile up (> 1,000 queued)
    got, deadline = 0, time.monotonic() + 60
    while got < count and time.monotonic() < deadline:
        if kind == "sync":
            got += client._receive(1.0) is not None
        else:
            got += len(client.poll(5, 100))
    print("received", got, flush=True)
""")


def test_clients_survive_an_unread_burst(tmp_path):
    """libzmq 4.3 aborted the process (`_input_stopped`) when a client with heartbeat options stopped
    reading for > 10 s with > 1,000 messages queued: inside Blender that killed Blender."""
    proc, address = serve_process(tmp_path / "jobs")
    try:
        clients = [subprocess.Popen([sys.executable, "-c", BURST_CLIENT, address, kind, "3000", "12"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
                   for kind in ("sync", "poll")]
        outs = [c.communicate(timeout=120)[0] for c in clients]
        for client, out in zip(clients, outs):
            assert client.returncode == 0, out          # -6 = SIGABRT before the fix
            assert "received 3000" in out, out
    finally:
        stop_process(proc)


def _wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_jobs_belong_to_their_token(tmp_path):
    proc, address = serve_process(tmp_path / "jobs", delay_s=0.4)
    try:
        with SyncClient(address, timeout_s=10) as owner, SyncClient(address, timeout_s=10) as other:
            job_id = owner.submit(generate_request(seconds=4.0))        # 4 chunks, ~1.6 s
            token = owner.tokens[job_id]
            assert len(token) >= 22                                     # >= 128 bits, url-safe base64
            welcome = other.hello().content
            assert job_id not in str(welcome) and welcome["jobs"] == [] and welcome["running"] in (True, False)
            assert owner.hello().content["jobs"] == [job_id]
            for attempt in (None, "x" * len(token), token[:-1] + ("A" if token[-1] != "A" else "B")):
                for call in (lambda: list(other.fetch(job_id, attempt)), lambda: other.ack(job_id, attempt),
                             lambda: other.cancel(job_id, attempt)):
                    other.tokens.clear()
                    with pytest.raises(BridgeError) as err:
                        call()
                    assert err.value.code == ErrorCode.BAD_TOKEN, err.value
            # the owner's stream was never taken over: every chunk, then done
            stream = list(owner.iter_job(job_id))
            assert stream[-1].type == MessageType.DONE
            assert sum(m.content["count"] for m in stream if m.type == MessageType.LANDMARKS) == 100
            assert owner.ack(job_id).type == MessageType.ACKED

            # the owner fetching from a second connection moves the stream; the first is told so
            job_id = owner.submit(generate_request(seconds=4.0))
            first = next(owner.iter_job(job_id))
            assert first.type in (MessageType.PROGRESS, MessageType.LANDMARKS)
            with SyncClient(address, timeout_s=10) as second:
                moved = second.fetch(job_id, owner.tokens[job_id])
                with pytest.raises(BridgeError) as err:
                    list(owner.iter_job(job_id))
                assert err.value.code == ErrorCode.STREAM_MOVED and "newer fetch" in err.value.message
                replay = list(moved)
                assert replay[-1].type == MessageType.DONE
                assert sum(m.content["count"] for m in replay if m.type == MessageType.LANDMARKS) == 100
    finally:
        stop_process(proc)


def test_replays_are_refused(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    proc, address = serve_process(tmp_path / "jobs", "--key-file", str(key_file))
    socket = raw_dealer(address)
    try:
        captured = [bytes(f) for f in serialize(generate_request(seconds=0.5), KEY)]
        socket.send_multipart(captured)
        accepted = deserialize(recv_frames(socket), KEY)
        assert accepted.type == MessageType.ACCEPTED
        token = accepted.content["token"]
        while deserialize(recv_frames(socket), KEY).type != MessageType.DONE:
            pass
        socket.send_multipart(captured)                             # the same signed bytes again
        reply = deserialize(recv_frames(socket), KEY)
        assert reply.type == MessageType.ERROR and reply.content["code"] == ErrorCode.REPLAYED, reply
        old = Message(MessageType.PING, time=0.0)                   # 1970
        socket.send_multipart(serialize(old, KEY))
        reply = deserialize(recv_frames(socket), KEY)
        assert reply.content["code"] == ErrorCode.REPLAYED and "±300 s" in reply.content["message"]
        future = Message(MessageType.PING, time=time.time() + 3600)
        socket.send_multipart(serialize(future, KEY))
        assert deserialize(recv_frames(socket), KEY).content["code"] == ErrorCode.REPLAYED
        fetch = [bytes(f) for f in serialize(build_fetch(accepted.job_id, token), KEY)]
        socket.send_multipart(fetch)
        while (msg := deserialize(recv_frames(socket), KEY)).type not in (MessageType.DONE, MessageType.ERROR):
            pass
        assert msg.type == MessageType.DONE
        socket.send_multipart(fetch)                                # a captured fetch cannot be replayed
        reply = deserialize(recv_frames(socket), KEY)
        assert reply.content["code"] == ErrorCode.REPLAYED
        with SyncClient(address, key=KEY, timeout_s=5) as client:  # fresh messages still work
            assert client.ping() < 10.0   # answered (the first one includes the handshake, on a loaded machine)
    finally:
        socket.close(0)
        stop_process(proc)


def test_restart_is_noticed_and_queued_jobs_run_after_it(tmp_path):
    port = free_tcp_port()
    jobs = tmp_path / "jobs"
    proc, address = serve_process(jobs, delay_s=0.5, port=port)
    restarted = None
    try:
        client = SyncClient(address, timeout_s=30)
        running = client.submit(generate_request(seconds=6.0))      # 6 chunks, ~3 s
        queued = client.submit(generate_request(seconds=2.0, seed=3))
        stream = client.iter_job(running)
        assert next(stream).type in (MessageType.PROGRESS, MessageType.LANDMARKS)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        restarted, _ = serve_process(jobs, delay_s=0.05, port=port)
        killed_at = time.monotonic()
        with pytest.raises(BridgeError) as err:
            for _ in stream:
                pass
        noticed = time.monotonic() - killed_at
        assert err.value.code == ErrorCode.BACKEND_RESTARTED and noticed < 10.0, (err.value, noticed)
        assert "restarted" in err.value.message and running in err.value.message
        # the queued job ran on the new instance; the running one ran again, and says so
        replay = list(client.fetch(queued))
        assert replay[-1].type == MessageType.DONE
        assert sum(m.content["count"] for m in replay if m.type == MessageType.LANDMARKS) == 50
        replay = list(client.fetch(running))
        assert replay[0].type == MessageType.WARNING and "restarted" in replay[0].content["message"]
        assert replay[-1].type == MessageType.DONE
        assert sum(m.content["count"] for m in replay if m.type == MessageType.LANDMARKS) == 150
        assert client.cancel(running).content["state"] == "done"    # the truth, not 'running'
        client.close()
    finally:
        stop_process(proc)
        if restarted is not None:
            stop_process(restarted)


def test_vanished_backend_is_noticed_within_a_few_heartbeats(tmp_path):
    proc, address = serve_process(tmp_path / "jobs", delay_s=1.0)
    try:
        with SyncClient(address, timeout_s=30) as client:
            job_id = client.submit(generate_request(seconds=20.0))
            stream = client.iter_job(job_id)
            next(stream)
            proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            with pytest.raises(BridgeError) as err:
                for _ in stream:
                    pass
            assert err.value.code == ErrorCode.TIMEOUT and "stopped answering" in err.value.message
            assert time.monotonic() - killed_at < 10.0
    finally:
        stop_process(proc)


def _small_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                   # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))


def test_fetch_of_an_incompletely_stored_job_ends(tmp_path):
    """The store fails part-way (here: each plate is over the file size limit, as on a full disk): the
    job still streams live, and a later fetch ends with a terminal message instead of waiting forever."""
    subjects = make_subject(tmp_path / "subjects")
    proc, address = serve_process(tmp_path / "jobs", "--subjects-dir", str(subjects), plates=True,
                                  preexec_fn=_small_files)
    try:
        with SyncClient(address, timeout_s=10) as client:
            job_id = client.submit(generate_request(seconds=0.4, subject="tester", landmarks_only=False,
                                                    resolution=(160, 160)))
            live = list(client.iter_job(job_id))
            assert live[-1].type == MessageType.DONE
            assert sum(m.type == MessageType.PLATE for m in live) == 10
        with SyncClient(address, timeout_s=10) as later:
            started = time.monotonic()
            with pytest.raises(BridgeError) as err:
                list(later.fetch(job_id, client.tokens[job_id]))
            assert err.value.code == ErrorCode.JOB_FAILED and "could not all be stored" in err.value.message
            assert time.monotonic() - started < 5.0
    finally:
        stop_process(proc)


def test_job_store_is_private(tmp_path):
    jobs = tmp_path / "jobs"
    proc, address = serve_process(jobs, delay_s=0.3)
    try:
        with SyncClient(address, timeout_s=10) as client:
            job_id = client.submit(generate_request(seconds=2.0))
            request_file = jobs / job_id / "request.msg"
            assert stat.S_IMODE(request_file.stat().st_mode) == 0o600     # the audio, while queued/running
            list(client.iter_job(job_id))
        assert stat.S_IMODE(jobs.stat().st_mode) == 0o700
        paths = list((jobs / job_id).rglob("*"))
        assert paths and not request_file.exists()                        # dropped once the job ended
        for path in paths:
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
        assert stat.S_IMODE((jobs / job_id).stat().st_mode) == 0o700
    finally:
        stop_process(proc)
