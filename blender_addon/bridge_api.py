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


def _accessor(name: str):
    def get() -> ModuleType:
        return module(name)
    get.__name__ = get.__qualname__ = name
    get.__doc__ = f"``bridge.{name}`` from whichever copy is in use."
    return get


#: ``bridge_api.client()`` etc.: the bridge modules the add-on uses, by name
(emotions, client, requests, landmarks, protocol, errors, endpoints, results) = (
    _accessor(name) for name in ("emotions", "client", "requests", "landmarks", "protocol", "errors", "endpoints",
                                 "results"))
