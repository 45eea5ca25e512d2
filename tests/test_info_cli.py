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
