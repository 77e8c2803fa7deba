"""Add-on preferences: backend address, key file, timeouts, cache folder, and the Connect test."""
from __future__ import annotations

import os
import tempfile

import bpy
from bpy.props import FloatProperty, StringProperty

from . import bridge_api

ADDON_ID = __package__

#: what the last "Connect" test found: {"ok": bool, "text": str, "version": ..., "device": ..., "subjects": [...]}
CONNECTION_INFO: dict = {}


class EmogenePreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    backend_address: StringProperty(
        name="Backend address", default="tcp://127.0.0.1:5555",
        description="ZeroMQ endpoint of `emogene serve` (loopback needs no online access)")
    key_file: StringProperty(
        name="Key file", subtype="FILE_PATH", default="",
        description="Shared secret for signing messages (same file as `emogene serve --key-file`); empty = unsigned")
    server_key: StringProperty(
        name="Server key (CURVE)", subtype="FILE_PATH", default="",
        description="The backend's public CURVE key (server.key from `emogene keys`; the backend runs with "
                    "--curve-secret): encrypts all traffic. Empty = not encrypted")
    client_key: StringProperty(
        name="Client key (CURVE)", subtype="FILE_PATH", default="",
        description="This computer's CURVE secret certificate (NAME.key_secret from `emogene keys --client "
                    "NAME`), for a backend that admits only listed clients (--curve-clients). Empty = none")
    connect_timeout: FloatProperty(
        name="Connect timeout (s)", default=5.0, min=0.5, soft_max=60.0,
        description="A job fails as 'backend not reachable' when nothing answers within this time")
    silence_timeout: FloatProperty(
        name="Job silence timeout (s)", default=60.0, min=1.0, soft_max=3600.0,
        description="A running job fails when the backend sends nothing for this long")
    cache_dir: StringProperty(
        name="Cache folder", subtype="DIR_PATH", default="",
        description="Where plates of unsaved .blend files go (empty = the system temp folder)")

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "backend_address")
        draw_address_policy(col, self.backend_address)
        col.prop(self, "key_file")
        col.prop(self, "server_key")
        col.prop(self, "client_key")
        row = col.row(align=True)
        row.prop(self, "connect_timeout")
        row.prop(self, "silence_timeout")
        col.prop(self, "cache_dir")
        col.operator("emogene.connect", icon="LINKED")
        draw_connection_info(col)


def draw_address_policy(layout, address: str) -> None:
    check = bridge_api.endpoints().check_address(address, bpy.app.online_access)
    if not check.allowed:
        box = layout.box()
        box.alert = True
        for i, line in enumerate(_wrap(check.reason, 60)):
            box.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
    elif check.is_loopback:
        layout.label(text="Local backend: allowed without online access", icon="CHECKMARK")


def draw_connection_info(layout) -> None:
    if not CONNECTION_INFO:
        return
    box = layout.box()
    if not CONNECTION_INFO.get("ok"):
        box.alert = True
        box.label(text=CONNECTION_INFO.get("text", "not connected"), icon="ERROR")
        return
    box.label(text=f"Backend {CONNECTION_INFO.get('version', '?')}, protocol {CONNECTION_INFO.get('protocol', '?')}",
              icon="CHECKMARK")
    box.label(text=f"Device: {CONNECTION_INFO.get('device', '?')}")
    subjects = CONNECTION_INFO.get("subjects") or []
    box.label(text="Subjects: " + (", ".join(subjects) if subjects else "none"))


_WRAP_CACHE: dict[tuple[str, int], list[str]] = {}


def _wrap(text: str, width: int) -> list[str]:
    key = (text, width)
    if key not in _WRAP_CACHE:
        import textwrap
        _WRAP_CACHE[key] = textwrap.wrap(text, width) or [""]
    return _WRAP_CACHE[key]


def get(context=None) -> EmogenePreferences:
    context = context or bpy.context
    return context.preferences.addons[ADDON_ID].preferences


def cache_dir(context=None) -> str:
    path = get(context).cache_dir
    path = bpy.path.abspath(path) if path else os.path.join(tempfile.gettempdir(), "emogene_blender")
    os.makedirs(path, exist_ok=True)
    return path


CLASSES = (EmogenePreferences,)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
