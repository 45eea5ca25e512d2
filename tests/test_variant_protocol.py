"""The scoring side of the variants' protocol: frame-rate contract, evaluation frames, padding,
failed frames handed to refiners (STRIDE fills them), and the box protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.errors import UserError
from corrupt_bench.generate.run import generate
from corrupt_bench.generate.sources import CACHE_ENV
from corrupt_bench.harness.scoring import score
from corrupt_bench.harness.timing import Timing, read_timing, resample_positions
from corrupt_bench.layout import MANIFEST_NAME

BLIND = "plugin_models.occlusion_blind:build"


@pytest.fixture(scope="module")
def occluded(tmp_path_factory) -> Path:
    """The demo Occluded Human3.6M benchmark generated at 10 fps (every 5th frame only, frame_step 5:
    the protocol before eval_step, which the shipped twin replaced by 50 fps frames evaluated every
    5th), synthetic source, 64 px crops."""
    from corrupt_bench.resources import resource_dir

    cache = tmp_path_factory.mktemp("synthetic-cache")
    root = tmp_path_factory.mktemp("occluded")
    manifest = yaml.safe_load((resource_dir("manifests") / "demo-occluded-h36m.yaml").read_text())
    manifest.update(name="occluded-10fps", frame_step=5, eval_step=5, max_frames=10)
    (root / "occluded-10fps.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    out = root / "bench"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(cache))
        generate(root / "occluded-10fps.yaml", out, workers=1, show_progress=False)
    return out


def _rewrite_manifest(bench: Path, **fields) -> None:
    manifest = yaml.safe_load((bench / MANIFEST_NAME).read_text())
    manifest.update(fields)
    (bench / MANIFEST_NAME).write_text(yaml.safe_dump(manifest, sort_keys=False))


# --- frame-rate contract -------------------------------------------------------------------------------
def test_a_50_fps_temporal_model_on_a_10_fps_variant_exits_2_with_the_remedy(occluded: Path, tmp_path: Path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["score", "--model", "tcn-lifter", "--benchmark", str(occluded), "--out", str(out),
                                      "--input-2d", "gt", "--corruptions", "clean"])  # fmt: skip
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and line.startswith(f"error: {occluded / MANIFEST_NAME}:")
    assert "trained at 50 fps" in line and "frames are at 10 fps" in line and "frame_step 5" in line
    assert "frame_step: 1 and eval_step: 5" in line and "--resample" in line
    assert not (out / "results.parquet").exists()


def test_resampling_is_an_opt_in_stated_in_every_row(occluded: Path, tmp_path: Path):
    summary = score("tcn-lifter", occluded, tmp_path / "run", input_2d="gt", corruptions=["clean"], resample=True, show_progress=False)
    df = pd.read_parquet(summary.results)
    assert (df["frame_rate"] == "10 fps resampled to 50 fps").all()
    assert (df["padding"] == "edge").all()
    # 10 frames at 10 fps -> 46 frames at 50 fps in windows of 27: 8 padded frames per camera
    assert (df["n_padded_frames"] == 8).all() and (df["n_frames"] == 10).all()
    single = score("oracle-noise", occluded, tmp_path / "single", input_2d="gt", corruptions=["clean"], show_progress=False)
    assert (pd.read_parquet(single.results)["frame_rate"] == "10 fps").all()  # no temporal contract: no resampling


def test_resample_positions_keep_the_scored_frames_on_model_frames():
    positions, nearest = resample_positions(10, 10.0, 50.0)
    assert len(positions) == 46 and np.allclose(positions[nearest], np.arange(10))
    positions, nearest = resample_positions(11, 50.0, 10.0)
    assert np.allclose(positions, [0, 5, 10]) and list(nearest) == [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2]


def test_eval_step_scores_the_evaluation_frames_while_the_model_reads_every_frame(occluded: Path, tmp_path: Path):
    import shutil

    bench = tmp_path / "bench"
    shutil.copytree(occluded, bench)
    # frame_step 5 as generated; eval_step 10: every other frame is context only
    _rewrite_manifest(bench, eval_step=10)
    summary = score(BLIND, bench, tmp_path / "run", corruptions=["clean"], config={"window": 4}, save_predictions=True, show_progress=False)
    df = pd.read_parquet(summary.results)
    assert (df["n_frames"] == 5).all()  # frames 0, 10, ..., 40 of 0, 5, ..., 45
    assert (df["n_padded_frames"] == 2).all()  # the model read all 10 frames in windows of 4
    saved = pd.concat(pd.read_parquet(p) for p in (tmp_path / "run" / "predictions").rglob("*.parquet"))
    assert set(saved["frame"]) == {0, 10, 20, 30, 40}


def test_the_stored_manifest_fields_are_read_with_their_defaults(tmp_path: Path):
    assert read_timing({}) == Timing()
    timing = read_timing({"frame_step": 5, "crop": {"mode": "person", "margin": 0.2}})
    assert (timing.fps, timing.eval_step, timing.box) == (10.0, 5, "gt")
    assert read_timing({"frame_step": 1, "eval_step": 5, "source": {"kind": "synthetic", "fps": 25}}).fps == 25.0
    for bad, what in (({"frame_step": 2, "eval_step": 3}, "eval_step"), ({"box": "oracle"}, "box"),
                      ({"box": "detector", "crop": {"mode": "person"}}, "crop mode 'full'")):  # fmt: skip
        with pytest.raises(UserError, match=what):
            read_timing(bad, tmp_path / MANIFEST_NAME)


# --- failed frames reach the refiner -------------------------------------------------------------------
def test_stride_fills_the_frames_a_base_model_fails_on_and_they_are_reported_apart(occluded: Path, tmp_path: Path):
    from corrupt_bench.models.checkpoint import save_checkpoint
    from corrupt_bench.models.stride import StrideRefiner

    config = {"dim": 16, "depth": 1, "heads": 2, "ttt": {"epochs": 2}}  # a small untrained prior, two TTT steps: the gap filling is under test
    prior = save_checkpoint(tmp_path / "stride", "stride", config, StrideRefiner(config, "cpu").module.state_dict())
    cell = {"corruptions": ["temporal_occlusion"], "severities": [5], "show_progress": False}
    base = pd.read_parquet(score(BLIND, occluded, tmp_path / "base", **cell).results)
    refined = pd.read_parquet(score(BLIND, occluded, tmp_path / "refined", refine="stride", refine_checkpoint=prior, name="blind+stride",
                                    **cell).results)  # fmt: skip
    key = ["corruption", "severity", "subject", "camera"]
    base = base[base["corruption"] == "temporal_occlusion"].sort_values(key).reset_index(drop=True)
    refined = refined[refined["corruption"] == "temporal_occlusion"].sort_values(key).reset_index(drop=True)
    failed = int(base["n_base_failed"].sum())
    assert failed >= 6  # the occluder hides the person for 1.6 s: most of each 1 s sequence it reaches
    # without a refiner the failed frames stay failed, penalised with the reference pose's error
    assert int(base["n_nonfinite"].sum()) == failed and int(base["n_filled"].sum()) == 0
    # the visible frames are the base model's own: 20 mm exactly
    np.testing.assert_allclose(base["mpjpe_answered_frames"].dropna(), 20.0, atol=1e-6)
    # STRIDE gets the same frames as failed and fills every one of them
    assert (refined["n_base_failed"] == base["n_base_failed"]).all()
    assert int(refined["n_filled"].sum()) == failed and int(refined["n_nonfinite"].sum()) == 0
    hit = base["n_base_failed"] > 0
    assert np.isfinite(refined.loc[hit, "mpjpe_failed_frames"]).all()
    assert (refined.loc[hit, "mpjpe_failed_frames"] < base.loc[hit, "mpjpe_failed_frames"]).all()
    # failed-frame and visible-frame errors are reported apart, and the row's mpjpe is their frame-weighted mean
    n_ok = refined["n_frames"] - refined["n_base_failed"]
    pooled = (refined["mpjpe_failed_frames"].fillna(0) * refined["n_base_failed"] + refined["mpjpe_answered_frames"].fillna(0) * n_ok) / refined["n_frames"]
    np.testing.assert_allclose(pooled, refined["mpjpe"], rtol=1e-9)
    assert not np.allclose(refined.loc[hit, "mpjpe_failed_frames"], refined.loc[hit, "mpjpe_answered_frames"])
    # the report carries the split: failed_frames.csv per model and grid point, and a line of the summary
    from corrupt_bench.reports.report import write_report

    write_report([tmp_path / "base", tmp_path / "refined"], tmp_path / "report", reference=BLIND)
    table = pd.read_csv(tmp_path / "report" / "failed_frames.csv")
    cell = table[table["corruption"] == "temporal_occlusion"].set_index("model")
    assert set(cell.index) == {BLIND, "blind+stride"} and (cell["n_base_failed"] == failed).all()
    assert cell.loc[BLIND, "n_filled"] == 0 and cell.loc["blind+stride", "n_filled"] == failed
    assert abs(cell.loc[BLIND, "mpjpe_answered_frames"] - 20.0) < 1e-6
    assert cell.loc["blind+stride", "mpjpe_failed_frames"] < cell.loc[BLIND, "mpjpe_failed_frames"]
    assert "Failed frames apart" in (tmp_path / "report" / "summary.md").read_text()


# --- box protocol ----------------------------------------------------------------------------------------
FULL_FRAME = """\
name: box-detector
version: "1"
description: Tiny full-frame benchmark for the box protocol (test fixture).
paper: "none (test fixture)"
seed: 3
source: {kind: synthetic, seconds: 1.0, divisor: 4, seed: 0}
subjects: [S9]
actions: [Walking]
cameras: ["55011271"]
frame_step: 10
max_frames: 4
crop: {mode: full}
output: {format: png}
variants:
  - name: tiny
    corruptions:
      - {name: random_erase, severities: [5]}
