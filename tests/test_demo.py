"""`corrupt-bench demo --quick` end to end: every stage, a leaderboard row per reference model, finite numbers."""

import math

import pandas as pd
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.demo import (
    DEMO_MANIFESTS,
    DETECTOR,
    REFINED_BASE,
    REFINER,
    SIDE_DETECTOR,
    can_consume,
    run_label,
)
from corrupt_bench.models.protocol import InputSpec


def test_can_consume_follows_the_input_spec():
    assert can_consume(InputSpec("images", multi_view=True), has_images=True, n_cameras=4)
    assert not can_consume(InputSpec("images", multi_view=True), has_images=True, n_cameras=1)
    assert not can_consume(InputSpec("images"), has_images=False, n_cameras=4)
    assert can_consume(InputSpec("keypoints2d"), has_images=False, n_cameras=1)
    assert not can_consume(InputSpec("poses3d"), has_images=True, n_cameras=4)


def test_demo_quick_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    board = pd.read_csv(out / "report" / "leaderboard.csv", keep_default_na=False, na_values=[""])
    models = set(board["model"])
    lifted = {run_label(m, DETECTOR) for m in ("tcn-lifter", "dtf", "syncdiffpose", "triangulation")}
    refined = run_label(REFINED_BASE, DETECTOR, REFINER)
    expected = lifted | {"deprope", "blazepose", run_label("tcn-lifter", SIDE_DETECTOR), refined}
    assert expected <= models, models
    ranked = board[board["rank"].notna()]
    # every model is ranked on some variant board, with finite numbers and their n
    assert expected <= set(ranked.loc[ranked["board"] != "overall", "model"]), ranked[["board", "model"]]
    for column in ("clean_mpjpe", "clean_p_mpjpe", "corrupted_mpjpe", "mce", "n_sequences", "n_frames"):
        assert all(math.isfinite(v) for v in ranked[column]), ranked[["board", "model", column]]
    # STRIDE refines tcn-lifter on one variant only: never ranked overall beside models scored everywhere
    overall = board[(board["board"] == "overall") & (board["model"] == refined)]
    assert overall["rank"].isna().all() and overall["unranked"].str.startswith("lacks").all()
    assert set(ranked.loc[ranked["model"].isin(lifted), "input_2d"]) == {"detector"}
    # BlazePose, the pretrained model, is scored as a 3D model on every image variant and ranked
    blaze = board[(board["model"] == "blazepose") & board["rank"].notna()]
    assert set(blaze["board"]) >= {"overall", *(b for b in board["board"] if b != "overall")}, blaze
    assert (out / "report" / "summary.html").is_file()
    assert "HTML report:" in result.output and refined in result.output
    for name in DEMO_MANIFESTS:
        assert (out / "benchmarks" / name / "lock.json").is_file()


def test_demo_reports_an_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(blocker / "demo")])
    assert result.exit_code == 2
    assert "not writable" in result.output
    assert result.output.count("\n") == 1


