"""The engine's CLI commands through typer's runner on the real app."""

from __future__ import annotations

import cv2
import numpy as np
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.engine import list_corruptions

runner = CliRunner()


def test_corruptions_lists_every_corruption_with_its_table():
    result = runner.invoke(app, ["corruptions"])
    assert result.exit_code == 0, result.output
    for c in list_corruptions():
        assert c.name in result.output
    assert "sigma=0.38" in result.output and "quality=7" in result.output and "multi-view" in result.output


def test_corruptions_pattern_filters():
    result = runner.invoke(app, ["corruptions", "*blur"])
    assert result.exit_code == 0
    assert "motion_blur" in result.output and "gaussian_noise" not in result.output


def test_preview_writes_a_strip(tmp_path):
    out = tmp_path / "sub" / "gauss.png"
    result = runner.invoke(app, ["preview", "gaussian_noise", "--severity", "4", "--out", str(out), "--size", "64"])
    assert result.exit_code == 0, result.output
    strip = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert strip.shape == (2 * 64 + 30 + 64 + 22, 6 * 64, 3)
    big = strip[30 : 30 + 2 * 64, 2 * 64 : 4 * 64]
    small_4 = strip[2 * 64 + 30 + 22 :, 4 * 64 : 5 * 64]
    small_0 = strip[2 * 64 + 30 + 22 :, 0:64]
    assert np.array_equal(big[::2, ::2][3:-3, 3:-3], small_4[3:-3, 3:-3])  # severity 4 is the large one (framed)
    assert not np.array_equal(small_0, small_4)


def test_preview_unknown_name_exits_2_with_suggestion(tmp_path):
    result = runner.invoke(app, ["preview", "gausian_noise", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "did you mean 'gaussian_noise'" in result.output
    assert not (tmp_path / "x.png").exists()


def test_preview_rejects_non_png(tmp_path):
    result = runner.invoke(app, ["preview", "contrast", "--out", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and "PNG" in result.output
