import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from corrupt_bench.data.cameras import (
    CAMERA_IDS,
    Camera,
    camera_to_world,
    get_camera,
    load_cameras,
    matrix_to_quaternion,
    opencv_camera,
    project,
    project_world,
    quaternion_to_matrix,
    read_calibration_toml,
    undistort,
    world_to_camera,
    write_camera_file,
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


# --- an independent Human3.6M calibration: karfly/human36m-camera-parameters (MIT) ---------------

FIXTURES = Path(__file__).parent / "fixtures"
needs_tomllib = pytest.mark.skipif(sys.version_info < (3, 11), reason="the .toml calibration reader needs Python 3.11 (tomllib)")


def project_point_radial(points, R, T, f, c, k, p):  # noqa: N803 - Human3.6M's names
    """Human3.6M's own ProjectPointRadial (its Matlab code), written out: R world -> camera, T the camera
    centre (mm), f, c, k = (k1, k2, k3) and p = (p1, p2) in the dataset metadata's order."""
    x = (points - T) @ R.T
    xx = x[:, :2] / x[:, 2:]
    r2 = np.sum(xx**2, axis=1)
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = p[0] * xx[:, 1] + p[1] * xx[:, 0]
    xxx = xx * (radial + tan)[:, None] + np.outer(r2, [p[1], p[0]])
    return xxx * f + c


def karfly_camera(subject: str, camera_id: str) -> Camera:
    """karfly's fields mapped onto the VideoPose3D model: f = (K00, K11), c = (K02, K12); distortion
    [k1, k2, p1, p2, k3] -> radial (k1, k2, k3) and tangential (p2, p1) (VideoPose3D stores the
    metadata's pair swapped); R is world -> camera and t = -R C in mm, so the centre is -R^T t (mm)."""
    data = json.loads((FIXTURES / "karfly-h36m" / "camera-parameters.json").read_text())
    intr, ext = data["intrinsics"][camera_id], data["extrinsics"][subject][camera_id]
    K, (k1, k2, p1, p2, k3) = np.array(intr["calibration_matrix"]), intr["distortion"]  # noqa: N806
    R, t = np.array(ext["R"]), np.array(ext["t"]).reshape(3)  # noqa: N806
    builtin = get_camera(subject, camera_id)
    return Camera(subject, camera_id, (K[0, 0], K[1, 1]), (K[0, 2], K[1, 2]), (k1, k2, k3), (p2, p1),
                  builtin.width, builtin.height, tuple(matrix_to_quaternion(R.T)), tuple(-R.T @ t))  # fmt: skip


def test_builtin_cameras_reproject_like_karfly_within_a_thousandth_of_a_pixel():
    data = json.loads((FIXTURES / "karfly-h36m" / "camera-parameters.json").read_text())
    rng = np.random.default_rng(7)
    worst = 0.0
    for (subject, camera_id), cam in sorted(load_cameras().items()):
        # a person-sized volume around the capture centre, in front of every camera
        points = rng.uniform([-1500.0, -1500.0, 0.0], [1500.0, 1500.0, 1900.0], size=(200, 3))
        intr, ext = data["intrinsics"][camera_id], data["extrinsics"][subject][camera_id]
        K, dist = np.array(intr["calibration_matrix"]), intr["distortion"]  # noqa: N806
        R, t = np.array(ext["R"]), np.array(ext["t"]).reshape(3)  # noqa: N806
        theirs = project_point_radial(points, R, -R.T @ t, K[[0, 1], [0, 1]], K[:2, 2], [dist[0], dist[1], dist[4]], dist[2:4])
        ours = project_world(points, cam)
        assert np.all(np.abs(ours - [cam.width / 2, cam.height / 2]) < 2000)  # the points are in view, roughly
        worst = max(worst, float(np.abs(ours - theirs).max()))
        np.testing.assert_allclose(project_world(points, karfly_camera(subject, camera_id)), theirs, atol=1e-9)
    assert worst < 1e-3, worst
    # the mapping matters: the metadata's pair taken in VideoPose3D's order is off by far more
    cam = get_camera("S9", "54138969")
    swapped = Camera(**{**cam.__dict__, "tangential": cam.tangential[::-1]})
    points = np.array([[-1400.0, 1200.0, 1800.0]])
    assert np.abs(project_world(points, swapped) - project_world(points, cam)).max() > 0.05


# --- OpenCV's model and calibration files of other rigs ------------------------------------------


def test_opencv_model_matches_opencv():
    rng = np.random.default_rng(2)
    K = np.array([[1500.0, 0.0, 530.0], [0.0, 1490.0, 960.0], [0.0, 0.0, 1.0]])  # noqa: N806
    dist = (-0.21, 0.18, 0.004, -0.003, -0.05)
    rvec, tvec = np.array([0.3, -1.9, 0.4]), np.array([120.0, -300.0, 4200.0])
    cam = opencv_camera("cam01", K, dist, cv2.Rodrigues(rvec)[0], tvec, 1080, 1920)
    assert cam.distortion_model == "opencv"
    world = rng.uniform(-1000.0, 1000.0, size=(300, 3))
    expected = cv2.projectPoints(world, rvec, tvec, K, np.array(dist))[0].reshape(-1, 2)
    np.testing.assert_allclose(project_world(world, cam), expected, atol=1e-6)
    normalised = undistort(expected, cam)
    cam_pts = world_to_camera(world, cam)
    np.testing.assert_allclose(normalised, cam_pts[:, :2] / cam_pts[:, 2:], atol=1e-9)
    ocv = cv2.undistortPoints(expected.reshape(-1, 1, 2), K, np.array(dist), criteria=(3, 50, 1e-12)).reshape(-1, 2)
    np.testing.assert_allclose(normalised, ocv, atol=1e-6)
    # the same numbers read as the VideoPose3D model project elsewhere: the models differ
    h36m = Camera(**{**cam.__dict__, "distortion_model": "h36m"})
    assert np.abs(project_world(world, h36m) - expected).max() > 1.0


def test_quaternion_round_trip_on_every_branch():
    rng = np.random.default_rng(3)
    for rvec in [*rng.normal(0, 2.0, size=(50, 3)), [np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi], [0, 0, 0]]:
        R = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))[0]  # noqa: N806
        np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(R)), R, atol=1e-12)


