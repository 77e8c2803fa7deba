"""A landmark-space basis for ARKit's 52 blendshapes, built from a neutral face by anatomy.

Each shape is a displacement ``[NUM_LANDMARKS, 3]`` of the iBUG landmarks (canonical face
space: inter-ocular distance 1, +x the subject's left, +y up, +z toward the
viewer) at weight 1, defined from the neutral face it deforms, so the basis
follows each face's proportions. "Left" is the subject's own left (ARKit's
convention), i.e. +x.

Magnitudes are anatomical estimates (1 unit ~ 6.3 cm) except two parts
measured on real tracks by ``scripts/calibrate_arkit.py`` (train-split speakers
only; numbers in :mod:`bridge.arkit_calibration`):

* eyeBlink = 1 closes the lid gap by ``BLINK_CLOSURE`` (85 %: the median
  closure at the bottom of 450 real blinks as tracked);
* jawOpen is the real motion of jaw and lower lip that goes with opening the
  mouth (a regression over 17k frames), scaled so the lower inner lip drops by
  ``JAW_OPEN_LIP_DROP`` = 0.6 units (~3.8 cm, the widest openings in the tracks).

Shapes the landmarks cannot see get a zero column and are listed in
:data:`NOT_OBSERVABLE` (eye gaze: no pupils among the points; tongue; cheek
puff: the jaw contour does not follow the cheeks reliably).
"""
from __future__ import annotations

import numpy as np

from bridge.arkit_calibration import BLINK_CLOSURE, JAW_OPEN_DIRECTION
from bridge.arkit_names import ARKIT_NAMES, NUM_SHAPES
from bridge.landmarks import JAW as _JAW_RANGE, MOUTH as _MOUTH_RANGE
from bridge.landmarks import NUM_LANDMARKS

JAW_OPEN_LIP_DROP = 0.6

NOT_OBSERVABLE: tuple[str, ...] = (
    "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "cheekPuff", "tongueOut",
)

# iBUG indices; "R"/"L" are the subject's right (-x) and left (+x)
JAW = np.asarray(_JAW_RANGE)
BROW = {"R": np.array([17, 18, 19, 20, 21]), "L": np.array([26, 25, 24, 23, 22])}  # outer -> inner
EYE_UPPER = {"R": np.array([37, 38]), "L": np.array([44, 43])}
EYE_LOWER = {"R": np.array([41, 40]), "L": np.array([46, 47])}       # below EYE_UPPER, pairwise
EYE_OUTER = {"R": 36, "L": 45}
NOSE_WING = {"R": np.array([31, 32]), "L": np.array([35, 34])}
UPPER_LIP_OUTER = np.array([49, 50, 51, 52, 53])
LOWER_LIP_OUTER = np.array([55, 56, 57, 58, 59])
UPPER_LIP_INNER = np.array([61, 62, 63])
LOWER_LIP_INNER = np.array([65, 66, 67])
CORNERS = {"R": np.array([48, 60]), "L": np.array([54, 64])}
MOUTH = np.arange(_MOUTH_RANGE.start, _MOUTH_RANGE.stop)


def _side_weight(neutral: np.ndarray, indices: np.ndarray, side: str) -> np.ndarray:
    """0..1 per point: how much a one-sided mouth shape moves it (corner 1, midline 0.5, far corner 0)."""
    half_width = max(abs(neutral[54, 0] - neutral[48, 0]) / 2, 1e-6)
    centre = (neutral[54, 0] + neutral[48, 0]) / 2
    x = (neutral[indices, 0] - centre) / half_width
    x = x if side == "L" else -x
    return np.clip(0.5 + 0.5 * x, 0.0, 1.0)


def _corner_falloff(neutral: np.ndarray, side: str) -> np.ndarray:
    """Weights over all 20 mouth points for a shape pulling one corner: 1 at the corner, fading to 0."""
    w = _side_weight(neutral, MOUTH, side)
    return np.clip((w - 0.5) * 2.0, 0.0, 1.0) ** 1.5


