"""Build the Blender extension zip: add-on + vendored bridge + pyzmq wheels, via Blender's own tool.

Steps: copy ``blender_addon/`` to a staging folder; vendor ``bridge/`` into it
as the subpackage ``bridge`` (its absolute ``from bridge.x import`` lines made
relative, after checking it imports only the standard library, numpy and zmq);
fetch the pyzmq wheels for Blender's Python 3.11 (same pyzmq version as this
environment) into a cache with ``pip download``; list them in the manifest; then
``blender_ext.py build`` and ``validate`` from the installed bpy package.
Registry access is needed only when the wheel cache lacks a wheel.
"""
from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ADDON_SOURCE = REPO_ROOT / "blender_addon"
BRIDGE_SOURCE = REPO_ROOT / "bridge"
DEFAULT_WHEEL_CACHE = REPO_ROOT / "cache" / "wheels"
BLENDER_PYTHON = "3.11"
ALL_PLATFORMS = ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")
#: Blender platform -> pip --platform tags (several: pip picks the best wheel that exists)
PIP_PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_11_0_arm64"],
    "macos-x64": ["macosx_10_15_x86_64"],
}
#: wheel file name fragments that serve a Blender platform
WHEEL_MATCH = {
    "linux-x64": ("manylinux", "x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx", "arm64|universal2"),
    "macos-x64": ("macosx", "x86_64|universal2"),
}
ALLOWED_BRIDGE_IMPORTS = {"numpy", "zmq", "bridge"}