@needs_tomllib
def test_pose2sim_calibration_toml():
    cams = read_calibration_toml(FIXTURES / "pose2sim" / "calibration" / "Calib_qualisys.toml", "m")
    assert list(cams) == ["cam01", "cam02", "cam03", "cam04"]
    cam = cams["cam01"]
    assert (cam.width, cam.height, cam.distortion_model, cam.subject) == (1088, 1920, "opencv", "")
    np.testing.assert_allclose(cam.K, [[1681.244873046875, 0, 532.97369384375], [0, 1681.075439453125, 948.137390140625], [0, 0, 1]])
    assert cam.radial == (-0.000721609375, 0.002187234375, 0.0) and cam.tangential == (9.5e-06, 1.078125e-05)
    # independent check: the camera centres are the Qualisys file's positions (mm); pose2sim's
    # conversion turned the camera about its own x axis, which leaves the centre where it is
    qca = ET.parse(FIXTURES / "pose2sim" / "calibration" / "Calib.qca.txt").getroot()
    for element in qca.iter("camera"):
        transform = element.find("transform").attrib
        centre = [float(transform[k]) for k in ("x", "y", "z")]
        np.testing.assert_allclose(cams[element.attrib["serial"]].position, centre, atol=1e-6)
    # the middle of the capture volume (1 m above the world origin) is in every image
    for cam in cams.values():
        u, v = project_world(np.array([0.0, 0.0, 1000.0]), cam)
        assert 0 < u < cam.width and 0 < v < cam.height
    in_mm = read_calibration_toml(FIXTURES / "pose2sim" / "calibration" / "Calib_qualisys.toml", "mm")
    np.testing.assert_allclose(np.asarray(in_mm["cam02"].position) * 1000.0, cams["cam02"].position)


