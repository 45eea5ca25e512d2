"""Scores a reviewer can trust: the 2D input is explicit, failures cannot buy a better rank, models are
ranked only on shared cells, undefined scores say why, every number has an n and an interval, the run
key covers what a result depends on, saved predictions re-score to the same rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_bench import generated_benchmark, raw_source
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.harness.inputs import GT_NOTE
from corrupt_bench.harness.scoring import rescore, score, source_digest
from corrupt_bench.layout import CELLS_DIR, ROWS_SUFFIX
from corrupt_bench.reports import tables as T
from corrupt_bench.reports.report import write_report

torch.set_num_threads(1)
PLUGIN = "plugin_models.graded:build"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return raw_source(tmp_path_factory.mktemp("raw") / "raw", n_frames=12)


@pytest.fixture(scope="module")
def kp_bench(raw: Path, tmp_path_factory) -> Path:
    """Keypoint corruptions only (no images): 3 sequences x 4 cameras x 12 frames per cell."""
    return generated_benchmark(tmp_path_factory.mktemp("kp") / "bench", raw, grid={"kp_noise": [1, 2, 3]})


@pytest.fixture(scope="module")
def image_bench(raw: Path, tmp_path_factory) -> Path:
    """Every cell with 16 px PNG crops; view_drop has no keypoint input."""
    return generated_benchmark(tmp_path_factory.mktemp("img") / "bench", raw, grid={"view_drop": [1]}, images=16)


# --- 1. the 2D input is explicit --------------------------------------------------------------------------
def test_keypoint_model_on_image_cells_without_a_detector_exits_2(image_bench: Path, tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["score", "--model", PLUGIN, "--benchmark", str(image_bench), "--out", str(out)])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: ")
    assert "--input-2d detector --detector SPEC" in line and "--input-2d gt" in line and GT_NOTE in line
    assert not out.exists()  # refused before anything is written
    for args, fault in ((["--input-2d", "detector"], "needs --detector"), (["--input-2d", "gt", "--detector", "detector2d"], "read only with --input-2d detector"),
                        (["--input-2d", "corrupted"], "needs its 2D input named"), (["--input-2d", "guess"], "allowed: detector, corrupted, gt")):  # fmt: skip
        result = runner.invoke(app, ["score", "--model", PLUGIN, "--benchmark", str(image_bench), "--out", str(out), *args])
        assert result.exit_code == 2 and fault in result.output and len(result.output.strip().splitlines()) == 1, (args, result.output)
    result = runner.invoke(app, ["score", "--model", "fixtures_bench:image_probe", "--benchmark", str(image_bench), "--out", str(out), "--input-2d", "gt"])
    assert result.exit_code == 2 and "apply to keypoint models only" in result.output


def test_ground_truth_2d_is_an_opt_in_that_every_table_states(image_bench: Path, kp_bench: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["score", "--model", PLUGIN, "--name", "graded", "--benchmark", str(image_bench), "--out", str(tmp_path / "gt"),
                                      "--input-2d", "gt"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert GT_NOTE in result.output
    rows = pd.read_parquet(tmp_path / "gt" / "results.parquet")
    assert set(rows["input_2d"]) == {"gt"}
    assert json.loads((tmp_path / "gt" / "run.json").read_text())["input_2d"] == "gt"
    # the same model on a keypoint benchmark needs no opt-in: corrupted keypoints, clean labels on the clean cell
    kp = pd.read_parquet(score(PLUGIN, kp_bench, tmp_path / "kp", show_progress=False).results)
    assert set(kp.loc[kp["severity"] > 0, "input_2d"]) == {"corrupted"} and set(kp.loc[kp["severity"] == 0, "input_2d"]) == {"labels"}
    score("oracle-noise", image_bench, tmp_path / "oracle", config={"offset_mm": 10.0}, name="oracle", input_2d="gt", show_progress=False)
    out = tmp_path / "report"
    files = write_report([tmp_path / "gt", tmp_path / "oracle"], out, reference="oracle")
    board = pd.read_csv(out / "leaderboard.csv", keep_default_na=False)
    mine = board[board["model"] == "graded"]
    assert len(mine) == 2 and mine["notes"].str.contains(GT_NOTE, regex=False).all() and (mine["input_2d"] == "gt").all()
    for path in (files.summary_md, files.summary_html, out / "grid.csv", out / "corruption_table_mpjpe.csv"):
        assert GT_NOTE in path.read_text(), path


# --- 2. failures are counted and never pay ------------------------------------------------------------------
LOWER_IS_BETTER = {"rank", "mce", "relative_mce"}
HIGHER_IS_BETTER = {"coverage", "mean_resilience_rate"}


@pytest.mark.parametrize("metric", ["mpjpe", "auc"])
def test_hiding_the_worst_30_percent_of_frames_ranks_below_on_every_leaderboard_column(metric, kp_bench: Path, tmp_path: Path):
    honest = score(PLUGIN, kp_bench, tmp_path / "honest", name="graded", show_progress=False)
    hiding = score(PLUGIN, kp_bench, tmp_path / "hiding", config={"hide": 0.3}, name="graded-hiding", show_progress=False)
    rows = pd.read_parquet(hiding.results)
    assert rows["coverage"].between(0.6, 0.8).all() and rows["error"].isna().all()  # it did hide ~30 % of every row
    # the premise: dropping the hidden frames (the old behaviour) would have made it look better
    dropped, answered = rows[f"answered_{metric}"].mean(), pd.read_parquet(honest.results)[metric].mean()
    assert dropped > answered if T.metric_spec(metric).higher_is_better else dropped < answered
    write_report([tmp_path / "honest", tmp_path / "hiding"], tmp_path / "report", reference="graded", metric=metric)
    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    spec = T.metric_spec(metric)
    counts = ("cells_scored", "cells_in_grid", "n_sequences", "n_frames", "n_failed_frames", "n_failed_cells")
    text = ("unranked", "undefined", "notes")  # read back as empty floats when no row has any
    numbers = [c for c in board.columns if not c.endswith(("_lo", "_hi")) and board[c].dtype.kind == "f" and c not in counts + text]
    assert {f"clean_{metric}", f"corrupted_{metric}", "mce", "relative_mce", "mean_resilience_rate", "coverage"} <= set(numbers)
    for name, part in board.groupby("board"):
        a, b = part.set_index("model").loc["graded"], part.set_index("model").loc["graded-hiding"]
        assert a["rank"] == 1 and b["rank"] == 2, name
        for column in [*numbers, "rank"]:
            if column in HIGHER_IS_BETTER or (column.endswith(f"_{metric}") and spec.higher_is_better):
                assert b[column] < a[column], (name, column, a[column], b[column])
            elif column in LOWER_IS_BETTER or column.endswith(("_mpjpe", f"_{metric}")):
                assert b[column] > a[column], (name, column, a[column], b[column])
            else:
                raise AssertionError(f"column {column} has no direction in this test")


# --- 3. comparable leaderboards -----------------------------------------------------------------------------
def test_a_model_that_lacks_a_variant_is_not_ranked_ahead_by_omission(raw: Path, tmp_path: Path):
    bench = generated_benchmark(tmp_path / "bench", raw, grid={"kp_noise": [1]}, variant="easy")
    generated_benchmark(bench, raw, grid={"kp_noise": [3]}, variant="hard")
    score(PLUGIN, bench, tmp_path / "a", name="everywhere", show_progress=False)
    score(PLUGIN, bench, tmp_path / "b", config={"extra_mm": 2.0}, name="easy-only", variants=["easy"], show_progress=False)
    rows = pd.concat([pd.read_parquet(tmp_path / r / "results.parquet") for r in ("a", "b")])
    naive = rows[rows["severity"] > 0].groupby("model")["mpjpe"].mean()
    assert naive["easy-only"] < naive["everywhere"]  # the premise: a mean over whatever each model has favours the omission
    write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "report", reference="everywhere")
    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv", keep_default_na=False, na_values=[""])
    overall = board[board["board"] == "overall"].set_index("model")
    assert overall.loc["everywhere", "rank"] == 1 and np.isnan(overall.loc["easy-only", "rank"])
    assert overall.loc["easy-only", "grid_cells"] == "2/4" and "hard" in overall.loc["easy-only", "unranked"]
    assert np.isnan(overall.loc["easy-only", "corrupted_mpjpe"]) and np.isnan(overall.loc["easy-only", "mce"])  # no numbers to misread
    easy = board[board["board"] == "easy"].set_index("model")
    assert easy.loc["everywhere", "rank"] == 1 and easy.loc["easy-only", "rank"] == 2  # compared where both were scored
    hard = board[board["board"] == "hard"].set_index("model")
    assert hard.loc["everywhere", "rank"] == 1 and np.isnan(hard.loc["easy-only", "rank"])
    assert hard.loc["easy-only", "unranked"] == "not scored on this variant" and hard.loc["easy-only", "grid_cells"] == "0/2"
    assert list(board.loc[board["board"] == "hard", "model"]) == ["everywhere", "easy-only"]  # unranked rows last


# --- 4. undefined scores say why ------------------------------------------------------------------------------
def test_relative_ce_is_undefined_with_a_reason_when_the_reference_does_not_degrade(kp_bench: Path, tmp_path: Path):
    score("oracle-noise", kp_bench, tmp_path / "flat", config={"offset_mm": 30.0}, name="flat", show_progress=False)
    score(PLUGIN, kp_bench, tmp_path / "graded", name="graded", show_progress=False)
    write_report([tmp_path / "flat", tmp_path / "graded"], tmp_path / "report", reference="flat")
    ce = pd.read_csv(tmp_path / "report" / "ce.csv", keep_default_na=False, na_values=[""]).set_index("model")
    assert np.isnan(ce.loc["graded", "relative_ce"]) and np.isnan(ce.loc["graded", "relative_ce_lo"])
    reason = ce.loc["graded", "relative_ce_undefined"]
    assert "reference 'flat' degrades by 0 mm" in reason and "below 5% of its clean error 30" in reason
    assert ce.loc["graded", "ce"] > 1  # CE itself stays defined: a ratio of sums, not of differences
    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv", keep_default_na=False, na_values=[""])
    graded = board[(board["board"] == "overall") & (board["model"] == "graded")].iloc[0]
    assert np.isnan(graded["relative_mce"]) and "relative CE undefined on kp_noise" in graded["undefined"]
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "relative CE undefined on kp_noise" in summary and "undefined when the reference's mean degradation is below 5%" in summary


# --- 5. n and intervals, deterministic; paired comparison -----------------------------------------------------
def test_intervals_are_deterministic_and_a_model_compared_with_itself_differs_by_zero(kp_bench: Path, tmp_path: Path):
    score(PLUGIN, kp_bench, tmp_path / "graded", name="graded", show_progress=False)
    score("oracle-noise", kp_bench, tmp_path / "oracle", config={"offset_mm": 60.0, "noise_mm": 10.0, "seed": 1}, name="oracle", show_progress=False)
    runs = [tmp_path / "graded", tmp_path / "oracle"]
    first = write_report(runs, tmp_path / "r1", reference="oracle", compare=("graded", "graded"))
    write_report(runs, tmp_path / "r2", reference="oracle", compare=("graded", "graded"))
    names = sorted(p.relative_to(tmp_path / "r1") for p in (tmp_path / "r1").rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(tmp_path / "r2") for p in (tmp_path / "r2").rglob("*") if p.is_file())
    for name in names:
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes(), name
    board = pd.read_csv(first.out / "leaderboard.csv")
    assert (board["n_sequences"] == 3).all() and (board["n_frames"] == 4 * 3 * 4 * 12).all()
    assert (board["clean_mpjpe_lo"] <= board["clean_mpjpe"]).all() and (board["clean_mpjpe"] <= board["clean_mpjpe_hi"]).all()
    graded = board[board["model"] == "graded"]  # its error differs between sequences: a real spread
    assert (graded["clean_mpjpe_lo"] < graded["clean_mpjpe"]).all() and (graded["clean_mpjpe"] < graded["clean_mpjpe_hi"]).all()
    same = pd.read_csv(first.compare)
    assert (same["difference"] == 0).all() and (same["difference_lo"] <= 0).all() and (same["difference_hi"] >= 0).all()
    assert (same["p_value"] == 1.0).all() and (same["n_sequences"] == 3).all()
    other = write_report(runs, tmp_path / "r3", reference="oracle", compare=("graded", "oracle"))
    diff = pd.read_csv(other.compare).set_index("part")
    assert diff.loc["clean", "difference"] == pytest.approx(diff.loc["clean", "a"] - diff.loc["clean", "b"])
    assert diff.loc["clean", "difference_lo"] < diff.loc["clean", "difference"] < diff.loc["clean", "difference_hi"]
    assert diff.loc["clean", "p_value"] == pytest.approx(0.25)  # 3 sequences, all the same sign: 2 of 8 patterns
    result = CliRunner().invoke(app, ["report", *map(str, runs), "--out", str(tmp_path / "r4"), "--compare", "graded", "oracle"])
    assert result.exit_code == 0, result.output and "compare.csv" in result.output
    assert (tmp_path / "r4" / "compare.csv").read_bytes() == other.compare.read_bytes()
    bad = CliRunner().invoke(app, ["report", *map(str, runs), "--out", str(tmp_path / "r5"), "--compare", "graded", "nobody"])
    assert bad.exit_code == 2 and "model 'nobody' is not in the runs" in bad.output


# --- 6. integrity --------------------------------------------------------------------------------------------
def _plugin_package(root: Path, offset: float) -> None:
    (root / "plugin_edit").mkdir(parents=True, exist_ok=True)
    (root / "plugin_edit" / "__init__.py").write_text('"""A plugin package written by the test."""\n')
    (root / "plugin_edit" / "helpers.py").write_text(f"OFFSET_MM = {offset}\n")
    (root / "plugin_edit" / "model.py").write_text(
        "import numpy as np\n\nfrom corrupt_bench.models.protocol import InputSpec\nfrom plugin_edit.helpers import OFFSET_MM\n\n\n"
        "class Model:\n    name = 'edit'\n    module = None\n    input_spec = InputSpec('keypoints2d', needs_ground_truth=True)\n\n"
        "    def predict(self, batch):\n        gt = np.asarray(batch['joints_3d_cam'], float)\n        out = gt - gt[..., :1, :]\n"
        "        out[..., 1:, 0] += OFFSET_MM * 17 / 16\n        return out\n\n\ndef build(config, device):\n    return Model()\n"
    )


def test_editing_a_plugins_source_changes_the_run_key(kp_bench: Path, tmp_path: Path, monkeypatch):
    _plugin_package(tmp_path / "src", 10.0)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    digest = source_digest("plugin_edit.model:build")
    assert len(digest) == 16 and source_digest("triangulation") == ""
    first = score("plugin_edit.model:build", kp_bench, tmp_path / "run", corruptions=["clean"], show_progress=False)
    again = score("plugin_edit.model:build", kp_bench, tmp_path / "run", corruptions=["clean"], show_progress=False)
    assert again.run_key == first.run_key and again.n_skipped == again.n_cells
    (tmp_path / "src" / "plugin_edit" / "helpers.py").write_text("OFFSET_MM = 11.0\n")  # not the factory's own file
    assert source_digest("plugin_edit.model:build") != digest
    edited = score("plugin_edit.model:build", kp_bench, tmp_path / "run", corruptions=["clean"], show_progress=False)
    assert edited.run_key != first.run_key and edited.n_skipped == 0 and edited.n_computed == edited.n_cells
    assert set(pd.read_parquet(edited.results)["run_key"]) == {edited.run_key}  # the stale rows are not merged in
    assert json.loads((tmp_path / "run" / "run.json").read_text())["model"]["source_digest"] == source_digest("plugin_edit.model:build")


def test_cameras_json_is_part_of_the_run_key_and_force_recomputes(kp_bench: Path, tmp_path: Path):
    bench = tmp_path / "bench"
    shutil.copytree(kp_bench, bench)
    first = score("triangulation", bench, tmp_path / "run", corruptions=["clean"], show_progress=False)
    cameras = bench / "cameras.json"
    data = json.loads(cameras.read_text())
    cameras.write_text(json.dumps(data, indent=4, sort_keys=False))  # the same calibration, laid out differently
    same = score("triangulation", bench, tmp_path / "run", corruptions=["clean"], show_progress=False)
    assert same.run_key == first.run_key and same.n_skipped == same.n_cells
    camera = next(iter(data["intrinsics"]))
    data["intrinsics"][camera]["focal_length"] = [v * 1.01 for v in data["intrinsics"][camera]["focal_length"]]
    cameras.write_text(json.dumps(data))
    moved = score("triangulation", bench, tmp_path / "run", corruptions=["clean"], show_progress=False)
    assert moved.run_key != first.run_key and moved.n_computed == moved.n_cells
    files = sorted((tmp_path / "run" / CELLS_DIR / moved.run_key).rglob("*" + ROWS_SUFFIX))
    before = {p: p.stat().st_mtime_ns for p in files}
    forced = score("triangulation", bench, tmp_path / "run", corruptions=["clean"], force=True, show_progress=False)
    assert forced.run_key == moved.run_key and forced.n_skipped == 0 and forced.n_computed == forced.n_cells
    assert all(p.stat().st_mtime_ns != t for p, t in before.items())


def test_saved_predictions_rescore_to_the_same_rows_without_the_model(kp_bench: Path, tmp_path: Path):
    run = tmp_path / "run"
    summary = score(PLUGIN, kp_bench, run, config={"hide": 0.3}, save_predictions=True, show_progress=False)
    failed = score("fixtures_bench:failing", kp_bench, tmp_path / "failing", corruptions=["clean"], save_predictions=True, show_progress=False)
    for source, original in ((run, summary), (tmp_path / "failing", failed)):
        again = rescore(source, kp_bench, tmp_path / f"again-{source.name}", show_progress=False)
        assert again.run_key == original.run_key
        key = ["variant", "corruption", "severity", "subject", "sequence", "camera"]
        a = pd.read_parquet(original.results).drop(columns="seconds").sort_values(key).reset_index(drop=True)
        b = pd.read_parquet(again.results).drop(columns="seconds").sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    assert pd.read_parquet(failed.results)["error"].notna().any()  # a failed cell re-scores as the same penalty rows
    result = CliRunner().invoke(app, ["score", "--from-predictions", str(run), "--benchmark", str(kp_bench), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cli" / "results.parquet").drop(columns="seconds").sort_values(["corruption", "severity", "subject", "camera"]).reset_index(drop=True),
                                  pd.read_parquet(summary.results).drop(columns="seconds").sort_values(["corruption", "severity", "subject", "camera"]).reset_index(drop=True))  # fmt: skip
    result = CliRunner().invoke(app, ["score", "--from-predictions", str(tmp_path / "failing" / "nothing"), "--benchmark", str(kp_bench), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no saved predictions" in result.output


# --- 7. a report a reviewer can read ---------------------------------------------------------------------------
def test_the_html_summary_is_self_contained_and_the_terminal_board_keeps_full_names(kp_bench: Path, tmp_path: Path, capsys):
    from corrupt_bench.demo import print_leaderboard

    score(PLUGIN, kp_bench, tmp_path / "a", name="tcn-lifter", show_progress=False)
    score(PLUGIN, kp_bench, tmp_path / "b", config={"extra_mm": 1.0}, name="tcn-lifter+stride", show_progress=False)
    files = write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "report", reference="tcn-lifter")
    page = files.summary_html.read_text()
    assert 'src="plots/' not in page and page.count('src="data:image/png;base64,') == len(files.plots) >= 2
    assert page.count('<div class="scroll"><table') >= 3 and ".scroll{overflow-x:auto" in page
    assert "per action on the clean cells" in page and (tmp_path / "report" / "per_action.csv").is_file()
    capsys.readouterr()
    print_leaderboard(tmp_path / "report" / "leaderboard.csv")
    printed = capsys.readouterr().out
    assert "tcn-lifter+stride" in printed and "tcn-lift…" not in printed


def test_severity_curves_leave_gaps_and_switch_to_a_log_axis_for_outliers():
    from corrupt_bench.reports.plots import LOG_SPAN, _wide_span, curve_points

    grid = pd.DataFrame({"model": "m", "variant": "v", "corruption": ["clean", "c", "c"], "severity": [0, 1, 5],
                         "mpjpe": [10.0, 12.0, 30.0], "mpjpe_lo": [9.0, 11.0, 25.0], "mpjpe_hi": [11.0, 13.0, 35.0]})  # fmt: skip
    points = curve_points(grid, "m", "v", "c", "mpjpe")
    assert list(points.index) == [0, 1, 2, 3, 4, 5]
    assert points["mpjpe"].isna().tolist() == [False, False, True, True, True, False]  # no line across 2..4
    assert not _wide_span(np.array([100.0, 120.0, 300.0, 0.001]))  # a near-zero value is no outlier
    assert _wide_span(np.array([100.0, 110.0, 120.0, 115.0 * LOG_SPAN * 1.5]))  # a metre-scale one is
