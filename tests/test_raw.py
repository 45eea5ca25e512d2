"""The raw Human3.6M reader and its quirks, on tiny folders written in the real formats."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fixtures_raw import write_cameras, write_raw, write_sequence, write_video, write_video_h264

from corrupt_bench.data import quirks
from corrupt_bench.data.cameras import CAMERA_IDS, project_world, world_to_camera
from corrupt_bench.data.cdf_io import read_pose_cdf, write_pose_cdf
from corrupt_bench.data.raw import RawH36M, SequenceRef, summarize
from corrupt_bench.data.skeleton import raw_to_h36m17
from corrupt_bench.data.video import VideoReader
from corrupt_bench.errors import UserError


def by_stem(raw: RawH36M) -> dict[tuple[str, str], SequenceRef]:
    return {(r.subject, r.sequence): r for r in raw.sequences()}


# --- quirks as pure functions ------------------------------------------------------------------------
def test_action_names_are_canonicalised_on_whole_words():
    assert quirks.canonical_action("TakingPhoto 1") == "Photo"
    assert quirks.canonical_action("WalkingDog") == "WalkDog"
    assert quirks.canonical_action("WalkTogether 1") == "WalkTogether"
    assert quirks.canonical_action("Walking 1") == "Walking"  # not WalkDog, not WalkTogether
    assert quirks.canonical_action("SittingDown 2") == "SittingDown"  # not Sitting
    assert quirks.canonical_action("Sitting 2") == "Sitting"
    assert quirks.canonical_sequence("TakingPhoto 1") == "Photo 1"
    assert quirks.canonical_sequence("WalkingDog") == "WalkDog"
    with pytest.raises(ValueError):
        quirks.split_stem("Eating.54138969")


def test_subactions_follow_the_suffix_order():
    numbers = quirks.subaction_numbers(
        ["Eating 2", "Eating", "Sitting 2", "Sitting 1", "Directions 1", "Directions", "Discussion 3",
         "Discussion 2", "SittingDown", "SittingDown 1", "TakingPhoto 1", "Photo"]
    )  # fmt: skip
    assert numbers == {
        "Eating": 1, "Eating 2": 2, "Sitting 1": 1, "Sitting 2": 2, "Directions": 1, "Directions 1": 2,
        "Discussion 2": 1, "Discussion 3": 2, "SittingDown": 1, "SittingDown 1": 2, "Photo": 1, "TakingPhoto 1": 2,
    }  # fmt: skip


def test_usable_video_frames():
    assert quirks.usable_video_frames(105, 100) == 100
    assert quirks.usable_video_frames(100, 100) == 100
    assert quirks.usable_video_frames(99, 100) is None


# --- reading a folder ------------------------------------------------------------------------------------
def test_reads_poses_and_cameras_of_the_raw_layout(tmp_path):
    write_cameras(tmp_path)
    poses = write_sequence(tmp_path, "S9", "Eating 2", n_frames=6, seed=3)
    write_sequence(tmp_path, "S9", "Eating", n_frames=4, seed=4)
    raw = RawH36M(tmp_path)
    refs = raw.sequences()
    assert [(r.sequence, r.action, r.subaction, r.n_frames) for r in refs] == [
        ("Eating", "Eating", 1, 4),
        ("Eating 2", "Eating", 2, 6),
    ]
    assert all(r.cameras == CAMERA_IDS for r in refs)
    ref = refs[1]
    np.testing.assert_allclose(raw.poses_world_raw(ref), poses, atol=1e-3)  # float32 storage
    np.testing.assert_allclose(raw.poses_world(ref), raw_to_h36m17(poses), atol=1e-3)
    camera = raw.camera("S9", "58860488")
    assert (camera.width, camera.height) == (50, 50)  # the folder's cameras.json wins over the public file
    np.testing.assert_allclose(
        raw.poses_2d(ref, "58860488"), raw_to_h36m17(project_world(poses, camera)), atol=1e-3
    )
    mono = read_pose_cdf(raw.d3_mono_path(ref, "58860488"), 96).reshape(-1, 32, 3)
    np.testing.assert_allclose(raw.poses_cam(ref, "58860488"), raw_to_h36m17(mono), atol=1e-2)
    np.testing.assert_allclose(
        raw.poses_cam(ref, "58860488"), raw_to_h36m17(world_to_camera(poses, camera)), atol=1e-2
    )
    with raw.video(ref, "58860488") as video:
        assert (video.n_frames, video.width, video.height, video.fps) == (6, 50, 50, 50.0)
        frame = video.frame(2)
    assert frame.shape == (50, 50, 3) and frame.dtype == np.uint8
    assert frame[40, 40, 0] > 200 and frame[40, 40, 2] < 50  # the fixture's red block: RGB order
    assert raw.problems() == []
    assert summarize(refs)[0].frames == 10


def test_public_calibration_without_cameras_json(tmp_path):
    write_sequence(tmp_path, "S9", "Walking", videos=False)  # pose-only download
    raw = RawH36M(tmp_path)
    assert raw.camera("S9", "54138969").width == 1000
    assert raw.sequences()[0].cameras == CAMERA_IDS  # cameras come from D2_Positions
    assert raw.problems() == []


def test_all_sequences_are_skipped(tmp_path):
    write_raw(tmp_path, {"S1": ["_ALL", "_ALL 1", "Walking"]})
    raw = RawH36M(tmp_path)
    assert [r.sequence for r in raw.sequences()] == ["Walking"]
    assert raw.problems() == ["S1: whole-session files skipped: _ALL, _ALL 1"]


def test_irregular_names_canonical_actions_and_subactions(tmp_path):
    stems = ["TakingPhoto", "TakingPhoto 1", "WalkingDog 1", "WalkingDog", "Walking", "Walking 1",
             "WalkTogether 1", "WalkTogether", "Sitting 1", "Sitting 2", "SittingDown", "SittingDown 2", "Eating", "Eating 2"]  # fmt: skip
    write_raw(tmp_path, {"S1": stems}, n_frames=3, videos=False, mono=False)
    refs = by_stem(RawH36M(tmp_path))
    got = {stem: (refs[("S1", stem)].action, refs[("S1", stem)].subaction) for stem in stems}
    assert got == {
        "TakingPhoto": ("Photo", 1), "TakingPhoto 1": ("Photo", 2), "WalkingDog": ("WalkDog", 1),
        "WalkingDog 1": ("WalkDog", 2), "Walking": ("Walking", 1), "Walking 1": ("Walking", 2),
        "WalkTogether": ("WalkTogether", 1), "WalkTogether 1": ("WalkTogether", 2), "Sitting 1": ("Sitting", 1),
        "Sitting 2": ("Sitting", 2), "SittingDown": ("SittingDown", 1), "SittingDown 2": ("SittingDown", 2),
        "Eating": ("Eating", 1), "Eating 2": ("Eating", 2),
    }  # fmt: skip


def test_corrupt_s11_directions_video_is_excluded_by_default(tmp_path):
    write_raw(tmp_path, {"S11": ["Directions", "Directions 1"]})
    raw = RawH36M(tmp_path)
    refs = by_stem(raw)
    assert refs[("S11", "Directions")].cameras == CAMERA_IDS[1:]
    assert refs[("S11", "Directions 1")].cameras == CAMERA_IDS  # only that one video is corrupt
    assert any("S11 Directions camera 54138969: corrupt video" in p for p in raw.problems())
    with pytest.raises(UserError, match="not usable"):
        raw.video(refs[("S11", "Directions")], "54138969")
    assert raw.poses_cam(refs[("S11", "Directions")], "54138969").shape == (5, 17, 3)  # the mocap is fine

    kept = RawH36M(tmp_path, include_corrupt_video=True)
    assert by_stem(kept)[("S11", "Directions")].cameras == CAMERA_IDS
    assert kept.problems() == []


def test_damaged_s9_sequences_are_excluded_by_default(tmp_path):
    write_raw(tmp_path, {"S9": ["Greeting 1", "Greeting 2", "SittingDown", "SittingDown 1", "Waiting", "Waiting 1"]},
              n_frames=3, videos=False)  # fmt: skip
    raw = RawH36M(tmp_path)
    assert sorted(r.sequence for r in raw.sequences()) == ["Greeting 1", "SittingDown", "Waiting"]
    assert sum("damaged mocap, excluded" in p for p in raw.problems()) == 3
    kept = by_stem(RawH36M(tmp_path, include_damaged=True))
    assert len(kept) == 6
    assert kept[("S9", "Greeting 2")].subaction == 2 and kept[("S9", "Waiting 1")].subaction == 2


def test_video_longer_than_mocap_is_truncated_with_a_warning(tmp_path):
    write_raw(tmp_path, {"S5": ["Posing"]}, n_frames=5, video_frames=8)
    raw = RawH36M(tmp_path)
    ref = raw.sequences()[0]
    with pytest.warns(UserWarning, match="8 frames, mocap 5: truncated"):
        video = raw.video(ref, "55011271")
    with video:
        assert (video.n_frames, video.frame_count) == (5, 8)
        assert video.frame(4).shape == (50, 50, 3)
        with pytest.raises(IndexError):
            video.frame(5)
    assert len(raw.problems()) == 4 and all("truncated" in p for p in raw.problems())


def test_video_shorter_than_mocap_is_an_error(tmp_path):
    write_raw(tmp_path, {"S5": ["Posing"]}, n_frames=5, video_frames=4)
    raw = RawH36M(tmp_path)
    with pytest.raises(
        UserError, match=r"Posing\.54138969\.mp4: video has 4 frames, fewer than the 5 of its mocap"
    ):
        raw.problems()
    with pytest.raises(UserError, match="fewer than the 5"):
        raw.video(raw.sequences()[0], "60457274")


def test_missing_and_orphan_files_are_reported(tmp_path):
    write_raw(tmp_path, {"S6": ["Smoking", "Smoking 1"]}, n_frames=3)
    (tmp_path / "S6/Videos/Smoking 1.58860488.mp4").unlink()
    write_video(tmp_path / "S6/Videos/Phoning.54138969.mp4", 3)
    write_video(tmp_path / "S6/Videos/Smoking.12345678.mp4", 3)
    raw = RawH36M(tmp_path)
    assert by_stem(raw)[("S6", "Smoking 1")].cameras == ("54138969", "55011271", "60457274")
    problems = raw.problems()
    assert "S6 Smoking 1 camera 58860488: no file in Videos, camera left out" in problems
    assert "S6 Videos/Phoning.54138969.mp4: no mocap D3_Positions/Phoning.cdf, ignored" in problems
    assert "S6 Videos/Smoking.12345678.mp4: unknown camera '12345678', ignored" in problems


def test_subject_selection(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"], "S11": ["Eating"]}, n_frames=3, videos=False)
    assert [r.subject for r in RawH36M(tmp_path).sequences()] == ["S9", "S11"]
    assert [r.subject for r in RawH36M(tmp_path, subjects=["S11"]).sequences()] == ["S11"]
    with pytest.raises(UserError, match="no folder for subject S1"):
        RawH36M(tmp_path, subjects=["S1"])


# --- user errors -----------------------------------------------------------------------------------------
def test_missing_folder(tmp_path):
    with pytest.raises(UserError, match="data folder not found") as err:
        RawH36M(tmp_path / "nowhere")
    assert err.value.path == tmp_path / "nowhere"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no subject folders"):
        RawH36M(tmp_path / "empty")
    (tmp_path / "empty/S1/Videos").mkdir(parents=True)
    with pytest.raises(UserError, match="no mocap found"):
        RawH36M(tmp_path / "empty").sequences()


def test_unreadable_cdf(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=3, videos=False)
    d2 = tmp_path / "S9/MyPoseFeatures/D2_Positions/Eating.55011271.cdf"
    d2.write_bytes(b"not a cdf" * 20)
    with pytest.raises(UserError, match="unreadable CDF") as err:
        RawH36M(tmp_path).sequences()
    assert err.value.path == d2


def test_cdf_of_the_wrong_shape(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=3, videos=False)
    d3 = tmp_path / "S9/MyPoseFeatures/D3_Positions/Eating.cdf"
    write_pose_cdf(d3, np.zeros((3, 64)))
    with pytest.raises(UserError, match=r"shape \(1, 3, 64\), expected \(1, N, 96\)") as err:
        RawH36M(tmp_path).sequences()
    assert err.value.path == d3


def test_2d_frame_count_disagreeing_with_mocap(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=3, videos=False)
    d2 = tmp_path / "S9/MyPoseFeatures/D2_Positions/Eating.60457274.cdf"
    write_pose_cdf(d2, np.zeros((4, 64)))
    with pytest.raises(UserError, match="4 frames but the mocap D3_Positions/Eating.cdf has 3") as err:
        RawH36M(tmp_path).sequences()
    assert err.value.path == d2


def test_mp4_that_does_not_open(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=3)
    video = tmp_path / "S9/Videos/Eating.55011271.mp4"
    video.write_bytes(b"\x00" * 300)
    raw = RawH36M(tmp_path)
    with pytest.raises(UserError, match="cannot open video") as err:
        raw.problems()
    assert err.value.path == video


# --- video access ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("writer", [write_video, write_video_h264], ids=["mp4v", "h264-bframes"])
def test_video_seeks_are_frame_exact(tmp_path, writer):
    path = tmp_path / "clip.mp4"
    writer(path, 60, (48, 32), seed=7)
    capture = cv2.VideoCapture(str(path))
    sequential = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        sequential.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(sequential) == 60
    assert not np.array_equal(sequential[10], sequential[11])

    with VideoReader(path) as video:
        for index in range(8):  # sequential access never seeks
            assert np.array_equal(video.frame(index), sequential[index])
        assert video.seeks == 0
        order = [20, 59, 3, 41, 40, 12, 0, 55, 13, 30, 29, 58, 1]
        for index, frame in zip(order, video.frames(order), strict=True):
            assert np.array_equal(frame, sequential[index]), index
        assert video.seeks >= 5  # backwards and far jumps did seek
        assert np.array_equal(video.frame(1), sequential[1])  # the same frame again (cached)


def test_video_reader_errors(tmp_path):
    with pytest.raises(UserError, match="video not found"):
        VideoReader(tmp_path / "none.mp4")
    write_video(tmp_path / "short.mp4", 3)
    with pytest.raises(UserError, match="fewer than the 4 asked for"):
        VideoReader(tmp_path / "short.mp4", n_frames=4)


# --- the synthetic source reads like a real download ------------------------------------------------------
def test_reads_the_synthetic_source(tmp_path):
    from corrupt_bench.data.synth import write_synthetic

    root = write_synthetic(
        tmp_path / "synth", subjects=("S9",), actions=("walk",), seconds=0.3, divisor=8, workers=1
    )
    raw = RawH36M(root)
    (ref,) = raw.sequences()
    assert (ref.subject, ref.sequence, ref.action, ref.subaction, ref.n_frames) == (
        "S9",
        "Walking",
        "Walking",
        1,
        15,
    )
    assert ref.cameras == CAMERA_IDS
    camera = raw.camera("S9", "55011271")
    assert camera.width == 125  # the folder's cameras.json, at 1/8 size
    projected = project_world(raw.poses_world(ref), camera)
    np.testing.assert_allclose(raw.poses_2d(ref, "55011271"), projected, atol=0.5)
    with raw.video(ref, "55011271") as video:
        assert (video.n_frames, video.width, video.height) == (15, camera.width, camera.height)
        assert video.frame(14).std() > 0
    assert raw.problems() == []
