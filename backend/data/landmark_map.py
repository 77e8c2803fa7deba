"""The one 478 -> iBUG index map from mediapipe FaceMesh (refine_landmarks=True) to the iBUG points.

iBUG order (the 300-W convention; "right"/"left" are the *subject's*, so the
subject's right side appears on the image left in a frontal, unmirrored view):

====== ======================================= =====================================
iBUG   meaning                                 FaceMesh indices chosen
====== ======================================= =====================================
0-16   jaw line, image left -> right (8 = chin) face-oval contour points
17-21  subject's right brow, outer -> inner    upper brow contour 70, 63, 105, 66, 107
22-26  subject's left brow, inner -> outer     336, 296, 334, 293, 300 (mirror)
27-30  nose bridge, top -> tip                 168, 197, 5, 4
31-35  nose bottom, image left -> right        98, 97, 2, 326, 327
36-41  subject's right eye, clockwise from     33 (outer), 160, 158, 133 (inner),
       the outer corner                        153, 144
42-47  subject's left eye, from inner corner   362 (inner), 385, 387, 263 (outer),
                                               373, 380
48-59  outer lips, from the right corner,      61, 40, 37, 0, 267, 270, 291,
       clockwise in the image (upper first)    321, 314, 17, 84, 91
60-67  inner lips, from the right corner       78, 81, 13, 311, 308, 402, 14, 178
====== ======================================= =====================================

Every point was picked from FaceMesh's own contour sets (``FACEMESH_FACE_OVAL``,
``FACEMESH_LIPS``, the eye and brow sets; the nose from the mid-line and the
alar base) so that left/right pairs are mirror vertices of the FaceMesh topology;
``tests/test_data_landmark_map.py`` checks the membership, the mirror symmetry on
the data-derived mean face, the jaw order and the lip order.
"""
from __future__ import annotations

import numpy as np

from bridge.landmarks import JAW as IBUG_JAW, NOSE_BASE, NUM_LANDMARKS, REGIONS, as_slice

JAW = (127, 234, 93, 132, 58, 172, 136, 149, 152, 378, 365, 397, 288, 361, 323, 454, 356)
RIGHT_BROW = (70, 63, 105, 66, 107)
LEFT_BROW = (336, 296, 334, 293, 300)
NOSE_BRIDGE = (168, 197, 5, 4)
NOSE_BOTTOM = (98, 97, 2, 326, 327)
RIGHT_EYE = (33, 160, 158, 133, 153, 144)
LEFT_EYE = (362, 385, 387, 263, 373, 380)
OUTER_LIPS = (61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91)
INNER_LIPS = (78, 81, 13, 311, 308, 402, 14, 178)

#: ``MEDIAPIPE_TO_IBUG68[i]`` is the FaceMesh vertex used as iBUG point ``i``.
MEDIAPIPE_TO_IBUG68: np.ndarray = np.array(
    JAW + RIGHT_BROW + LEFT_BROW + NOSE_BRIDGE + NOSE_BOTTOM + RIGHT_EYE + LEFT_EYE + OUTER_LIPS + INNER_LIPS,
    dtype=np.int64)
assert MEDIAPIPE_TO_IBUG68.shape == (NUM_LANDMARKS,)


def _mirror_pairs() -> np.ndarray:
    """``IBUG68_MIRROR[i]`` is the iBUG point that mirrors point ``i`` across the face's mid-line."""
    m = np.arange(NUM_LANDMARKS)
    brows = range(REGIONS["brow_r"].start, REGIONS["brow_l"].stop)
    for region in (IBUG_JAW, brows, NOSE_BASE):    # the nose bridge lies on the mid-line: its own mirror
        m[as_slice(region)] = region[::-1]
    # eyes: 36<->45, 37<->44, 38<->43, 39<->42, 40<->47, 41<->46
    for a, b in ((36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)):
        m[a], m[b] = b, a
    # outer lips: 48<->54, 49<->53, 50<->52, 51, 55<->59, 56<->58, 57
    for a, b in ((48, 54), (49, 53), (50, 52), (55, 59), (56, 58)):
        m[a], m[b] = b, a
    # inner lips: 60<->64, 61<->63, 62, 65<->67, 66
    for a, b in ((60, 64), (61, 63), (65, 67)):
        m[a], m[b] = b, a
    return m


IBUG68_MIRROR: np.ndarray = _mirror_pairs()


def to_ibug68(mesh_points: np.ndarray) -> np.ndarray:
    """Select the iBUG points from ``[..., 478, D]`` FaceMesh points (468 without iris also works)."""
    mesh_points = np.asarray(mesh_points)
    if mesh_points.shape[-2] < 468:
        raise ValueError(f"expected FaceMesh points [..., 478, D], got shape {list(mesh_points.shape)}")
    return mesh_points[..., MEDIAPIPE_TO_IBUG68, :]
