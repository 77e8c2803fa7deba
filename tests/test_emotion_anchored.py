"""``JudgeConfig.anchored``: each face region's displacement is read relative to a local anchor, so a rigid shift of
a whole region (what a head pose does to the canonical landmarks) reads as no expression, while a deformation
inside it (a brow raised from the eyes) still does."""
from __future__ import annotations

import numpy as np

from backend.evaluation.emotion_judge import ANCHORS, JudgeConfig, displacement_features
from bridge import landmarks as ibug
from bridge.landmarks import NUM_LANDMARKS


def _reference() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(NUM_LANDMARKS, 3)).astype(np.float32)


def _idx(*regions: str) -> list[int]:
    return [i for name in regions for i in ibug.REGIONS[name]]


def _features(landmarks: np.ndarray, reference: np.ndarray, anchored: bool) -> np.ndarray:
    return displacement_features(landmarks[None], reference, JudgeConfig(anchored=anchored)).reshape(NUM_LANDMARKS, 2)


def test_anchor_groups_cover_every_landmark_once():
    covered = sorted(i for regions, _ in ANCHORS for i in _idx(*regions))
    assert covered == list(range(NUM_LANDMARKS))


def test_rigid_shift_of_each_group_with_its_anchor_gives_zero_anchored_features():
    ref = _reference()
    for regions, anchor in ANCHORS:
        moved = ref.copy()
        moved[sorted(set(_idx(*regions)) | set(anchor))] += np.array([0.03, -0.05, 0.02], np.float32)  # with its anchor
        plain, anchored = _features(moved, ref, False), _features(moved, ref, True)
        assert np.abs(plain[_idx(*regions)]).max() > 0.02, regions
        np.testing.assert_allclose(anchored[_idx(*regions)], 0.0, atol=1e-6, err_msg=str(regions))


def test_rigid_shift_of_the_whole_face_gives_zero_anchored_features():
    ref = _reference()
    anchored = _features(ref + np.array([0.03, -0.05, 0.02], np.float32), ref, True)
    np.testing.assert_allclose(anchored, 0.0, atol=1e-6)


def test_brow_raise_relative_to_the_eyes_survives_anchoring():
    ref = _reference()
    raised = ref.copy()
    raised[_idx("brow_r", "brow_l"), 1] -= 0.05                                # brows up, eyes still
    anchored = _features(raised, ref, True)
    np.testing.assert_allclose(anchored[_idx("brow_r", "brow_l"), 1], -0.05, atol=1e-6)
    np.testing.assert_allclose(anchored[_idx("eye_r", "eye_l")], 0.0, atol=1e-6)


def test_mouth_opening_relative_to_the_nose_base_survives_anchoring():
    ref = _reference()
    opened = ref.copy()
    opened[_idx("lip_inner", "lip_outer")[len(ibug.REGIONS["lip_inner"]) + 6:], 1] += 0.04   # part of the lips moves
    opened[_idx("nose_bridge", "nose_base", "lip_outer", "lip_inner", "jaw"), 0] += 0.03     # all slid sideways
    anchored = _features(opened, ref, True)
    assert np.abs(anchored[_idx("lip_outer", "lip_inner"), 1]).max() > 0.03
    np.testing.assert_allclose(anchored[_idx("lip_outer", "lip_inner", "jaw"), 0], 0.0, atol=1e-6)


def test_default_judge_features_are_unchanged():
    rng = np.random.default_rng(1)
    ref = _reference()
    lms = ref + rng.normal(scale=0.02, size=(12, NUM_LANDMARKS, 3)).astype(np.float32)
    expected = (lms - ref)[..., :2].reshape(12, -1)
    np.testing.assert_array_equal(displacement_features(lms, ref, JudgeConfig()), expected)
