"""Reports: hand-computed aggregation and robustness scores, and the report command end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_bench import generated_benchmark, raw_source
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.errors import UserError
from corrupt_bench.harness.scoring import score
from corrupt_bench.reports import tables as T

torch.set_num_threads(1)


def row(model, corruption, severity, mpjpe, n_frames=100, action="Eating", camera="c0", n_nonfinite=0, error=None):
    return {
        "model": model, "variant": "v", "corruption": corruption, "severity": severity, "subject": "S9",
        "action": action, "subaction": 1, "camera": camera, "sequence": action, "input_2d": "gt",
        "n_frames": n_frames, "n_nonfinite": n_nonfinite, "mpjpe": mpjpe, "p_mpjpe": mpjpe / 2,
        "error": error,
    }  # fmt: skip


@pytest.fixture
def grid() -> pd.DataFrame:
    values = {
        "A": {("clean", 0): 10, ("blur", 1): 20, ("blur", 2): 30, ("noise", 1): 12, ("noise", 2): 14},
        "B": {("clean", 0): 8, ("blur", 1): 10, ("blur", 2): 20, ("noise", 1): 24, ("noise", 2): 28},
    }
    rows = [row(m, c, s, v) for m, cells in values.items() for (c, s), v in cells.items()]
    rows.append(row("B", "blur", 1, np.nan, camera="c1", n_frames=0, error="RuntimeError: boom"))  # failed cell
    rows.append(row("B", "noise", 2, np.nan, camera="c2", n_frames=10, n_nonfinite=10))  # all frames non-finite
    return pd.DataFrame(rows)


def test_aggregate_weights_by_every_frame_and_protocol_averages_actions():
    """A row's metric already holds its failed frames (penalised), so rows pool by all their frames."""
    df = pd.DataFrame(
        [
            row("A", "clean", 0, 10.0, n_frames=100, action="Eating", camera="c0"),
            row("A", "clean", 0, 20.0, n_frames=310, n_nonfinite=10, action="Eating", camera="c1"),
            row("A", "clean", 0, 30.0, n_frames=50, action="Walking"),
        ]
    )
    pooled = T.aggregate(df)
    assert pooled["mpjpe"].iloc[0] == pytest.approx((1000 + 6200 + 1500) / 460)
    assert pooled["n_frames"].iloc[0] == 460 and pooled["n_nonfinite"].iloc[0] == 10
    protocol = T.protocol_average(df)
    assert protocol["mpjpe"].iloc[0] == pytest.approx(((1000 + 6200) / 410 + 30.0) / 2)
    assert protocol["n_actions"].iloc[0] == 2


def test_failed_cells_are_counted_and_rows_without_a_value_not_averaged(grid):
    table = T.aggregate(grid)
    b_blur1 = table[(table["model"] == "B") & (table["corruption"] == "blur") & (table["severity"] == 1)].iloc[0]
    assert b_blur1["mpjpe"] == 10 and b_blur1["n_failed"] == 1  # the failed cell's labels were unreadable: no value
    b_noise2 = table[(table["model"] == "B") & (table["corruption"] == "noise") & (table["severity"] == 2)].iloc[0]
    assert b_noise2["mpjpe"] == 28 and b_noise2["n_nonfinite"] == 10


def test_ce_mce_relative_and_resilience_by_hand(grid):
    ce = T.ce_table(grid, reference="A").set_index(["model", "corruption"])
    assert (ce["reference"] == "A").all()
    assert ce.loc[("B", "blur"), "ce"] == pytest.approx(30 / 50)
    assert ce.loc[("B", "noise"), "ce"] == pytest.approx(52 / 26)
    assert ce.loc[("A", "blur"), "ce"] == pytest.approx(1.0)
    assert ce.loc[("B", "blur"), "relative_ce"] == pytest.approx(14 / 30)
    assert ce.loc[("B", "noise"), "relative_ce"] == pytest.approx(36 / 6)
    assert ce.loc[("B", "noise"), "reference_degradation"] == pytest.approx(3.0)  # mean of 12-10 and 14-10
    assert np.isnan(ce.loc[("B", "noise"), "ce_lo"])  # one sequence: no interval
    mce = T.mce(grid, reference="A").set_index("model")
    assert mce.loc["B", "mce"] == pytest.approx(1.3) and mce.loc["A", "mce"] == pytest.approx(1.0)
    assert set(mce["reference"]) == {"A"}
    assert mce.loc["B", "relative_mce"] == pytest.approx((14 / 30 + 6) / 2)
    assert mce.loc["B", "mean_resilience_rate"] == pytest.approx((8 / 10 + 8 / 20 + 8 / 24 + 8 / 28) / 4)
    # the reference matters: against B, A's mCE is the mean of the inverse ratios
    assert T.mce(grid, reference="B").set_index("model").loc["A", "mce"] == pytest.approx((50 / 30 + 26 / 52) / 2)
    with pytest.raises(UserError, match="reference model 'C'"):
        T.mce(grid, reference="C")


def test_corruption_table_and_leaderboard(grid):
    table = T.corruption_table(T.Scores.build(grid, "A")).set_index(["model", "corruption"])
    assert table.loc[("B", "noise"), "s2"] == 28 and table.loc[("B", "noise"), "clean"] == 8
    assert table.loc[("A", "blur"), "mean"] == pytest.approx(25)
    board = T.leaderboard(grid, reference="A", groups={"blur": "blur", "noise": "noise"}).set_index("model")
    assert board.loc["A", "rank"] == 1 and board.loc["B", "rank"] == 2
    assert board.loc["B", "clean_mpjpe"] == 8 and board.loc["B", "clean_p_mpjpe"] == 4
    assert board.loc["B", "corrupted_mpjpe"] == pytest.approx(20.5)
    assert board.loc["B", "mce"] == pytest.approx(1.3)
    assert board.loc["B", "blur_mpjpe"] == pytest.approx(15) and board.loc["B", "noise_mpjpe"] == pytest.approx(26)
    assert board.loc["B", "n_failed_cells"] == 1 and board.loc["B", "n_failed_frames"] == 10
    assert board.loc["B", "n_sequences"] == 1 and board.loc["B", "grid_cells"] == "5/5"
    assert set(board["reference"]) == {"A"}


