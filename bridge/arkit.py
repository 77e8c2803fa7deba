"""Landmarks -> ARKit blendshape weights (numpy only; runs in the backend and inside Blender).

Each frame's canonical landmarks minus a neutral face are fitted by the
landmark basis of :mod:`bridge.arkit_basis` with weights bounded to [0, 1]
(ridge + a small sparsity cost, solved for all frames at once by accelerated
projected gradient), plus an unbounded per-frame shift and scale that absorb
what canonicalisation leaves (a blink moves the eye centres the face is
normalised to). Weights are then smoothed over time with a short Gaussian.

The neutral face is the track's own rest shape (:func:`estimate_neutral`:
median of frames with the mouth nearly closed and the eyes open) unless one
is given: an all-happy take needs a neutral reference from elsewhere, or its
smile counts as rest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.arkit_basis import NOT_OBSERVABLE, build_basis
from bridge.arkit_names import ARKIT_INDEX, ARKIT_NAMES, NUM_SHAPES
from bridge.landmarks import JAW, NUM_LANDMARKS, as_slice

_COORDS = NUM_LANDMARKS * 3   # a face as one vector

SOLVED_SHAPES: tuple[str, ...] = tuple(n for n in ARKIT_NAMES if n not in NOT_OBSERVABLE)


@dataclass
class SolveConfig:
    ridge: float = 0.02              # L2 cost on each weight, relative to its shape's squared size
    sparsity: float = 0.002          # linear (L1 on non-negative weights) cost, same scale
    iterations: int = 400
    smooth_sigma_frames: float = 0.6  # Gaussian over frames after the fit; 0 = off
    #: eyelid shapes are smoothed less: a blink lasts 3-6 frames at 25 fps and its bottom 1-2
    eyelid_smooth_sigma_frames: float = 0.0
    jaw_contour_weight: float = 0.5  # the jaw outline is the least reliable part of a tracked face


@dataclass
class SolveResult:
    weights: np.ndarray    # float32 [F, 52] in ARKIT_NAMES order, 0..1
    neutral: np.ndarray    # float64 [NUM_LANDMARKS, 3]
    offsets: np.ndarray    # float64 [F, 4]: per-frame shift x, y, z and scale change the fit absorbed

    def reconstruct(self, with_offsets: bool = True) -> np.ndarray:
        """The landmarks the weights (and, by default, the per-frame offsets) describe: ``[F, NUM_LANDMARKS, 3]``."""
        points = reconstruct(self.weights, self.neutral)
        if with_offsets:
            points = points + (self.offsets @ _nuisance(self.neutral).T).reshape(-1, NUM_LANDMARKS, 3)
        return points


def _check_landmarks(landmarks) -> np.ndarray:
    points = np.asarray(landmarks, np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"landmarks must be [frames, {NUM_LANDMARKS}, 3], got shape {points.shape}")
    if len(points) == 0:
        raise ValueError("landmarks have no frames")
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or infinite values")
    return points


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap per frame (upper mid 62 to lower mid 66), canonical units."""
    return landmarks[:, 62, 1] - landmarks[:, 66, 1]


def eye_openness(landmarks: np.ndarray) -> np.ndarray:
    """Mean lid gap of both eyes per frame, canonical units."""
    upper, lower = [37, 38, 43, 44], [41, 40, 47, 46]
    return (landmarks[:, upper, 1] - landmarks[:, lower, 1]).mean(axis=1)


def estimate_neutral(landmarks, candidates: np.ndarray | None = None) -> np.ndarray:
    """A track's rest face ``[NUM_LANDMARKS, 3]``: the median of its frames with the mouth in its lowest 30 %
    of opening and the eyes not blinking. ``candidates`` (bool ``[F]``) restricts the frames
    considered (e.g. those keyed neutral); ignored when it selects none."""
    points = _check_landmarks(landmarks)
    pool = np.arange(len(points))
    if candidates is not None:
        mask = np.asarray(candidates, bool)
        if mask.shape != (len(points),):
            raise ValueError(f"candidates must be a bool array of {len(points)} frames, got shape {mask.shape}")
        if mask.any():
            pool = pool[mask]
    sub = points[pool]
    opening, eyes = mouth_opening(sub), eye_openness(sub)
    rest = (opening <= np.percentile(opening, 30)) & (eyes >= 0.8 * np.median(eyes))
    chosen = sub[rest] if rest.sum() >= 1 else sub
    return np.median(chosen, axis=0)


def rest_frames_from_emotion(weights, intensity) -> np.ndarray:
    """Frames to look for the rest face in: those whose emotion is mostly neutral (normalised neutral
    weight >= 0.5) or whose intensity is 0. ``weights [F, NUM_EMOTIONS]`` in ``bridge.emotions`` order."""
    weights = np.clip(np.asarray(weights, np.float64), 0.0, None)
    total = weights.sum(axis=1)
    neutral_share = np.where(total > 0, weights[:, 0] / np.where(total > 0, total, 1.0), 1.0)
    return (neutral_share >= 0.5) | (np.asarray(intensity, np.float64) <= 0)


