"""Packaging: the extension zip is built and validated by Blender's own tool, installed and enabled in bpy."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from backend.commands import build_addon
from blender.support import run_scenario

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_bridge_vendoring_makes_imports_relative():
    text = "from bridge import requests\nfrom bridge.errors import BridgeError\n    from bridge.wire import (\n"
    assert build_addon.relative_imports(text) == (
        "from . import requests\nfrom .errors import BridgeError\n    from .wire import (\n")
    assert build_addon.relative_imports("import bridgework\nfrom bridges import x\n") == \
        "import bridgework\nfrom bridges import x\n"


def test_bridge_imports_only_stdlib_numpy_zmq(tmp_path):
    build_addon.check_bridge_imports()  # the real bridge passes
    (tmp_path / "bad.py").write_text("import torch\n")
    with pytest.raises(build_addon.BuildError, match="torch"):
        build_addon.check_bridge_imports(tmp_path)


def test_source_manifest_validates():
    out = build_addon.blender_ext("validate", str(REPO_ROOT / "blender_addon"))
    assert "Success" in out


def test_unknown_platform_is_refused(tmp_path):
    with pytest.raises(build_addon.BuildError, match="unknown platform"):
        build_addon.stage(tmp_path / "s", ["amiga-68k"], with_wheels=False)


@pytest.mark.bpy
def test_build_validate_install_enable(tmp_path):
    done = subprocess.run([str(Path(sys.executable).with_name("emogene")), "build-addon", "--out", str(tmp_path),
                           "--platforms", "linux-x64"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    zip_path = Path(done.stdout.strip().splitlines()[-1])
    assert zip_path.is_file()
    assert "Success" in build_addon.blender_ext("validate", str(zip_path))
    names = zipfile.ZipFile(zip_path).namelist()
    assert "blender_manifest.toml" in names and "bridge/client.py" in names
    assert any(n.startswith("wheels/pyzmq-") and "manylinux" in n for n in names), names
    assert not any("__pycache__" in n for n in names)
    vendored = zipfile.ZipFile(zip_path).read("bridge/client.py").decode()
    assert "from bridge" not in vendored and "from .errors import" in vendored
    out = run_scenario("install_extension", zip_path, user_dir=tmp_path / "user")
    assert out["module"] == "bl_ext.user_default.emogene"
    assert out["bridge"] == "bl_ext.user_default.emogene.bridge"
    assert all(out["operators"].values())
