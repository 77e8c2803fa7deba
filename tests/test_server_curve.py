"""CURVE encryption (issue 13): `emogene keys`, `serve --curve-secret`, clients' `--server-key`; what
crosses the socket, recorded by a forwarding proxy on loopback, holds neither the audio nor the landmarks."""
from __future__ import annotations

import socket as pysocket
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq

from bridge.client import SyncClient, load_curve_key, load_curve_pair
from bridge.errors import BridgeError
from bridge.protocol import ErrorCode, MessageType
from test_server_support import KEY, REPO, generate_request, serve_process, stop_process

pytestmark = pytest.mark.timeout(180)
EMOGENE = [sys.executable, "-m", "backend.cli"]


class RecordingProxy:
    """Forwards loopback TCP connections to ``target_port`` and keeps every byte, both ways."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.recorded = bytearray()
        self._lock = threading.Lock()
        self._listener = pysocket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = pysocket.create_connection(("127.0.0.1", self.target_port))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst) -> None:
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(pysocket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            with self._lock:
                self.recorded += data
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._listener.close()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    out = tmp_path_factory.mktemp("keys")
    result = subprocess.run([*EMOGENE, "keys", "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((out / "server.key_secret").stat().st_mode) == 0o600
    again = subprocess.run([*EMOGENE, "keys", "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                           timeout=60)
    assert again.returncode == 2 and "--force" in again.stderr     # never overwrites a key by accident
    return out


def _job_through_proxy(address_port: int, server_key: bytes | None, key: bytes | None):
    """Run one job through a recording proxy; returns (recorded bytes, audio sent, landmarks received)."""
    proxy = RecordingProxy(address_port)
    try:
        request = generate_request(seconds=1.0)
        audio = request.array(0)
        with SyncClient(f"tcp://127.0.0.1:{proxy.port}", key=key, timeout_s=10, server_key=server_key) as client:
            welcome = client.hello().content
            job_id = client.submit(request)
            messages = list(client.iter_job(job_id))
            client.ack(job_id)
        assert messages[-1].type == MessageType.DONE
        landmarks = np.concatenate([m.array(0) for m in messages if m.type == MessageType.LANDMARKS])
        return bytes(proxy.recorded), audio, landmarks, welcome
    finally:
        proxy.close()


def _leaks(recorded: bytes, array: np.ndarray) -> bool:
    """Whether any 32-byte window of ``array`` (sampled along it) appears in ``recorded``."""
    raw = np.ascontiguousarray(array).tobytes()
    windows = [raw[i:i + 32] for i in range(0, len(raw) - 32, max(32, len(raw) // 50))]
    return any(w in recorded for w in windows if len(set(w)) > 4)


@pytest.mark.parametrize("hmac_key", [None, KEY], ids=["curve", "curve+hmac"])
def test_curve_traffic_is_unreadable(tmp_path, keys, hmac_key):
    args = ["--curve-secret", str(keys / "server.key_secret")]
    if hmac_key:
        (tmp_path / "key").write_bytes(hmac_key)
        args += ["--key-file", str(tmp_path / "key")]
    proc, address = serve_process(tmp_path / "jobs", *args)
    port = int(address.rsplit(":", 1)[1])
    try:
        server_key = load_curve_key(keys / "server.key")
        recorded, audio, landmarks, welcome = _job_through_proxy(port, server_key, hmac_key)
        assert welcome["encrypted"] is True and welcome["capabilities"]["signed"] is bool(hmac_key)
        assert len(recorded) > audio.nbytes                        # the audio did cross, encrypted
        assert not _leaks(recorded, audio) and not _leaks(recorded, landmarks)
        assert b"generate" not in recorded and b"landmarks" not in recorded
        # without the server's key, or with another one, nothing answers: a clean time-out
        for wrong in (None, zmq.curve_keypair()[0]):
            with SyncClient(address, key=hmac_key, timeout_s=1.5, server_key=wrong) as client:
                with pytest.raises(BridgeError) as err:
                    client.ping()
                assert err.value.code == ErrorCode.TIMEOUT
        ping = subprocess.run([*EMOGENE, "ping", "--connect", address, "--server-key", str(keys / "server.key"),
                               *(["--key-file", str(tmp_path / "key")] if hmac_key else [])],
                              capture_output=True, text=True, cwd=REPO, timeout=60)
        assert ping.returncode == 0 and "encrypted: yes" in ping.stdout, ping.stdout + ping.stderr
    finally:
        stop_process(proc)


def test_without_curve_the_proxy_reads_everything(tmp_path):
    """The control: the same recording shows audio and landmarks in the clear without CURVE."""
    proc, address = serve_process(tmp_path / "jobs")
    try:
        recorded, audio, landmarks, welcome = _job_through_proxy(int(address.rsplit(":", 1)[1]), None, None)
        assert welcome["encrypted"] is False
        assert _leaks(recorded, audio) and _leaks(recorded, landmarks)
    finally:
        stop_process(proc)


def test_only_listed_clients_get_through_the_handshake(tmp_path, keys):
    """`--curve-clients`: an unlisted peer fails the CURVE handshake, so not one of its frames is read:
    4 x 100 MiB of frames cost the backend nothing (without it, libzmq buffers them whole: MAXMSGSIZE is
    per frame)."""
    allowed = tmp_path / "clients"
    result = subprocess.run([*EMOGENE, "keys", "--out", str(tmp_path / "alice"), "--client", "alice"],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    allowed.mkdir()
    (allowed / "alice.key").write_bytes((tmp_path / "alice" / "alice.key").read_bytes())
    proc, address = serve_process(tmp_path / "jobs", "--curve-secret", str(keys / "server.key_secret"),
                                  "--curve-clients", str(allowed))
    try:
        server_key = load_curve_key(keys / "server.key")
        alice = load_curve_pair(tmp_path / "alice" / "alice.key_secret")
        with SyncClient(address, timeout_s=10, server_key=server_key, client_pair=alice) as client:
            assert client.ping() < 10.0   # answered (the first one includes the handshake, on a loaded machine)
        ping = subprocess.run([*EMOGENE, "ping", "--connect", address, "--server-key", str(keys / "server.key"),
                               "--client-key", str(tmp_path / "alice" / "alice.key_secret")],
                              capture_output=True, text=True, cwd=REPO, timeout=60)
        assert ping.returncode == 0, ping.stderr
        with SyncClient(address, timeout_s=1.5, server_key=server_key) as stranger:   # a key not listed
            with pytest.raises(BridgeError) as err:
                stranger.ping()
            assert err.value.code == ErrorCode.TIMEOUT
            # the refusal dropped the client's only connection (libzmq does not retry it): a second request
            # cannot even be queued, and says so in time instead of blocking forever
            started = time.monotonic()
            with pytest.raises(BridgeError) as err:
                stranger.ping()
            assert err.value.code == ErrorCode.TIMEOUT and time.monotonic() - started < 5.0
        rss_before = _rss_kib(proc.pid)
        flood = zmq.Context.instance().socket(zmq.DEALER)
        flood.setsockopt(zmq.LINGER, 0)
        flood.curve_serverkey = server_key
        flood.curve_publickey, flood.curve_secretkey = zmq.curve_keypair()
        flood.connect(address)
        block = b"\0" * (100 << 20)
        # Never a blocking send here: once the backend refuses the handshake, libzmq drops the DEALER's only
        # pipe and does not reconnect, so a blocking send made after that (a loaded machine) waits forever.
        # Whether the 400 MiB were queued or refused at once, none of it may reach the backend's memory.
        try:
            flood.send_multipart([block] * 4, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass
        time.sleep(3.0)
        flood.close(0)
        assert _rss_kib(proc.pid) - rss_before < 50 * 1024, (rss_before, _rss_kib(proc.pid))
        with SyncClient(address, timeout_s=10, server_key=server_key, client_pair=alice) as client:
            assert client.ping() < 10.0   # answered (the first one includes the handshake, on a loaded machine)
    finally:
        stop_process(proc)


def _rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
