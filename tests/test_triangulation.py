"""Triangulation: exact DLT through the real distortion model, confidence weighting, and end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_bench import generated_benchmark, raw_source

from corrupt_bench.data.cameras import CAMERA_IDS, get_camera, project_world, world_to_camera
from corrupt_bench.harness.scoring import score
from corrupt_bench.models.loading import load_model
from corrupt_bench.models.triangulation import triangulate_dlt

torch.set_num_threads(1)


def _scene(seed: int = 0, n: int = 3):
    rng = np.random.default_rng(seed)
    world = rng.normal(size=(n, 17, 3)) * 300.0 + np.array([0.0, 0.0, 900.0])
    cams = [get_camera("S9", c) for c in CAMERA_IDS]  # public calibration, with distortion
    pixels = np.stack([project_world(world, c) for c in cams])  # (V, N, 17, 2)
    return world, cams, pixels


def test_dlt_recovers_points_through_distortion():
    world, cams, pixels = _scene()
    points = triangulate_dlt(pixels, np.ones(pixels.shape[:-1]), cams)
    assert np.abs(points - world).max() < 1e-4


def test_weights_decide_which_views_count():
    world, cams, pixels = _scene(1)
    bad = pixels.copy()
    bad[2] += 40.0  # one view's keypoints are far off
    weights = np.ones(pixels.shape[:-1])
    assert np.linalg.norm(triangulate_dlt(bad, weights, cams) - world, axis=-1).mean() > 5.0
    weights[2] = 0.0
    assert np.abs(triangulate_dlt(bad, weights, cams) - world).max() < 1e-4
    weights[1] = 0.0
    weights[3] = 0.0  # one view left: no triangulation
    assert np.isnan(triangulate_dlt(bad, weights, cams)).all()


def test_predictor_returns_root_relative_camera_frame_poses():
    world, cams, pixels = _scene(2, n=4)
    model = load_model("triangulation", config={}, device="cpu").model
    assert model.input_spec.multi_view and model.input_spec.kind == "keypoints2d"
    batch = {
        "keypoints_2d": np.moveaxis(pixels, 0, 1)[:, :, None],  # (B=4, V, T=1, 17, 2)
        "confidence": np.ones((4, 4, 1, 17)),
        "view_valid": np.ones((4, 4, 1), bool),
        "cameras": cams,
    }
    out = model.predict(batch)
    expected = np.stack([world_to_camera(world, c) for c in cams], axis=1)[:, :, None]
    expected = expected - expected[..., :1, :]
    assert out.shape == (4, 4, 1, 17, 3)
    assert np.abs(out - expected).max() < 1e-4
    batch["view_valid"][:, 1:] = False  # a single valid view: NaN, which the harness counts
    assert np.isnan(model.predict(batch)).all()


def test_triangulation_on_clean_ground_truth_2d_is_under_1mm(tmp_path: Path):
    raw = raw_source(tmp_path / "raw")
    summary = score("triangulation", raw, tmp_path / "run", show_progress=False)
    df = pd.read_parquet(summary.results)
    assert len(df) == 3 * 4 and (df["variant"] == "source").all() and (df["input_2d"] == "labels").all()
    assert df["error"].isna().all() and (df["n_nonfinite"] == 0).all()
    assert (df["mpjpe"] < 1.0).all() and (df["p_mpjpe"] < 1.0).all()


def test_triangulation_across_a_generated_grid(tmp_path: Path):
    raw = raw_source(tmp_path / "raw")
    bench = generated_benchmark(tmp_path / "bench", raw)
    df = pd.read_parquet(score("triangulation", bench, tmp_path / "run", show_progress=False).results)
    clean = df[df["corruption"] == "clean"]
    assert (clean["mpjpe"] < 1.0).all()
    dropped = df[df["corruption"] == "view_drop"]  # the last view is invalid: three views still suffice
    assert (dropped["mpjpe"] < 1.0).all() and dropped["mpjpe_occluded"].notna().all()
    noisy = df[df["corruption"] == "kp_noise"].groupby("severity")["mpjpe"].mean()
    assert (df.loc[df["corruption"] == "kp_noise", "input_2d"] == "corrupted").all()
    assert noisy.is_monotonic_increasing and noisy.iloc[0] > 1.0


@pytest.mark.parametrize("min_views", [2, 4])
def test_min_views_config(min_views):
    world, cams, pixels = _scene(3)
    weights = np.ones(pixels.shape[:-1])
    weights[0] = 0.0
    points = triangulate_dlt(pixels, weights, cams, min_views=min_views)
    assert np.isnan(points).all() == (min_views == 4)
