"""The add-on's job state in one place: the running sessions per scene, starting and fetching jobs, and the
timer that drives them (operators in ``operators/`` stay thin and call in here).

``generate_timer`` is a plain function registered with ``bpy.app.timers``: each
call pumps every running :class:`~.job_session.GenerateSession` (never blocking more
than a few ms), mirrors its progress into the scene's panel state and the
status bar, and imports a finished take. It returns the next interval, or None
when no job is left. Headless tests call the same function in a loop, since
``bpy.app.timers`` never fire in bpy-as-a-module.
"""
from __future__ import annotations

import json
import os

import bpy

from . import bridge_api, compat, job_session, preferences, submit
from .importers import take as take_importer

TIMER_INTERVAL_S = 0.1

#: running sessions by scene name
SESSIONS: dict[str, job_session.GenerateSession] = {}
#: what each session needs at import time, by scene name
_PENDING: dict[str, submit.PreparedRequest] = {}
#: finished sessions whose last message (an ack) gets a moment to leave before the socket closes
_CLOSING: list[tuple[float, job_session.GenerateSession]] = []
CLOSE_DELAY_S = 0.5
#: error codes after which the backend may still hold the job's results (the saved job id is kept)
KEEP_JOB_ON = frozenset({job_session.ErrorCode.TIMEOUT, job_session.ErrorCode.INTERNAL, job_session.ErrorCode.BACKEND_RESTARTED,
                        job_session.ErrorCode.STREAM_MOVED})


def report(level: str, message: str) -> None:
    """Show a message in Blender's status bar / Info log (and on stdout in background mode)."""
    print(f"EmoGene {level.lower()}: {message}")
    try:
        bpy.ops.emogene.report(level=level, message=message)
    except Exception:
        pass


def load_key(prefs) -> bytes | None:
    if not prefs.key_file:
        return None
    try:
        return bridge_api.client().load_key(bpy.path.abspath(prefs.key_file))
    except ValueError as exc:
        raise submit.SubmitError(f"Key file: {exc}") from None


def curve_options(prefs) -> dict:
    """The client's CURVE arguments from the preferences (empty: traffic not encrypted)."""
    client = bridge_api.client()
    options: dict = {}
    try:
        if getattr(prefs, "server_key", ""):
            options["server_key"] = client.load_curve_key(bpy.path.abspath(prefs.server_key))
        if getattr(prefs, "client_key", ""):
            if "server_key" not in options:
                raise ValueError("a client key needs the server key too")
            options["client_pair"] = client.load_curve_pair(bpy.path.abspath(prefs.client_key))
    except ValueError as exc:
        raise submit.SubmitError(f"CURVE keys: {exc}") from None
    return options


#: what the import needs, saved with the job id in the .blend so Fetch Results works after a reload
_SAVED_FIELDS = ("frame_start", "frame_end", "fps", "landmarks_only", "anchor", "camera", "sound_channel",
                 "clamped")


def start(context, scene) -> job_session.GenerateSession:
    """Prepare and send a request for ``scene``; raises :class:`submit.SubmitError` on bad settings."""
    _check_idle(scene)
    prefs, key = check_connection(context)
    prepared = submit.prepare(scene)
    # objects are looked up by name at import time: references can go stale across undo
    prepared.anchor = prepared.anchor.name if prepared.anchor is not None else None
    prepared.camera = prepared.camera.name if prepared.camera is not None else None
    scene.emogene.job_id = ""
    scene.emogene.job_token = ""
    scene.emogene.job_import = json.dumps({name: getattr(prepared, name) for name in _SAVED_FIELDS})
    return _launch(context, scene, prefs, key, prepared)


