"""Scenario: the add-on's pieces without a backend (emotion curves, audio cut, camera, rig, session).

    python scenario_units.py ZIP AUDIO OUT_DIR
"""
from __future__ import annotations

import importlib
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Euler, Vector  # noqa: E402

zip_path, audio, out_dir = sys.argv[1:4]
addon = harness.install_addon(zip_path)


def mod(name):
    return importlib.import_module(f"{addon.__name__}.{name}")


emotion_track, submit, audio_source, rig_space = (mod("emotion_track"), mod("submit"), mod("audio_source"),
                                                  mod("rig_space"))
face_rig, job, compat = mod("importers.face_rig"), mod("job_session"), mod("compat")
bridge_requests = mod("bridge.requests")
result = {}

# -- emotion keys: the arrays equal what Blender itself animates, for every interpolation ------------
scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = 25, 1.0
bpy.ops.emogene.key_emotion(emotion="happy", weight=0.8, intensity=0.5, frame=1)
bpy.ops.emogene.key_emotion(emotion="sad", weight=1.0, intensity=1.0, frame=20)
bpy.ops.emogene.key_emotion(emotion="angry", weight=0.6, intensity=0.7, frame=35)
happy = emotion_track.property_curve(scene, "happy")
assert happy is not None and len(happy.keyframe_points) == 3
# keys sit in one channel group, so the Dope Sheet/Graph Editor list them under "EmoGene Emotion"
assert all(emotion_track.property_curve(scene, n).group.name == "EmoGene Emotion"
           for n in (*mod("properties").EMOTIONS, "intensity"))
happy.keyframe_points[1].interpolation = "CONSTANT"   # 20 -> 35 holds
sad = emotion_track.property_curve(scene, "sad")
sad.keyframe_points[0].interpolation = "LINEAR"
sad.keyframe_points[0].easing = "EASE_IN"
intensity = emotion_track.property_curve(scene, "intensity")
intensity.keyframe_points[0].interpolation = "ELASTIC"
assert scene.animation_data is not None
arrays = emotion_track.evaluate(scene, 1, 40)
assert arrays.weights.shape == (40, 8) and arrays.intensity.shape == (40,)
names = mod("properties").EMOTIONS
worst = 0.0
for i, frame in enumerate(range(1, 41)):
    scene.frame_set(frame)  # the window's scene updates on frame_set; Blender's own value per frame
    for k, name in enumerate(names):
        worst = max(worst, abs(arrays.weights[i, k] - max(getattr(scene.emogene_emotion, name), 0.0)))
    worst = max(worst, abs(arrays.intensity[i] - min(max(scene.emogene_emotion.intensity, 0), 1)))
assert worst < 1e-6, worst
result["emotion_max_abs_diff"] = worst
# constant segment holds, elastic intensity stays within [0, 1] after clamping
assert np.all(arrays.weights[19:34, names.index("happy")] == arrays.weights[19, names.index("happy")])
assert arrays.intensity.min() >= 0 and arrays.intensity.max() <= 1
result["clamped_values"] = arrays.clamped
# a scene made with bpy.data.scenes.new() has no keys: the current values hold on every frame
other = bpy.data.scenes.new("Other")
other.emogene_emotion.surprised = 0.5
flat = emotion_track.evaluate(other, 5, 9)
assert np.all(flat.weights[:, names.index("surprised")] == 0.5) and np.all(flat.weights[:, 0] == 1.0)
try:
    emotion_track.evaluate(scene, 10, 9)
    raise AssertionError("empty range accepted")
except ValueError:
    pass

