"""Canonical face space and head pose: a per-frame similarity fit to a mean face.

Canonical space (the contract in docs/architecture.md): origin midway between the eye
centres (means of iBUG 36-41 and 42-47), inter-ocular distance 1, +x toward the image
right in a frontal view, +y up, +z toward the viewer.

Tracked points ``P`` are ``(u, v, d)`` in pixels (OpenCV axes). Each frame is first fitted
with weak perspective, ``P ~= s * R @ (FLIP @ c) + t`` (Umeyama's least-squares
similarity), on the *stable* points only (upper jaw, nose, eye corners: not lips, brows
or lids) so that expression stays in the canonical landmarks ``c``.

Camera: intrinsics are not known for internet video, so we assume a pinhole whose field
of view across the longer image side is ``fov_degrees`` (15 by default, see
:data:`DEFAULT_FOV_DEGREES`) with the principal point at the image centre. The fitted pixel
scale ``s`` then sets the depth: a canonical unit seen at ``s`` pixels lies at
``Z = fx / s`` canonical units. Every tracked point is back-projected along its pixel ray to the depth
``Z + (d - t_z) Z / fx`` and a 3-D similarity to the mean face is fitted to these camera-space
points; ``Z`` is rescaled until that similarity has scale 1 (the face is assumed to be the
mean face's size). The pose is then ``p_cam = R @ FLIP @ c + T`` with ``scale = 1`` (camera
units are canonical units: 1 = the subject's inter-ocular distance, ~6.3 cm), and
projecting the canonical landmarks with it lands on the tracked image points.

The mean face (``backend/data/mean_face.py``) was derived from the real sample clips by
:func:`derive_mean_face` (generalised Procrustes + left/right symmetrisation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.data.landmark_map import IBUG68_MIRROR
from bridge.landmarks import EYE_L, EYE_R, NUM_LANDMARKS, as_slice

#: canonical (y-up, z-to-viewer) <-> OpenCV (y-down, z-forward)
FLIP = np.diag([1.0, -1.0, -1.0])

#: points that move little with expression: upper jaw, nose, eye corners.
STABLE_POINTS = np.array([0, 1, 2, 3, 13, 14, 15, 16, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45])

#: assumed field of view across the longer image side. Chosen on the sample clips: sweeping
#: 5-70 deg, 15 deg gave the most pose-consistent canonical landmarks (left- vs right-turned
#: frames of one speaker: 0.013-0.053 IOD apart at 15 deg, 0.019-0.057 at 30, 0.035-0.068 at 50);
#: talking-head footage is mostly shot with longer lenses or cropped.
DEFAULT_FOV_DEGREES = 15.0

RIGHT_EYE = as_slice(EYE_R)
LEFT_EYE = as_slice(EYE_L)


def mean_face() -> np.ndarray:
    """The mean face, float32 [NUM_LANDMARKS, 3], canonical space."""
    from backend.data.mean_face import MEAN_FACE_68
    return np.array(MEAN_FACE_68, dtype=np.float32)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~= s * R @ src + t`` for ``[N, 3]`` point sets (Umeyama 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rotation = u @ sign @ vt
    var_s = (xs ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(d) @ sign) / var_s) if with_scale else 1.0
    t = mu_d - scale * rotation @ mu_s
    return scale, rotation, t


def normalise_to_canonical(points: np.ndarray) -> np.ndarray:
    """Translate/scale one ``[NUM_LANDMARKS, 3]`` canonical-axes shape so its eye-centre midpoint is the
    origin and its inter-ocular distance is 1 (rotation untouched)."""
    right = points[RIGHT_EYE].mean(axis=0)
    left = points[LEFT_EYE].mean(axis=0)
    return (points - 0.5 * (left + right)) / np.linalg.norm(left - right)


@dataclass
class CanonicalFit:
    landmarks: np.ndarray        # float32 [T, NUM_LANDMARKS, 3] canonical, pose removed
    rotation: np.ndarray         # float32 [T, 3, 3] camera frame (OpenCV axes)
    translation: np.ndarray      # float32 [T, 3] canonical units (see module doc)
    scale: np.ndarray            # float32 [T] (1: camera units are canonical units)
    pixel_scale: np.ndarray      # float32 [T] pixels per canonical unit
    residual: np.ndarray         # float32 [T] RMS fit error on the stable points, canonical units
    intrinsics: np.ndarray       # float32 [4] fx, fy, cx, cy in pixels


def estimate_intrinsics(image_size: tuple[int, int], fov_degrees: float = DEFAULT_FOV_DEGREES) -> np.ndarray:
    """``[fx, fy, cx, cy]``: square pixels, principal point at the centre, the given FOV across the longer side."""
    width, height = image_size
    focal = 0.5 * max(width, height) / np.tan(np.radians(fov_degrees) / 2.0)
    return np.array([focal, focal, width / 2.0, height / 2.0], dtype=np.float32)


def fit_canonical(points: np.ndarray, image_size: tuple[int, int], template: np.ndarray | None = None,
                  fov_degrees: float = DEFAULT_FOV_DEGREES) -> CanonicalFit:
    """Fit every frame of a ``[T, NUM_LANDMARKS, 3]`` pixel track (u, v, d) to the mean face."""
    template = mean_face() if template is None else np.asarray(template, dtype=np.float64)
    template_cv = template @ FLIP.T  # canonical -> OpenCV axes
    intrinsics = estimate_intrinsics(image_size, fov_degrees)
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    n = points.shape[0]
    landmarks = np.empty((n, NUM_LANDMARKS, 3), np.float32)
    rotation = np.empty((n, 3, 3), np.float32)
    translation = np.empty((n, 3), np.float32)
    pixel_scale = np.empty(n, np.float32)
    residual = np.empty(n, np.float32)
    for i in range(n):
        p = points[i].astype(np.float64)
        s, r, t = umeyama(template_cv[STABLE_POINTS], p[STABLE_POINTS])
        # weak perspective gives the depth of the face: a canonical unit spans s pixels at Z = fx / s;
        # back-project every point along its pixel ray at depth Z + (d - t_z) Z / fx, then fit in 3-D
        depth = fx / s
        for _ in range(3):
            z = depth + (p[:, 2] - t[2]) * depth / fx
            cam = np.stack([(p[:, 0] - cx) * z / fx, (p[:, 1] - cy) * z / fy, z], axis=1)
            s3, r3, t3 = umeyama(template_cv[STABLE_POINTS], cam[STABLE_POINTS])
            depth /= s3  # the face has the mean face's size: rescale depth until s3 == 1
        cv_local = (cam - t3) @ r3 / s3
        landmarks[i] = cv_local @ FLIP.T
        residual[i] = np.sqrt(((cv_local[STABLE_POINTS] - template_cv[STABLE_POINTS]) ** 2).sum(-1).mean())
        rotation[i], translation[i], pixel_scale[i] = r3, t3 / s3, s
    return CanonicalFit(landmarks=landmarks, rotation=rotation, translation=translation,
                        scale=np.ones(n, np.float32), pixel_scale=pixel_scale, residual=residual,
                        intrinsics=intrinsics)


def camera_points(canonical: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                  scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Canonical points ``[T, N, 3]`` with a pose track -> camera-frame points ``scale * R @ FLIP @ c + t``."""
    scale = np.broadcast_to(np.asarray(scale, np.float64), (canonical.shape[0],))
    return scale[:, None, None] * np.einsum("tij,tnj->tni", rotation, canonical @ FLIP.T) + translation[:, None, :]