class BuildError(RuntimeError):
    """The extension could not be built; the text says which step failed."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="dist", help="folder for the zip (default: dist)")
    parser.add_argument("--platforms", default=",".join(ALL_PLATFORMS),
                        help=f"comma-separated Blender platforms (default: {','.join(ALL_PLATFORMS)})")
    parser.add_argument("--wheel-cache", default=str(DEFAULT_WHEEL_CACHE),
                        help="where downloaded wheels are kept between builds (default: cache/wheels)")
    parser.add_argument("--pyzmq-version", default=None,
                        help="pyzmq version to bundle (default: the one installed here)")
    parser.add_argument("--keep-staging", action="store_true", help="keep the staging folder next to the zip")


def run(args) -> int:
    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
    try:
        zip_path = build(Path(args.out), platforms, Path(args.wheel_cache), args.pyzmq_version,
                         keep_staging=args.keep_staging)
    except BuildError as exc:
        print(f"build-addon: {exc}", file=sys.stderr)
        return 1
    print(zip_path)
    return 0


# -- steps ------------------------------------------------------------------------------
def blender_ext_tool() -> Path:
    """``blender_ext.py`` inside the installed bpy package (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("bpy is not installed (pip install bpy==5.0.1): its blender_ext.py builds the zip")
    for root in spec.submodule_search_locations:
        found = sorted(Path(root).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    raise BuildError(f"no blender_ext.py under {list(spec.submodule_search_locations)}")


def check_bridge_imports(source: Path = BRIDGE_SOURCE) -> None:
    """The bridge must import only the standard library, numpy and zmq (it runs in Blender's Python)."""
    for path in sorted(source.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in ALLOWED_BRIDGE_IMPORTS and top not in sys.stdlib_module_names and top != "__future__":
                    raise BuildError(f"{path.name} imports {name!r}: the bridge may use only the standard "
                                     "library, numpy and zmq (it runs inside Blender)")
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "bridge" for a in node.names):
                raise BuildError(f"{path.name}: 'import bridge...' cannot be vendored; use 'from bridge.x import y'")


_FROM_BRIDGE = re.compile(r"^(\s*)from bridge(\.[\w.]+)? import ", re.MULTILINE)


def relative_imports(text: str) -> str:
    """``from bridge.x import y`` -> ``from .x import y`` and ``from bridge import x`` -> ``from . import x``."""
    return _FROM_BRIDGE.sub(lambda m: f"{m.group(1)}from .{(m.group(2) or '')[1:]} import ", text)


def vendor_bridge(target: Path, source: Path = BRIDGE_SOURCE) -> None:
    check_bridge_imports(source)
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.py")):
        (target / path.name).write_text(relative_imports(path.read_text()))


def wheel_serves(name: str, platform: str) -> bool:
    fragments = WHEEL_MATCH[platform]
    return f"cp{BLENDER_PYTHON.replace('.', '')}" in name and all(
        re.search(f, name) for f in fragments)


def fetch_wheels(platforms: list[str], cache: Path, version: str) -> list[Path]:
    """pyzmq wheels for ``platforms`` (from ``cache``, downloaded with pip when missing)."""
    cache.mkdir(parents=True, exist_ok=True)
    chosen: list[Path] = []
    for platform in platforms:
        def cached():
            return sorted(p for p in cache.glob(f"pyzmq-{version}-*.whl") if wheel_serves(p.name, platform))
        if not cached():
            cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps",
                   "--python-version", BLENDER_PYTHON, "--dest", str(cache), f"pyzmq=={version}"]
            for tag in PIP_PLATFORMS[platform]:
                cmd += ["--platform", tag]
            print(f"downloading pyzmq {version} for {platform}", file=sys.stderr)
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0 or not cached():
                raise BuildError(f"could not get a pyzmq {version} wheel for {platform}:\n{done.stderr[-2000:]}")
        wheel = cached()[-1]
        if wheel not in chosen:
            chosen.append(wheel)
    return chosen


def write_manifest(staging: Path, platforms: list[str], wheels: list[str]) -> None:
    manifest = staging / "blender_manifest.toml"
    text = manifest.read_text()
    text = re.sub(r"^wheels = \[.*?\]", "wheels = [\n" + "".join(f'  "./wheels/{w}",\n' for w in wheels) + "]",
                  text, count=1, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"^platforms = \[.*?\]", "platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]",
                  text, count=1, flags=re.MULTILINE)
    manifest.write_text(text)


def stage(staging: Path, platforms: list[str], wheel_cache: Path = DEFAULT_WHEEL_CACHE,
          pyzmq_version: str | None = None, with_wheels: bool = True) -> Path:
    """A ready-to-build extension folder at ``staging`` (replaced if present)."""
    unknown = sorted(set(platforms) - set(ALL_PLATFORMS))
    if unknown or not platforms:
        raise BuildError(f"unknown platform(s) {unknown}; choose from {', '.join(ALL_PLATFORMS)}")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(ADDON_SOURCE, staging, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "wheels", "bridge"))
    vendor_bridge(staging / "bridge")
    wheel_names: list[str] = []
    if with_wheels:
        version = pyzmq_version or importlib.metadata.version("pyzmq")
        (staging / "wheels").mkdir()
        for wheel in fetch_wheels(platforms, wheel_cache, version):
            shutil.copy2(wheel, staging / "wheels" / wheel.name)
            wheel_names.append(wheel.name)
    write_manifest(staging, platforms, wheel_names)
    return staging


def blender_ext(*args: str) -> str:
    done = subprocess.run([sys.executable, str(blender_ext_tool()), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"blender_ext.py {args[0]} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def build(out_dir: Path, platforms: list[str], wheel_cache: Path = DEFAULT_WHEEL_CACHE,
          pyzmq_version: str | None = None, keep_staging: bool = False, with_wheels: bool = True) -> Path:
    """Stage, build with Blender's tool, validate the zip; returns its path.

    ``with_wheels=False`` leaves pyzmq out (for a Python that already has it, e.g. the bpy module in a venv).
    """
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = stage(out_dir / "emogene_staging", platforms, wheel_cache, pyzmq_version, with_wheels=with_wheels)
    blender_ext("validate", str(staging))
    version = re.search(r'^version = "([^"]+)"', (staging / "blender_manifest.toml").read_text(), re.M).group(1)
    zip_path = out_dir / f"emogene-{version}.zip"
    if zip_path.exists():
        zip_path.unlink()
    blender_ext("build", "--source-dir", str(staging), "--output-filepath", str(zip_path))
    blender_ext("validate", str(zip_path))
    if not keep_staging:
        shutil.rmtree(staging)
    return zip_path
