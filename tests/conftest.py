"""Shared fixtures: where the real sample data lives, and skips when it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need real clips skip without it."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (see README: tests read ../shared/data)")
    return SHARED_DATA