def project(canonical: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
            intrinsics: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Pinhole projection of canonical points ``[T, N, 3]`` with a pose track -> pixels ``[T, N, 2]``."""
    cam = camera_points(canonical, rotation, translation, scale)
    fx, fy, cx, cy = intrinsics
    return np.stack([fx * cam[..., 0] / cam[..., 2] + cx, fy * cam[..., 1] / cam[..., 2] + cy], axis=-1)


def symmetrise(face: np.ndarray) -> np.ndarray:
    """Average a canonical ``[NUM_LANDMARKS, 3]`` face with its mirror image (x -> -x, left <-> right points)."""
    mirrored = face[IBUG68_MIRROR] * np.array([-1.0, 1.0, 1.0])
    return 0.5 * (face + mirrored)


def derive_mean_face(tracks: list[np.ndarray], iterations: int = 5) -> np.ndarray:
    """Generalised Procrustes mean of pixel tracks ``[T_i, NUM_LANDMARKS, 3]`` -> canonical ``[NUM_LANDMARKS, 3]``.

    Each frame is flipped to canonical axes and normalised (eye midpoint origin, IOD 1),
    then rigidly aligned to the running mean on all the points; the mean is symmetrised
    left/right, rotated so the eye line is the x axis, and renormalised.
    """
    shapes = np.concatenate([np.asarray(t, np.float64) for t in tracks]) @ FLIP.T
    shapes = np.stack([normalise_to_canonical(s) for s in shapes])
    mean = shapes.mean(axis=0)
    for _ in range(iterations):
        aligned = []
        for s in shapes:
            _, r, t = umeyama(s, mean, with_scale=False)
            aligned.append(normalise_to_canonical(s @ r.T + t))
        mean = symmetrise(normalise_to_canonical(np.mean(aligned, axis=0)))
    # eye line along +x (symmetrisation already removes roll/yaw asymmetry up to numerics)
    eye_axis = mean[LEFT_EYE].mean(0) - mean[RIGHT_EYE].mean(0)
    eye_axis /= np.linalg.norm(eye_axis)
    assert eye_axis[0] > 0.99, f"mean face eye line not along +x: {eye_axis}"
    return normalise_to_canonical(mean).astype(np.float32)
