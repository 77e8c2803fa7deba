"""Similarity fit to the mean face: canonical landmarks are pose-free, the pose is right."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.data.canonical import (FLIP, STABLE_POINTS, estimate_intrinsics, fit_canonical, mean_face,
                                    normalise_to_canonical, project, umeyama)

IMAGE = (512, 512)


def _perspective_points(canonical, rotations, translations, intrinsics=None):
    """What FaceMesh reports for a face seen by a pinhole camera: projected (u, v) and a
    relative depth d in pixels (depth offset from the face origin times the pixel scale)."""
    fx, fy, cx, cy = estimate_intrinsics(IMAGE) if intrinsics is None else intrinsics
    cam = np.einsum("tij,nj->tni", rotations, canonical @ FLIP.T) + translations[:, None]
    uv = np.stack([fx * cam[..., 0] / cam[..., 2] + cx, fy * cam[..., 1] / cam[..., 2] + cy], axis=-1)
    depth = (cam[..., 2] - translations[:, None, 2]) * (fx / translations[:, None, 2])
    return np.concatenate([uv, depth[..., None]], axis=-1).astype(np.float32), uv


def _random_poses(n, seed=0):
    rng = np.random.default_rng(seed)
    eul = np.stack([rng.uniform(-35, 35, n), rng.uniform(-20, 20, n), rng.uniform(-15, 15, n)], axis=1)
    translations = np.stack([rng.uniform(-2, 2, n), rng.uniform(-2, 2, n), rng.uniform(15, 40, n)], axis=1)
    return Rotation.from_euler("yxz", eul, degrees=True).as_matrix(), translations


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(20, 3))
    r = Rotation.from_euler("xyz", [10, -40, 25], degrees=True).as_matrix()
    dst = 2.5 * src @ r.T + np.array([1.0, -2.0, 3.0])
    s, rot, t = umeyama(src, dst)
    assert np.isclose(s, 2.5) and np.allclose(rot, r) and np.allclose(t, [1, -2, 3])


def test_a_posed_expressive_face_maps_back_to_the_same_canonical_face():
    face = mean_face().astype(np.float64)
    expressive = face.copy()
    expressive[57:60, 1] -= 0.25  # open the jaw/lower lip
    expressive[65:68, 1] -= 0.25
    expressive[17:27, 1] += 0.1   # raise the brows
    rotations, translations = _random_poses(40)
    points, uv = _perspective_points(expressive, rotations, translations)
    fit = fit_canonical(points, IMAGE)
    # pose is removed and the expression stays in the canonical landmarks
    assert np.abs(fit.landmarks - expressive).max() < 0.02
    opening = lambda f: f[..., 66, 1] - f[..., 62, 1]  # noqa: E731
    assert np.allclose(opening(fit.landmarks), opening(expressive), atol=0.01)
    assert fit.residual.max() < 0.01


def test_a_perspective_camera_is_recovered_and_reprojection_lands_on_the_image():
    face = mean_face().astype(np.float64)
    rotations, translations = _random_poses(10, seed=1)
    points, uv = _perspective_points(face, rotations, translations)
    fit = fit_canonical(points, IMAGE)
    reproj = project(fit.landmarks, fit.rotation, fit.translation, fit.intrinsics, fit.scale)
    fx = fit.intrinsics[0]
    iod_px = fx / translations[:, 2:3]
    err = np.linalg.norm(reproj - uv, axis=-1) / iod_px
    assert err.max() < 1e-3, f"reprojection {err.max():.4f} IOD"
    assert np.all(np.abs(fit.translation - translations) / translations[:, 2:3] < 0.02)
    angle = np.degrees(np.arccos(np.clip((np.einsum("tij,tij->t", fit.rotation, rotations) - 1) / 2, -1, 1)))
    assert angle.max() < 1.0, f"rotation off by {angle.max():.2f} deg"
    assert np.all(fit.translation[:, 2] > 0), "faces are in front of the camera (+z forward)"
    # the canonical origin (between the eyes) projects onto the eye midpoint
    origin = project(np.zeros((10, 1, 3)), fit.rotation, fit.translation, fit.intrinsics)[:, 0]
    eye_mid = 0.5 * (uv[:, 36:42].mean(1) + uv[:, 42:48].mean(1))
    assert np.all(np.linalg.norm(origin - eye_mid, axis=-1) / iod_px[:, 0] < 0.02)


def test_a_frontal_face_has_identity_rotation_and_opencv_axes():
    face = mean_face().astype(np.float64)
    points, uv = _perspective_points(face, np.eye(3)[None], np.array([[0.0, 0.0, 25.0]]))
    fit = fit_canonical(points, IMAGE)
    assert np.allclose(fit.rotation[0], np.eye(3), atol=1e-3)
    # OpenCV camera: the nose tip (canonical +z toward viewer) is nearer the camera (smaller depth)
    assert points[0, 30, 2] < points[0, 36, 2]
    # +x canonical is the image right, +y canonical is image up
    assert uv[0, 45, 0] > uv[0, 36, 0] and uv[0, 27, 1] < uv[0, 8, 1]


def test_intrinsics_assume_a_fixed_field_of_view():
    fx, fy, cx, cy = estimate_intrinsics((576, 768), fov_degrees=30.0)
    assert fx == fy and (cx, cy) == (288.0, 384.0)
    assert np.isclose(2 * np.degrees(np.arctan(384.0 / fx)), 30.0, atol=1e-3)


def test_normalise_to_canonical_sets_origin_and_scale():
    face = normalise_to_canonical(mean_face() * 3.0 + 1.0)
    assert np.allclose(face, mean_face(), atol=1e-5)


def _yaw_groups(track):
    yaw = Rotation.from_matrix(track.rotation).as_euler("yxz", degrees=True)[:, 0]
    return yaw < np.percentile(yaw, 10), yaw > np.percentile(yaw, 90), yaw


@pytest.mark.parametrize("clip", ["WDA_KatieHill_000", "feifeili_clip1", "reagan_clip1", "Obama_clip2",
                                  "WDA_AlexandriaOcasioCortez_000"])
def test_real_frames_under_different_head_poses_share_one_canonical_face(prepared_tracks, clip):
    """The 10 % most left-turned vs the 10 % most right-turned frames of one speaker (15-34 deg
    apart): their mean canonical stable points differ by < 0.08 IOD (measured 0.017-0.062,
    extractor v3), and by less than half of what a pose-unaware 2-D normalisation (eye
    midpoint origin, IOD 1, no rotation) leaves (measured 0.19-0.44)."""
    from backend.data.tracks import load_track
    track = load_track(prepared_tracks / f"{clip}.npz")
    left, right, yaw = _yaw_groups(track)
    assert yaw[right].mean() - yaw[left].mean() > 10.0
    diff = lambda a, b: float(np.sqrt(((a - b) ** 2).sum(-1).mean()))  # noqa: E731
    canonical = diff(track.landmarks[left][:, STABLE_POINTS].mean(0), track.landmarks[right][:, STABLE_POINTS].mean(0))
    naive_pts = np.stack([normalise_to_canonical(np.concatenate([p, np.zeros((68, 1))], 1))
                          for p in track.landmarks_image * np.array([1.0, -1.0])])
    naive = diff(naive_pts[left][:, STABLE_POINTS, :2].mean(0), naive_pts[right][:, STABLE_POINTS, :2].mean(0))
    assert canonical < 0.08, f"{clip}: canonical difference {canonical:.3f} IOD"
    assert canonical < 0.5 * naive, f"{clip}: canonical {canonical:.3f} vs naive 2-D {naive:.3f}"


def test_real_3d_landmarks_under_synthetic_poses_come_back_unchanged(prepared_tracks):
    """Real canonical 3-D landmarks (a smiling and a surprised MEAD frame) seen under 40 random
    head poses (yaw +-35, pitch +-20, roll +-15 deg, 15-40 IOD from a 15 deg camera): the
    recovered canonical landmarks differ by < 0.01 IOD RMS (measured mean 0.0002, max 0.0007)."""
    from backend.data.tracks import load_track
    for clip in ("W009_front_happy_level3_001", "M030_front_surprised_level3_001"):
        track = load_track(prepared_tracks / f"{clip}.npz")
        face = track.landmarks[track.frame_count // 2].astype(np.float64)
        rotations, translations = _random_poses(40, seed=5)
        points, _ = _perspective_points(face, rotations, translations)
        fit = fit_canonical(points, IMAGE)
        rms = np.sqrt(((fit.landmarks - face) ** 2).sum(-1).mean(-1))
        assert rms.max() < 0.01, f"{clip}: {rms.max():.4f} IOD"
