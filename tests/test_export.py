"""`corrupt-bench export`: a generated keypoint benchmark written in VideoPose3D's and mmpose's files and
loaded back exactly as those projects load them, equal to the benchmark's labels."""

from __future__ import annotations

import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from fixtures_raw import write_raw
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.data.cameras import CAMERA_IDS, load_cameras
from corrupt_bench.data.mmpose_h36m import read_mmpose_cameras
from corrupt_bench.data.skeleton import H36M17_FROM_RAW
from corrupt_bench.data.vp3d_npz import read_keypoints_2d, read_positions_3d

runner = CliRunner()
VP3D_REMOVED = [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]  # VideoPose3D's remove_joints


def _manifest(path: Path, cameras: list[str], subjects: tuple[str, ...] = ("S9", "S11")) -> Path:
    manifest = {
        "name": "kp-export", "version": "1", "paper": "none (test)", "seed": 3, "source": "h36m_raw",
        "subjects": list(subjects), "cameras": cameras, "frame_step": 2,
        "crop": {"mode": "full"}, "output": {"format": "keypoints"},
        "variants": [{"name": "kp", "corruptions": [{"name": "keypoint_jitter", "severities": [2]},
                                                    {"name": "joint_dropout", "severities": [4]},
                                                    {"name": "subframe_desync", "severities": [3]}]}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(manifest))
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    raw = write_raw(root / "raw", {"S9": ["Walking 1", "TakingPhoto 1"], "S11": ["Posing"]}, n_frames=11, videos=False)
    out = root / "bench"
    result = runner.invoke(app, ["generate", str(_manifest(root / "kp.yaml", list(CAMERA_IDS))), "--source", str(raw), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def labels(bench: Path, cell: str, stem: str) -> dict:
    return pq.read_table(bench / cell / "labels" / f"{stem}.parquet").to_pydict()


def per_camera(rows: dict, column: str, shape: tuple[int, ...], camera: str) -> np.ndarray:
    """The rows of one camera, in frame order, as an array of `shape` per row."""
    picked = sorted((f, v) for f, v, c in zip(rows["frame"], rows[column], rows["camera"], strict=True) if c == camera)
    return np.array([np.reshape(v, shape) for _, v in picked], dtype=np.float32)


def test_vp3d_export_loads_as_videopose3d_loads_it(bench, tmp_path):
    out = tmp_path / "vp3d"
    result = runner.invoke(app, ["export", str(bench), "--format", "vp3d", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 cells exported as vp3d" in result.stdout
    assert "is not the public Human3.6M calibration" in result.stderr  # the fixture's cameras are 1/20 size
    files = sorted(p.name for p in (out / "kp").iterdir())
    assert files == ["data_2d_h36m_clean_0.npz", "data_2d_h36m_joint_dropout_4.npz", "data_2d_h36m_keypoint_jitter_2.npz",
                     "data_2d_h36m_subframe_desync_3.npz", "data_3d_h36m.npz"]  # fmt: skip

    for tag, cell in (("keypoint_jitter_2", "kp/keypoint_jitter/2"), ("clean_0", "kp/clean/0"), ("subframe_desync_3", "kp/subframe_desync/3")):
        # exactly VideoPose3D's run.py: np.load(..., allow_pickle=True), then .item() of both members
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy 2 loads the numpy 1.x names without a deprecation warning
            keypoints = np.load(out / "kp" / f"data_2d_h36m_{tag}.npz", allow_pickle=True)
            keypoints_metadata = keypoints["metadata"].item()
            positions_2d = keypoints["positions_2d"].item()
        assert keypoints_metadata == {"layout_name": "h36m", "num_joints": 17,
                                      "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}  # fmt: skip
        kps_left, kps_right = list(keypoints_metadata["keypoints_symmetry"][0]), list(keypoints_metadata["keypoints_symmetry"][1])
        assert kps_left == [4, 5, 6, 11, 12, 13] and kps_right == [1, 2, 3, 14, 15, 16]
        assert sorted(positions_2d) == ["S11", "S9"] and sorted(positions_2d["S9"]) == ["Photo 1", "Walking 1"]
        confidence = keypoints["confidence"].item()
        for subject, action, stem in (("S9", "Walking 1", "S9_Walking 1"), ("S9", "Photo 1", "S9_TakingPhoto 1"), ("S11", "Posing", "S11_Posing")):
            rows = labels(bench, cell, stem)
            views = positions_2d[subject][action]
            assert len(views) == 4
            for v, camera in enumerate(CAMERA_IDS):
                column = "keypoints_2d" if tag == "keypoint_jitter_2" else "joints_2d"
                expected = per_camera(rows, column, (17, 2), camera)
                assert views[v].dtype == np.float32 and views[v].shape == (6, 17, 2)  # frames 0, 2, ..., 10
                np.testing.assert_array_equal(views[v], expected)
                conf = confidence[subject][action][v]
                if tag == "keypoint_jitter_2":
                    np.testing.assert_array_equal(conf, per_camera(rows, "keypoint_conf", (17,), camera))
                else:
                    assert np.all(conf == 1)  # label 2D
        if tag == "subframe_desync_3":  # the desync moved the 2D labels: those are exported
            clean = np.load(out / "kp" / "data_2d_h36m_clean_0.npz", allow_pickle=True)["positions_2d"].item()
            assert np.abs(positions_2d["S9"]["Walking 1"][1] - clean["S9"]["Walking 1"][1]).max() > 0
        assert keypoints["frames"].item()["S9"]["Walking 1"].tolist() == [0, 2, 4, 6, 8, 10]

    # the 3D file, as VideoPose3D's Human36mDataset reads it: positions_3d, then its 15 static joints removed
    positions_3d = np.load(out / "kp" / "data_3d_h36m.npz", allow_pickle=True)["positions_3d"].item()
    kept = [j for j in range(32) if j not in VP3D_REMOVED]
    assert kept == list(H36M17_FROM_RAW)
    for subject, action, stem in (("S9", "Photo 1", "S9_TakingPhoto 1"), ("S11", "Posing", "S11_Posing")):
        poses = positions_3d[subject][action]
        assert poses.dtype == np.float32 and poses.shape == (6, 32, 3)
        world = per_camera(labels(bench, "kp/clean/0", stem), "joints_3d_world", (17, 3), CAMERA_IDS[0])
        np.testing.assert_allclose(poses[:, kept] * 1000.0, world, atol=1e-3)
        # VideoPose3D's own check: every camera's 2D at least as long as the mocap
        for view in np.load(out / "kp" / "data_2d_h36m_clean_0.npz", allow_pickle=True)["positions_2d"].item()[subject][action]:
            assert view.shape[0] >= poses.shape[0]
    # our own reader reads them back, and their pickles name only numpy 1.x-loadable globals
    assert read_keypoints_2d(out / "kp" / "data_2d_h36m_joint_dropout_4.npz").num_joints == 17
    assert set(read_positions_3d(out / "kp" / "data_3d_h36m.npz")) == {"S9", "S11"}
    blob = zipfile.ZipFile(out / "kp" / "data_2d_h36m_clean_0.npz").read("positions_2d.npy")
    globals_named = {arg for op, arg, _ in pickletools.genops(blob[blob.index(b"\x80"):]) if op.name == "GLOBAL"}
    assert globals_named == {"numpy.core.multiarray _reconstruct", "numpy dtype", "numpy ndarray"}
    record = yaml.safe_load((out / "export-vp3d.json").read_text())
    assert record["format"] == "vp3d" and len(record["cells"]) == 4 and record["cells"][0]["corruption"] == "clean"


def test_mmpose_export_loads_as_mmpose_loads_it(bench, tmp_path):
    out = tmp_path / "mm"
    result = runner.invoke(app, ["export", str(bench), "--format", "mmpose", "--out", str(out)])
    assert result.exit_code == 0, result.output
    folder = out / "kp" / "annotation_body3d"
    data = np.load(folder / "h36m_joint_dropout_4.npz")  # mmpose: np.load without pickle
    assert {"imgname", "center", "scale", "part", "S"} <= set(data.files)
    n = 3 * 4 * 6
    assert data["part"].shape == (n, 17, 3) and data["S"].shape == (n, 17, 4) and data["imgname"].shape == (n,)
    for i, imgname in enumerate(data["imgname"]):
        # mmpose's Human36mDataset._parse_h36m_imgname
        subj, rest = Path(imgname).name.split("_", 1)
        action, rest = rest.split(".", 1)
        camera, rest = rest.split("_", 1)
        frame = int(rest.removesuffix(".jpg")) - 1
        assert camera in CAMERA_IDS and frame == data["frame"][i]
        stem = f"{subj}_{action.replace('_', ' ')}"
        rows = labels(bench, "kp/joint_dropout/4", stem)
        row = next(j for j, (c, f) in enumerate(zip(rows["camera"], rows["frame"], strict=True)) if c == camera and f == frame)
        np.testing.assert_array_equal(data["part"][i, :, :2], np.reshape(rows["keypoints_2d"][row], (17, 2)))
        np.testing.assert_array_equal(data["part"][i, :, 2], rows["keypoint_conf"][row])
        np.testing.assert_allclose(data["S"][i, :, :3] * 1000.0, np.reshape(rows["joints_3d_cam"][row], (17, 3)), atol=1e-3)
        assert data["occluded"][i].tolist() == rows["occluded"][row]
    cameras = read_mmpose_cameras(folder / "cameras.pkl")
    ours = load_cameras(bench)
    assert set(cameras) == {key for key in ours if key[0] in ("S9", "S11")}
    for key, cam in cameras.items():
        mine = ours[key]
        assert (cam.focal_length, cam.center, cam.radial, cam.tangential, cam.width, cam.height) == (
            mine.focal_length, mine.center, mine.radial, mine.tangential, mine.width, mine.height)
        np.testing.assert_allclose(cam.R, mine.R, atol=1e-12)
        np.testing.assert_allclose(cam.position, mine.position, atol=1e-9)
    with open(folder / "cameras.pkl", "rb") as handle:  # as mmpose reads it: plain lists, no numpy global
        plain = pickle.load(handle)
    assert np.asarray(plain[("S9", "54138969")]["R"]).shape == (3, 3) and np.asarray(plain[("S9", "54138969")]["T"]).shape == (3, 1)


def _detections(run: Path, key: str, cell: str, bench: Path, shift: float, drop_row: bool = False) -> None:
    for path in sorted((bench / cell / "labels").glob("*.parquet")):
        rows = pq.read_table(path).to_pydict()
        keep = range(len(rows["frame"]) - (1 if drop_row else 0))
        table = pa.table({
            "camera": [rows["camera"][i] for i in keep], "frame": [rows["frame"][i] for i in keep],
            "keypoints_2d": [[v + shift for v in rows["joints_2d"][i]] for i in keep],
            "keypoint_conf": [[0.5] * 17 for _ in keep],
        })  # fmt: skip
        target = run / "detections" / key / cell / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)


def test_export_from_a_run_uses_its_detections(bench, tmp_path):
    run = tmp_path / "run"
    _detections(run, "det-abc", "kp/subframe_desync/3", bench, 1.5)
    out = tmp_path / "from-run"
    result = runner.invoke(app, ["export", str(bench), "--format", "vp3d", "--out", str(out), "--from-run", str(run)])
    assert result.exit_code == 0, result.output
    assert "1 cells exported" in result.stdout
    assert "kp/clean/0: no detections for 3 of 3 sequences" in result.stderr
    keypoints = np.load(out / "kp" / "data_2d_h36m_subframe_desync_3.npz", allow_pickle=True)
    rows = labels(bench, "kp/subframe_desync/3", "S9_Walking 1")
    np.testing.assert_allclose(keypoints["positions_2d"].item()["S9"]["Walking 1"][2],
                               per_camera(rows, "joints_2d", (17, 2), CAMERA_IDS[2]) + 1.5, atol=1e-4)  # fmt: skip
    assert np.all(keypoints["confidence"].item()["S9"]["Walking 1"][2] == 0.5)
    assert (out / "kp" / "data_3d_h36m.npz").is_file()
    # two detectors: one must be chosen
    _detections(run, "det-xyz", "kp/subframe_desync/3", bench, 0.0, drop_row=True)
    result = runner.invoke(app, ["export", str(bench), "--format", "vp3d", "--out", str(out), "--from-run", str(run)])
    assert result.exit_code == 2 and "choose one with --detector (det-abc, det-xyz)" in result.stderr
    result = runner.invoke(app, ["export", str(bench), "--format", "vp3d", "--out", str(out), "--from-run", str(run), "--detector", "det-xyz"])
    assert result.exit_code == 2 and "no detection for camera 60457274 frame 10 (the labels have it)" in result.stderr


def test_export_faults_are_one_line_errors(bench, tmp_path):
    def fails(args: list[str], message: str) -> None:
        result = runner.invoke(app, ["export", *args])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines()[-1].startswith("error: ") and message in result.stderr
        assert "Traceback" not in result.output

    fails([str(tmp_path), "--format", "vp3d", "--out", str(tmp_path / "o")], "not a generated benchmark (no lock.json)")
    fails([str(bench), "--format", "h5", "--out", str(tmp_path / "o")], "unknown export format 'h5'; allowed: vp3d, mmpose")
    fails([str(bench), "--format", "vp3d", "--out", str(tmp_path / "o"), "--from-run", str(tmp_path)], "no cached detections")


def test_vp3d_needs_the_four_human36m_cameras(tmp_path):
    raw = write_raw(tmp_path / "raw", {"S9": ["Walking 1"]}, n_frames=5, videos=False)
    out = tmp_path / "bench"
    result = runner.invoke(app, ["generate", str(_manifest(tmp_path / "two.yaml", ["54138969", "60457274"], ("S9",))), "--source", str(raw), "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(out), "--format", "vp3d", "--out", str(tmp_path / "v")])
    assert result.exit_code == 2 and "VideoPose3D's files hold the four Human3.6M cameras" in result.stderr
    assert not (tmp_path / "v").exists()  # refused before anything is written
    result = runner.invoke(app, ["export", str(out), "--format", "mmpose", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "m" / "kp" / "annotation_body3d" / "h36m_clean_0.npz")["part"].shape == (2 * 3, 17, 3)


def test_dropped_views_and_keypoints_in_label_files(tmp_path):
    """Label files written row by row (tests/fixtures_bench.py): a dropped view exports confidence 0 for
    each of its joints; a keypoint cell exports its keypoints and their confidences."""
    from fixtures_bench import generated_benchmark, raw_source

    from corrupt_bench.generate.export import read_sequence

    bench = generated_benchmark(tmp_path / "b", raw_source(tmp_path / "raw", n_frames=4), {"kp_noise": [2], "view_drop": [1]})
    seq = read_sequence(bench / "demo" / "view_drop" / "1" / "labels" / "S9_Walking 1.parquet")
    assert seq.cameras == CAMERA_IDS and seq.frames.tolist() == [0, 1, 2, 3]
    assert seq.view_valid[:3].all() and not seq.view_valid[3].any()
    assert np.all(seq.confidence[3] == 0) and np.all(seq.confidence[:3] == 1)
    assert seq.occluded[:, :, 11:].all() and not seq.occluded[:, :, :11].any()
    np.testing.assert_array_equal(seq.keypoints, seq.joints_2d)
    noisy = read_sequence(bench / "demo" / "kp_noise" / "2" / "labels" / "S9_Walking 1.parquet")
    assert np.abs(noisy.keypoints - noisy.joints_2d).max() > 0 and np.all(noisy.confidence == 1.0)
