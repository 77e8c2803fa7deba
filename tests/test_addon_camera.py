"""Acceptance (issue 15 item 4): a keyed dolly + pan in Blender yields plates whose rendered head follows the
camera. Real ``emogene serve`` (default subject), real bpy in its own process, 96x96 plates.

Measure: the head's position in each plate is the mean-shift centre of the plate's alpha in a head-sized
window (0.1 m radius at the head's depth), an image feature that does not depend on our prediction. The
prediction is our projection, through each frame's camera, of one point fixed to the head: the take's head
Empty (which stands on the anchor and moves with the generated head pose). That point's 3 coordinates are
fitted over all frames; every frame must land within 1 px. A backend that ignored the animation (every plate
through the first frame's camera) is scored the same way as the control the measure must reject.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from blender.support import Backend, build_test_zip, run_scenario

pytestmark = pytest.mark.bpy
FRAMES = 6
HEAD_RADIUS_M = 0.10


@pytest.fixture(scope="module", params=["bpy", pytest.param("bpy45", marks=pytest.mark.slow)])
def take(request, tmp_path_factory, shared_data):
    """The scenario's output on bpy 5.0 (the venv's), and on bpy 4.5 LTS with the slow tests."""
    from blender.support import PYTHON, bpy45_python
    python = PYTHON if request.param == "bpy" else bpy45_python()
    if python is None:
        pytest.skip("no bpy 4.5 environment (scripts/setup_bpy45.sh)")
    work = tmp_path_factory.mktemp("camera")
    backend = Backend(work)
    try:
        if not backend.welcome["capabilities"]["plates"] or "default" not in backend.welcome["subjects"]:
            pytest.skip("this backend renders no plates of the default subject")
        return run_scenario("scenario_camera", build_test_zip(work / "zip"), backend.address,
                            shared_data / "speech" / "eng_60s.wav", work / "out", FRAMES, user_dir=work / "user",
                            timeout=900, python=python)
    finally:
        backend.stop()


def _cameras(take: dict) -> list:
    """Each frame's pinhole camera in anchor space, through our one Blender-camera conversion."""
    from backend.render.camera import blender_camera_to_pinhole
    from bridge.camera import CameraSpec
    cameras = []
    for frame in take["frames"]:
        anchor_from_camera = np.linalg.inv(np.array(frame["anchor"])) @ np.array(frame["camera"])
        spec = CameraSpec(frame["lens"], *frame["sensor"], "AUTO", tuple(take["size"]),
                          anchor_from_camera=anchor_from_camera)
        cameras.append(blender_camera_to_pinhole(spec, np.eye(4)))
    return cameras


def _head_points(take: dict, local: np.ndarray) -> np.ndarray:
    """The head-fixed point ``local`` in anchor space at each frame."""
    return np.array([(np.linalg.inv(np.array(f["anchor"])) @ np.array(f["head"]) @ np.r_[local, 1.0])[:3]
                     for f in take["frames"]])


def _alpha(path: str) -> np.ndarray:
    import cv2
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape[2] == 4, path
    return image[..., 3].astype(np.float64) / 255.0


def _mean_shift(alpha: np.ndarray, start: np.ndarray, radius: float) -> np.ndarray:
    """The alpha mass centre of a disc of ``radius`` px, moved onto its own centre until it settles."""
    ys, xs = np.mgrid[0:alpha.shape[0], 0:alpha.shape[1]] + 0.5
    centre = np.asarray(start, np.float64)
    for _ in range(100):
        inside = alpha * (((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) <= radius ** 2)
        new = np.array([(inside * xs).sum(), (inside * ys).sum()]) / inside.sum()
        if np.abs(new - centre).max() < 1e-6:
            break
        centre = new
    return centre


def _fit(cameras: list, take: dict, measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The head-fixed point whose projections best match ``measured`` [F, 2]; returns it and the per-frame
    pixel distances (Gauss-Newton, numeric Jacobian)."""
    def residual(local):
        points = _head_points(take, local)
        return np.concatenate([cam.project(p[None])[0][0] - m for cam, p, m in zip(cameras, points, measured)])

    local = np.zeros(3)
    for _ in range(30):
        r = residual(local)
        jac = np.stack([(residual(local + d) - r) / 1e-5 for d in np.eye(3) * 1e-5], axis=1)
        step = np.linalg.lstsq(jac, -r, rcond=None)[0]
        local = local + step
        if np.abs(step).max() < 1e-9:
            break
    return local, np.linalg.norm(residual(local).reshape(-1, 2), axis=1)


def test_plates_follow_an_animated_camera_within_one_pixel(take):
    cameras = _cameras(take)
    frames = take["frames"]
    assert len(take["plates"]) == FRAMES == len(frames)
    # our conversion projects the anchor and the head exactly where bpy does
    for cam, frame, head in zip(cameras, frames, _head_points(take, np.zeros(3))):
        ours = cam.project(np.array([[0.0, 0.0, 0.0], head]))[0]
        bpy_px = np.array([frame["bpy_projection"]["anchor"][:2], frame["bpy_projection"]["head"][:2]])
        np.testing.assert_allclose(ours, bpy_px, atol=0.01)
    anchor_px = np.array([f["bpy_projection"]["anchor"][:2] for f in frames])
    travel = float(np.linalg.norm(anchor_px[-1] - anchor_px[0]))
    depth = np.array([f["bpy_projection"]["head"][2] for f in frames])
    radius = HEAD_RADIUS_M * np.array([cam.fx for cam in cameras]) / depth
    measured = np.array([_mean_shift(_alpha(path), np.array(f["bpy_projection"]["head"][:2]), r)
                         for path, f, r in zip(take["plates"], frames, radius)])
    local, error = _fit(cameras, take, measured)
    # the control: a backend that rendered every plate through the first frame's camera
    _, still_error = _fit(cameras, take, np.repeat(measured[:1], FRAMES, axis=0))
    report = {"anchor_travel_px": round(travel, 2), "head_scale": round(float(radius[-1] / radius[0]), 3),
              "error_px": error.round(3).tolist(), "still_camera_error_px": still_error.round(2).tolist(),
              "head_point_m": local.round(4).tolist()}
    print("camera follow:", json.dumps(report))
    assert travel > 8.0 and radius[-1] / radius[0] > 1.2, report   # the camera really moved (pan + dolly)
    assert still_error.max() > 3.0, report                          # the measure tells a still camera apart
    assert error.max() < 1.0, report
