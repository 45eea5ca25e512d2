"""Scoring end to end: rows, oracle-noise exactness, windows, resume (also after SIGKILL), error isolation,
non-finite counting, refiners, checkpoints, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_bench import generated_benchmark, raw_source
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.errors import UserError
from corrupt_bench.harness.scoring import score, sequence_metrics
from corrupt_bench.io import is_temporary
from corrupt_bench.layout import CELLS_DIR, COMPUTED_LOG_NAME, DETECTIONS_DIR, OUTPUT_LOCK_NAME, RUN_INFO_NAME
from corrupt_bench.models.checkpoint import save_checkpoint
from corrupt_bench.models.loading import load_model
from corrupt_bench.models.protocol import InputSpec

torch.set_num_threads(1)
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    raw = raw_source(root / "raw")
    return generated_benchmark(root / "bench", raw)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return raw_source(tmp_path_factory.mktemp("raw") / "raw")


def _cell_files(run: Path) -> list[Path]:
    return sorted((run / CELLS_DIR).rglob("*.rows.parquet"))


def load_predictor(spec, checkpoint=None, device="cpu"):
    return load_model(spec, checkpoint, device=device, kind="predictor").model


def test_oracle_offset_10mm_gives_10mm_on_the_raw_source(raw: Path, tmp_path: Path):
    df = pd.read_parquet(score("oracle-noise", raw, tmp_path / "run", config={"offset_mm": 10.0}, show_progress=False).results)
    assert len(df) == 12 and set(df["variant"]) == {"source"} and set(df["corruption"]) == {"clean"}
    np.testing.assert_allclose(df["mpjpe"], 10.0, atol=1e-9)
    assert (df["n_frames"] == 12).all() and (df["n_nonfinite"] == 0).all()
    assert (df["mpjve"].abs() < 1e-9).all() and (df["accel_error"].abs() < 1e-9).all()  # a constant offset


def test_rows_cover_the_grid_with_every_metric(bench: Path, tmp_path: Path):
    df = pd.read_parquet(score("oracle-noise", bench, tmp_path / "run", config={"offset_mm": 10.0}, show_progress=False).results)
    # clean 0, kp_noise 1..3, view_drop 1..2 = 6 grid points x 3 sequences x 4 cameras
    assert len(df) == 6 * 3 * 4
    assert not df.duplicated(["variant", "corruption", "severity", "subject", "sequence", "camera"]).any()
    for column in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "accel_error", "pck3d", "auc"):
        assert df[column].notna().all(), column
    np.testing.assert_allclose(df["mpjpe"], 10.0, atol=1e-9)
    assert set(df["action"]) == {"Eating", "Walking", "Posing"} and df["subaction"].notna().all()
    occluded = df["corruption"] == "view_drop"  # only that corruption recorded occlusion
    assert df.loc[occluded, ["mpjpe_visible", "mpjpe_occluded"]].notna().all().all()
    assert df.loc[~occluded, ["mpjpe_visible", "mpjpe_occluded"]].isna().all().all()
    assert set(df.loc[df["corruption"] == "kp_noise", "input_2d"]) == {"corrupted"}
    # no images and no keypoint input: the cell's 2D labels, recorded as such (not as an opted-in 'gt')
    assert set(df.loc[df["corruption"] != "kp_noise", "input_2d"]) == {"labels"}
    assert (df["coverage"] == 1.0).all() and set(df["joints"]) == {"all 17"}
    joints = pd.read_parquet(tmp_path / "run" / "per_joint.parquet")
    assert len(joints) == 17 * len(df)
    assert (joints.loc[joints["joint"] == "Hip", "mpjpe"] == 0).all()


def test_filters_keep_clean(bench: Path, tmp_path: Path):
    df = pd.read_parquet(score("oracle-noise", bench, tmp_path / "run", corruptions=["kp_noise"], severities=[2], show_progress=False).results)
    assert set(zip(df["corruption"], df["severity"], strict=True)) == {("clean", 0), ("kp_noise", 2)}


def test_noise_is_keyed_not_batched(bench: Path, tmp_path: Path):
    """oracle-noise's seeded noise gives the same rows whatever the batch size or window."""
    cfg = {"offset_mm": 0.0, "noise_mm": 5.0, "seed": 3}
    a = pd.read_parquet(score("oracle-noise", bench, tmp_path / "a", config=cfg, corruptions=["clean"], batch_size=1, show_progress=False).results)
    b = pd.read_parquet(score("oracle-noise", bench, tmp_path / "b", config={**cfg, "window": 5}, corruptions=["clean"], batch_size=7, show_progress=False).results)
    key = ["subject", "sequence", "camera"]
    a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    np.testing.assert_allclose(a["mpjpe"], b["mpjpe"], rtol=1e-12)
    assert (a["n_nonfinite"] == 0).all() and (b["n_nonfinite"] == 0).all()  # padded windows: every frame once
    assert 5.0 < a["mpjpe"].mean() < 12.0
    c = pd.read_parquet(score("oracle-noise", bench, tmp_path / "c", config={**cfg, "seed": 4}, corruptions=["clean"], show_progress=False).results)
    assert not np.allclose(a["mpjpe"], c.sort_values(key)["mpjpe"])


