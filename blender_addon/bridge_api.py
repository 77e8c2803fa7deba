"""Where the add-on finds the bridge package.

The built extension carries a copy of the repository's ``bridge/`` as the
subpackage ``<extension>.bridge`` (vendored by ``scripts/build_extension.py``,
with its imports made relative). Running the add-on straight from the source
tree (development, tests of the unbuilt folder) falls back to the top-level
``bridge`` package of the repository. No ``sys.path`` changes either way.
"""
from __future__ import annotations

import importlib
from types import ModuleType


def _bridge_package() -> str:
    vendored = f"{__package__}.bridge"
    try:
        importlib.import_module(vendored)
        return vendored
    except ModuleNotFoundError as exc:
        if exc.name != vendored:
            raise
    importlib.import_module("bridge")
    return "bridge"


BRIDGE_PACKAGE = _bridge_package()


def module(name: str) -> ModuleType:
    """``bridge.<name>`` from whichever copy is in use (imported on first use)."""
    return importlib.import_module(f"{BRIDGE_PACKAGE}.{name}")


def emotions() -> ModuleType:
    return module("emotions")


def client() -> ModuleType:
    return module("client")


def requests() -> ModuleType:
    return module("requests")


def landmarks() -> ModuleType:
    return module("landmarks")


def protocol() -> ModuleType:
    return module("protocol")


def errors() -> ModuleType:
    return module("errors")


def endpoints() -> ModuleType:
    return module("endpoints")


def results() -> ModuleType:
    return module("results")