def _nuisance(neutral: np.ndarray) -> np.ndarray:
    """``[NUM_LANDMARKS * 3, 4]``: unit shifts along x, y, z and a uniform scale about the origin."""
    cols = np.zeros((NUM_LANDMARKS, 3, 4))
    for axis in range(3):
        cols[:, axis, axis] = 1.0
    cols[:, :, 3] = neutral
    return cols.reshape(_COORDS, 4)


def reconstruct(weights: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """``neutral + sum_k weights[:, k] * basis[k]``: landmarks ``[F, NUM_LANDMARKS, 3]``."""
    weights = np.asarray(weights, np.float64)
    if weights.ndim != 2 or weights.shape[1] != NUM_SHAPES:
        raise ValueError(f"weights must be [frames, {NUM_SHAPES}], got shape {weights.shape}")
    basis = build_basis(neutral).reshape(NUM_SHAPES, _COORDS)
    return (np.asarray(neutral, np.float64).reshape(1, _COORDS) + weights @ basis).reshape(-1, NUM_LANDMARKS, 3)


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(values) < 3:
        return values
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(values, ((radius, radius), (0, 0)), mode="edge")
    out = np.zeros_like(values)
    for k, tap in enumerate(taps):
        out += tap * padded[k:k + len(values)]
    return out


def solve(landmarks, neutral: np.ndarray | None = None, config: SolveConfig | None = None) -> SolveResult:
    """Fit ARKit weights ``[F, 52]`` (0..1) to canonical landmarks ``[F, NUM_LANDMARKS, 3]``."""
    config = config or SolveConfig()
    points = _check_landmarks(landmarks)
    neutral = estimate_neutral(points) if neutral is None else np.asarray(neutral, np.float64)
    basis = build_basis(neutral).reshape(NUM_SHAPES, _COORDS)
    solved = np.array([ARKIT_INDEX[n] for n in SOLVED_SHAPES])

    point_weight = np.ones((NUM_LANDMARKS, 3))
    point_weight[as_slice(JAW)] = config.jaw_contour_weight
    sqrt_w = np.sqrt(point_weight.reshape(_COORDS))
    A = basis[solved].T * sqrt_w[:, None]                 # [NUM_LANDMARKS * 3, K]
    N = _nuisance(neutral) * sqrt_w[:, None]              # [NUM_LANDMARKS * 3, 4]
    D = (points.reshape(-1, _COORDS) - neutral.reshape(1, _COORDS)) * sqrt_w[None, :]   # [F, NUM_LANDMARKS * 3]

    # the shift/scale is unbounded: project it out of both sides, solve the bounded part
    Q, _ = np.linalg.qr(N)
    A_p = A - Q @ (Q.T @ A)
    D_p = D - (D @ Q) @ Q.T
    # costs scale with the mean shape size, so a large shape (jawOpen) is preferred to small ones
    # (mouthLowerDown) that explain the same motion; eyelid shapes compete only among themselves
    # and use their own size, so a full blink is not shrunk
    eyelids = np.array([n.startswith(("eyeBlink", "eyeWide", "eyeSquint")) for n in SOLVED_SHAPES])
    size = np.linalg.norm(A_p, axis=0) ** 2
    size = np.where(eyelids, size, size[~eyelids].mean())
    G = A_p.T @ A_p + config.ridge * np.diag(size)
    B = D_p @ A_p - config.sparsity * size                # [F, K]
    step = 1.0 / np.linalg.eigvalsh(G)[-1]

    w = np.zeros((len(points), len(solved)))
    y, t = w.copy(), 1.0
    for _ in range(config.iterations):                    # FISTA with a box projection
        w_next = np.clip(y - step * (y @ G - B), 0.0, 1.0)
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = w_next + ((t - 1) / t_next) * (w_next - w)
        w, t = w_next, t_next
    w[:, ~eyelids] = _smooth(w[:, ~eyelids], config.smooth_sigma_frames)
    w[:, eyelids] = _smooth(w[:, eyelids], config.eyelid_smooth_sigma_frames)
    w = np.clip(w, 0.0, 1.0)

    weights = np.zeros((len(points), NUM_SHAPES), np.float32)
    weights[:, solved] = w
    residual = D - w @ A.T
    offsets = np.linalg.lstsq(N, residual.T, rcond=None)[0].T   # [F, 4]
    return SolveResult(weights, neutral, offsets)


def head_angles(rotation: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll ``[F, 3]`` in radians from camera-frame head rotations ``[F, 3, 3]`` (OpenCV axes).

    Signs, seen from the camera: yaw > 0 turns the face toward the subject's left, pitch > 0
    tips the chin down, roll > 0 tilts the head toward the subject's right shoulder.
    """
    r = np.asarray(rotation, np.float64)
    flip = np.diag([1.0, -1.0, -1.0])                     # OpenCV axes <-> canonical (y up, z to viewer)
    v = flip @ r @ flip
    yaw = np.arctan2(v[:, 0, 2], v[:, 2, 2])
    pitch = np.arcsin(np.clip(-v[:, 1, 2], -1.0, 1.0))
    roll = np.arctan2(v[:, 1, 0], v[:, 1, 1])
    return np.stack([yaw, pitch, roll], axis=1)
