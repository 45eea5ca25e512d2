"""DTF: occlusion-guidance filler, network, training on the synthetic source, checkpoints, scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corrupt_bench.models import dtf
from corrupt_bench.models.checkpoint import load_checkpoint, save_checkpoint
from corrupt_bench.models.loading import load_model

MICRO = {
    "frames": 9, "channels": 16, "generator_layers": 1, "generator_heads": 3, "view_heads": 2,
    "mlp_ratio": 2.0, "dropout": 0.0, "fill_window": 4, "lr": 0.003, "lr_decay": 1.0,
    "batch_size": 8, "steps_per_epoch": 12, "epochs": 3, "seed": 0,
}  # fmt: skip


# ---------------------------------------------------------------------------------------- filler


def test_fill_occluded_follows_the_papers_confidence_rule_on_a_hand_made_sequence():
    """Past neighbour at distance d: c_src - d / fp; future: c_src - d / ff (fp = 4, ff = 2 here)."""
    t, past, future = 9, 4, 2
    xy = np.zeros((t, 2, 2))
    xy[:, 0] = np.arange(t)[:, None] * [1.0, 10.0]  # joint 0 at (f, 10 f) in frame f
    xy[:, 1] = np.arange(t)[:, None] * [-1.0, 5.0]
    conf = np.zeros((t, 2))
    conf[0, 0], conf[3, 0] = 1.0, 0.9  # joint 0 visible only in frames 0 and 3
    conf[:, 1] = [0.8, 0.9, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    xy[1, 1] = np.nan  # joint 1, frame 1: a NaN coordinate with a positive confidence is missing too
    xy[5, 0] = np.nan  # garbage under a missing joint must not leak

    out_xy, out_c = dtf.fill_occluded(xy, conf, past, future)

    # frame: (source frame, confidence) of joint 0, worked out by hand
    expected = {
        0: (0, 1.0),  # visible
        1: (0, 1.0 - 1 / 4),  # past neighbour at 1 (the future one, frame 2, is missing)
        2: (3, 0.9 - 1 / 2),  # past frame 1 missing: the future neighbour at 1, reduced by 1/ff
        3: (3, 0.9),  # visible
        4: (3, 0.9 - 1 / 4),  # past at 1
        5: (3, 0.9 - 2 / 4),  # past at 2
        6: (3, 0.9 - 3 / 4),  # past at 3 (frame 3 is the nearest; the future is beyond ff)
        7: (3, 0.0),  # past at 4 = fp: 0.9 - 1 floored at 0
    }
    for frame, (src, c) in expected.items():
        np.testing.assert_array_equal(out_xy[frame, 0], [src, 10.0 * src])
        assert out_c[frame, 0] == pytest.approx(c, abs=1e-12)
    # frame 8: frame 3 is 5 > fp frames back, nothing ahead -> zeros, confidence 0
    np.testing.assert_array_equal(out_xy[8, 0], [0.0, 0.0])
    assert out_c[8, 0] == 0.0
    # joint 1, frame 1: past (frame 0) and future (frame 2) neighbours both visible at distance 1:
    # the mean of their coordinates and of their reduced confidences
    np.testing.assert_allclose(out_xy[1, 1], [-1.0, 5.0])
    assert out_c[1, 1] == pytest.approx(((0.8 - 1 / 4) + (0.6 - 1 / 2)) / 2)
    keep = [0, 2, 3, 4, 5, 6, 7, 8]
    np.testing.assert_array_equal(out_xy[keep, 1], xy[keep, 1])
    np.testing.assert_array_equal(out_c[keep, 1], conf[keep, 1])
    assert np.isfinite(out_xy).all()
    # one window for both sides by default
    sym_xy, sym_c = dtf.fill_occluded(xy, conf, 2)
    assert sym_c[2, 0] == pytest.approx(0.9 - 1 / 2) and sym_c[4, 0] == pytest.approx(0.9 - 1 / 2)


def test_fill_occluded_batches_like_single_sequences():
    rng = np.random.default_rng(3)
    xy = rng.normal(size=(2, 3, 11, 17, 2))
    conf = rng.uniform(0.2, 1.0, size=(2, 3, 11, 17)) * (rng.random((2, 3, 11, 17)) > 0.4)
    bxy, bc = dtf.fill_occluded(xy, conf, 3)
    for i in range(2):
        for j in range(3):
            sxy, sc = dtf.fill_occluded(xy[i, j], conf[i, j], 3)
            np.testing.assert_array_equal(bxy[i, j], sxy)
            np.testing.assert_array_equal(bc[i, j], sc)
    assert (bc[conf > 0] == conf[conf > 0]).all()


# ---------------------------------------------------------------------------------------- network


def test_network_shapes_flip_and_root():
    cfg = dtf.DTFConfig.model_validate(MICRO)
    net = dtf.DTFNet(cfg).eval()
    x = torch.randn(3, cfg.frames, 17, 3)
    y = net(x)
    assert y.shape == (3, cfg.frames, 17, 3)
    assert torch.all(y[:, :, 0] == 0)
    torch.testing.assert_close(dtf.flip_2d(dtf.flip_2d(x)), x)
    assert not torch.equal(dtf.flip_2d(x), x)
    with pytest.raises(ValueError, match="divisible"):
        dtf.DTFNet(dtf.DTFConfig(frames=10, generator_heads=9))


def test_full_config_builds_with_the_paper_sizes():
    from corrupt_bench.models.checkpoint import load_config

    full = dtf.DTFConfig.model_validate(load_config("dtf", "full"))
    tiny = dtf.DTFConfig.model_validate(load_config("dtf", "tiny"))
    assert (full.frames, full.channels, full.generator_heads) == (351, 512, 9)
    assert (tiny.frames, tiny.channels) == (27, 64)
    assert full.frames % full.generator_heads == 0 and tiny.frames % tiny.generator_heads == 0


# ---------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from corrupt_bench.data.synth import write_synthetic

    # one folder shared by the dtf and syncdiffpose tests (write_synthetic skips what is already written)
    return write_synthetic(tmp_path_factory.getbasetemp() / "synth_S1_S9_walk_1s", subjects=("S1", "S9"),
                           actions=("walk",), seconds=1.0, divisor=20, seed=0, workers=1)


@pytest.fixture(scope="module")
def trained(synthetic, tmp_path_factory):
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("dtf_ckpt")
    result = dtf.train(MICRO, synthetic, out, device="cpu")
    return out, result


def _batch(synthetic, frames: int) -> dict:
    from corrupt_bench.models.data import load_pose_sequences

    seq = load_pose_sequences(synthetic, ["S9"], cameras=["54138969"])[0]
    kp = seq.joints_2d[None, None, :frames].astype(np.float64)
    conf = np.ones(kp.shape[:-1])
    conf[..., 2:5, 13] = 0.0  # a wrist hidden for three frames
    return {"keypoints_2d": kp, "confidence": conf, "cameras": [seq.camera],
            "view_valid": np.ones(kp.shape[:3], bool)}, seq


def test_training_lowers_the_loss(trained):
    out, result = trained
    assert result.epochs_run == MICRO["epochs"]
    assert result.last_loss < 0.8 * result.first_loss
    assert (out / "model.safetensors").is_file() and (out / "train_log.csv").is_file()


def test_save_load_predict_identical(trained, synthetic, tmp_path):
    out, _ = trained
    state, meta = load_checkpoint(out)
    first = load_model("dtf", config=meta["config"], device="cpu").model
    first.module.load_state_dict(state)
    batch, seq = _batch(synthetic, MICRO["frames"])
    pred = first.predict(batch)
    assert pred.shape == (1, 1, MICRO["frames"], 17, 3)
    save_checkpoint(tmp_path / "again", "dtf", meta["config"], first.module.state_dict())
    state2, meta2 = load_checkpoint(tmp_path / "again")
    second = load_model("dtf", config=meta2["config"], device="cpu").model
    second.module.load_state_dict(state2)
    np.testing.assert_array_equal(second.predict(batch), pred)
    untrained = load_model("dtf", config=meta["config"], device="cpu").model
    assert not np.allclose(untrained.predict(batch), pred)
    # the trained model is far better than an untrained one on the held-out subject
    gt = seq.joints_3d_cam[: MICRO["frames"]] - seq.joints_3d_cam[: MICRO["frames"], :1]
    err = np.linalg.norm(pred[0, 0] - gt, axis=-1).mean()
    err0 = np.linalg.norm(untrained.predict(batch)[0, 0] - gt, axis=-1).mean()
    assert err < err0


def test_score_cli_runs_dtf(trained, synthetic, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from corrupt_bench.cli import app

    out, _ = trained
    result = CliRunner().invoke(app, ["score", "--model", "dtf", "--checkpoint", str(out), "--benchmark",
                                      str(synthetic), "--out", str(tmp_path / "run"), "--device", "cpu",
                                      "--workers", "0"])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert len(df) > 0 and "S9" in set(df["subject"])
    assert np.isfinite(df["mpjpe"]).all() and (df["mpjpe"] > 0).all()


@pytest.mark.slow
def test_full_config_one_training_step_on_cpu():
    from corrupt_bench.models.checkpoint import load_config

    cfg = dtf.DTFConfig.model_validate(load_config("dtf", "full"))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = dtf.DTFNet(cfg)
        x, y = torch.randn(2, cfg.frames, 17, 3), torch.randn(2, cfg.frames, 17, 3) * 0.2
    opt = torch.optim.Adam(net.parameters(), amsgrad=True)
    loss = dtf.mpjpe_loss(net(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and net(x).shape == (2, 351, 17, 3)
