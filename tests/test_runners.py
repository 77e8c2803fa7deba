"""The runner seam without Ray: the server hands jobs to a JobRunner passed in from outside (cancel is a
request to the runner), the in-process runner is the default, and nothing imports ray unless asked."""
from __future__ import annotations

import subprocess
import sys

import pytest

from backend.runners.in_process import InProcessRunner
from backend.server import BackendServer, ServerConfig
from backend.subjects import SubjectStore
from bridge.client import SyncClient
from bridge.protocol import MessageType
from test_server_support import REPO, PlaceholderStages, generate_request

pytestmark = pytest.mark.timeout(120)


class CountingRunner(InProcessRunner):
    """The in-process runner, recording which seam calls the server made."""

    def __init__(self, stage_set):
        super().__init__(stage_set)
        self.calls: list[str] = []

    def submit(self, job):
        self.calls.append("submit")
        super().submit(job)

    def cancel(self, job):
        self.calls.append("cancel")
        super().cancel(job)


def test_the_server_runs_jobs_and_cancels_them_through_the_runner_it_is_given(tmp_path):
    subjects = SubjectStore(None)
    runner = CountingRunner(PlaceholderStages("cpu", subjects, delay_s=0.2))
    server = BackendServer(ServerConfig(bind="tcp://127.0.0.1:*", jobs_dir=tmp_path / "jobs"),
                           runner.stage_set, subjects, runner=runner)
    server.start()
    try:
        with SyncClient(server.address, timeout_s=10) as client:
            welcome = client.hello().content
            assert welcome["capabilities"]["runner"] == "in-process" and welcome["capabilities"]["workers"] == 1
            done = client.submit(generate_request(seconds=1.0))
            assert list(client.iter_job(done))[-1].type == MessageType.DONE
            cancelled = client.submit(generate_request(seconds=4.0))
            asked = False
            for msg in client.iter_job(cancelled):
                if msg.type == MessageType.LANDMARKS and not asked:
                    asked = True
                    assert client.cancel(cancelled).content["state"] == "cancelled"
            assert msg.type == MessageType.CANCELLED
            assert server.store.read_meta(cancelled)["state"] == "cancelled"
    finally:
        server.stop()
    assert runner.calls == ["submit", "submit", "cancel"]
    assert not runner.is_alive()


def test_the_default_runner_is_in_process_and_no_command_imports_ray(tmp_path):
    code = f"""
import sys
sys.path.insert(0, {str(REPO / 'tests')!r})
from backend.cli import build_parser
build_parser()                                  # every command's arguments, serve's --runner included
import backend.commands.serve, backend.runners.options, backend.server
from test_server_support import start_server
server = start_server(__import__('pathlib').Path({str(tmp_path / 'jobs')!r}))
assert server.runner.name == "in-process", server.runner
server.stop()
assert "ray" not in sys.modules, "ray was imported"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=90)
    assert out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr
    help_text = subprocess.run([sys.executable, "-m", "backend.cli", "serve", "--help"], capture_output=True,
                               text=True, cwd=REPO, timeout=60).stdout
    assert "--runner {in-process,ray}" in help_text and "--ray-address" in help_text


def test_runner_ray_without_ray_installed_says_how_to_get_it(tmp_path):
    code = """
import sys
sys.modules["ray"] = None            # as if the optional extra were not installed
from backend.cli import main
sys.exit(main(["serve", "--runner", "ray", "--jobs-dir", sys.argv[1]]))
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "jobs")], capture_output=True, text=True,
                         cwd=REPO, timeout=90)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "--runner ray needs Ray: pip install -e '.[ray]'" in out.stderr


def test_runner_ray_with_no_head_at_the_address_fails_at_once(tmp_path):
    pytest.importorskip("ray", reason="the optional Ray runner needs `pip install -e .[ray]` (ray not installed)")
    from test_server_support import free_tcp_port

    port = free_tcp_port()   # nothing listens there
    out = subprocess.run([sys.executable, "-m", "backend.cli", "serve", "--runner", "ray", "--ray-address",
                          f"127.0.0.1:{port}", "--jobs-dir", str(tmp_path / "jobs")], capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"cannot reach a Ray cluster at '127.0.0.1:{port}'" in out.stderr and "ray start --head" in out.stderr
