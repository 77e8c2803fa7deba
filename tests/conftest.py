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


@pytest.fixture(scope="session")
def prepared_tracks(shared_data) -> Path:
    """Track files of every clip in ``../shared/data`` under ``<repo>/cache/tracks`` (25 fps,
    see backend/data/tracks.py). Runs ``emogene prepare`` once (~2-3 min on 2 cores); a
    no-op when the tracks are already there with the current extractor version."""
    from backend.data.prepare import PrepareConfig, prepare_paths

    out = REPO_ROOT / "cache" / "tracks"
    summary = prepare_paths([shared_data], PrepareConfig(out_dir=out), show_progress=False)
    failed = summary.of("failed")
    assert not failed, "prepare failed on sample clips: " + "; ".join(f"{r.source}: {r.message}" for r in failed)
    return out
