"""`corrupt-bench info DIR` through the CLI runner and through the console-script entry point."""

from __future__ import annotations

import numpy as np
from fixtures_raw import write_raw
from typer.testing import CliRunner

from corrupt_bench.cli import app, main
from corrupt_bench.data.cdf_io import write_pose_cdf

runner = CliRunner()


def test_info_reports_subjects_cameras_and_problems(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating", "Eating 2", "Greeting 2"], "S11": ["Directions", "Walking 1"]},
              n_frames=4, video_frames=6)  # fmt: skip
    result = runner.invoke(app, ["info", str(tmp_path), "--sequences"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    cells = [
        [c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│ S")
    ]
    subjects = {
        row[0]: row[:5] for row in cells if len(row) == 6 and row[1].isdigit()
    }  # the per-subject table
    assert subjects == {"S9": ["S9", "2", "8", "0.2", "4"], "S11": ["S11", "2", "8", "0.2", "4"]}
    assert "2 subjects, 4 sequences, 16 frames at 50 fps" in out
    assert "S9 Greeting 2: damaged mocap, excluded" in out
    assert "S11 Directions camera 54138969: corrupt video, camera excluded" in out
    assert "S9 Eating camera 55011271: video has 6 frames, mocap 4: truncated" in out
    assert "Photo" not in out and "Eating 2" in out


def test_info_flags_keep_excluded_recordings(tmp_path):
    write_raw(tmp_path, {"S9": ["Greeting 2"], "S11": ["Directions"]}, n_frames=3)
    result = runner.invoke(app, ["info", str(tmp_path), "--include-damaged", "--include-corrupt-video"])
    assert result.exit_code == 0, result.output
    assert "2 subjects, 2 sequences, 6 frames at 50 fps" in result.stdout
    assert "problems found: none" in result.stdout
    only = runner.invoke(app, ["info", str(tmp_path), "--subjects", "S11", "--include-corrupt-video"])
    assert "1 subjects, 1 sequences, 3 frames" in only.stdout


def expect_user_error(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert "Traceback" not in result.output


def test_missing_folder(tmp_path):
    expect_user_error(["info", str(tmp_path / "none")], f"{tmp_path / 'none'}: data folder not found")
    assert main(["info", str(tmp_path / "none")]) == 2  # the console script's exit code too


def test_unreadable_cdf(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=3, videos=False)
    path = tmp_path / "S9/MyPoseFeatures/D3_Positions/Eating.cdf"
    path.write_bytes(b"garbage" * 10)
    expect_user_error(["info", str(tmp_path)], f"{path}: unreadable CDF")


def test_cdf_of_the_wrong_shape(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=3, videos=False)
    path = tmp_path / "S9/MyPoseFeatures/D2_Positions/Eating.58860488.cdf"
    write_pose_cdf(path, np.zeros((3, 96)))
    expect_user_error(
        ["info", str(tmp_path)], f"{path}: CDF variable 'Pose' has shape (1, 3, 96), expected (1, N, 64)"
    )


def test_mp4_that_does_not_open(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=3)
    path = tmp_path / "S9/Videos/Eating.60457274.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    expect_user_error(["info", str(tmp_path)], f"{path}: cannot open video")


def test_frame_counts_that_disagree(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=5, video_frames=3)
    expect_user_error(
        ["info", str(tmp_path)], "Eating.54138969.mp4: video has 3 frames, fewer than the 5 of its mocap"
    )
    other = tmp_path / "other"
    write_raw(other, {"S9": ["Eating"]}, n_frames=5, videos=False)
    path = other / "S9/MyPoseFeatures/D3_Positions_mono/Eating.55011271.cdf"
    write_pose_cdf(path, np.zeros((6, 96)))
    expect_user_error(["info", str(other)], f"{path}: 6 frames but the mocap D3_Positions/Eating.cdf has 5")


def test_unknown_subject(tmp_path):
    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=3, videos=False)
    expect_user_error(["info", str(tmp_path), "--subjects", "S1"], "no folder for subject S1")


def test_info_on_the_synthetic_source(tmp_path):
    from corrupt_bench.data.synth import write_synthetic

    root = write_synthetic(
        tmp_path / "synth", subjects=("S9",), actions=("walk", "sit"), seconds=0.3, divisor=8, workers=1
    )
    result = runner.invoke(app, ["info", str(root)])
    assert result.exit_code == 0, result.output
    assert "1 subjects, 2 sequences, 30 frames at 50 fps" in result.stdout
    assert "54138969 55011271" in result.stdout and "problems found: none" in result.stdout


def test_info_on_a_multi_view_rig_reports_its_frame_rate():
    from pathlib import Path

    rig = Path(__file__).parent / "fixtures" / "pose2sim"
    result = runner.invoke(app, ["info", str(rig), "--sequences"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "multi-view rig:" in out and "1 subjects, 1 sequences, 13 frames at 60 fps" in out
    assert "cam01 cam02 cam03 cam04" in out
    assert "P1 demo camera cam02: video is 1080x1920, calibration 1088x1920" in out
    result = runner.invoke(app, ["info", str(rig / "rig.yaml"), "--subjects", "S9"])
    assert result.exit_code == 2 and "no sequence of subject S9 (found: P1)" in result.stderr


def test_info_on_a_raw_folder_with_a_60_fps_video(tmp_path):
    import cv2

    write_raw(tmp_path, {"S9": ["Eating"]}, n_frames=4)
    path = tmp_path / "S9/Videos/Eating.55011271.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 60.0, (50, 50))
    for _ in range(4):
        writer.write(np.zeros((50, 50, 3), np.uint8))
    writer.release()
    result = runner.invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 subjects, 1 sequences, 4 frames at 50 fps" in result.stdout  # the mocap's rate
    assert "S9 Eating camera 55011271: video is 60 fps, the mocap 50: video frame i is not mocap frame i" in result.stdout


def test_info_on_an_mmpose_folder(tmp_path):
    from fixtures_mmpose import write_mmpose

    raw = write_raw(tmp_path / "raw", {"S9": ["Walking 1"], "S11": ["Posing"]}, n_frames=12)
    root = write_mmpose(raw, tmp_path / "mmpose", sample_rate=5, images=False)
    result = runner.invoke(app, ["info", str(root), "--sequences"])
    assert result.exit_code == 0, result.output
    assert "mmpose Human3.6M:" in result.stdout and "(fps10)" in result.stdout
    assert "2 subjects, 2 sequences, 6 frames at 50 fps" in result.stdout  # frames 0, 5, 10 of each
