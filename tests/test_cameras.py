import numpy as np
import pytest

from corrupt_bench.data.cameras import (
    CAMERA_IDS,
    camera_to_world,
    get_camera,
    load_cameras,
    project,
    undistort,
    world_to_camera,
)
from corrupt_bench.data.skeleton import FLIP_PERMUTATION, H36M17_FROM_RAW, PARENTS, RAW_PARENTS, raw_to_h36m17
from corrupt_bench.errors import UserError


def test_s9_camera_54138969_matches_published_extrinsics():
    cam = get_camera("S9", "54138969")
    expected_r = np.array(
        [[-0.90335, 0.42691, 0.04132], [0.04153, 0.18295, -0.98224], [-0.42689, -0.88559, -0.18300]]
    )
    np.testing.assert_allclose(cam.R, expected_r, atol=1e-4)
    np.testing.assert_allclose(cam.t, [-321.208, 467.135, 5514.330], atol=0.01)


def test_every_subject_has_four_cameras_with_published_resolutions():
    cams = load_cameras()
    for subject in ("S1", "S5", "S6", "S7", "S8", "S9", "S11"):
        for cam_id in CAMERA_IDS:
            cam = cams[(subject, cam_id)]
            expected_h = 1002 if cam_id in ("54138969", "60457274") else 1000
            assert (cam.width, cam.height) == (1000, expected_h)
            np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-6)


def test_world_camera_round_trip_and_opencv_equivalence():
    cam = get_camera("S11", "58860488")
    pts = np.random.default_rng(0).normal(scale=500.0, size=(10, 3))
    x_cam = world_to_camera(pts, cam)
    np.testing.assert_allclose(x_cam, pts @ cam.R.T + cam.t, atol=1e-9)
    np.testing.assert_allclose(camera_to_world(x_cam, cam), pts, atol=1e-9)


def test_projection_matches_videopose3d_formula_written_out():
    cam = get_camera("S1", "55011271")
    x = np.array([[120.0, -340.0, 4500.0], [0.0, 0.0, 3000.0]])
    (fx, fy), (cx, cy) = cam.focal_length, cam.center
    k1, k2, k3 = cam.radial
    p1, p2 = cam.tangential
    for point, uv in zip(x, project(x, cam), strict=True):
        u, v = point[0] / point[2], point[1] / point[2]
        r2 = u * u + v * v
        radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
        tan = p1 * u + p2 * v
        np.testing.assert_allclose(uv, [fx * (u * (radial + tan) + p1 * r2) + cx, fy * (v * (radial + tan) + p2 * r2) + cy])
    # the optical axis lands on the principal point
    np.testing.assert_allclose(project(x[1], cam), cam.center)


def test_scaled_camera_keeps_projection_consistent():
    cam = get_camera("S9", "60457274")
    small = cam.scaled(4)
    assert (small.width, small.height) == (250, 250)
    x = np.array([[100.0, 200.0, 5000.0]])
    np.testing.assert_allclose((project(x, cam) + 0.5) / 4 - 0.5, project(x, small), atol=1e-9)


def test_unknown_camera_is_a_user_error():
    with pytest.raises(UserError, match="no calibration for subject S2"):
        get_camera("S2", "54138969")


def test_skeleton_subset_and_flip():
    assert len(H36M17_FROM_RAW) == 17 and len(RAW_PARENTS) == 32
    assert PARENTS == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert sorted(FLIP_PERMUTATION) == list(range(17))
    assert FLIP_PERMUTATION[1] == 4 and FLIP_PERMUTATION[16] == 13 and FLIP_PERMUTATION[0] == 0
    raw = np.arange(32 * 3, dtype=float).reshape(32, 3)
    np.testing.assert_array_equal(raw_to_h36m17(raw.reshape(96)), raw[list(H36M17_FROM_RAW)])


def test_undistort_inverts_projection():
    cam = get_camera("S5", "54138969")
    pts = np.random.default_rng(1).uniform([-1500, -1000, 3000], [1500, 1000, 7000], size=(50, 3))
    np.testing.assert_allclose(undistort(project(pts, cam), cam), pts[:, :2] / pts[:, 2:], atol=1e-9)