def test_rerun_skips_finished_cells(bench: Path, tmp_path: Path):
    run = tmp_path / "run"
    first = score("triangulation", bench, run, corruptions=["kp_noise"], show_progress=False)
    assert first.n_computed == first.n_cells == 12 and first.n_skipped == 0
    mtimes = {p: p.stat().st_mtime_ns for p in _cell_files(run)}
    second = score("triangulation", bench, run, show_progress=False)  # the whole grid now
    assert second.n_skipped == 12 and second.n_computed == 6
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    assert len(pd.read_parquet(second.results)) == 18 * 4
    other = score("triangulation", bench, run, config={"min_views": 3}, corruptions=["clean"], show_progress=False)
    assert other.n_skipped == 0 and other.n_computed == 3 and other.run_key != second.run_key  # another model key


def _reference_pose_error(gt: np.ndarray) -> np.ndarray:
    """Per frame, the MPJPE of the reference pose (every joint at the root): the mean distance of the
    true joints from the true root."""
    rel = gt - gt[:, :1]
    return np.linalg.norm(rel, axis=-1).mean(axis=-1)


def test_failing_cells_are_recorded_penalised_and_retried(bench: Path, tmp_path: Path):
    run = tmp_path / "run"
    summary = score("fixtures_bench:failing", bench, run, corruptions=["clean"], show_progress=False)
    df = pd.read_parquet(summary.results)
    assert summary.n_failed == 1 and summary.n_computed == 3
    bad = df[df["error"].notna()]
    # the failed cell is not dropped: one row per camera, every frame failed and penalised
    assert set(bad["subject"]) == {"S11"} and len(bad) == 4 and bad["error"].str.contains("boom on purpose").all()
    assert (bad["n_nonfinite"] == bad["n_frames"]).all() and (bad["n_frames"] == 12).all() and (bad["coverage"] == 0).all()
    labels = pd.read_parquet(bench / "demo" / "clean" / "0" / "labels" / "S11_Posing.parquet")
    gt = np.stack(labels[labels["camera"] == bad["camera"].iloc[0]]["joints_3d_cam"].map(np.asarray).to_list()).reshape(-1, 17, 3)
    assert bad["mpjpe"].iloc[0] == pytest.approx(_reference_pose_error(gt).mean())
    assert (bad["pck3d"] < 1.0).all() and bad["answered_mpjpe"].isna().all()
    good = df[df["error"].isna()]
    assert len(good) == 8 and (good["n_nonfinite"] == 6).all() and (good["n_frames"] == 12).all()
    assert np.allclose(good["coverage"], 0.5)
    first = good.iloc[0]  # the failed (odd) frames enter with the reference pose's error, the answered half with its own
    labels = pd.read_parquet(bench / "demo" / "clean" / "0" / "labels" / f"{first['subject']}_{first['sequence']}.parquet")
    mine = labels[labels["camera"] == first["camera"]].sort_values("frame")
    gt = np.stack(mine["joints_3d_cam"].map(np.asarray).to_list()).reshape(-1, 17, 3)
    odd = mine["frame"].to_numpy() % 2 == 1
    assert first["mpjpe"] == pytest.approx((6 * first["answered_mpjpe"] + _reference_pose_error(gt)[odd].sum()) / 12)
    again = score("fixtures_bench:failing", bench, run, corruptions=["clean"], show_progress=False)
    assert again.n_skipped == 2 and again.n_computed == 1 and again.n_failed == 1
    log = (run / CELLS_DIR / again.run_key / "computed.log").read_text().splitlines()
    assert sum("S11" in line for line in log) == 2 and sum("S9" in line for line in log) == 2