@needs_tomllib
def test_opencv_cameras_round_trip_through_the_camera_file(tmp_path):
    cams = read_calibration_toml(FIXTURES / "pose2sim" / "calibration" / "Calib_qualisys.toml", "m")
    write_camera_file({("P1", c.camera_id): replace(c, subject="P1") for c in cams.values()}, tmp_path / "cameras.json")
    back = load_cameras(tmp_path)
    assert back[("P1", "cam03")] == replace(cams["cam03"], subject="P1")
    # Human3.6M cameras keep their JSON exactly (no model key): their files and digests do not change
    assert "distortion_model" not in get_camera("S1", "54138969").to_json()
    assert json.loads((tmp_path / "cameras.json").read_text())["intrinsics"]["cam03"]["distortion_model"] == "opencv"


TOML_CAMERA = """[cam01]
name = "cam01"
size = [ 1088.0, 1920.0]
matrix = [ [ 1681.2, 0.0, 532.9], [ 0.0, 1681.0, 948.1], [ 0.0, 0.0, 1.0]]
distortions = [ -0.0007, 0.0021, 9.5e-06, 1.0e-05]
rotation = [ 1.68, 1.04, -0.41]
translation = [ 0.32, 0.95, 2.89]
fisheye = false
"""


@needs_tomllib
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("fisheye = false", "fisheye = true"), r"\[cam01\]: fisheye = True; only the pinhole model"),
        (("fisheye = false", "fisheye = false\nskew = 0"), r"\[cam01\]: unknown key 'skew'"),
        (("rotation = [ 1.68, 1.04, -0.41]\n", ""), r"\[cam01\]: no 'rotation'"),
        (("9.5e-06, 1.0e-05]", "9.5e-06, 1.0e-05, 0, 0, 0]"), r"distortions must be \[k1, k2, p1, p2\]"),
        (("[ 1681.2, 0.0, 532.9]", "[ 1681.2, 2.0, 532.9]"), r"matrix must be \[\[fx, 0, cx\]"),
        (("[ 1088.0, 1920.0]", '[ "1088", 1920.0]'), r"size must hold numbers, found str"),
        (("[ 1088.0, 1920.0]", "[ 1088.5, 1920.0]"), "size must be two positive whole numbers"),
        (("[ 0.32, 0.95, 2.89]", "[ 0.32, 0.95]"), r"translation must be an array of shape \(3,\), found shape \(2,\)"),
        (("[ 0.32, 0.95, 2.89]", "[ 0.32, nan, 2.89]"), "translation holds NaN"),
        (('name = "cam01"', 'name = "cam.01"'), "name 'cam.01' must be letters, digits"),
        (("[cam01]", "cam01 = 3\n[x]"), r"\[cam01\] must be a table"),
        (("fisheye = false\n", 'fisheye = false\n[cam02]\nname = "cam01"\n' + TOML_CAMERA.split("\n", 2)[2]), "camera name 'cam01' is used twice"),
        (("size = [", "size = [[["), "not valid TOML"),
    ],
)
def test_calibration_toml_faults_are_one_line_errors(tmp_path, edit, message):
    path = tmp_path / "calib.toml"
    path.write_text(TOML_CAMERA.replace(*edit, 1))
    with pytest.raises(UserError, match=message) as err:
        read_calibration_toml(path, "m")
    assert err.value.path == path and "\n" not in str(err.value)


@needs_tomllib
def test_calibration_toml_units_and_emptiness(tmp_path):
    path = tmp_path / "calib.toml"
    path.write_text("[metadata]\nadjusted = false\n")
    with pytest.raises(UserError, match="holds no camera table"):
        read_calibration_toml(path, "m")
    with pytest.raises(UserError, match="calibration units 'cm'; allowed: mm, m"):
        read_calibration_toml(path, "cm")
    with pytest.raises(UserError, match="cannot read calibration file"):
        read_calibration_toml(tmp_path / "none.toml", "m")