def test_report_command_writes_tables_leaderboard_plots_and_summaries(tmp_path: Path):
    raw = raw_source(tmp_path / "raw", n_frames=6)
    bench = generated_benchmark(tmp_path / "bench", raw, grid={"kp_noise": [1, 2], "view_drop": [1]})  # 12 cells of 6 frames
    score("triangulation", bench, tmp_path / "tri", show_progress=False)
    score("oracle-noise", bench, tmp_path / "oracle", config={"offset_mm": 10.0}, show_progress=False)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(tmp_path / "oracle"), str(tmp_path / "tri"), "--out", str(out), "--reference", "oracle-noise"])
    assert result.exit_code == 0, result.output
    assert "reference model: oracle-noise" in result.output
    for name in ("grid.csv", "per_action.csv", "corruption_table_mpjpe.csv", "ce.csv", "mce.csv", "leaderboard.csv", "failures.csv", "unchanged.csv"):
        assert (out / name).is_file(), name
    board = pd.read_csv(out / "leaderboard.csv")
    board = board[board["board"] == "overall"]
    # the oracle's 10 mm is the same on every cell (CE 1 against itself); triangulation is exact on clean 2D
    # but degrades under keypoint noise and a dropped view (CE > 1): the oracle ranks first
    assert list(board["model"]) == ["oracle-noise", "triangulation"]
    assert board.set_index("model").loc["triangulation", "mce"] > 1.0
    assert set(board["reference"]) == {"oracle-noise"}
    assert board.set_index("model").loc["oracle-noise", "clean_mpjpe"] == pytest.approx(10.0)
    assert board.set_index("model").loc["oracle-noise", "mce"] == pytest.approx(1.0)
    pngs = sorted((out / "plots").glob("*.png"))
    assert {p.name for p in pngs} == {"severity_demo_kp_noise.png", "severity_demo_view_drop.png", "heatmap_demo.png"}
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    md = (out / "summary.md").read_text()
    assert "reference model: oracle-noise" in md and "](plots/heatmap_demo.png)" in md and "| rank |" in md
    page = (out / "summary.html").read_text()
    assert '<img src="data:image/png;base64,' in page and 'alt="severity_demo_kp_noise"' in page and "<table" in page
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "tri"), "--out", str(out), "--reference", "nobody"])
    assert bad.exit_code == 2 and "reference model 'nobody'" in bad.output


@pytest.mark.parametrize("metric", ["auc", "pck3d"])
def test_higher_is_better_metrics_rank_the_better_model_first(metric, tmp_path: Path):
    """`report --metric auc|pck3d`: the model with the higher score ranks first, its CE (on the error
    1 - value) is below 1 and its resilience (value kept) is not above 1; the formula says so."""
    raw = raw_source(tmp_path / "raw", n_frames=6)
    bench = generated_benchmark(tmp_path / "bench", raw, grid={"kp_noise": [1, 2]})
    # the first run is the default reference: the worse model, so its error (1 - value) is not 0
    score("oracle-noise", bench, tmp_path / "bad", config={"offset_mm": 60.0, "noise_mm": 60.0, "seed": 1}, name="bad", show_progress=False)
    score("oracle-noise", bench, tmp_path / "good", config={"offset_mm": 20.0, "noise_mm": 15.0, "seed": 2}, name="good", show_progress=False)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(tmp_path / "bad"), str(tmp_path / "good"), "--out", str(out), "--metric", metric])
    assert result.exit_code == 0, result.output
    board = pd.read_csv(out / "leaderboard.csv")
    board = board[board["board"] == "overall"].set_index("model")
    assert board.loc["good", f"corrupted_{metric}"] > board.loc["bad", f"corrupted_{metric}"]  # the premise
    assert board.loc["good", "rank"] == 1 and board.loc["bad", "rank"] == 2
    assert board.loc["good", "mce"] < 1.0 and board.loc["bad", "mce"] == pytest.approx(1.0)
    ce = pd.read_csv(out / "ce.csv")
    assert set(ce["ce_formula"]) == {f"CE = sum_s (1 - {metric}(s)) / sum_s (1 - {metric}_ref(s))"}
    mce = pd.read_csv(out / "mce.csv").set_index("model")
    assert set(mce["resilience_formula"]) == {f"mean resilience rate = mean over corruptions and severities of {metric}(s) / {metric}_clean "
                                              "(_clean over the frames answered, (s) with failures penalised)"}
    assert "higher is better" in (out / "summary.md").read_text()


def test_error_metrics_keep_their_formulas_and_ranking(grid):
    """mpjpe (lower is better): CE on the values themselves, resilience E_clean / E(s), ascending ranking."""
    text = T.formulas("mpjpe")
    assert text["ce_formula"] == "CE = sum_s mpjpe(s) / sum_s mpjpe_ref(s)"
    assert "mpjpe_clean / mpjpe(s)" in text["resilience_formula"]
    with pytest.raises(UserError, match="unknown metric 'mpjep'"):
        T.formulas("mpjep")