def start_fetch(context, scene) -> job_session.GenerateSession:
    """Fetch the results of the job whose id the scene saved (started before a reload or a lost
    connection) and import them as Generate would; raises :class:`submit.SubmitError`."""
    _check_idle(scene)
    settings = scene.emogene
    if not settings.job_id:
        raise submit.SubmitError("No saved EmoGene job to fetch")
    try:
        saved = json.loads(settings.job_import)
        prepared = submit.PreparedRequest(message=None, **{name: saved[name] for name in _SAVED_FIELDS})
    except (ValueError, TypeError, KeyError) as exc:
        raise submit.SubmitError(f"The saved job {settings.job_id} lacks its import settings ({exc}); "
                                 "generate again") from None
    prefs, key = check_connection(context)
    return _launch(context, scene, prefs, key, prepared, fetch_job_id=settings.job_id,
                   fetch_token=settings.job_token or None)


def _check_idle(scene) -> None:
    if job_running(scene):
        raise submit.SubmitError("A job is already running for this scene; cancel it first")


def check_connection(context):
    """(preferences, signing key) for reaching the backend; SubmitError when the address is not allowed."""
    prefs = preferences.get(context)
    check = bridge_api.endpoints().check_address(prefs.backend_address, bpy.app.online_access)
    if not check.allowed:
        raise submit.SubmitError(check.reason)
    return prefs, load_key(prefs)


def _launch(context, scene, prefs, key, prepared: submit.PreparedRequest,
            fetch_job_id: str | None = None, fetch_token: str | None = None) -> job_session.GenerateSession:
    try:
        session = job_session.GenerateSession(
            prepared.message, prefs.backend_address.strip(), key, frame_start=prepared.frame_start,
            fps=prepared.fps, landmarks_only=prepared.landmarks_only,
            staging_root=os.path.join(preferences.cache_dir(context), "staging"),
            connect_timeout=prefs.connect_timeout, silence_timeout=prefs.silence_timeout,
            fetch_job_id=fetch_job_id, fetch_token=fetch_token, **curve_options(prefs))
    except ValueError as exc:
        raise submit.SubmitError(str(exc)) from None
    SESSIONS[scene.name] = session
    _PENDING[scene.name] = prepared
    settings = scene.emogene
    settings.job_state = "RUNNING"
    settings.progress = 0.0
    settings.status = session.status
    if not bpy.app.timers.is_registered(generate_timer):
        bpy.app.timers.register(generate_timer, first_interval=TIMER_INTERVAL_S)
    _progress_begin()
    return session


def generate_timer() -> float | None:
    """Pump all sessions once; import finished ones. Returns the next interval or None when idle."""
    for scene_name in list(SESSIONS):
        session = SESSIONS[scene_name]
        try:
            _step(scene_name, session)
        except Exception as exc:  # an exception would silently unregister the timer and strand the job
            _finish(scene_name, session)
            scene = bpy.data.scenes.get(scene_name)
            if scene is not None:
                scene.emogene.job_state = "ERROR"
                scene.emogene.status = f"Internal error in the EmoGene add-on: {type(exc).__name__}: {exc}"
            report("ERROR", f"Internal error in the EmoGene add-on: {type(exc).__name__}: {exc}")
    _close_finished()
    _progress_update()
    compat.redraw_ui()
    if SESSIONS or _CLOSING:
        return TIMER_INTERVAL_S
    _progress_end()
    return None


def _step(scene_name: str, session: job_session.GenerateSession) -> None:
    session.pump()
    scene = bpy.data.scenes.get(scene_name)
    if scene is None:  # scene deleted or renamed meanwhile: drop the job
        session.cancel()
        _finish(scene_name, session)
        return
    settings = scene.emogene
    settings.progress = session.progress
    settings.status = session.status
    if session.job_id and settings.job_id != session.job_id:
        settings.job_id = session.job_id  # saved with the .blend: Fetch Results after a reload
    if session.token and settings.job_token != session.token:
        settings.job_token = session.token  # its secret, beside it: the backend wants it for fetch/ack
    if session.finished:
        _conclude(scene, session)
        _finish(scene_name, session)