def _jaw_weights(neutral: np.ndarray) -> np.ndarray:
    """How much each point moves with the mandible: chin and lower lip 1, upper face 0, contour graded."""
    w = np.zeros(NUM_LANDMARKS)
    top = (neutral[0, 1] + neutral[16, 1]) / 2          # contour's upper ends (near the ear)
    corner_y = (neutral[48, 1] + neutral[54, 1]) / 2
    span = max(top - corner_y, 1e-6)
    w[JAW] = np.clip((top - neutral[JAW, 1]) / span, 0.0, 1.0)
    w[LOWER_LIP_OUTER] = 1.0
    w[LOWER_LIP_INNER] = 1.0
    w[[48, 54, 60, 64]] = 0.5
    return w


def _lid_gap(neutral: np.ndarray, side: str) -> np.ndarray:
    """Vertical gap upper->lower lid per lid pair (negative: the lower lid is below)."""
    return neutral[EYE_LOWER[side], 1] - neutral[EYE_UPPER[side], 1]


def build_basis(neutral: np.ndarray) -> np.ndarray:
    """``[52, NUM_LANDMARKS, 3]`` displacements at weight 1 for ``neutral [NUM_LANDMARKS, 3]`` (canonical units)."""
    n = np.asarray(neutral, np.float64)
    if n.shape != (NUM_LANDMARKS, 3) or not np.isfinite(n).all():
        raise ValueError(f"neutral face must be a finite [{NUM_LANDMARKS}, 3] array, got shape {n.shape}")
    basis = np.zeros((NUM_SHAPES, NUM_LANDMARKS, 3))
    mouth_width = abs(n[54, 0] - n[48, 0])

    def put(name: str, indices, delta, weights=None) -> None:
        d = np.broadcast_to(np.asarray(delta, np.float64), (len(np.atleast_1d(indices)), 3))
        if weights is not None:
            d = d * np.asarray(weights, np.float64)[:, None]
        basis[ARKIT_NAMES.index(name)][np.atleast_1d(indices)] += d

    for side, word in (("L", "Left"), ("R", "Right")):
        out = 1.0 if side == "L" else -1.0                # +x is the subject's left
        gap = _lid_gap(n, side)                           # negative numbers (lower lid below)
        up, low = EYE_UPPER[side], EYE_LOWER[side]
        y_only = np.array([0.0, 1.0, 0.0])
        # lids: the upper lid does most of a blink; the lower lid rises for squints
        put(f"eyeBlink{word}", up, np.outer(0.8 * BLINK_CLOSURE * gap, y_only))
        put(f"eyeBlink{word}", low, np.outer(-0.2 * BLINK_CLOSURE * gap, y_only))
        put(f"eyeWide{word}", up, np.outer(-0.35 * gap, y_only))
        put(f"eyeSquint{word}", low, np.outer(-0.3 * gap, y_only))
        put(f"eyeSquint{word}", up, np.outer(0.1 * gap, y_only))
        put(f"cheekSquint{word}", low, np.outer(-0.2 * gap, y_only))
        put(f"cheekSquint{word}", EYE_OUTER[side], [0.0, 0.03, 0.0])
        # brows, listed outer -> inner
        brow = BROW[side]
        put(f"browDown{word}", brow, [-out * 0.03, -0.12, 0.0], [0.6, 0.8, 1.0, 1.0, 1.0])
        put(f"browOuterUp{word}", brow, [0.0, 0.15, 0.0], [1.0, 0.7, 0.3, 0.0, 0.0])
        put("browInnerUp", brow, [0.0, 0.15, 0.0], [0.0, 0.0, 0.2, 0.6, 1.0])
        # nose wings lift; the upper lip follows a little on that side
        put(f"noseSneer{word}", NOSE_WING[side], [0.0, 0.06, 0.0], [1.0, 0.5])
        put(f"noseSneer{word}", UPPER_LIP_OUTER, [0.0, 0.03, 0.0], _side_weight(n, UPPER_LIP_OUTER, side))
        # mouth corners
        falloff = _corner_falloff(n, side)
        put(f"mouthSmile{word}", MOUTH, [out * 0.08, 0.12, -0.05], falloff)
        put(f"mouthFrown{word}", MOUTH, [out * 0.02, -0.10, 0.0], falloff)
        put(f"mouthDimple{word}", MOUTH, [out * 0.06, 0.0, -0.06], falloff)
        put(f"mouthStretch{word}", MOUTH, [out * 0.12, -0.04, 0.0], falloff)
        # one-sided lip motions
        for lips, dy in ((UPPER_LIP_INNER, -0.03), (UPPER_LIP_OUTER, -0.03), (LOWER_LIP_INNER, 0.03),
                         (LOWER_LIP_OUTER, 0.03)):
            put(f"mouthPress{word}", lips, [0.0, dy, 0.0], _side_weight(n, lips, side))
        for lips in (LOWER_LIP_OUTER, LOWER_LIP_INNER):
            put(f"mouthLowerDown{word}", lips, [0.0, -0.10, 0.0], _side_weight(n, lips, side))
        for lips in (UPPER_LIP_OUTER, UPPER_LIP_INNER):
            put(f"mouthUpperUp{word}", lips, [0.0, 0.08, 0.0], _side_weight(n, lips, side))

    jaw = _jaw_weights(n)
    basis[ARKIT_NAMES.index("jawOpen")] = np.asarray(JAW_OPEN_DIRECTION, np.float64)
    basis[ARKIT_NAMES.index("jawForward")] = np.outer(jaw, [0.0, 0.0, 0.15])
    basis[ARKIT_NAMES.index("jawLeft")] = np.outer(jaw, [0.15, 0.0, 0.0])
    basis[ARKIT_NAMES.index("jawRight")] = np.outer(jaw, [-0.15, 0.0, 0.0])
    put("mouthLeft", MOUTH, [0.15, 0.0, 0.0])
    put("mouthRight", MOUTH, [-0.15, 0.0, 0.0])
    # lips meet with the jaw where it is: the lower lip rises, the upper lip lowers a little
    put("mouthClose", LOWER_LIP_INNER, [0.0, 0.12, 0.0])
    put("mouthClose", LOWER_LIP_OUTER, [0.0, 0.10, 0.0])
    put("mouthClose", UPPER_LIP_INNER, [0.0, -0.03, 0.0])
    # funnel and pucker: lips forward, corners toward the middle; funnel also opens the lips
    centre_pull = (n[MOUTH, 0] - (n[48, 0] + n[54, 0]) / 2) / max(mouth_width / 2, 1e-6)  # -1..1
    put("mouthFunnel", MOUTH, np.stack([-0.10 * centre_pull, np.zeros(20), np.full(20, 0.10)], axis=1))
    put("mouthFunnel", UPPER_LIP_INNER, [0.0, 0.04, 0.0])
    put("mouthFunnel", LOWER_LIP_INNER, [0.0, -0.04, 0.0])
    put("mouthPucker", MOUTH, np.stack([-0.16 * centre_pull, np.zeros(20), np.full(20, 0.15)], axis=1))
    # lips rolling in: the outer contour moves toward the inner one and back
    put("mouthRollLower", LOWER_LIP_OUTER, [0.0, 0.05, -0.05])
    put("mouthRollUpper", UPPER_LIP_OUTER, [0.0, -0.05, -0.05])
    # shrugs: the chin boss pushes the lower lip up; the upper lip raises
    put("mouthShrugLower", np.concatenate([LOWER_LIP_OUTER, LOWER_LIP_INNER]), [0.0, 0.06, 0.02])
    put("mouthShrugLower", np.array([7, 8, 9]), [0.0, 0.04, 0.0])
    put("mouthShrugUpper", np.concatenate([UPPER_LIP_OUTER, UPPER_LIP_INNER]), [0.0, 0.05, 0.02])
    for name in NOT_OBSERVABLE:
        basis[ARKIT_NAMES.index(name)] = 0.0
    return basis
