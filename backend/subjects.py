"""Where subjects (one trained person each) live and how they are found by name.

A subject is a folder ``<root>/<name>/`` holding ``subject.json`` (name, version,
image size, intrinsics, ...), the subject's face track (``track.npz``, written by
``emogene prepare-subject``: the pose track that motion sampling draws from) and
the NeRF weights. Roots, searched in order: folders given explicitly
(``--subjects-dir``), ``$EMOGENE_SUBJECTS_DIR`` (``os.pathsep``-separated), the
user's ``~/.local/share/emogene/subjects``, and the subjects shipped in
``backend/assets/subjects`` (``default`` is the embedded one).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

SHIPPED_SUBJECTS = Path(__file__).resolve().parent / "assets" / "subjects"
USER_SUBJECTS = Path.home() / ".local" / "share" / "emogene" / "subjects"
DEFAULT_SUBJECT = "default"


def load_subject_info(subject_dir: str | Path) -> dict:
    """The ``subject.json`` of a subject folder (a clear error when the folder holds none)."""
    path = Path(subject_dir) / "subject.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `emogene prepare-subject VIDEO --out {subject_dir}` first")
    return json.loads(path.read_text())


class UnknownSubjectError(LookupError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown subject {name!r}; this backend has: {', '.join(known) or 'none'}")
        self.name = name


class SubjectStore:
    """Finds subject folders by name across the configured roots (first root wins)."""

    def __init__(self, extra_roots: list[str | Path] | None = None):
        roots = [Path(p) for p in (extra_roots or [])]
        env = os.environ.get("EMOGENE_SUBJECTS_DIR")
        if env:
            roots += [Path(p) for p in env.split(os.pathsep) if p]
        roots += [USER_SUBJECTS, SHIPPED_SUBJECTS]
        self.roots = roots

    def _all(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root in self.roots:
            if not root.is_dir():
                continue
            for d in sorted(root.iterdir()):
                if (d / "subject.json").is_file() and d.name not in found:
                    found[d.name] = d
        return found

    def names(self) -> list[str]:
        return sorted(self._all())

    def path(self, name: str) -> Path:
        found = self._all()
        if name not in found:
            raise UnknownSubjectError(name, sorted(found))
        return found[name]

    def info(self, name: str) -> dict:
        return load_subject_info(self.path(name))