def _conclude(scene, session: job_session.GenerateSession) -> None:
    settings = scene.emogene
    prepared = _PENDING.get(scene.name)
    if session.state == job_session.DONE:
        take = f"take_{settings.take_counter + 1:03d}"
        camera = bpy.data.objects.get(prepared.camera or "")
        try:
            take_importer.import_take(
                scene, session.results, take=take, anchor=bpy.data.objects.get(prepared.anchor or ""),
                sound_strip_channel=prepared.sound_channel, cache_dir=preferences.cache_dir(),
                camera_obj=camera if (settings.use_camera_background and camera and camera.type == "CAMERA")
                else None,
                with_plates=not prepared.landmarks_only)
        except Exception as exc:
            settings.job_state = "ERROR"
            settings.status = f"Import failed, scene left as it was: {exc}"
            report("ERROR", settings.status)
            return
        settings.take_counter += 1
        session.ack()
        settings.job_id = ""
        settings.job_token = ""
        settings.job_state = "DONE"
        r = session.results
        settings.status = (f"Imported {take}: frames {r.frame_start}-{r.frame_start + r.frame_count - 1}"
                           + (f", {len(r.plates)} plates" if r.plates else ""))
        for warning in r.warnings:
            report("WARNING", warning)
        if prepared.clamped:
            report("WARNING", f"{prepared.clamped} emotion value(s) were outside their range and were clamped")
        report("INFO", settings.status)
        try:
            bpy.ops.ed.undo_push(message=f"EmoGene {take}")
        except Exception:
            pass
    elif session.state == job_session.CANCELLED:
        settings.job_state = "CANCELLED"
        settings.status = session.status
        settings.job_id = ""
        settings.job_token = ""
        report("INFO", "EmoGene job cancelled; the scene is unchanged")
    else:
        settings.job_state = "ERROR"
        settings.status = session.error
        if session.error_code not in KEEP_JOB_ON:  # connection trouble keeps the id: Fetch Results may work later
            settings.job_id = ""
            settings.job_token = ""
        report("ERROR", session.error)


def _finish(scene_name: str, session: job_session.GenerateSession) -> None:
    SESSIONS.pop(scene_name, None)
    _PENDING.pop(scene_name, None)
    if session.state == job_session.DONE:
        session.close(keep_socket=True)  # closed by _close_finished once the ack has had time to leave
        _CLOSING.append((session.clock() + CLOSE_DELAY_S, session))
    else:
        session.close()


def _close_finished() -> None:
    for item in list(_CLOSING):
        deadline, session = item
        if session.clock() >= deadline:
            session.close()
            _CLOSING.remove(item)


def cancel_all(remote: bool = True) -> None:
    """Drop every session at once (add-on unregistered or file closed).

    ``remote=False`` leaves the jobs running on the backend (a .blend saved mid-job keeps the job id,
    and Fetch Results gets them after reopening it).
    """
    for name, session in list(SESSIONS.items()):
        if remote:
            session.cancel()
        _finish(name, session)
    for _, session in _CLOSING:
        session.close()
    _CLOSING.clear()
    if bpy.app.timers.is_registered(generate_timer):
        bpy.app.timers.unregister(generate_timer)
    _progress_end()


# -- progress in the window manager and status bar ------------------------------------
_progress_active = False


def _progress_begin() -> None:
    global _progress_active
    try:
        bpy.context.window_manager.progress_begin(0, 1000)
        _progress_active = True
    except Exception:
        pass


def _progress_update() -> None:
    if not SESSIONS:
        return
    fraction = min(s.progress for s in SESSIONS.values())
    if _progress_active:
        try:
            bpy.context.window_manager.progress_update(int(fraction * 1000))
        except Exception:
            pass
    session = next(iter(SESSIONS.values()))
    compat.set_status_text(f"EmoGene {fraction * 100:.0f}%  {session.status}")


def _progress_end() -> None:
    global _progress_active
    if _progress_active:
        try:
            bpy.context.window_manager.progress_end()
        except Exception:
            pass
        _progress_active = False
    compat.set_status_text(None)


def job_running(scene) -> bool:
    """Whether this scene has a session that has not finished yet."""
    return scene.name in SESSIONS and not SESSIONS[scene.name].finished
