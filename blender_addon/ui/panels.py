"""The EmoGene sidebar tab, in the Sequencer and the 3D View (same panels in both).

Top to bottom in the order an animator works: Backend, Audio, Emotion,
Camera & Output, Generate (with progress), Export (curves, ARKit weights, Drive Shape Keys).
"""
from __future__ import annotations

import bpy

from .. import bridge_api, preferences
from .. import running_jobs
from ..operators import batch
from ..properties import EMOTIONS

SPACES = (("SEQUENCE_EDITOR", "SEQUENCER"), ("VIEW_3D", "VIEW3D"))


def _draw_backend(layout, context):
    prefs = preferences.get(context)
    row = layout.row(align=True)
    row.label(text=prefs.backend_address, icon="LINKED")
    row.operator("emogene.connect", text="", icon="FILE_REFRESH")
    check = bridge_api.endpoints().check_address(prefs.backend_address, bpy.app.online_access)
    if not check.allowed:
        box = layout.box()
        box.alert = True
        box.label(text="Remote backend blocked:", icon="ERROR")
        box.label(text="Blender's online access is off")
        box.label(text="(Preferences > System > Network)")
    preferences.draw_connection_info(layout)


def _draw_audio(layout, context):
    settings = context.scene.emogene
    layout.prop(settings, "audio_source", expand=True)
    if settings.audio_source == "STRIP":
        editor = context.scene.sequence_editor
        if editor is not None:
            layout.prop_search(settings, "sound_strip", editor, "strips_all" if hasattr(editor, "strips_all")
                               else "sequences_all", text="Strip", icon="SOUND")
        else:
            layout.label(text="Add a sound strip in the Sequencer", icon="INFO")
        layout.prop(settings, "use_strip_range")
    else:
        layout.prop(settings, "audio_file")
    if not (settings.audio_source == "STRIP" and settings.use_strip_range):
        row = layout.row(align=True)
        row.prop(settings, "frame_start")
        row.prop(settings, "frame_end")
    layout.prop(settings, "subject")


def _draw_emotion(layout, context):
    track = context.scene.emogene_emotion
    col = layout.column(align=True)
    for name in EMOTIONS:
        col.prop(track, name, slider=True)
    layout.prop(track, "intensity", slider=True)
    row = layout.row(align=True)
    for emotion, icon in (("happy", "KEY_HLT"), ("sad", "KEY_HLT"), ("neutral", "KEY_HLT")):
        op = row.operator("emogene.key_emotion", text=emotion.capitalize(), icon=icon)
        op.emotion = emotion
    layout.operator_menu_enum("emogene.key_emotion", "emotion", text="Key Emotion...")


def _draw_camera_output(layout, context):
    settings = context.scene.emogene
    layout.prop(settings, "output", expand=True)
    layout.prop(settings, "use_subject_camera")
    col = layout.column()
    col.enabled = not settings.use_subject_camera
    col.prop(settings, "camera", text="Camera")
    if settings.camera is None and not settings.use_subject_camera:
        col.label(text=f"Using scene camera: {context.scene.camera.name if context.scene.camera else 'none'}")
    row = layout.row(align=True)
    row.prop(settings, "anchor")
    row.operator("emogene.add_anchor", text="", icon="EMPTY_AXIS")
    layout.prop(settings, "resolution_mode")
    if settings.resolution_mode == "SUBJECT" and not settings.use_subject_camera and settings.output == "PLATES":
        layout.label(text="Blender camera: plates at the render size", icon="INFO")
    if settings.resolution_mode == "CUSTOM":
        row = layout.row(align=True)
        row.prop(settings, "resolution_x")
        row.prop(settings, "resolution_y")
    if settings.output == "PLATES":
        layout.prop(settings, "use_camera_background")
        if context.scene.view_settings.view_transform != "Standard":
            layout.label(text="View Transform is not 'Standard':", icon="INFO")
            layout.label(text="plates will look tone-mapped")
    row = layout.row(align=True)
    row.prop(settings, "seed")
    row.prop(settings, "temperature")
    layout.prop(settings, "idle_pose")


def _draw_generate(layout, context):
    scene = context.scene
    settings = scene.emogene
    running = scene.name in running_jobs.SESSIONS
    row = layout.row(align=True)
    row.scale_y = 1.4
    if running:
        row.operator("emogene.cancel", icon="CANCEL")
    else:
        row.operator("emogene.generate", icon="PLAY")
        if settings.job_id:  # a job saved mid-run (or cut off from the backend): its results may be waiting
            layout.operator("emogene.fetch_results", icon="IMPORT")
    if running:
        layout.progress(factor=settings.progress, type="BAR",
                        text=f"{settings.progress * 100:.0f}%  {settings.status[:48]}")
    elif settings.status:
        box = layout.box()
        box.alert = settings.job_state in {"ERROR", "RUNNING", "CANCELLING"}  # RUNNING here: saved mid-job
        import textwrap
        for i, line in enumerate(textwrap.wrap(settings.status, 42)[:6]):
            box.label(text=line, icon=("ERROR" if box.alert else "INFO") if i == 0 else "BLANK1")


def _draw_export(layout, context):
    layout.operator("emogene.export_landmarks", icon="EXPORT")
    # ARKit shape keys of a character mesh, keyed from the landmark curves as edited
    obj = context.active_object
    has_keys = obj is not None and obj.type == "MESH" and obj.data.shape_keys is not None
    col = layout.column()
    col.enabled = has_keys
    col.operator("emogene.drive_shape_keys", icon="SHAPEKEY_DATA")
    layout.label(text=f"Mesh: {obj.name}" if has_keys else "Select a mesh with ARKit shape keys", icon="INFO")


SECTIONS = (
    ("backend", "Backend", _draw_backend, True),
    ("audio", "Audio", _draw_audio, False),
    ("emotion", "Emotion", _draw_emotion, False),
    ("camera", "Camera & Output", _draw_camera_output, True),
    ("generate", "Generate", _draw_generate, False),
    ("batch", "Batch (all marked scenes)", batch.draw_batch, True),
    ("export", "Export", _draw_export, True),
)


def _panel_draw(drawer):
    def draw(self, context):
        drawer(self.layout, context)
    return draw


def _make_panels():
    classes = []
    for space, prefix in SPACES:
        main_id = f"{prefix}_PT_emogene"

        def draw_main(self, context):
            self.layout.label(text="Emotional talking head from speech")

        classes.append(type(main_id, (bpy.types.Panel,), {
            "bl_idname": main_id, "bl_label": "EmoGene", "bl_space_type": space, "bl_region_type": "UI",
            "bl_category": "EmoGene", "draw": draw_main}))
        for key, label, drawer, closed in SECTIONS:
            classes.append(type(f"{prefix}_PT_emogene_{key}", (bpy.types.Panel,), {
                "bl_idname": f"{prefix}_PT_emogene_{key}", "bl_label": label, "bl_space_type": space,
                "bl_region_type": "UI", "bl_category": "EmoGene", "bl_parent_id": main_id,
                "bl_options": {"DEFAULT_CLOSED"} if closed else set(), "draw": _panel_draw(drawer)}))
    return tuple(classes)


CLASSES = _make_panels()
