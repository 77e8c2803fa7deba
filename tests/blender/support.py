"""Pytest-side helpers for the add-on tests: build the zip, start a real backend, run scenarios.

bpy keeps global state, so each scenario runs as its own ``python tests/blender/<name>.py``
process with ``BLENDER_USER_RESOURCES`` pointing at a fresh temporary folder.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent
PYTHON = sys.executable
EMOGENE = str(Path(sys.executable).with_name("emogene"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    """``emogene serve`` on a free loopback port, as a child process."""

    def __init__(self, workdir: Path, key_file: Path | None = None, extra_args: list[str] | None = None,
                 test_plates: bool = False):
        """``test_plates``: run ``serve_test_plates.py`` (real server, stand-in stages) instead of ``emogene serve``."""
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log_path = workdir / f"serve_{self.port}.log"
        jobs = ["--jobs-dir", str(workdir / f"jobs_{self.port}")]
        if test_plates:
            cmd = [PYTHON, str(SCENARIOS / "serve_test_plates.py"), "--bind", self.address, *jobs]
        else:
            cmd = [EMOGENE, "serve", "--bind", self.address, "--device", "cpu", *jobs]
        cmd += list(extra_args or [])
        if key_file is not None:
            cmd += ["--key-file", str(key_file)]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"})
        self.key = key_file.read_bytes().strip() if key_file else None
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 60.0) -> None:
        from bridge.client import SyncClient
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emogene serve exited with {self.proc.returncode}:\n{self.log()}")
            client = SyncClient(self.address, key=self.key, timeout_s=1.0)
            try:
                self.welcome = client.hello().content
                return
            except Exception:
                time.sleep(0.2)
            finally:
                client.close()
        raise RuntimeError(f"emogene serve did not answer within {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def run_scenario(name: str, *args: str, user_dir: Path, timeout: float = 180.0, python: str = PYTHON) -> dict:
    """Run ``tests/blender/<name>.py args`` in its own process; returns the JSON it prints last.

    Fails with the scenario's output when it exits non-zero.
    """
    user_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(user_dir), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([python, str(SCENARIOS / f"{name}.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO_ROOT)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise AssertionError(f"scenario {name} failed (exit {done.returncode}):\n{output[-6000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT "):]) if lines else {}


def bpy45_python() -> str | None:
    """A Python with ``bpy==4.5.15`` (Blender 4.5 LTS) for the compat tests, if one was set up.

    ``$EMOGENE_BPY45_PYTHON``, else ``cache/bpy45/bin/python`` (made with
    ``python -m venv cache/bpy45 && cache/bpy45/bin/pip install bpy==4.5.15 numpy==1.26.4 pyzmq``).
    """
    candidate = os.environ.get("EMOGENE_BPY45_PYTHON") or str(REPO_ROOT / "cache" / "bpy45" / "bin" / "python")
    return candidate if Path(candidate).is_file() else None


def bpy42_python() -> str | None:
    """A Python with ``bpy==4.2.23`` (Blender 4.2 LTS, the oldest the extension supports), if one was set up.

    ``$EMOGENE_BPY42_PYTHON``, else ``cache/bpy42/bin/python`` (made by ``scripts/setup_bpy42.sh``).
    """
    candidate = os.environ.get("EMOGENE_BPY42_PYTHON") or str(REPO_ROOT / "cache" / "bpy42" / "bin" / "python")
    return candidate if Path(candidate).is_file() else None


def build_test_zip(out_dir: Path) -> Path:
    """The extension zip without bundled wheels (the venv's pyzmq serves); built by Blender's tool."""
    from backend.commands import build_addon
    staging = build_addon.stage(out_dir / "staging", ["linux-x64"], with_wheels=False)
    zip_path = out_dir / "emogene-test.zip"
    build_addon.blender_ext("build", "--source-dir", str(staging), "--output-filepath", str(zip_path))
    return zip_path
