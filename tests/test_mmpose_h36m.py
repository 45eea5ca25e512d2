"""mmpose's processed Human3.6M layout as a source: a raw fixture written in that layout reads back the
same labels for the same frames as the raw reader gives; mmpose's real cameras.pkl matches the
built-in calibration."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_mmpose import write_mmpose
from fixtures_raw import write_raw

from corrupt_bench.data.cameras import CAMERA_IDS, get_camera, project_world
from corrupt_bench.data.mmpose_h36m import MmposeH36M, image_name, parse_image_name, read_mmpose_cameras
from corrupt_bench.data.raw import RawH36M
from corrupt_bench.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"
SEQUENCES = {"S9": ["Eating 2", "Greeting 2", "Walking 1"], "S11": ["Directions"], "S1": ["TakingPhoto 1"]}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return write_raw(tmp_path_factory.mktemp("raw"), SEQUENCES, n_frames=12)


@pytest.fixture(scope="module")
def every_frame(raw, tmp_path_factory) -> Path:
    return write_mmpose(raw, tmp_path_factory.mktemp("mmpose50"), sample_rate=1)


def test_same_labels_as_the_raw_reader_for_every_frame(raw, every_frame):
    source, reference = MmposeH36M(every_frame), RawH36M(raw)
    assert source.annotation_dir.name == "fps50" and source.has_images
    assert source.sequences() == reference.sequences()  # same ids, actions, subactions, cameras, frames, fps
    assert {r.sequence for r in source.sequences()} == {"Eating 2", "Walking 1", "Directions", "TakingPhoto 1"}
    assert any("S9 Greeting 2: damaged mocap, excluded" in p for p in source.problems())
    assert any("S11 Directions camera 54138969: corrupt video" in p for p in source.problems())
    for ref in reference.sequences():
        assert source.fps(ref) == 50.0 and source.frames(ref).tolist() == list(range(ref.n_frames))
        np.testing.assert_allclose(source.poses_world(ref), reference.poses_world(ref), atol=1e-3)  # CDFs hold float32
        for camera_id in ref.cameras:
            np.testing.assert_array_equal(source.poses_2d(ref, camera_id), reference.poses_2d(ref, camera_id))
            np.testing.assert_allclose(source.poses_cam(ref, camera_id), reference.poses_cam(ref, camera_id), atol=1e-3)
            cam = source.camera(ref.subject, camera_id)
            np.testing.assert_allclose(project_world(source.poses_world(ref), cam), reference.poses_2d(ref, camera_id), atol=1e-3)
            with source.video(ref, camera_id) as frames, reference.video(ref, camera_id) as video:
                assert (frames.n_frames, frames.width, frames.height, frames.fps) == (video.n_frames, video.width, video.height, 50.0)
                for f in (0, 7, 11):  # JPEG of the decoded frame: close to it, not equal
                    assert np.abs(frames.frame(f).astype(int) - video.frame(f).astype(int)).mean() < 6.0
    assert not [p for p in source.problems() if "mm from camera" in p]


def test_every_fifth_frame_keeps_absolute_indices(raw, tmp_path):
    root = write_mmpose(raw, tmp_path, sample_rate=5)
    source, reference = MmposeH36M(root), RawH36M(raw)
    assert source.annotation_dir.name == "fps10"
    ref = next(r for r in reference.sequences() if r.sequence == "Walking 1")
    seq = next(r for r in source.sequences() if r.sequence == "Walking 1")
    assert seq.frames == (0, 5, 10) and seq.frame_indices == (0, 5, 10) and seq.n_frames == 11
    assert source.frames(seq).tolist() == [0, 5, 10]
    world = source.poses_world(seq)
    assert world.shape == (11, 17, 3) and np.isnan(world[[1, 2, 3, 4, 6]]).all()
    np.testing.assert_allclose(world[[0, 5, 10]], reference.poses_world(ref)[[0, 5, 10]], atol=1e-3)
    np.testing.assert_array_equal(source.poses_2d(seq, "58860488")[[0, 5, 10]], reference.poses_2d(ref, "58860488")[[0, 5, 10]])
    with source.video(seq, "58860488") as frames:
        assert frames.available == (0, 5, 10)
        frames.frame(10)
        with pytest.raises(UserError, match="no image of frame 3 \\(this source holds 3 frames\\)"):
            frames.frame(3)


def test_both_annotation_rates_present_pick_the_densest_or_the_named_one(raw, tmp_path):
    write_mmpose(raw, tmp_path, sample_rate=5, images=False)
    write_mmpose(raw, tmp_path, sample_rate=1, images=False)
    assert MmposeH36M(tmp_path).annotation_dir.name == "fps50"
    assert not MmposeH36M(tmp_path).has_images
    assert MmposeH36M(tmp_path, annotation="fps10", subjects=["S9"]).subjects == ("S9",)
    with pytest.raises(UserError, match="no annotation folder 'fps25' \\(present: fps10, fps50\\)"):
        MmposeH36M(tmp_path, annotation="fps25")
    with pytest.raises(UserError, match="no annotation rows for subject S5 \\(found: S1, S9, S11\\)"):
        MmposeH36M(tmp_path, subjects=["S5"])


def test_image_names_round_trip():
    name = image_name("S1", "Directions 1", "54138969", 0)
    assert name == "S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg"
    assert parse_image_name(name, Path("x")) == ("S1", "Directions 1", "54138969", 0)
    assert parse_image_name("S8/S8_WalkDog.55011271/S8_WalkDog.55011271_000026.jpg", Path("x")) == ("S8", "WalkDog", "55011271", 25)
    for bad in ("S1_Directions_1.54138969_000001.jpg", "S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000000.jpg",
                "S1/S2_Directions.54138969/S1_Directions.54138969_000001.jpg", "S1/S1_../x.1/S1_...1_000001.jpg"):  # fmt: skip
        with pytest.raises(UserError, match="imgname"):
            parse_image_name(bad, Path("x"))


def test_mmpose_cameras_pkl_matches_the_builtin_calibration():
    """mmpose's own cameras.pkl (open-mmlab/mmpose tests/data, Apache-2.0): 11 subjects x 4 cameras; the
    7 with public Human3.6M data reproject like the built-in cameras (R transposed, T the centre in m,
    p in the metadata's order)."""
    cams = read_mmpose_cameras(FIXTURES / "mmpose-h36m" / "cameras.pkl")
    assert len(cams) == 44
    rng = np.random.default_rng(5)
    points = rng.uniform([-1500.0, -1500.0, 0.0], [1500.0, 1500.0, 1900.0], size=(200, 3))
    for subject in ("S1", "S5", "S6", "S7", "S8", "S9", "S11"):
        for camera_id in CAMERA_IDS:
            ours, theirs = get_camera(subject, camera_id), cams[(subject, camera_id)]
            assert (theirs.width, theirs.height) == (ours.width, ours.height)
            assert np.abs(project_world(points, theirs) - project_world(points, ours)).max() < 1e-3


def _replace_cameras(root: Path, payload: bytes) -> None:
    (root / "annotation_body3d" / "cameras.pkl").write_bytes(payload)


def test_faults_are_one_line_errors(raw, tmp_path):
    root = write_mmpose(raw, tmp_path / "m", sample_rate=5, images=False)
    cameras = root / "annotation_body3d" / "cameras.pkl"

    class Shell:
        def __reduce__(self):
            import os

            return (os.system, ("echo ran",))

    _replace_cameras(root, pickle.dumps({("S9", "54138969"): Shell()}))
    with pytest.raises(UserError, match="refusing to load global 'posix.system'") as err:
        MmposeH36M(root)
    assert err.value.path == cameras
    _replace_cameras(root, pickle.dumps([1, 2]))
    with pytest.raises(UserError, match="must hold a non-empty dict, found list"):
        MmposeH36M(root)
    good = read_mmpose_cameras(FIXTURES / "mmpose-h36m" / "cameras.pkl")
    assert good  # the real file is fine; a broken rotation is not
    data = pickle.loads((FIXTURES / "mmpose-h36m" / "cameras.pkl").read_bytes())  # our own fixture, trusted
    data[("S9", "54138969")]["R"] = data[("S9", "54138969")]["R"] * 2
    _replace_cameras(root, pickle.dumps(data))
    with pytest.raises(UserError, match=r"cameras.pkl\[\('S9', '54138969'\)\]\['R'\] is not a rotation"):
        MmposeH36M(root)
    cameras.unlink()
    with pytest.raises(UserError, match="file not found"):
        MmposeH36M(root)
    annotation = root / "annotation_body3d" / "fps10" / "h36m_test.npz"
    with np.load(annotation) as data:
        arrays = dict(data)
    arrays["imgname"] = arrays["imgname"].copy()
    arrays["imgname"][0] = "S9_Eating_2.54138969_000001.jpg"
    np.savez(annotation, **arrays)
    (root / "annotation_body3d" / "cameras.pkl").write_bytes((FIXTURES / "mmpose-h36m" / "cameras.pkl").read_bytes())
    with pytest.raises(UserError, match="imgname 'S9_Eating_2.54138969_000001.jpg' is not") as err:
        MmposeH36M(root)
    assert err.value.path == annotation
    arrays["imgname"][0] = arrays["imgname"][1]
    np.savez(annotation, **arrays)
    with pytest.raises(UserError, match="appears twice"):
        MmposeH36M(root)
    del arrays["S"]
    np.savez(annotation, **arrays)
    with pytest.raises(UserError, match="no 'S' array"):
        MmposeH36M(root)
    with pytest.raises(UserError, match="no annotation_body3d/ folder"):
        MmposeH36M(tmp_path)


def test_the_jpeg_frames_are_what_mmpose_writes(raw, every_frame):
    """mmpose writes `cv2.imwrite(<name>.jpg, bgr)`: the reader returns the same pixels as RGB."""
    ref = next(r for r in MmposeH36M(every_frame).sequences() if r.sequence == "Eating 2")
    path = every_frame / "images" / image_name("S9", "Eating 2", "55011271", 4)
    with MmposeH36M(every_frame).video(ref, "55011271") as frames:
        np.testing.assert_array_equal(frames.frame(4), cv2.imread(str(path))[..., ::-1])