# -- audio: the right samples for the strip's frames, trimmed start honoured -----------------------
editor = scene.sequence_editor_create()
strip = compat.strips(editor).new_sound("speech", audio, 2, 11)
strip.frame_offset_start = 25                  # trim the first second off the strip
strip.frame_final_duration = 30
scene.emogene.sound_strip = strip.name
assert submit.frame_range(scene, scene.emogene) == (36, 65)
camera_obj = bpy.data.objects["Camera"]
anchor = bpy.data.objects.new("Anchor", None)
scene.collection.objects.link(anchor)
anchor.location = (0.3, -0.2, 1.5)
anchor.rotation_euler = Euler((0.0, 0.0, math.radians(30)))
scene.emogene.anchor = anchor
scene.emogene.output = "PLATES"
bpy.context.view_layer.update()
prepared = submit.prepare(scene)
msg = prepared.message
samples = msg.array(0)
assert msg.content["sample_rate"] == 16000 and msg.content["frame_start"] == 36
assert bridge_requests.frame_count_for(len(samples) / 16000, 25) == 30
reference = audio_source.decode(audio)[16000:16000 + len(samples)]
np.testing.assert_array_equal(samples, reference)
weights = msg.array(1)
assert weights.shape == (30, 8) and np.allclose(weights.sum(1), 1.0, atol=1e-6)
# camera relative to the anchor
matrix = np.array(msg.content["camera"]["anchor_from_camera"]).reshape(4, 4)
expected = np.array(anchor.matrix_world.inverted() @ camera_obj.matrix_world)
np.testing.assert_allclose(matrix, expected, atol=1e-6)
assert msg.content["camera"]["focal_length_mm"] == camera_obj.data.lens
# fractional frame rates: sample counts give back exactly the frame count
for fps in (23.976023976, 24.0, 29.97002997, 30.0, 59.94005994):
    for frames in (1, 7, 30, 449, 1799):
        n = audio_source.sample_count(frames, fps)
        assert bridge_requests.frame_count_for(n / 16000, fps) == frames, (fps, frames, n)
# audio from a file: it starts at the range's first frame
scene.emogene.audio_source = "FILE"
scene.emogene.audio_file = audio
scene.emogene.frame_start, scene.emogene.frame_end = 5, 29
from_file = submit.prepare(scene).message
assert from_file.content["frame_start"] == 5 and from_file.array(1).shape == (25, 8)
np.testing.assert_array_equal(from_file.array(0), audio_source.decode(audio)[:len(from_file.array(0))])
scene.emogene.audio_file = os.path.join(out_dir, "missing.wav")
try:
    submit.prepare(scene)
    raise AssertionError("missing file accepted")
except submit.SubmitError as exc:
    assert "not found" in str(exc)
scene.emogene.audio_source = "STRIP"
# no sound strip named: a clear message, nothing sent
scene.emogene.sound_strip = "missing"
try:
    submit.prepare(scene)
    raise AssertionError("missing strip accepted")
except submit.SubmitError as exc:
    assert "missing" in str(exc)

# -- face rig: canonical -> Blender mapping, head pose round trip -------------------------------------
rng = np.random.default_rng(0)
frames = 6
landmarks = rng.normal(size=(frames, 68, 3)).astype(np.float32)
yaw = np.radians(np.linspace(0, 20, frames))
rotation = np.stack([[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]] for a in yaw]).astype(np.float32)
translation = np.stack([np.linspace(0, 0.5, frames), np.zeros(frames), np.full(frames, 8.0)], 1).astype(np.float32)
collection = bpy.data.collections.new("rig test")
scene.collection.children.link(collection)
head, empties = face_rig.build(collection, anchor, 100, landmarks, rotation, translation, prefix="T_")
for i in (0, 8, 30, 57):
    fc = [compat.find_fcurve(empties[i], "location", a) for a in range(3)]
    got = np.array([[c.evaluate(100 + t) for c in fc] for t in range(frames)])
    x, y, z = landmarks[:, i, 0], landmarks[:, i, 1], landmarks[:, i, 2]
    np.testing.assert_allclose(got, np.stack([x, -z, y], 1) * 0.063, atol=1e-6)
euler = np.array([[compat.find_fcurve(head, "rotation_euler", a).evaluate(100 + t) for a in range(3)]
                  for t in range(frames)])
back = rig_space.rotation_from_rig(rig_space.euler_xyz_to_matrices(euler))
np.testing.assert_allclose(back, rotation, atol=1e-5)
# R about the camera's y (down) axis swings the nose toward image left = the subject's own right (-X in
# the rig): a negative turn about Blender's +Z, nothing about X
assert euler[-1, 2] < -0.3 and abs(euler[-1, 0]) < 1e-6
# world position of the nose tip at the first frame = anchor @ head @ local
scene.frame_set(100)
bpy.context.view_layer.update()
nose = empties[30]
expected_world = anchor.matrix_world @ Vector(rig_space.landmarks_to_rig(landmarks[0, 30]))
assert (nose.matrix_world.translation - expected_world).length < 1e-5
face_rig.remove_objects([head, *empties])
assert not [o for o in bpy.data.objects if o.name.startswith("T_")]

# -- session: chunks in any order, incomplete results refused ------------------------------------------
messages_mod = mod("bridge.messages")


