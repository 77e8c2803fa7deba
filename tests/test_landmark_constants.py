"""One home for the landmark count and regions: bridge.landmarks, and no literal 68 in the code."""
from __future__ import annotations

import io
import tokenize
from pathlib import Path

import numpy as np

from bridge.landmarks import EYE_L, EYE_R, INNER_LIP, JAW, MOUTH, NOSE_BASE, NUM_LANDMARKS, REGIONS, as_slice

REPO = Path(__file__).resolve().parents[1]
#: the landmark count and its x3 (flattened [NUM_LANDMARKS, 3]) as code literals
COUNT_LITERALS = {str(NUM_LANDMARKS), str(3 * NUM_LANDMARKS)}


def test_named_regions_are_the_regions_table():
    assert (JAW, EYE_R, EYE_L, NOSE_BASE, INNER_LIP) == (
        REGIONS["jaw"], REGIONS["eye_r"], REGIONS["eye_l"], REGIONS["nose_base"], REGIONS["lip_inner"])
    assert list(MOUTH) == list(REGIONS["lip_outer"]) + list(REGIONS["lip_inner"])
    assert [i for r in REGIONS.values() for i in r] == list(range(NUM_LANDMARKS))


def test_as_slice_is_a_view_of_the_same_points():
    points = np.arange(NUM_LANDMARKS * 3, dtype=np.float32).reshape(NUM_LANDMARKS, 3)
    for region in REGIONS.values():
        view = points[as_slice(region)]
        assert np.shares_memory(view, points)
        assert np.array_equal(view, points[list(region)])


def _count_literals(path: Path) -> list[str]:
    """``file:line`` of every number token spelling the landmark count (strings and comments are prose)."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return [f"{path.relative_to(REPO)}:{tok.start[0]}" for tok in tokens
            if tok.type == tokenize.NUMBER and tok.string in COUNT_LITERALS]


def test_no_literal_landmark_count_outside_bridge_landmarks():
    home = REPO / "bridge" / "landmarks.py"
    found = [hit for package in ("backend", "bridge", "blender_addon", "scripts")
             for path in sorted((REPO / package).rglob("*.py")) if path != home
             for hit in _count_literals(path)]
    assert not found, f"use bridge.landmarks.NUM_LANDMARKS (or a region) instead of a literal at: {found}"
