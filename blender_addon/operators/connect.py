"""Connect: a short, bounded ``hello`` to the backend showing its version, device and subjects."""
from __future__ import annotations

import bpy

from .. import bridge_api, job_session, preferences, running_jobs


def connect(context) -> dict:
    """Ask the backend who it is; returns (and stores) the preferences' connection info."""
    prefs = preferences.get(context)
    info: dict = {"ok": False}
    client = None
    try:
        _, key = running_jobs.check_connection(context)
        client = bridge_api.client().SyncClient(prefs.backend_address.strip(), key=key,
                                                timeout_s=min(prefs.connect_timeout, 5.0),
                                                **running_jobs.curve_options(prefs))
        welcome = client.hello().content
        info.update(ok=True, version=welcome.get("backend_version", "?"),
                    protocol=welcome.get("protocol", "?"), device=welcome.get("device", "?"),
                    subjects=list(welcome.get("subjects", [])),
                    capabilities=dict(welcome.get("capabilities") or {}))
        info["text"] = f"Connected: backend {info['version']} on {info['device']}"
    except Exception as exc:  # SubmitError (address, keys), BridgeError, ValueError: all shown as text
        code = getattr(exc, "code", None)
        info["text"] = job_session.describe_error(code, exc.message, prefs.backend_address) if code else str(exc)
    finally:
        if client is not None:
            client.close()
    preferences.CONNECTION_INFO.clear()
    preferences.CONNECTION_INFO.update(info)
    return info


class EMOGENE_OT_connect(bpy.types.Operator):
    """Check the backend: version, device and subjects (waits at most the connect timeout, 5 s max)"""
    bl_idname = "emogene.connect"
    bl_label = "Connect"

    def execute(self, context):
        info = connect(context)
        if not info["ok"]:
            self.report({"ERROR"}, info["text"])
            return {"CANCELLED"}
        subjects = info.get("subjects") or []
        if subjects and context.scene.emogene.subject not in subjects:
            context.scene.emogene.subject = subjects[0]
        self.report({"INFO"}, f"{info['text']}; subjects: {', '.join(subjects) or 'none'}")
        return {"FINISHED"}


CLASSES = (EMOGENE_OT_connect,)
