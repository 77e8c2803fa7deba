"""The Blender add-on against a real backend over ZeroMQ, each scenario in its own bpy process.

``emogene serve`` provides landmarks (and plates once a renderer is installed);
a second real server with stand-in stages (``tests/blender/serve_test_plates.py``)
exercises the plate path and mid-job failures deterministically.
"""
from __future__ import annotations

import pytest

from blender.support import Backend, build_test_zip, run_scenario

pytestmark = pytest.mark.bpy
FRAMES = 50  # 2 s at 25 fps: enough for keys on every frame, quick to run


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory):
    return build_test_zip(tmp_path_factory.mktemp("addon_zip"))


@pytest.fixture(scope="module")
def speech(shared_data):
    return shared_data / "speech" / "eng_60s.wav"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    """``emogene serve`` as shipped (its own subjects, its own stages)."""
    backend = Backend(tmp_path_factory.mktemp("serve"))
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def plates_backend(tmp_path_factory):
    backend = Backend(tmp_path_factory.mktemp("plates"), test_plates=True, extra_args=["--plate-delay", "0.05"])
    yield backend
    backend.stop()


def test_generate_landmarks_from_emogene_serve(addon_zip, speech, serve, tmp_path):
    out = run_scenario("scenario_generate", addon_zip, serve.address, speech, tmp_path / "out", "LANDMARKS",
                       FRAMES, user_dir=tmp_path / "user")
    assert out["connect"]["version"] and out["connect"]["device"]
    assert out["lower_lip_z_range_mm"] > 0.1
    assert out["take"] == "EmoGene take_002"


def test_generate_at_fractional_frame_rate(addon_zip, speech, serve, tmp_path):
    """29.97 fps (30000/1001): the audio sent covers exactly the range, so every frame gets its keys."""
    out = run_scenario("scenario_generate", addon_zip, serve.address, speech, tmp_path / "out", "LANDMARKS",
                       47, 30, 1.001, user_dir=tmp_path / "user")
    assert out["frames"] == 47


def test_plates_request_on_emogene_serve(addon_zip, speech, serve, tmp_path):
    """With a renderer and a subject the plates come back; without a renderer the user is told to ask for
    landmarks only (checked with a stand-in subject folder, so the subject check passes first)."""
    if serve.welcome["capabilities"]["plates"]:
        if "default" not in serve.welcome["subjects"]:
            pytest.skip("the backend renders plates but ships no 'default' subject yet")
        out = run_scenario("scenario_generate", addon_zip, serve.address, speech, tmp_path / "out", "PLATES",
                           8, user_dir=tmp_path / "user", timeout=600)
        assert out["output"] == "PLATES"
        return
    (tmp_path / "subjects" / "stand_in").mkdir(parents=True)
    (tmp_path / "subjects" / "stand_in" / "subject.json").write_text('{"name": "stand_in", "version": 1}')
    backend = Backend(tmp_path, extra_args=["--subjects-dir", str(tmp_path / "subjects")])
    try:
        out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "unsupported", backend.address,
                           "stand_in", user_dir=tmp_path / "user")
    finally:
        backend.stop()
    assert "Landmarks only" in out["status"]


def test_generate_plates_strip_and_files(addon_zip, speech, plates_backend, tmp_path):
    out = run_scenario("scenario_generate", addon_zip, plates_backend.address, speech, tmp_path / "out", "PLATES",
                       FRAMES, user_dir=tmp_path / "user")
    assert out["status"].endswith(f"{FRAMES} plates")
    from backend.subjects import SHIPPED_SUBJECTS   # the shipped subjects + the stand-in
    shipped = [d.name for d in SHIPPED_SUBJECTS.iterdir() if (d / "subject.json").is_file()]
    assert sorted(out["connect"]["subjects"]) == sorted(shipped + ["flat_colours"])
    # both takes were acknowledged after import, so the backend deleted its copies
    jobs_dir = plates_backend.log_path.parent / f"jobs_{plates_backend.port}"
    assert sorted(p.name for p in jobs_dir.iterdir()) == ["subjects"]


def test_backend_killed_mid_job_reports_and_keeps_scene(addon_zip, speech, tmp_path):
    backend = Backend(tmp_path, test_plates=True, extra_args=["--plate-delay", "0.1"])
    try:
        out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "killed", backend.address,
                           backend.proc.pid, user_dir=tmp_path / "user")
    finally:
        backend.stop()
    assert backend.proc.returncode is not None
    assert out["killed_after_plates"] >= 1 and "went silent" in out["status"]


def test_backend_restarted_mid_job_is_reported_and_fetch_gets_the_job(addon_zip, speech, tmp_path):
    backend = Backend(tmp_path, test_plates=True, extra_args=["--plate-delay", "0.2"])
    try:
        out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "restarted", backend.address,
                           backend.proc.pid, str(tmp_path / f"jobs_{backend.port}"), str(tmp_path / "restart.log"),
                           user_dir=tmp_path / "user")
    finally:
        backend.stop()
    print(out)
    # noticed within a few heartbeats of the new backend starting (or of the old one vanishing)
    assert out["noticed_after_s"] < 10.0, out
    assert out["take"] == "EmoGene take_001"


def test_cancel_mid_job_keeps_scene(addon_zip, speech, plates_backend, tmp_path):
    out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "cancel", plates_backend.address,
                       user_dir=tmp_path / "user")
    assert out["cancelled_after_plates"] >= 1 and out["status"].startswith("Cancelled")


def test_failed_import_is_rolled_back(addon_zip, speech, plates_backend, tmp_path):
    out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "import_fails", plates_backend.address,
                       user_dir=tmp_path / "user")
    assert out["status"].startswith("Import failed")


def test_lost_messages_are_fetched_again(addon_zip, speech, plates_backend, tmp_path):
    out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "lost", plates_backend.address,
                       user_dir=tmp_path / "user")
    assert out["dropped"] == ["landmarks", "plate"] and "40 plates" in out["status"]


def test_backend_down_is_reported(addon_zip, speech, tmp_path):
    from blender.support import free_port
    out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "down",
                       f"tcp://127.0.0.1:{free_port()}", user_dir=tmp_path / "user")
    assert "No answer from the backend" in out["status"]


def test_wrong_key_is_reported(addon_zip, speech, tmp_path):
    key_file = tmp_path / "backend.key"
    key_file.write_text("f" * 64)
    backend = Backend(tmp_path, key_file=key_file)
    try:
        out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "bad_key", backend.address,
                           user_dir=tmp_path / "user")
    finally:
        backend.stop()
    assert "16" in out["short_key_status"]


def test_version_mismatch_is_reported(addon_zip, speech, serve, tmp_path):
    out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "version", serve.address,
                       user_dir=tmp_path / "user")
    assert "Protocol version mismatch" in out["status"]


def test_remote_backend_blocked_without_online_access(addon_zip, speech, tmp_path):
    out = run_scenario("scenario_errors", addon_zip, speech, tmp_path / "out", "remote", user_dir=tmp_path / "user")
    assert "online access is off" in out["status"]


def test_fetch_results_after_reload(addon_zip, speech, serve, tmp_path):
    """A .blend saved mid-job and reopened: Fetch Results imports the take and acks it on the backend."""
    out = run_scenario("scenario_fetch", addon_zip, serve.address, speech, tmp_path / "out", 10,
                       user_dir=tmp_path / "user")
    assert out["take"] == "EmoGene take_001"
    assert "acknowledged or expired" in out["status"]
