"""Add-on pieces: the online-access policy and rig-space maths (plain Python), the rest in a bpy process."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from blender.support import build_test_zip, run_scenario
from bridge import endpoints

ADDON = Path(__file__).resolve().parents[1] / "blender_addon"


def _load(name: str):
    """Load a bpy-free add-on module by path (the package's __init__ imports bpy)."""
    spec = importlib.util.spec_from_file_location(f"addon_{name}", ADDON / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rig_space = _load("rig_space")


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:5555", "tcp://localhost:6000", "tcp://[::1]:5555",
                                     "tcp://127.3.2.1:1", "ipc:///tmp/emogene.sock"])
def test_loopback_allowed_without_online_access(address):
    check = endpoints.check_address(address, online_access=False)
    assert check.allowed and check.is_loopback and check.reason == ""


@pytest.mark.parametrize("address", ["tcp://192.168.1.20:5555", "tcp://gpu-box.example.org:5555",
                                     "tcp://[2001:db8::1]:5555", "tcp://0.0.0.0:5555"])
def test_remote_needs_online_access(address):
    blocked = endpoints.check_address(address, online_access=False)
    assert not blocked.allowed and "online access is off" in blocked.reason
    assert endpoints.check_address(address, online_access=True).allowed


@pytest.mark.parametrize("address,fragment", [("127.0.0.1:5555", "transport"), ("udp://127.0.0.1:1", "udp"),
                                              ("tcp://:5555", "no host")])
def test_bad_addresses_are_explained(address, fragment):
    check = endpoints.check_address(address, online_access=True)
    assert not check.allowed and fragment in check.reason


def test_rig_space_round_trips():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(4, 68, 3))
    np.testing.assert_allclose(rig_space.landmarks_from_rig(rig_space.landmarks_to_rig(points)), points, atol=1e-12)
    # canonical up (+y) is Blender up (+Z); toward the viewer (+z) is Blender -Y; 0.063 m per unit
    np.testing.assert_allclose(rig_space.landmarks_to_rig([0, 1, 0]), [0, 0, 0.063])
    np.testing.assert_allclose(rig_space.landmarks_to_rig([0, 0, 1]), [0, -0.063, 0])
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    matrices = np.stack([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]).transpose(2, 0, 1)
    euler = rig_space.matrices_to_euler_xyz(matrices)
    np.testing.assert_allclose(rig_space.euler_xyz_to_matrices(euler), matrices, atol=1e-9)
    np.testing.assert_allclose(rig_space.rotation_from_rig(rig_space.rotation_to_rig(matrices)), matrices, atol=1e-12)
    t = rng.normal(size=(5, 3))
    np.testing.assert_allclose(rig_space.translation_from_rig(rig_space.translation_to_rig(t, t[0]), t[0]), t)
    assert np.allclose(rig_space.translation_to_rig(t, t[0])[0], 0)


def test_euler_curves_do_not_jump():
    angles = np.linspace(0, 4 * np.pi, 200)  # two full turns about Z
    c, s = np.cos(angles), np.sin(angles)
    matrices = np.zeros((200, 3, 3))
    matrices[:, 0, 0], matrices[:, 0, 1], matrices[:, 1, 0], matrices[:, 1, 1], matrices[:, 2, 2] = c, -s, s, c, 1
    euler = rig_space.matrices_to_euler_xyz(matrices)
    assert np.abs(np.diff(euler[:, 2])).max() < 0.1
    np.testing.assert_allclose(euler[:, 2], angles, atol=1e-9)


@pytest.mark.bpy
def test_addon_units_in_bpy(shared_data, tmp_path):
    zip_path = build_test_zip(tmp_path / "zip")
    out = run_scenario("scenario_units", zip_path, shared_data / "speech" / "eng_60s.wav", tmp_path / "out",
                       user_dir=tmp_path / "user")
    assert out["ok"] and out["emotion_max_abs_diff"] < 1e-6
