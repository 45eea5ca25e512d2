"""A generic calibrated rig as a source: the pose2sim demo fixture (4 cameras, 60 fps, H.264 and VP9,
1080 and 1088 px wide) read through its rig.yaml, with and without 3D ground truth."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from corrupt_bench.data.cameras import read_calibration_toml
from corrupt_bench.data.multiview import MultiViewRig, is_rig, read_rig
from corrupt_bench.errors import UserError

POSE2SIM = Path(__file__).parent / "fixtures" / "pose2sim"
tomllib = pytest.importorskip("tomllib", reason="the .toml calibration reader needs Python 3.11 (tomllib)")


@pytest.fixture
def rig(tmp_path) -> Path:
    """A writable copy of the pose2sim fixture."""
    return Path(shutil.copytree(POSE2SIM, tmp_path / "rig"))


def edit_rig(root: Path, change) -> None:
    data = yaml.safe_load((root / "rig.yaml").read_text())
    change(data)
    (root / "rig.yaml").write_text(yaml.safe_dump(data))


def test_the_pose2sim_demo_as_a_rig():
    source = MultiViewRig(POSE2SIM)
    assert is_rig(POSE2SIM) and is_rig(POSE2SIM / "rig.yaml") and not is_rig(POSE2SIM / "videos")
    (seq,) = source.sequences()
    assert (seq.subject, seq.sequence, seq.action, seq.subaction) == ("P1", "demo", "demo", 1)
    assert seq.cameras == ("cam01", "cam02", "cam03", "cam04") and seq.n_frames == 13
    assert seq.fps == source.fps(seq) == 60.0 and not source.has_ground_truth(seq) and source.has_images
    sizes = {c: (source.camera("P1", c).width, source.camera("P1", c).height) for c in seq.cameras}
    assert sizes == {"cam01": (1080, 1920), "cam02": (1080, 1920), "cam03": (1088, 1920), "cam04": (1088, 1920)}
    assert source.problems() == [
        "P1 demo camera cam01: video is 1080x1920, calibration 1088x1920 (intrinsics used as given)",
        "P1 demo camera cam02: video is 1080x1920, calibration 1088x1920 (intrinsics used as given)",
    ]
    calibration = read_calibration_toml(POSE2SIM / "calibration" / "Calib_qualisys.toml", "m")
    assert source.camera("P1", "cam02").K.tolist() == calibration["cam02"].K.tolist()
    assert source.camera("P1", "cam02").subject == "P1" and source.camera("P1", "cam02").distortion_model == "opencv"
    with source.video(seq, "cam02") as video:  # the VP9 one, with an audio track beside it
        assert (video.width, video.height, video.fps, video.n_frames) == (1080, 1920, 60.0, 13)
        last = video.frame(12)
        assert last.shape == (1920, 1080, 3) and last.std() > 10
    with pytest.raises(UserError, match="P1 demo has no ground_truth in the rig file"):
        source.poses_world(seq)
    with pytest.raises(UserError, match="P1 demo has no ground_truth"):
        source.poses_2d(seq, "cam01")


def test_ground_truth_is_projected_with_the_opencv_model(rig):
    rng = np.random.default_rng(0)
    positions = rng.uniform([-400.0, -400.0, 0.0], [400.0, 400.0, 1800.0], size=(20, 21, 3))
    joint_map = [20 - j for j in range(17)]
    np.savez(rig / "truth.npz", positions=positions)
    edit_rig(rig, lambda d: d["sequences"][0].update(ground_truth={"file": "truth.npz", "joint_map": joint_map}))
    source = MultiViewRig(rig)
    (seq,) = source.sequences()
    assert source.has_ground_truth(seq) and seq.n_frames == 13  # the ground truth is longer: cut to the videos
    world = source.poses_world(seq)
    np.testing.assert_array_equal(world, positions[:13, joint_map])
    # the same through OpenCV itself, from the calibration file's own numbers (t in metres -> mm)
    toml = tomllib.loads((rig / "calibration" / "Calib_qualisys.toml").read_text())["cam03"]
    expected, _ = cv2.projectPoints(world.reshape(-1, 3), np.array(toml["rotation"]), np.array(toml["translation"]) * 1000.0,
                                    np.array(toml["matrix"]), np.array(toml["distortions"]))  # fmt: skip
    np.testing.assert_allclose(source.poses_2d(seq, "cam03"), expected.reshape(13, 17, 2), atol=1e-6)
    assert source.poses_cam(seq, "cam03")[..., 2].min() > 0  # in front of the camera

    np.savez(rig / "truth.npz", positions=positions[:9, :17])
    edit_rig(rig, lambda d: d["sequences"][0]["ground_truth"].pop("joint_map"))
    source = MultiViewRig(rig)
    assert source.sequences()[0].n_frames == 9
    assert "P1 demo: ground truth has 9 frames, the videos 13: cut to 9" in source.problems()
    assert "P1 demo camera cam04: video has 13 frames, the sequence 9: cut" in source.problems()
    with source.video(source.sequences()[0], "cam04") as video:
        assert video.n_frames == 9 and video.frame_count == 13


def _write_video(path: Path, size: tuple[int, int], fps: float, n: int = 3) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    writer.release()


RIG_FAULTS = {
    "unknown key": (lambda d: d.update(cameras=["cam01"]), "unknown key 'cameras'"),
    "no calibration": (lambda d: d.pop("calibration"), "key 'calibration' is required"),
    "units": (lambda d: d["calibration"].update(units="cm"), "key 'calibration.units'"),
    "version": (lambda d: d.update(rig=2), "key 'rig'"),
    "subject with _": (lambda d: d["sequences"][0].update(subject="P_1"), "key 'sequences.0.subject'"),
    "number as subject": (lambda d: d["sequences"][0].update(subject=1), "key 'sequences.0.subject'"),
    "no videos": (lambda d: d["sequences"][0].update(videos={}), "key 'sequences.0.videos'"),
    "camera id": (lambda d: d["sequences"][0]["videos"].update({"cam.5": "videos/cam01.mp4"}), "camera id 'cam.5' must be"),
    "uncalibrated camera": (lambda d: d["sequences"][0]["videos"].update(cam05="videos/cam01.mp4"), "camera cam05 is not in the calibration"),
    "escape": (lambda d: d["sequences"][0]["videos"].update(cam01="../../x.mp4"), "would leave"),
    "absolute": (lambda d: d["sequences"][0]["videos"].update(cam01="/etc/passwd"), "must be a path relative to the rig folder"),
    "missing video": (lambda d: d["sequences"][0]["videos"].update(cam01="videos/none.mp4"), "sequences.0.videos.cam01: file not found"),
    "twice": (lambda d: d["sequences"].append(copy.deepcopy(d["sequences"][0])), "P1 demo is listed twice"),
    "short joint map": (lambda d: d["sequences"][0].update(ground_truth={"file": "x.npz", "joint_map": [0, 1]}), "key 'sequences.0.ground_truth.joint_map'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(RIG_FAULTS))
def test_rig_file_faults_are_one_line_errors(rig, case):
    change, message = RIG_FAULTS[case]
    edit_rig(rig, change)
    with pytest.raises(UserError, match=message) as err:
        MultiViewRig(rig)
    assert "\n" not in str(err.value)


def test_yaml_aliases_and_non_mappings_are_refused(rig):
    (rig / "rig.yaml").write_text("a: &x [1, 2]\nb: *x\n")
    with pytest.raises(UserError, match=r"YAML anchor '&x' is not allowed \(anchors and aliases are refused\)"):
        read_rig(rig)
    (rig / "rig.yaml").write_text("- 1\n")
    with pytest.raises(UserError, match="must be a YAML mapping"):
        read_rig(rig)
    (rig / "rig.yaml").write_text("rig: [1\n")
    with pytest.raises(UserError, match="invalid YAML at line"):
        read_rig(rig)
    (rig / "rig.yaml").unlink()
    with pytest.raises(UserError, match="no rig.yaml"):
        read_rig(rig)


def test_videos_that_do_not_fit_their_calibration(rig):
    _write_video(rig / "videos" / "small.mp4", (64, 48), 60.0)
    edit_rig(rig, lambda d: d["sequences"][0]["videos"].update(cam01="videos/small.mp4"))
    with pytest.raises(UserError, match="video is 64x48 but camera cam01 is calibrated at 1088x1920: rescale the intrinsics"):
        MultiViewRig(rig)
    _write_video(rig / "videos" / "slow.mp4", (1088, 1920), 30.0)
    edit_rig(rig, lambda d: d["sequences"][0]["videos"].update(cam01="videos/slow.mp4"))
    with pytest.raises(UserError, match=r"have different frame rates \(cam01 30, cam02 60, cam03 60, cam04 60\)"):
        MultiViewRig(rig)


@pytest.mark.parametrize(
    ("arrays", "joint_map", "message"),
    [
        ({"joints": np.zeros((5, 17, 3))}, None, "no 'positions' array \\(found: joints\\)"),
        ({"positions": np.full((5, 17, 3), np.nan)}, None, "holds NaN"),
        ({"positions": np.zeros((5, 17, 2))}, None, "expected \\(frames, joints, 3\\)"),
        ({"positions": np.zeros((5, 20, 3))}, None, "has 20 joints: give a joint_map"),
        ({"positions": np.zeros((5, 10, 3))}, list(range(17)), "joint_map points past the 10 joints"),
    ],
)
def test_ground_truth_faults(rig, arrays, joint_map, message):
    np.savez(rig / "truth.npz", **arrays)
    spec = {"file": "truth.npz"} | ({"joint_map": joint_map} if joint_map else {})
    edit_rig(rig, lambda d: d["sequences"][0].update(ground_truth=spec))
    with pytest.raises(UserError, match=message) as err:
        MultiViewRig(rig)
    assert err.value.path == rig / "truth.npz"


def test_subject_selection(rig):
    assert [r.subject for r in MultiViewRig(rig, subjects=["P1"]).sequences()] == ["P1"]
    with pytest.raises(UserError, match="no sequence of subject S9 \\(found: P1\\)"):
        MultiViewRig(rig, subjects=["S9"])