class ScriptedClient:
    """Stands in for the socket: returns scripted replies, records what was sent."""

    def __init__(self):
        self.sent, self.inbox = [], []

    def send(self, msg):
        self.sent.append(msg)
        return msg.msg_id

    def poll(self, max_wait_ms=0, max_messages=100):
        out, self.inbox = self.inbox, []
        return out

    def close(self):
        pass


def landmarks_msg(job_id, start, n, total):
    return messages_mod.Message("landmarks", {"start": start, "count": n, "total": total, "fps": 25,
                                              "frame_start": 1},
                                [np.full((n, 68, 3), start, np.float32), np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)),
                                 np.zeros((n, 3), np.float32)], job_id=job_id)


def session(landmarks_only=True, clock=None):
    client = ScriptedClient()
    request = bridge_requests.build_generate(np.zeros(16000, np.float32), 16000, 25, np.eye(8)[[0] * 25],
                                             np.ones(25), landmarks_only=landmarks_only)
    s = job.GenerateSession(request, "tcp://127.0.0.1:1", None, frame_start=1, fps=25,
                            landmarks_only=landmarks_only, staging_root=os.path.join(out_dir, "staging"),
                            client=client, clock=clock or (lambda: 0.0), connect_timeout=5, silence_timeout=10)
    return s, client, request


def accepted_session(clock):
    """A session whose job the backend accepted (token T..., instance A...)."""
    s, client, request = session(clock=clock)
    client.inbox = [messages_mod.Message("accepted", {"token": "T" * 32, "instance": "A" * 32}, job_id="J",
                                         parent_id=request.msg_id)]
    s.pump()
    return s, client, request


s, client, request = session()
client.inbox = [messages_mod.Message("accepted", {"job_id": "J"}, job_id="J", parent_id=request.msg_id),
                landmarks_msg("J", 10, 15, 25), landmarks_msg("OTHER", 0, 10, 25), landmarks_msg("J", 0, 10, 25),
                messages_mod.Message("done", {}, job_id="J")]
assert s.pump() == job.DONE and s.results.frame_count == 25
assert s.results.landmarks[10, 0, 0] == 10 and s.results.landmarks[9, 0, 0] == 0
s.close()
# messages lost on the way (a client that fell behind): the session fetches the stored job once
s, client, request = session()
client.inbox = [messages_mod.Message("accepted", {}, job_id="J", parent_id=request.msg_id),
                landmarks_msg("J", 0, 10, 25), messages_mod.Message("done", {}, job_id="J")]
assert s.pump() == job.RUNNING and "Fetching" in s.status, s.status
assert [m.type for m in client.sent] == ["generate", "fetch"] and client.sent[1].content["job_id"] == "J"
client.inbox = [landmarks_msg("J", 0, 10, 25), landmarks_msg("J", 10, 15, 25), messages_mod.Message("done", {}, job_id="J")]
assert s.pump() == job.DONE, s.status
s.close()
# still incomplete after the replay: a clear error
s, client, request = session()
client.inbox = [messages_mod.Message("accepted", {}, job_id="J", parent_id=request.msg_id),
                landmarks_msg("J", 0, 10, 25), messages_mod.Message("done", {}, job_id="J")]
s.pump()
client.inbox = [messages_mod.Message("done", {}, job_id="J")]
assert s.pump() == job.ERROR and "15 landmark frame(s) never arrived" in s.error, s.error
s.close()
s, client, request = session(landmarks_only=False)
client.inbox = [messages_mod.Message("accepted", {}, job_id="J", parent_id=request.msg_id),
                landmarks_msg("J", 0, 25, 25), messages_mod.Message("done", {}, job_id="J")]
