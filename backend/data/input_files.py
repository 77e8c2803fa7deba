"""The checks every media reader makes before opening a file, with the reader's own error type."""
from __future__ import annotations

from pathlib import Path


def check_input_file(path: Path, error: type[Exception], kind: str) -> None:
    """Raise ``error`` naming ``path`` when it is missing, a folder or empty (``kind``: 'video', 'audio file')."""
    if not path.exists():
        raise error(f"{path}: file not found")
    if path.is_dir():
        raise error(f"{path}: is a folder, not {'an' if kind[0] in 'aeiou' else 'a'} {kind}")
    if path.stat().st_size == 0:
        raise error(f"{path}: zero-length file")