def test_failed_frames_enter_every_metric_with_the_declared_penalty():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(6, 17, 3)) * 100
    pred = gt + 10.0
    pred[:, 0] = gt[:, 0]
    pred[2] = np.nan
    row, joints = sequence_metrics(pred, gt, None, False)
    assert row["n_nonfinite"] == 1 and row["n_frames"] == 6 and row["coverage"] == pytest.approx(5 / 6)
    rel_pred, rel_gt = pred - pred[:, :1], gt - gt[:, :1]
    per_frame = np.linalg.norm(rel_pred - rel_gt, axis=-1).mean(axis=-1)
    answered = [0, 1, 3, 4, 5]
    penalty = _reference_pose_error(gt)[2]
    assert row["mpjpe"] == pytest.approx((per_frame[answered].sum() + penalty) / 6)
    assert row["answered_mpjpe"] == pytest.approx(per_frame[answered].mean())
    assert row["pck3d"] == pytest.approx(5 / 6 * row["answered_pck3d"])  # every joint of the failed frame a miss
    # velocity: the differences 1->2 and 2->3 touch the failed frame and are charged its joints' distance from the root
    dist = np.linalg.norm(rel_gt[2], axis=-1)
    vel = np.linalg.norm(np.diff(rel_pred, axis=0) - np.diff(rel_gt, axis=0), axis=-1)
    vel[1], vel[2] = dist, dist
    assert row["mpjve"] == pytest.approx(vel.mean())
    assert np.isfinite(row["accel_error"]) and joints["mpjpe"].shape == (17,)
    nothing, _ = sequence_metrics(np.full_like(gt, np.nan), gt, None, False)
    assert nothing["n_nonfinite"] == 6 and nothing["coverage"] == 0
    assert nothing["mpjpe"] == pytest.approx(_reference_pose_error(gt).mean()) and nothing["pck3d"] == 0 and nothing["auc"] == 0
    assert np.isnan(nothing["answered_mpjpe"])
    # a model that answers nothing can never beat a sensible answer on any metric, temporal ones included
    for name in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "accel_error"):
        assert nothing[name] > sequence_metrics(gt + 10.0, gt, None, False)[0][name], name


def test_declared_joint_set_scores_only_those_joints():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(5, 17, 3)) * 100
    pred = gt.copy()
    pred[:, 10:] = np.nan  # joints outside the declared set: never read
    subset = tuple(range(10))
    row, joints = sequence_metrics(pred, gt, None, False, subset)
    assert row["n_nonfinite"] == 0 and row["mpjpe"] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(joints["mpjpe"][10:]).all() and np.allclose(joints["mpjpe"][:10], 0.0)
    full, _ = sequence_metrics(pred, gt, None, False)
    assert full["n_nonfinite"] == 5  # the same output read on all 17 joints: every frame failed
    with pytest.raises(ValueError, match="include the root"):
        InputSpec("keypoints2d", joints=(1, 2, 3))


