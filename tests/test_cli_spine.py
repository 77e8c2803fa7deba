"""The CLI spine: `emogene serve` / `ping` as real processes, `emogene generate` writing its files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from backend.cli import main
from bridge.landmarks import LANDMARK_NAMES
from bridge.protocol import PROTOCOL_VERSION
from test_server_support import (KEY, REPO, SPEECH_WAV, free_tcp_port, make_subject, speech, start_plate_server,
                                 start_server)

pytestmark = pytest.mark.timeout(120)
EMOGENE = [sys.executable, "-m", "backend.cli"]


def _serve(*args: str, env_extra: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start `emogene serve` and wait for its 'listening on ADDR' line."""
    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.Popen([*EMOGENE, "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=REPO, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            return proc, line.split("listening on", 1)[1].split()[0]
    proc.kill()
    raise AssertionError(f"emogene serve did not start: {proc.stdout.read()}")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    return out


def _ping(address: str, *extra: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*EMOGENE, "ping", "--connect", address, *extra], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def test_serve_and_ping_over_tcp_and_ipc_with_a_key(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    port = free_tcp_port()
    proc, address = _serve("--bind", f"tcp://127.0.0.1:{port}", "--jobs-dir", str(tmp_path / "jobs"),
                           "--key-file", str(key_file), "--device", "cpu")
    try:
        assert address == f"tcp://127.0.0.1:{port}"
        result = _ping(address, "--key-file", str(key_file))
        assert result.returncode == 0, result.stderr
        assert f"protocol {PROTOCOL_VERSION}" in result.stdout and "device    cpu" in result.stdout and "round trip" in result.stdout
        unsigned = _ping(address, "--timeout", "3")
        assert unsigned.returncode == 1 and "bad_signature" in unsigned.stderr
    finally:
        out = _stop(proc)
    assert proc.returncode == 0 and "stopped" in out

    ipc = f"ipc://{tmp_path}/emogene.sock"
    proc, address = _serve("--bind", ipc, "--jobs-dir", str(tmp_path / "jobs"), "--device", "cpu")
    try:
        assert address == ipc
        result = _ping(address)
        assert result.returncode == 0 and f"protocol {PROTOCOL_VERSION}" in result.stdout
    finally:
        _stop(proc)
    assert proc.returncode == 0


def test_ping_without_a_backend_fails_clearly():
    started = time.monotonic()
    result = _ping(f"tcp://127.0.0.1:{free_tcp_port()}", "--timeout", "1")
    assert result.returncode == 1 and "no answer" in result.stderr
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("bind", ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.10:5555"])
def test_serve_refuses_a_public_bind_without_a_key(bind):
    result = subprocess.run([*EMOGENE, "serve", "--bind", bind], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2 and "refusing" in result.stderr and "--key-file" in result.stderr


def test_serve_rejects_a_short_key(tmp_path):
    (tmp_path / "key").write_text("short")
    result = subprocess.run([*EMOGENE, "serve", "--key-file", str(tmp_path / "key")], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2 and "at least 16 bytes" in result.stderr


def _generate(address: str, audio, emotion: str, fps: float, out, *extra: str) -> int:
    """``emogene generate`` in this process (its exit code)."""
    return main(["generate", "--connect", address, "--audio", str(audio), "--emotion", emotion, "--fps", str(fps),
                 *extra, "--out", str(out)])


def test_generate_writes_npz_csv_and_plates(tmp_path, capsys):
    server = start_plate_server(tmp_path / "jobs", make_subject(tmp_path / "subjects"))
    try:
        wav = tmp_path / "speech.wav"
        soundfile.write(wav, speech(1.2, 22050), 22050)   # another sample rate: resampled by the server
        out = tmp_path / "out"
        code = _generate(server.address, wav, "neutral@0,happy:0.8@0.5", 24, out, "--subject", "tester",
                         "--resolution", "48x40", "--seed", "3")
        assert code == 0, capsys.readouterr().err
        track = np.load(out / "landmarks.npz")
        frames = 29   # ceil(1.2 * 24)
        assert track["landmarks"].shape == (frames, 68, 3) and track["rotation"].shape == (frames, 3, 3)
        assert track["translation"].shape == (frames, 3) and float(track["fps"]) == 24.0
        assert track["emotion_weights"].shape == (frames, 8) and track["emotion_intensity"].shape == (frames,)
        assert track["emotion_weights"][-1, 5] == 1.0 and track["emotion_intensity"][-1] == pytest.approx(0.8)
        rows = (out / "landmarks.csv").read_text().splitlines()
        assert rows[0] == "frame,index,name,x,y,z" and len(rows) == 1 + frames * 68
        frame, index, name, x, *_ = rows[1 + 68 + 57].split(",")
        assert (frame, index, name) == ("1", "57", LANDMARK_NAMES[57])
        assert float(x) == pytest.approx(track["landmarks"][1, 57, 0], abs=1e-5)
        plates = sorted((out / "plates").glob("frame_*.png"))
        assert [p.name for p in plates[:2]] == ["frame_000000.png", "frame_000001.png"] and len(plates) == frames
        import cv2
        plate = cv2.imread(str(plates[0]), cv2.IMREAD_UNCHANGED)
        assert plate.shape == (40, 48, 4) and plate[..., 3].max() == 255 and plate[..., 3].min() == 0
        assert not any(server.store.root.iterdir())   # acknowledged, so deleted on the backend
    finally:
        server.stop()


def test_generate_bad_input_is_reported_before_sending(tmp_path, capsys):
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, speech(0.5), 16000)
    base = ["generate", "--connect", "tcp://127.0.0.1:1", "--audio", str(wav), "--fps", "25", "--out", str(tmp_path)]
    assert main([*base, "--emotion", "joyful"]) == 2
    assert "unknown emotion 'joyful'" in capsys.readouterr().err
    assert main([*base, "--emotion", "happy@2,sad@1"]) == 2
    assert "increase" in capsys.readouterr().err
    assert main([*base[:-6], "--audio", str(tmp_path / "missing.wav"), "--fps", "25", "--emotion", "happy",
                 "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_generate_landmarks_only_and_server_side_errors(tmp_path, capsys):
    server = start_server(tmp_path / "jobs")
    try:
        out = tmp_path / "out"
        code = _generate(server.address, SPEECH_WAV, "sad:0.5", 25, out, "--landmarks-only")
        assert code == 0, capsys.readouterr().err
        assert np.load(out / "landmarks.npz")["landmarks"].shape[1:] == (68, 3)
        assert not (out / "plates").exists()
        code = _generate(server.address, SPEECH_WAV, "sad", 25, out, "--subject", "nobody")
        assert code == 1 and "unknown_subject" in capsys.readouterr().err
    finally:
        server.stop()


def test_generate_help_documents_the_spec(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "neutral@0,happy:0.8@1.5,sad@4" in text and "happy:0.8" in text and "seconds" in text.lower()


def test_generate_sends_other_formats_encoded_and_the_server_decodes_them(tmp_path, capsys):
    pytest.importorskip("backend.data.audio", reason="the data module's decoder (ffmpeg) decodes m4a")
    import imageio_ffmpeg
    wav, m4a = tmp_path / "speech.wav", tmp_path / "speech.m4a"
    soundfile.write(wav, speech(1.0), 16000)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(wav), "-c:a", "aac", str(m4a)],
                   check=True, timeout=60)
    server = start_server(tmp_path / "jobs")
    try:
        out = tmp_path / "out"
        code = _generate(server.address, m4a, "angry@0,fear@0.5", 30, out, "--landmarks-only")
        assert code == 0, capsys.readouterr().err
        track = np.load(out / "landmarks.npz")
        frames = track["landmarks"].shape[0]
        assert 30 <= frames <= 32   # aac pads a little
        assert track["emotion_weights"].shape == (frames, 8) and track["emotion_weights"][-1, 4] == 1.0
    finally:
        server.stop()


def test_generate_checks_fps_and_the_declared_length_before_reading(tmp_path, capsys):
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, speech(0.5), 16000)
    base = ["generate", "--connect", "tcp://127.0.0.1:1", "--emotion", "happy", "--out", str(tmp_path / "o")]
    assert main([*base, "--audio", str(wav), "--fps", "1e9"]) == 2
    assert "--fps must be a number > 0 and <= 240" in capsys.readouterr().err
    # a sparse 2 GiB WAV: its header declares ~18.6 h; refused by the header, nothing is read or sent
    huge = tmp_path / "huge.wav"
    soundfile.write(huge, np.zeros(16, np.int16), 16000, subtype="PCM_16")
    data = bytearray(huge.read_bytes())
    size = 2**31 - 64
    data[4:8] = (size + 36).to_bytes(4, "little")
    data[40:44] = size.to_bytes(4, "little")
    huge.write_bytes(bytes(data[:44]))
    os.truncate(huge, 44 + size)
    started = time.monotonic()
    assert main([*base, "--audio", str(huge), "--fps", "25"]) == 2
    err = capsys.readouterr().err
    assert "audio_too_long" in err and "600 s" in err and time.monotonic() - started < 5


@pytest.mark.slow   # two server start-ups: ~40 s on a loaded 2-core machine
def test_generate_prints_the_token_and_fetch_gets_the_job_after_a_restart(tmp_path):
    from test_server_support import serve_process, stop_process

    wav = tmp_path / "speech.wav"
    soundfile.write(wav, speech(6.0), 16000)
    port = free_tcp_port()
    proc, address = serve_process(tmp_path / "jobs", delay_s=0.5, port=port)
    restarted = None
    try:
        cli = subprocess.Popen([*EMOGENE, "generate", "--connect", address, "--audio", str(wav), "--emotion", "happy",
                                "--fps", "25", "--landmarks-only", "--out", str(tmp_path / "out")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        words = cli.stdout.readline().split()
        assert words[0] == "job" and words[2] == "token", words
        job_id, token = words[1], words[3]
        time.sleep(1.0)   # mid-job
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        restarted, _ = serve_process(tmp_path / "jobs", delay_s=0.05, port=port)
        started = time.monotonic()
        _, err = cli.communicate(timeout=30)
        assert time.monotonic() - started < 10 and cli.returncode == 1, err
        # a quick restart is seen as one; one slower than ~8 s as a backend that stopped answering
        assert "backend_restarted" in err or "stopped answering" in err, err
        assert f"emogene fetch --job {job_id} --token {token}" in err, err
        out = tmp_path / "fetched"
        fetched = subprocess.run([*EMOGENE, "fetch", "--connect", address, "--job", job_id, "--token", token,
                                  "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=60)
        assert fetched.returncode == 0, fetched.stderr
        assert "run again from the start" in fetched.stdout + fetched.stderr   # the warning: it was re-run after the restart
        track = np.load(out / "landmarks.npz")
        assert track["landmarks"].shape == (150, 68, 3) and float(track["fps"]) == 25.0
        wrong = subprocess.run([*EMOGENE, "fetch", "--connect", address, "--job", job_id, "--token", "x" * 32,
                                "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=60)
        assert wrong.returncode == 1 and "unknown_job" in wrong.stderr   # acked by the first fetch
    finally:
        stop_process(proc)
        if restarted is not None:
            stop_process(restarted)