"""


@pytest.fixture(scope="module")
def full_frames(tmp_path_factory) -> Path:
    """Full 1/4-size frames (BlazePose sees the person there), the stored manifest saying box: detector."""
    root = tmp_path_factory.mktemp("box")
    (root / "m.yaml").write_text(FULL_FRAME)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root / "cache"))
        generate(root / "m.yaml", root / "bench", workers=1, show_progress=False)
    _rewrite_manifest(root / "bench", box="detector")
    return root / "bench"


def test_box_detector_cuts_crops_with_the_detectors_box_and_no_person_is_a_failed_frame(full_frames: Path, tmp_path: Path):
    pytest.importorskip("mediapipe")
    from corrupt_bench.data.crop import person_box, square_box
    from corrupt_bench.harness.benchmark import Benchmark
    from corrupt_bench.harness.scoring import CellScorer
    from corrupt_bench.models.loading import load_detector, load_model

    spec = "fixtures_bench:image_probe"
    with pytest.raises(UserError, match="box: detector.*needs --detector"):
        score(spec, full_frames, tmp_path / "none", config={"image_size": 64, "window": 1}, show_progress=False)
    bench = Benchmark(full_frames)
    scorer = CellScorer(bench, load_model(spec, config={"image_size": 64, "window": 1}, device="cpu"), "probe", None,
                        load_detector("blazepose", "cpu"), "cpu", 8, 0, "k", tmp_path / "cache")  # fmt: skip
    clean = next(c for c in bench.cell_files() if c.corruption == "clean")
    labels = scorer.labels(clean)
    boxes = np.stack(labels.df["crop"].to_numpy())
    truth = square_box(person_box(np.stack(labels.df["joints_2d"].to_numpy()).reshape(-1, 17, 2), 0.15))
    found = np.isfinite(boxes).all(axis=1)
    assert found.sum() >= 3  # BlazePose finds the person on the clean full frames
    side = truth[:, 2] - truth[:, 0]
    assert (np.abs(boxes[found] - truth[found]).max(axis=1) < 0.25 * side[found]).all()  # the detector's box, near the true one

    summary = score(spec, full_frames, tmp_path / "run", config={"image_size": 64, "window": 1}, detector="blazepose", show_progress=False)
    df = pd.read_parquet(summary.results)
    assert (df["box"] == "detector").all()
    clean_row = df[df["corruption"] == "clean"].iloc[0]
    assert clean_row["n_base_failed"] == int((~found).sum())
    erased = df[df["corruption"] == "random_erase"].iloc[0]
    assert erased["n_base_failed"] > clean_row["n_base_failed"]  # the person erased: found nowhere or less often
    assert erased["n_nonfinite"] == erased["n_base_failed"]


# --- DTF on a keypoint-only benchmark with missing joints ---------------------------------------------------
KEYPOINTS_ONLY = """\
name: dtf-missing-joints
version: "1"
description: Keypoint-only benchmark with dropped joints at the full 50 fps (test fixture).
paper: "none (test fixture)"
seed: 5
source: {kind: synthetic, seconds: 1.0, divisor: 16, seed: 0}
subjects: [S9]
actions: [Walking]
cameras: ["54138969"]
frame_step: 1
max_frames: 30
output: {format: keypoints}
variants:
  - name: dtf
    corruptions:
      - {name: joint_dropout, severities: [3]}
"""


def test_dtf_scores_on_a_keypoint_only_benchmark_with_missing_joints_at_its_rate(tmp_path: Path):
    (tmp_path / "m.yaml").write_text(KEYPOINTS_ONLY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(tmp_path / "cache"))
        generate(tmp_path / "m.yaml", tmp_path / "bench", workers=1, show_progress=False)
    df = pd.read_parquet(score("dtf", tmp_path / "bench", tmp_path / "run", show_progress=False).results)
    dropped = df[df["corruption"] == "joint_dropout"]
    assert len(dropped) == 1 and dropped["input_2d"].iloc[0] == "corrupted" and dropped["frame_rate"].iloc[0] == "50 fps"
    assert np.isfinite(dropped["mpjpe"]).all() and (dropped["n_nonfinite"] == 0).all() and (df["n_frames"] == 30).all()
    assert (dropped["n_padded_frames"] == 24).all()  # 30 frames in windows of 27
