"""Scenario: two scenes ticked "In batch", Generate All Marked, both jobs run, each take lands in its scene.

    python scenario_batch.py ZIP ADDRESS AUDIO OUT_DIR FRAMES
Prints ``RESULT {json}``; any failed assertion exits non-zero.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (imports bpy)

import bpy  # noqa: E402

zip_path, address, audio, out_dir, frames = sys.argv[1:6]
frames = int(frames)
addon, prefs = harness.setup(zip_path, out_dir, address)
take_mod, generate = harness.submodules(addon, "importers.take", "running_jobs")
assert bpy.ops.emogene.connect() == {"FINISHED"}
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(out_dir, "batch.blend"))

first, _ = harness.speech_scene(audio, frames, strip_start=1)
first.name = "Shot_A"
bpy.ops.emogene.key_emotion(emotion="happy", weight=0.8, frame=1)
second = bpy.data.scenes.new("Shot_B")        # a second shot: its own strip, later in the clip's timeline
second.render.fps = 25
editor = second.sequence_editor_create()
strips = editor.strips if hasattr(editor, "strips") else editor.sequences
strip = strips.new_sound("speech_b", audio, 1, 101)
strip.frame_final_duration = frames + 10
second.frame_start, second.frame_end = 101, 100 + frames + 10
second.emogene.audio_source = "STRIP"
second.emogene.sound_strip = strip.name
unmarked = bpy.data.scenes.new("Not_In_Batch")
for scene in (first, second):
    scene.emogene.output = "LANDMARKS"
    scene.emogene.use_subject_camera = True
    scene.emogene.batch = True

result = {}
assert bpy.ops.emogene.generate_batch() == {"FINISHED"}
assert sorted(generate.SESSIONS) == ["Shot_A", "Shot_B"], list(generate.SESSIONS)
assert first.emogene.job_state == "RUNNING" and second.emogene.job_state == "RUNNING"
assert unmarked.emogene.job_state == "IDLE"
seen = {"Shot_A": [], "Shot_B": []}


def watch(_calls):
    for scene in (first, second):
        seen[scene.name].append(round(scene.emogene.progress, 3))


result["timer_calls"] = harness.pump(addon, on_step=watch)
for scene, count in ((first, frames), (second, frames + 10)):
    assert scene.emogene.job_state == "DONE", (scene.name, scene.emogene.job_state, scene.emogene.status)
    take = take_mod.current_take(scene)
    assert take is not None and len(list(take.objects)) == 69, scene.name
    head = next(o for o in take.objects if o.get("emogene_role") == "head")
    keyed = sorted({int(round(k.co[0])) for fc in harness.submodule(addon, "compat").id_fcurves(head)
                    for k in fc.keyframe_points})
    assert keyed == list(range(scene.frame_start, scene.frame_start + count)), (scene.name, keyed[:3], keyed[-3:])
    result[scene.name] = {"take": take.name, "frames": len(keyed), "status": scene.emogene.status}
# the panel's per-job progress moved for both jobs
result["progress_values"] = {name: sorted(set(values)) for name, values in seen.items()}
assert all(len(set(values)) >= 2 for values in seen.values()), result["progress_values"]
# a second click while nothing is marked sends nothing
for scene in (first, second):
    scene.emogene.batch = False
assert not bpy.ops.emogene.generate_batch.poll()
harness.emit(result)
