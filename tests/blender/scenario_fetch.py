"""Scenario: a job outlives the .blend that started it; Fetch Results gets the take back.

    python scenario_fetch.py ZIP ADDRESS AUDIO OUT_DIR FRAMES
Generate (landmarks only), save the .blend once the backend accepted the job, reopen it (the add-on
drops its session on load, as when Blender is closed), then Fetch Results: the take is imported as
Generate would and acknowledged, so the backend no longer has the job. Prints ``RESULT {json}``.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (imports bpy)

import bpy  # noqa: E402

zip_path, address, audio, out_dir, frames = sys.argv[1:6]
frames = int(frames)
addon, prefs = harness.setup(zip_path, out_dir, address)
generate_mod, take_mod, compat, bridge_api = harness.submodules(addon, "running_jobs", "importers.take", "compat",
                                                                "bridge_api")
blend = os.path.join(out_dir, "scene.blend")
bpy.ops.wm.save_as_mainfile(filepath=blend)
scene, strip = harness.speech_scene(audio, frames, strip_start=11)
first, last = 11, 10 + frames
scene.emogene.output = "LANDMARKS"
result: dict = {}

# no saved job yet: nothing to fetch
assert not bpy.ops.emogene.fetch_results.poll()
assert bpy.ops.emogene.generate() == {"FINISHED"}
assert not bpy.ops.emogene.fetch_results.poll()  # a job is running
deadline = time.monotonic() + 30
while not scene.emogene.job_id:  # the timer saves the backend's job id once the job is accepted
    assert generate_mod.generate_timer() is not None, (scene.emogene.job_state, scene.emogene.status)
    assert time.monotonic() < deadline, "the backend never accepted the job"
    time.sleep(0.02)
job_id = scene.emogene.job_id
token = scene.emogene.job_token
assert len(token) >= 22, token   # the job's secret (>= 128 bits), saved beside its id
assert scene.emogene.job_state == "RUNNING"
bpy.ops.wm.save_mainfile()

# reopen the .blend mid-job: the add-on's session is gone, the job id is in the file
bpy.ops.wm.open_mainfile(filepath=blend)
assert not generate_mod.SESSIONS
scene = bpy.context.scene
assert scene.emogene.job_id == job_id and scene.emogene.job_state == "RUNNING"
assert scene.emogene.job_token == token
assert take_mod.current_take(scene) is None
assert bpy.ops.emogene.fetch_results.poll()
assert bpy.ops.emogene.fetch_results() == {"FINISHED"}
assert scene.emogene.job_state == "RUNNING"
result["timer_calls"] = harness.pump(addon)
assert scene.emogene.job_state == "DONE", (scene.emogene.job_state, scene.emogene.status)
assert scene.emogene.job_id == "" and scene.emogene.job_token == ""
assert not bpy.ops.emogene.fetch_results.poll()

take = take_mod.current_take(scene)
assert take is not None and take.name == "EmoGene take_001", take
objects = list(take.objects)
assert len(objects) == 69, len(objects)
head = [o for o in objects if o.get("emogene_role") == "head"]
assert len(head) == 1 and sum(1 for o in objects if o.get("emogene_role") == "landmark") == 68
expected_frames = list(range(first, last + 1))
for obj in objects:
    fcurves = compat.id_fcurves(obj)
    assert len(fcurves) == (6 if obj is head[0] else 3), (obj.name, len(fcurves))
    for fc in fcurves:
        keyed = [int(round(k.co[0])) for k in fc.keyframe_points]
        assert keyed == expected_frames, (obj.name, fc.data_path, keyed[:3], keyed[-3:])

# the ack went out: the backend deleted the job
with bridge_api.client().SyncClient(address, timeout_s=5.0) as client:
    try:
        list(client.fetch(job_id, token))
        raise AssertionError(f"the backend still has job {job_id} after the ack")
    except AssertionError:
        raise
    except Exception as exc:  # BridgeError unknown_job
        assert getattr(exc, "code", None) == "unknown_job", exc

# fetching an acknowledged job says so clearly
scene.emogene.job_id, scene.emogene.job_token = job_id, token
assert bpy.ops.emogene.fetch_results() == {"FINISHED"}
harness.pump(addon)
assert scene.emogene.job_state == "ERROR"
assert f"no longer has job {job_id} (acknowledged or expired)" in scene.emogene.status, scene.emogene.status
assert scene.emogene.job_id == ""
assert take_mod.current_take(scene).name == "EmoGene take_001"
status_gone = scene.emogene.status

# backend down: said so, and the job id stays for a later try
prefs.backend_address = "tcp://127.0.0.1:9"
prefs.connect_timeout = 1.0
scene.emogene.job_id, scene.emogene.job_token = job_id, token
assert bpy.ops.emogene.fetch_results() == {"FINISHED"}
harness.pump(addon)
assert scene.emogene.job_state == "ERROR" and "No answer from the backend" in scene.emogene.status, \
    scene.emogene.status
assert scene.emogene.job_id == job_id and bpy.ops.emogene.fetch_results.poll()
result["down_status"] = scene.emogene.status
result.update(job_id=job_id, take=take.name, frames=frames, status=status_gone)
harness.emit(result)