def test_refiner_post_processes_each_sequence(bench: Path, tmp_path: Path):
    df = pd.read_parquet(
        score("oracle-noise", bench, tmp_path / "run", refine="fixtures_bench:shift_refiner", corruptions=["clean"], show_progress=False).results
    )
    np.testing.assert_allclose(df["mpjpe"], 5.0, atol=1e-9)
    assert set(df["refine"]) == {"fixtures_bench:shift_refiner"}


def test_checkpoint_weights_are_loaded_and_digested(bench: Path, tmp_path: Path):
    model = load_predictor("fixtures_bench:linear_lifter", None, "cpu")
    state = {k: v + 1.0 for k, v in model.module.state_dict().items()}
    save_checkpoint(tmp_path / "ckpt", "fixtures_bench:linear_lifter", {}, state)
    loaded = load_predictor("fixtures_bench:linear_lifter", tmp_path / "ckpt", "cpu")
    assert torch.equal(loaded.module.bias, torch.ones(51))
    a = score("fixtures_bench:linear_lifter", bench, tmp_path / "run", corruptions=["clean"], show_progress=False)
    b = score("fixtures_bench:linear_lifter", bench, tmp_path / "run", checkpoint=tmp_path / "ckpt", corruptions=["clean"], show_progress=False)
    assert a.run_key != b.run_key and b.n_skipped == 0
    assert pd.read_parquet(b.results)["checkpoint"].str.len().eq(16).all()
    save_checkpoint(tmp_path / "ckpt2", "oracle-noise", {}, state)
    with pytest.raises(UserError, match="no weights"):
        load_predictor("oracle-noise", tmp_path / "ckpt2", "cpu")
    with pytest.raises(UserError, match="not 'triangulation'"):
        load_predictor("triangulation", tmp_path / "ckpt2", "cpu")


