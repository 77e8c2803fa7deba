"""Scenario: every failure is reported clearly and leaves the scene as it was.

    python scenario_errors.py ZIP AUDIO OUT_DIR CASE [ARGS...]
Cases:
  down ADDRESS                  nothing listens: "no answer" after the connect timeout
  killed ADDRESS PID            backend (slow plates) killed mid-job: error, previous take untouched
  cancel ADDRESS                cancel mid-job: cancelled, previous take untouched
  bad_key ADDRESS KEYFILE       backend signs with another key
  version ADDRESS               request with a wrong protocol version
  unsupported ADDRESS SUBJECT          plates from a backend without a renderer
  import_fails ADDRESS          the import breaks half-way (strip creation): everything rolled back
  lost ADDRESS                  two live messages lost (plates backend): the session fetches the stored job
  remote                        remote backend while online access is off: refused before any network use
  restarted ADDRESS PID JOBS LOG  backend killed mid-job and restarted: said so, Fetch Results gets the re-run job
Prints ``RESULT {json}``.
"""
from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import bpy  # noqa: E402
import numpy as np  # noqa: E402

zip_path, audio, out_dir, case, *args = sys.argv[1:]
addon, prefs = harness.setup(zip_path, out_dir, connect_timeout=1.5, silence_timeout=2.0)
generate_mod, take_mod, curves_mod, compat = harness.submodules(addon, "running_jobs", "importers.take",
                                                                "exporters.landmark_curves", "compat")
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(out_dir, "scene.blend"))
scene, strip = harness.speech_scene(audio, 40)
bpy.ops.emogene.key_emotion(emotion="happy", weight=0.8, frame=1)
bpy.ops.emogene.key_emotion(emotion="sad", weight=0.8, frame=40)
result: dict = {"case": case}


def snapshot() -> dict:
    """What the scene holds that a failed job must not change."""
    take = take_mod.current_take(scene)
    curves = curves_mod.read(scene) if take else None
    return {
        "take": take.name if take else None,
        "objects": sorted(o.name for o in bpy.data.objects),
        "strips": sorted(s.name for s in compat.strips(scene.sequence_editor)),
        "collections": sorted(c.name for c in bpy.data.collections),
        "actions": len(bpy.data.actions),
        "positions": None if curves is None else curves.positions.copy(),
    }


def same(a: dict, b: dict) -> None:
    for key in ("take", "objects", "strips", "collections", "actions"):
        assert a[key] == b[key], (key, a[key], b[key])
    if a["positions"] is not None:
        np.testing.assert_array_equal(a["positions"], b["positions"])


def first_take(address: str) -> None:
    """A successful landmarks-only take to protect."""
    prefs.backend_address = address
    scene.emogene.output = "LANDMARKS"
    assert bpy.ops.emogene.generate() == {"FINISHED"}
    harness.pump(addon, timeout_s=60)
    assert scene.emogene.job_state == "DONE", scene.emogene.status


def run_failing_job(expect_state: str, on_step=None) -> str:
    assert bpy.ops.emogene.generate() == {"FINISHED"}, scene.emogene.status
    harness.pump(addon, timeout_s=60, on_step=on_step)
    assert scene.emogene.job_state == expect_state, (scene.emogene.job_state, scene.emogene.status)
    assert not generate_mod.SESSIONS
    return scene.emogene.status


def refused(operator) -> str:
    """Run an operator that must refuse with an error report; returns the report text."""
    try:
        outcome = operator()
    except RuntimeError as exc:  # bpy.ops raises on an ERROR report in background mode
        return str(exc)
    assert outcome == {"CANCELLED"}, outcome
    return ""


def staging_empty() -> bool:
    staging = os.path.join(prefs.cache_dir, "staging")
    return not os.path.isdir(staging) or os.listdir(staging) == []


if case == "down":
    prefs.backend_address = args[0]
    before = snapshot()
    status = run_failing_job("ERROR")
    assert "No answer from the backend" in status, status
    # the anchor Empty is created at submit (the camera is expressed relative to it); nothing else
    after = snapshot()
    after["objects"] = [o for o in after["objects"] if not o.startswith("EmoGene Anchor")]
    same(before, after)

elif case in {"killed", "cancel"}:
    address = args[0]
    first_take(address)
    before = snapshot()
    scene.emogene.output = "PLATES"
    scene.emogene.subject = "flat_colours"

    def interrupt(_calls):
        session = generate_mod.SESSIONS.get(scene.name)
        done_already = "killed_after_plates" in result or "cancelled_after_plates" in result
        if session is not None and session.results.plates and session.state == "RUNNING" and not done_already:
            if case == "killed":
                os.kill(int(args[1]), signal.SIGKILL)
                result["killed_after_plates"] = len(session.results.plates)
            else:
                assert bpy.ops.emogene.cancel() == {"FINISHED"}
                result["cancelled_after_plates"] = len(session.results.plates)

    status = run_failing_job("ERROR" if case == "killed" else "CANCELLED", on_step=interrupt)
    assert result.get("killed_after_plates" if case == "killed" else "cancelled_after_plates"), "job ended too soon"
    if case == "killed":
        assert "went silent" in status, status
    same(before, snapshot())
    assert not os.path.exists(bpy.path.abspath("//emogene/take_002")), "half a take on disk"
    assert staging_empty(), os.listdir(os.path.join(prefs.cache_dir, "staging"))