s.pump()
client.inbox = [messages_mod.Message("done", {}, job_id="J")]
assert s.pump() == job.ERROR and "25 plate(s) are missing" in s.error, s.error
staging = s.results.staging_dir
s.close()
assert not os.path.exists(staging)
# silence: a ping after 3 s, an error after the silence timeout
now = [0.0]
s, client, request = session(clock=lambda: now[0])
client.inbox = [messages_mod.Message("accepted", {}, job_id="J", parent_id=request.msg_id)]
s.pump()
now[0] = 4.0
s.pump()
assert [m.type for m in client.sent] == ["generate", "ping"]
now[0] = 10.5
assert s.pump() == job.ERROR and "went silent" in s.error
s.close()
# a ping unanswered for PONG_TIMEOUT_S: the backend is gone, said well before the silence timeout
now = [0.0]
s, client, request = accepted_session(lambda: now[0])
assert s.token == "T" * 32
now[0] = 2.5
s.pump()
assert client.sent[-1].type == "ping"
now[0] = 8.0
assert s.pump() == job.RUNNING
now[0] = 9.0
assert s.pump() == job.ERROR and "stopped answering" in s.error and s.error_code == "timeout", s.error
s.close()
# a pong from another backend instance: it restarted; cancel and ack carry the token
now = [0.0]
s, client, request = accepted_session(lambda: now[0])
now[0] = 2.5
s.pump()
client.inbox = [messages_mod.Message("pong", {"instance": "B" * 32}, parent_id=client.sent[-1].msg_id)]
assert s.pump() == job.ERROR and s.error_code == "backend_restarted" and "restarted" in s.error, s.error
s.ack()
assert client.sent[-1].type == "ack" and client.sent[-1].content["token"] == "T" * 32
s.close()
# -- panels: every property, operator and icon they name exists, in every state -----------------------
ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())
drawn = {"prop": 0, "operator": 0, "label": 0}


class OperatorProps:
    def __init__(self, idname):
        category, name = idname.split(".")
        self._rna = getattr(getattr(bpy.ops, category), name).get_rna_type()

    def __setattr__(self, name, value):
        if name != "_rna":
            assert name in self._rna.properties.keys(), name
        object.__setattr__(self, name, value)


class CheckingLayout:
    """Accepts what a UILayout accepts, asserting that every name it is given exists."""
    alert = enabled = active = False
    scale_y = 1.0
    use_property_split = False

    def _child(self, *a, **k):
        return CheckingLayout()

    row = column = box = split = _child

    def label(self, text="", icon="NONE", **k):
        assert icon in ICONS, icon
        drawn["label"] += 1

    def prop(self, data, name, **k):
        assert name in data.bl_rna.properties.keys(), (data, name)
        drawn["prop"] += 1

    def prop_search(self, data, name, search_data, search_name, **k):
        assert name in data.bl_rna.properties.keys() and search_name in search_data.bl_rna.properties.keys()
        drawn["prop"] += 1

    def operator(self, idname, icon="NONE", **k):
        assert icon in ICONS, icon
        drawn["operator"] += 1
        return OperatorProps(idname)

    def operator_menu_enum(self, idname, prop, **k):
        assert prop in OperatorProps(idname)._rna.properties.keys()

    def progress(self, **k):
        assert "progress" in bpy.types.UILayout.bl_rna.functions.keys()


class PanelSelf:
    def __init__(self):
        self.layout = CheckingLayout()


class PrefsSelf(PanelSelf):
    def __getattr__(self, name):
        return getattr(prefs, name)


panel_classes = mod("ui.panels").CLASSES
assert {c.bl_space_type for c in panel_classes} == {"SEQUENCE_EDITOR", "VIEW_3D"}
generate_mod, preferences_mod = mod("running_jobs"), mod("preferences")
prefs = harness.preferences(addon)
scene.emogene.sound_strip = strip.name
states = [
    ("idle", lambda: None),
    ("plates+custom", lambda: (setattr(scene.emogene, "output", "PLATES"),
                               setattr(scene.emogene, "resolution_mode", "CUSTOM"))),
    ("file audio", lambda: setattr(scene.emogene, "audio_source", "FILE")),
    ("error", lambda: (setattr(scene.emogene, "job_state", "ERROR"), setattr(scene.emogene, "status", "x " * 80))),
    ("running", lambda: (setattr(scene.emogene, "job_state", "RUNNING"),
                         generate_mod.SESSIONS.__setitem__(scene.name, object()))),
    ("remote blocked", lambda: (generate_mod.SESSIONS.clear(),
                                setattr(prefs, "backend_address", "tcp://192.0.2.1:5555"))),
    ("connected", lambda: preferences_mod.CONNECTION_INFO.update(ok=True, version="0.1", protocol=1,
                                                                 device="cpu", subjects=["a"])),
    ("connect failed", lambda: preferences_mod.CONNECTION_INFO.update(ok=False, text="no answer")),
]
for label, apply in states:
    apply()
    for cls in panel_classes:
        cls.draw(PanelSelf(), bpy.context)
    type(prefs).draw(PrefsSelf(), bpy.context)
result["panel_draws"] = drawn
assert drawn["prop"] > 50 and drawn["operator"] > 10

result["ok"] = True
harness.emit(result)
