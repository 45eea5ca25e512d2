"""DeProPose: Swin encoder, camera rays, fusion, tiny training, save/load, inference without ground truth."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml

from corrupt_bench.data.cameras import CAMERA_IDS, get_camera
from corrupt_bench.data.crop import crop_intrinsics
from corrupt_bench.models import deprope as D
from corrupt_bench.models.checkpoint import load_checkpoint, load_config
from corrupt_bench.models.swin import SwinEncoder, shifted_window_mask

# A micro config for tests: 32 px crops, 4 views x 2 frames.
MICRO = {
    "image_size": 32, "embed_dim": 16, "depths": [1, 1], "heads": [2, 2], "window": 4, "frames": 2,
    "token_dim": 8, "temporal_dim": 64, "temporal_depth": 2, "temporal_heads": 2, "error_hidden": 32,
    "train": {"epochs": 2, "steps_per_epoch": 12, "batch_size": 4, "frame_step": 4, "lr": 1e-3, "noise_view": 0.5},
}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from corrupt_bench.data.synth import write_synthetic

    root = tmp_path_factory.mktemp("deprope_raw")
    return write_synthetic(root / "raw", subjects=("S1", "S9"), actions=("walk",), seconds=1.0, divisor=8, seed=0,
                           workers=1)


@pytest.fixture(scope="module")
def trained(source, tmp_path_factory):
    """Train the micro config through `corrupt-bench train deprope` (the CLI, as a user would)."""
    from typer.testing import CliRunner

    from corrupt_bench.cli import app

    torch.set_num_threads(2)
    work = tmp_path_factory.mktemp("deprope_train")
    cfg_path = work / "micro.yaml"
    cfg_path.write_text(yaml.safe_dump(MICRO))
    out = work / "ckpt"
    result = CliRunner().invoke(app, ["train", "deprope", "--config", str(cfg_path), "--data", str(source),
                                      "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out


def test_swin_encoder_token_grid_and_shift_mask():
    enc = SwinEncoder(64, 24, [2, 2], [2, 4], window=4)
    out = enc(torch.zeros(3, 3, 64, 64))
    assert out.shape == (3, 8, 8, 48) and enc.grid == 8 and enc.out_dim == 48
    mask = shifted_window_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert torch.all(mask[0] == 0)  # the top-left window holds one region only
    assert torch.any(mask[-1] != 0)  # the bottom-right window mixes rolled regions: masked


def test_camera_rays_point_along_the_optical_axis_at_the_principal_point():
    cam = get_camera("S9", CAMERA_IDS[1])
    crop = np.array([300.0, 200.0, 500.0, 400.0])
    size = 32
    k = crop_intrinsics(cam, crop, size)
    k[0, 2], k[1, 2] = 7.0, 11.0  # put the principal point on a pixel centre
    rays = D.camera_rays(torch.as_tensor(np.linalg.inv(k))[None], torch.as_tensor(cam.R.T)[None], size)
    assert rays.shape == (1, size, size, 3)
    np.testing.assert_allclose(torch.linalg.norm(rays, dim=-1).numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(rays[0, 11, 7].numpy(), cam.R.T @ np.array([0.0, 0.0, 1.0]), atol=1e-12)
    assert D.space_to_depth(rays, 8).shape == (1, 4, 4, 192)


def test_fusion_of_consistent_views_returns_them_and_drops_invalid_views():
    cams = [get_camera("S9", c) for c in CAMERA_IDS]
    rng = np.random.default_rng(0)
    world = rng.normal(0, 200, (1, 2, 17, 3))
    r_cw = torch.as_tensor(np.stack([c.R.T for c in cams]))[None]
    per_view = torch.einsum("bvji,btkj->bvtki", r_cw, torch.as_tensor(world))  # the same pose seen by each camera
    errors = torch.as_tensor(rng.uniform(1, 100, (1, 4, 2, 2)))
    valid = torch.ones(1, 4, 2, dtype=torch.bool)
    valid[0, 2] = False
    w = D.fuse_weights(errors, valid, 1.0)
    assert torch.all(w[0, 2] == 0) and torch.allclose(w.sum(1), torch.ones(1, 2, dtype=w.dtype))
    inv = 1 / (errors.sum(-1) + 1.0)
    assert torch.allclose(w[0, 0] / w[0, 1], inv[0, 0] / inv[0, 1])
    torch.testing.assert_close(D.fuse(per_view, r_cw, w), per_view)


@pytest.mark.parametrize("fusion", ["features", "poses"])
def test_fused_pose_is_one_world_pose_and_an_invalid_view_does_not_reach_it(fusion):
    """Both fusions return the same world-oriented pose in every camera; a view marked invalid (weight
    0) changes nothing, whatever its crops hold (feature fusion weighs the views' features)."""
    torch.manual_seed(0)
    cfg = D.parse_config({**MICRO, "fusion": fusion})
    net = D.DeProPoseNet(cfg).eval()
    cams = [get_camera("S9", c) for c in CAMERA_IDS]
    rng = np.random.default_rng(1)
    images = torch.as_tensor(rng.normal(size=(2, 4, 2, 3, 32, 32)), dtype=torch.float32)
    k_inv = torch.as_tensor(np.stack([np.linalg.inv(crop_intrinsics(c, np.array([0.0, 0.0, 900.0, 900.0]), 32)) for c in cams]),
                            dtype=torch.float32)[None, :, None].expand(2, 4, 2, 3, 3)  # fmt: skip
    r_cw = torch.as_tensor(np.stack([c.R.T for c in cams]), dtype=torch.float32)[None].expand(2, 4, 3, 3)
    valid = torch.ones(2, 4, 2, dtype=torch.bool)
    valid[:, 3] = False
    with torch.no_grad():
        out = net(images, k_inv, r_cw, valid)
        world = torch.einsum("bvij,bvtkj->bvtki", r_cw, out["fused"])
        torch.testing.assert_close(world, world[:, :1].expand_as(world), atol=1e-3, rtol=1e-4)
        assert torch.all(out["weights"][:, 3] == 0)
        other = images.clone()
        other[:, 3] = torch.as_tensor(rng.normal(size=(2, 2, 3, 32, 32)), dtype=torch.float32)
        torch.testing.assert_close(net(other, k_inv, r_cw, valid)["fused"], out["fused"])
    assert hasattr(net, "fused_head") == (fusion == "features")


def test_training_lowers_the_loss(trained):
    rows = list(csv.DictReader(open(trained / "train_log.csv")))
    assert len(rows) == MICRO["train"]["epochs"]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


def test_save_load_predict_identical_and_no_ground_truth_needed(trained, source):
    state, meta = load_checkpoint(trained)
    assert meta["model"] == "deprope"
    a = D.build_deprope(meta["config"], "cpu")
    a.load_state_dict(state)
    b = D.build_deprope(meta["config"], "cpu")
    b.load_state_dict(load_checkpoint(trained / "model.safetensors")[0])
    assert a.input_spec.kind == "images" and a.input_spec.multi_view and a.input_spec.window == 2
    clips = D.ClipSet(source, ["S9"], a.cfg)
    batch, labels = clips.harness_batch(0, [0, 3], a.cfg.frames)
    pa = a.predict(batch)
    assert pa.shape == (2, 4, 2, 17, 3) and np.isfinite(pa).all()
    np.testing.assert_array_equal(pa, b.predict(batch))
    # label fields the training code reads (and a harness might carry) filled with NaN: never read
    leaky = {**batch, "gt": np.full_like(labels, np.nan), "joints_3d_cam": np.full_like(labels, np.nan),
             "root": np.full(labels.shape[:-2] + (3,), np.nan), "joints_2d_crop": np.full(labels.shape[:-1] + (2,), np.nan),
             "keypoints_2d": np.full(labels.shape[:-1] + (2,), np.nan), "confidence": np.full(labels.shape[:-1], np.nan)}
    pn = a.predict(leaky)
    assert np.isfinite(pn).all()
    np.testing.assert_array_equal(pn, pa)
    # the network's ground-truth path is off at inference (true_errors=None): predicted errors weight views
    out = a.forward(batch)
    assert torch.isfinite(out["errors"]).all() and torch.isfinite(out["weights"]).all()
    # a dropped view gets weight 0
    dropped = {**batch, "view_valid": batch["view_valid"].copy()}
    dropped["view_valid"][:, 1] = False
    _, w = a.predict_with_weights(dropped)
    assert np.all(w[:, 1] == 0) and np.allclose(w.sum(1), 1.0)


@pytest.mark.parametrize("name", ["tiny", "full"])
def test_shipped_configs_build(name):
    cfg = D.parse_config(load_config("deprope", name))
    if name == "full":
        assert (cfg.image_size, cfg.embed_dim, cfg.depths, cfg.heads, cfg.window) == (224, 96, [2, 10, 6, 2],
                                                                                     [3, 6, 12, 24], 7)
        assert (cfg.views, cfg.frames) == (4, 8)
    else:
        assert (cfg.image_size, cfg.embed_dim, cfg.depths, cfg.views, cfg.frames) == (64, 24, [2, 2], 4, 4)
        net = D.DeProPoseNet(cfg)
        assert net.encoder.grid == 8 and net.block == 8


def test_score_runs_the_trained_model_on_a_generated_image_benchmark(trained, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from corrupt_bench.cli import app
    from corrupt_bench.generate.run import generate

    bench = tmp_path / "demo-weak-sync"
    generate("demo-weak-sync", bench, show_progress=False, cache=tmp_path / "cache")
    result = CliRunner().invoke(app, ["score", "--model", "deprope", "--checkpoint", str(trained), "--benchmark",
                                      str(bench), "--out", str(tmp_path / "run"), "--device", "cpu", "--workers", "0",
                                      "--resample"])  # the micro model trains at 50/4 fps; the variant is at 50
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert len(df) > 0 and df["error"].isna().all() and set(df["model"]) == {"deprope"}
    assert np.isfinite(df["mpjpe"]).all() and (df["n_nonfinite"] == 0).all() and (df["mpjpe"] < 2000).all()


@pytest.mark.slow
def test_a_noise_view_gets_the_lowest_fusion_weight(tmp_path):
    """After a short training (360 steps, ~6 min on 2 loaded cores) on the synthetic source, replacing one
    view's crops by noise gives that view the lowest fusion weight (predicted errors, no ground truth)."""
    from corrupt_bench.data.synth import write_synthetic

    torch.set_num_threads(2)
    data = write_synthetic(tmp_path / "raw", subjects=("S1", "S5", "S9"), seconds=2.0, divisor=4, seed=0, workers=2)
    cfg = {**MICRO, "train": {**MICRO["train"], "epochs": 6, "steps_per_epoch": 60, "batch_size": 8,
                              "noise_view": 0.5, "w_error": 0.5}}
    D.train_deprope(cfg, data, tmp_path / "ckpt", "cpu")
    state, meta = load_checkpoint(tmp_path / "ckpt")
    model = D.build_deprope(meta["config"], "cpu")
    model.load_state_dict(state)
    clips = D.ClipSet(data, ["S9"], model.cfg)
    rng = np.random.default_rng(5)
    hits = []
    for i in range(len(clips.index)):
        starts = list(range(0, clips.index[i].shape[1] - 2, 7))[:4]
        batch, _ = clips.harness_batch(i, starts, model.cfg.frames)
        bad = np.arange(len(starts)) % 4
        images = batch["images"].copy()
        for b, v in enumerate(bad):
            images[b, v] = rng.integers(0, 256, images.shape[2:], dtype=np.uint8)
        _, w = model.predict_with_weights({**batch, "images": images})
        hits.extend(w.mean(axis=2).argmin(axis=1) == bad)
    assert np.mean(hits) >= 0.9, hits