elif case == "bad_key":
    prefs.backend_address = args[0]
    key_file = os.path.join(out_dir, "wrong.key")
    with open(key_file, "w") as fh:
        fh.write("0123456789abcdef-not-the-right-key")
    prefs.key_file = key_file
    before = snapshot()
    status = run_failing_job("ERROR")
    assert "key file does not match" in status, status
    assert "key" in refused(bpy.ops.emogene.connect)
    # a key file that is too short is refused before sending anything
    with open(key_file, "w") as fh:
        fh.write("short")
    assert "Key file" in refused(bpy.ops.emogene.generate)
    assert "Key file" in scene.emogene.status and "16" in scene.emogene.status, scene.emogene.status
    result["short_key_status"] = scene.emogene.status

elif case == "version":
    prefs.backend_address = args[0]
    import importlib
    requests = importlib.import_module(f"{addon.__name__}.bridge.requests")
    original = requests.build_generate

    def future_version(*a, **k):
        msg = original(*a, **k)
        msg.version = 99
        return msg

    requests.build_generate = future_version
    status = run_failing_job("ERROR")
    assert "Protocol version mismatch" in status and "99" in status, status

elif case == "unsupported":
    prefs.backend_address = args[0]
    scene.emogene.output = "PLATES"
    scene.emogene.subject = args[1]
    status = run_failing_job("ERROR")
    assert "cannot do this" in status and "Landmarks only" in status, status

elif case == "import_fails":
    first_take(args[0])
    before = snapshot()
    scene.emogene.output = "PLATES"
    scene.emogene.subject = "flat_colours"
    plates_mod = harness.submodule(addon, "importers.plates")

    def broken_add_strip(*a, **k):
        raise RuntimeError("simulated failure while adding the strip")

    plates_mod.add_strip = broken_add_strip
    status = run_failing_job("ERROR")
    assert status.startswith("Import failed, scene left as it was") and "simulated" in status, status
    same(before, snapshot())
    assert not os.path.exists(bpy.path.abspath("//emogene/take_002")), os.listdir(bpy.path.abspath("//emogene"))
    assert staging_empty()

elif case == "lost":
    prefs.backend_address = args[0]
    scene.emogene.output = "PLATES"
    scene.emogene.subject = "flat_colours"
    assert bpy.ops.emogene.generate() == {"FINISHED"}
    client = generate_mod.SESSIONS[scene.name]._client
    real_poll, dropped = client.poll, []

    def lossy_poll(*a, **k):  # as if the backend's send queue had overflowed: drop a landmark chunk and a plate
        out = []
        for msg in real_poll(*a, **k):
            if msg.type in {"landmarks", "plate"} and msg.type not in dropped:
                dropped.append(msg.type)
                continue
            out.append(msg)
        return out

    client.poll = lossy_poll
    harness.pump(addon, timeout_s=60)
    assert dropped == ["landmarks", "plate"], dropped
    assert scene.emogene.job_state == "DONE", scene.emogene.status
    image_strip = next(s for s in compat.strips(scene.sequence_editor) if s.type == "IMAGE")
    assert image_strip.frame_final_duration == 40
    result["dropped"] = dropped

elif case == "restarted":
    # the backend is killed mid-job and comes back on the same port and jobs folder: the add-on says so
    # within a few heartbeats, keeps the job id and token, and Fetch Results imports the re-run job
    import subprocess
    import time

    address, pid, jobs_dir, log_path = args[0], int(args[1]), args[2], args[3]
    prefs.backend_address = address
    prefs.silence_timeout = 60.0
    scene.emogene.output = "PLATES"
    scene.emogene.subject = "flat_colours"
    restart: dict = {}

    def kill_and_restart(_calls):
        session = generate_mod.SESSIONS.get(scene.name)
        if session is not None and session.results.plates and "proc" not in restart:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            restart["proc"] = subprocess.Popen(
                [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve_test_plates.py"),
                 "--bind", address, "--jobs-dir", jobs_dir], stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
                cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
            restart["at"] = time.monotonic()

    try:
        status = run_failing_job("ERROR", on_step=kill_and_restart)
        result["noticed_after_s"] = round(time.monotonic() - restart["at"], 2)
        assert "restarted" in status or "stopped answering" in status, status
        result["restart_status"] = status
        assert scene.emogene.job_id and scene.emogene.job_token, "the job id and token must stay for a fetch"
        deadline = time.monotonic() + 60
        while True:   # the new backend may still be starting: Fetch Results until it answers
            assert bpy.ops.emogene.fetch_results() == {"FINISHED"}
            harness.pump(addon, timeout_s=90)
            if scene.emogene.job_state == "DONE" or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        assert scene.emogene.job_state == "DONE", scene.emogene.status
        take = take_mod.current_take(scene)
        image_strip = next(s for s in compat.strips(scene.sequence_editor) if s.type == "IMAGE")
        assert image_strip.frame_final_duration == 40
        result["take"] = take.name
    finally:
        if "proc" in restart:
            restart["proc"].terminate()
            restart["proc"].wait(10)

elif case == "remote":
    assert bpy.app.online_access is False
    prefs.backend_address = "tcp://192.0.2.10:5555"
    assert "online access is off" in refused(bpy.ops.emogene.generate)
    status = scene.emogene.status
    assert "online access is off" in status, status
    assert not generate_mod.SESSIONS
    assert "online access is off" in refused(bpy.ops.emogene.connect)

else:
    raise SystemExit(f"unknown case {case!r}")

result["status"] = scene.emogene.status
harness.emit(result)