def test_cli_score_and_user_errors(bench: Path, tmp_path: Path):
    runner = CliRunner()
    config = tmp_path / "oracle.yaml"
    config.write_text("offset_mm: 10\n")
    result = runner.invoke(app, ["score", "--model", "oracle-noise", "--config", str(config), "--benchmark", str(bench),
                                 "--corruptions", "view_drop", "--severities", "1,2", "--out", str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert len(df) == 3 * 3 * 4 and np.allclose(df["mpjpe"], 10.0)
    result = runner.invoke(app, ["score", "--model", "oracle-nose", "--benchmark", str(bench), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "did you mean 'oracle-noise'" in result.output
    result = runner.invoke(app, ["score", "--model", "triangulation", "--benchmark", str(tmp_path / "missing"), "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "benchmark folder not found" in result.output
    result = runner.invoke(app, ["score", "--model", "triangulation", "--benchmark", str(bench), "--corruptions", "kp_nosie", "--out", str(tmp_path / "z")])
    assert result.exit_code == 2 and "no corruption kp_nosie in this benchmark (present: clean, kp_noise, view_drop)" in result.output


def test_image_model_without_images_is_refused_before_anything_is_written(raw: Path, tmp_path: Path):
    with pytest.raises(UserError, match="reads images, but no cell of this benchmark has any"):
        score("fixtures_bench:image_probe", raw, tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists()


def test_killed_run_resumes_without_recomputing(tmp_path: Path):
    """SIGKILL a score run once some cell files exist; the rerun computes only the missing cells."""
    bench = generated_benchmark(tmp_path / "bench", raw_source(tmp_path / "raw", n_frames=8), grid={"kp_noise": [1, 2]})
    n_cells = 9
    run = tmp_path / "run"
    config = tmp_path / "slow.yaml"
    config.write_text("delay: 0.03\n")
    cmd = [sys.executable, "-m", "corrupt_bench.cli", "score", "--model", "fixtures_bench:slow_zero", "--config", str(config),
           "--benchmark", str(bench), "--out", str(run), "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(_cell_files(run)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done = {p: p.stat().st_mtime_ns for p in _cell_files(run)}
    assert 2 <= len(done) < n_cells
    # nothing half-written under a final name: every file of the killed run is a complete parquet, the
    # log, run.json, the stale output lock (its flock died with the process), or a temporary of an
    # interrupted atomic write (hidden, never read)
    for path in (p for p in run.rglob("*") if p.is_file()):
        if is_temporary(path.name):
            continue
        if path.suffix == ".parquet":
            pd.read_parquet(path)  # raises on a truncated file
        else:
            assert path.name in (COMPUTED_LOG_NAME, RUN_INFO_NAME, OUTPUT_LOCK_NAME), path
    key_dir = next(iter(done)).parent
    while key_dir.parent.name != CELLS_DIR:
        key_dir = key_dir.parent
    logged_before = (key_dir / "computed.log").read_text().splitlines()
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done)} already done" in resumed.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    new_lines = (key_dir / "computed.log").read_text().splitlines()[len(logged_before):]
    done_keys = {str(p.relative_to(key_dir)).removesuffix(".rows.parquet") for p in done}
    assert len(new_lines) == n_cells - len(done) and not {line.split("\t")[0] for line in new_lines} & done_keys
    assert len(_cell_files(run)) == n_cells
    assert len(pd.read_parquet(run / "results.parquet")) == n_cells * 4


@pytest.fixture(scope="module")
def demo_benchmarks(tmp_path_factory) -> dict[str, Path]:
    """The generator's demo manifests on its synthetic source (cache in a temp folder)."""
    from corrupt_bench.generate.run import generate

    root = tmp_path_factory.mktemp("demo")
    out = {}
    for name in ("demo-weak-sync", "demo-h36m-c"):
        out[name] = root / name
        generate(name, out[name], show_progress=False, cache=root / "cache")
    return out


def test_triangulation_and_oracle_on_the_generated_weak_sync_demo(demo_benchmarks, tmp_path: Path):
    bench = demo_benchmarks["demo-weak-sync"]
    df = pd.read_parquet(score("triangulation", bench, tmp_path / "tri", input_2d="gt", show_progress=False).results)
    assert df["error"].isna().all() and (df["n_nonfinite"] == 0).all() and set(df["input_2d"]) == {"gt"}
    assert (df.loc[df["severity"] == 0, "mpjpe"] < 1.0).all()  # clean GT 2D of the synthetic source
    desync = df[(df["variant"] == "subframe") & (df["severity"] > 0)].groupby("severity")["mpjpe"].mean()
    clean = df.loc[(df["variant"] == "subframe") & (df["severity"] == 0), "mpjpe"].mean()
    # offsets below one frame (subframe_desync version 2): severity 1 moves views by < 0.2 frame
    assert list(desync.index) == [1, 2, 3, 4, 5] and desync.iloc[-1] > desync.iloc[0] > 2 * clean
    oracle = pd.read_parquet(score("oracle-noise", bench, tmp_path / "oracle", config={"offset_mm": 10.0}, input_2d="gt", show_progress=False).results)
    np.testing.assert_allclose(oracle["mpjpe"], 10.0, atol=1e-4)


def test_image_model_reads_generated_crops_through_workers(demo_benchmarks, tmp_path: Path):
    bench = demo_benchmarks["demo-h36m-c"]
    summary = score("fixtures_bench:image_probe", bench, tmp_path / "run", workers=1, batch_size=2, variants=["h36m-c"], show_progress=False)
    df = pd.read_parquet(summary.results)
    assert summary.n_failed == 0 and len(df) == 12  # clean + 11 corruptions of the extended variant, one camera, one sequence
    assert set(df["input_2d"]) == {"images"} and (df["n_frames"] == 8).all()
    assert (df["n_nonfinite"] == 0).all()  # every crop arrived, resized to 48 px, with content


def test_keypoint_model_on_image_cells_uses_the_detector_when_given(demo_benchmarks, tmp_path: Path):
    bench = demo_benchmarks["demo-weak-sync"]
    before = sorted(p.relative_to(bench) for p in bench.rglob("*"))
    detector = load_model("detector2d", device="cpu").model  # untrained: the plumbing, not the accuracy, is tested
    save_checkpoint(tmp_path / "det", "detector2d", detector.config.model_dump(), detector.module.state_dict())
    with_det = score("fixtures_bench:linear_lifter", bench, tmp_path / "a", detector=tmp_path / "det", variants=["frame-shift"], show_progress=False)
    without = score("fixtures_bench:linear_lifter", bench, tmp_path / "b", variants=["frame-shift"], input_2d="gt", show_progress=False)
    a, b = pd.read_parquet(with_det.results), pd.read_parquet(without.results)
    assert a["error"].isna().all() and set(a["input_2d"]) == {"detector"} and set(b["input_2d"]) == {"gt"}
    assert with_det.run_key != without.run_key  # the detector is part of the key
    cache = sorted((tmp_path / "a" / DETECTIONS_DIR).glob("*/frame-shift/*/*/*.parquet"))  # cached in the run folder
    assert cache and len({p.relative_to(tmp_path / "a" / DETECTIONS_DIR).parts[0] for p in cache}) == 1
    assert sorted(p.relative_to(bench) for p in bench.rglob("*")) == before  # the input benchmark is not written to
    assert not np.allclose(a.sort_values(["corruption", "camera"])["mpjpe"], b.sort_values(["corruption", "camera"])["mpjpe"])
    # the same detector by a plugin spec: its own cache key; a lifter's checkpoint as the detector: one line, exit 2
    lifter = load_model("tcn-lifter", config={"filter_widths": [3], "channels": 8}, device="cpu")
    save_checkpoint(tmp_path / "lifter", "tcn-lifter", lifter.config, lifter.model.module.state_dict())
    result = CliRunner().invoke(app, ["score", "--model", "fixtures_bench:linear_lifter", "--benchmark", str(bench),
                                      "--detector", str(tmp_path / "lifter"), "--out", str(tmp_path / "c")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "this checkpoint holds 'tcn-lifter', a predictor, not a 2D detector" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "c").exists()


def test_cells_where_the_corruption_changed_no_frame_are_flagged_and_left_out(demo_benchmarks, tmp_path: Path):
    """demo-h36m-c's temporal occlusion (spans of 3.2 s windows) misses its 8-frame clip: pixels (the lock's
    digests) and label effects equal the clean cell's. The report leaves that cell out of the corruption
    means and says how many it left out; every other corruption changed all 8 frames."""
    from corrupt_bench.reports.report import write_report

    bench = demo_benchmarks["demo-h36m-c"]
    run = score("oracle-noise", bench, tmp_path / "run", config={"offset_mm": 10.0}, input_2d="gt", variants=["h36m-c"], show_progress=False)
    df = pd.read_parquet(run.results)  # the extended variant (h36m-c-paper holds six of its cells again)
    changed = df.set_index("corruption")["n_changed_frames"]
    assert changed["temporal_occlusion"] == 0 and np.isnan(changed["clean"])
    assert (changed.drop(["temporal_occlusion", "clean"]) == 8).all()
    files = write_report([tmp_path / "run"], tmp_path / "report")
    left = pd.read_csv(tmp_path / "report" / "unchanged.csv")
    assert list(left["corruption"]) == ["temporal_occlusion"] and len(left) == 1
    grid = pd.read_csv(tmp_path / "report" / "grid.csv").set_index("corruption")
    assert grid.loc["temporal_occlusion", "unchanged_files"] == 1 and np.isnan(grid.loc["temporal_occlusion", "mpjpe"])
    table = pd.read_csv(tmp_path / "report" / "corruption_table_mpjpe.csv")
    assert "temporal_occlusion" not in set(table["corruption"]) and len(table) == 10
    assert "Unchanged cells: 1 corrupted cell files" in files.summary_md.read_text()
