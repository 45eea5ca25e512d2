"""tcn-lifter: CA-Conv, TAGN, training on a tiny synthetic source, checkpoints, the Predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from corrupt_bench.data.synth import write_synthetic
from corrupt_bench.models.checkpoint import load_checkpoint, load_config
from corrupt_bench.models.data import flip_pose, load_pose_sequences, normalize_screen
from corrupt_bench.models.loading import load_model
from corrupt_bench.models.registry import get_trainer, list_models
from corrupt_bench.models.tcn_lifter import ConfidenceAwareConv1d, TcnConfig, TemporalModel, tagn_noise

MICRO = {"filter_widths": [3, 3], "channels": 32, "dropout": 0.0, "batch_size": 32, "epochs": 3,
         "steps_per_epoch": 12, "lr": 0.003, "seed": 0}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    return write_synthetic(out, subjects=("S1", "S9"), actions=("walk",), seconds=1.0, divisor=8, seed=0, workers=1)


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("tcn") / "ckpt"
    torch.set_num_threads(2)
    result = get_trainer("tcn-lifter")(MICRO, data=synth, out=out, device="cpu")
    return result, out


def _batch(synth: Path, window: int, views: int = 1):
    seqs = load_pose_sequences(synth, ["S9"])[:views]
    kp = np.stack([s.joints_2d[:window] for s in seqs])[None]  # (1, V, T, 17, 2)
    conf = np.ones(kp.shape[:4], np.float32)
    return {"keypoints_2d": kp, "confidence": conf, "cameras": [s.camera for s in seqs],
            "view_valid": np.ones(kp.shape[:3], bool)}, seqs


def test_registered_with_a_trainer_and_configs_validate():
    assert "tcn-lifter" in list_models("tcn*")
    for name in ("tiny", "full"):
        cfg = TcnConfig(**load_config("tcn-lifter", name))
        assert cfg.ca_conv and cfg.tagn.enabled
    assert TcnConfig(**load_config("tcn-lifter", "tiny")).receptive_field == 27
    assert TcnConfig(**load_config("tcn-lifter", "full")).receptive_field == 243
    with pytest.raises(ValueError):
        TcnConfig(chanels=3)


def test_ca_conv_ignores_zero_confidence_inputs():
    gen = torch.Generator().manual_seed(0)
    conv = ConfidenceAwareConv1d(17, 2, 16, 3)
    x = torch.randn(2, 34, 9, generator=gen)
    c = torch.rand(2, 17, 9, generator=gen)
    c[0, 3, 4] = 0.0
    c[1, :, 2] = 0.0
    x2 = x.clone()
    x2[0, 6:8, 4] = torch.tensor([1e4, -1e4])  # joint 3 of sample 0 at frame 4
    x2[1, :, 2] = torch.randn(34, generator=gen) * 100  # every joint of sample 1 at frame 2
    x2[1, 0, 2] = float("nan")
    torch.testing.assert_close(conv(x, c), conv(x2, c), rtol=0, atol=0)
    x3 = x.clone()
    x3[0, 0, 4] += 1.0  # a joint with confidence > 0 does change the output
    assert not torch.equal(conv(x, c), conv(x3, c))
    # the whole network in eval mode too
    model = TemporalModel([3, 3], 16, 0.0, ca_conv=True).eval()
    xs, cs = torch.randn(2, 9, 17, 2, generator=gen), torch.rand(2, 9, 17, generator=gen)
    cs[:, 5, 10] = 0.0
    xs2 = xs.clone()
    xs2[:, 5, 10] = 50.0
    with torch.no_grad():
        torch.testing.assert_close(model(xs, cs), model(xs2, cs), rtol=0, atol=0)


def test_tagn_noise_has_the_drawn_sigma_and_is_correlated_in_time():
    rng = np.random.default_rng(0)
    n = tagn_noise(rng, (4, 400, 17, 2), np.array([0.0, 1.0, 5.0, 5.0]), 3.0)
    assert np.all(n[0] == 0)
    assert n[2].std() == pytest.approx(5.0, rel=0.1)
    lag1 = np.mean(n[2, 1:] * n[2, :-1]) / np.mean(n[2] ** 2)
    assert lag1 > 0.9  # white noise would give ~0
    assert not np.allclose(n[2], n[3])
    n2 = tagn_noise(np.random.default_rng(0), (4, 400, 17, 2), np.array([0.0, 1.0, 5.0, 5.0]), 3.0)
    np.testing.assert_array_equal(n, n2)


def test_training_lowers_the_loss_and_writes_a_checkpoint(trained):
    result, out = trained
    assert result.epochs_run == MICRO["epochs"]
    assert result.last_loss < 0.8 * result.first_loss
    assert (out / "model.safetensors").is_file() and (out / "train_log.csv").is_file()


def test_save_load_predict_is_identical(trained, synth):
    _, out = trained
    state, meta = load_checkpoint(out)
    assert meta["model"] == "tcn-lifter"
    a = load_model("tcn-lifter", config=meta["config"], device="cpu").model
    a.module.load_state_dict(state)
    b = load_model("tcn-lifter", config=meta["config"], device="cpu").model
    b.module.load_state_dict(load_checkpoint(out / "model.safetensors")[0])
    batch, seqs = _batch(synth, a.input_spec.window, views=2)
    pa, pb = a.predict(batch), b.predict(batch)
    assert pa.shape == (1, 2, a.input_spec.window, 17, 3)
    np.testing.assert_array_equal(pa, pb)
    assert np.all(pa[..., 0, :] == 0)
    fresh = load_model("tcn-lifter", config=meta["config"], device="cpu").model
    assert not np.array_equal(fresh.predict(batch), pa)


def test_flip_averaging_makes_the_prediction_mirror_equivariant(trained, synth):
    _, out = trained
    state, meta = load_checkpoint(out)
    model = load_model("tcn-lifter", config=meta["config"], device="cpu").model
    model.module.load_state_dict(state)
    seq = load_pose_sequences(synth, ["S9"])[0]
    x = normalize_screen(seq.joints_2d[:9], seq.camera.width, seq.camera.height)[None].astype(np.float32)
    conf = np.ones(x.shape[:3], np.float32)
    direct = model.lift(flip_pose(x), conf)
    mirrored = flip_pose(model.lift(x, conf))
    np.testing.assert_allclose(direct, mirrored, atol=1e-3)


def test_predictor_handles_missing_keypoints(trained, synth):
    _, out = trained
    state, meta = load_checkpoint(out)
    model = load_model("tcn-lifter", config=meta["config"], device="cpu").model
    model.module.load_state_dict(state)
    batch, _ = _batch(synth, model.input_spec.window)
    batch["keypoints_2d"][0, 0, 3, 5] = np.nan
    pred = model.predict(batch)
    assert np.all(np.isfinite(pred))


def test_cli_train_resumes_a_finished_run(synth, tmp_path):
    from corrupt_bench.cli import app

    cfg_path = tmp_path / "micro.yaml"
    cfg_path.write_text(yaml.safe_dump({**MICRO, "epochs": 1, "steps_per_epoch": 3}))
    out = tmp_path / "run"
    runner = CliRunner()
    args = ["train", "tcn-lifter", "--config", str(cfg_path), "--data", str(synth), "--out", str(out), "--device", "cpu"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "checkpoint" in first.output
    log = (out / "train_log.csv").read_text().splitlines()
    assert len(log) == 2
    again = runner.invoke(app, [*args, "--epochs", "1"])
    assert again.exit_code == 0, again.output
    assert len((out / "train_log.csv").read_text().splitlines()) == 2  # nothing left to train


def test_scores_through_the_cli(trained, synth, tmp_path):
    import pandas as pd

    from corrupt_bench.cli import app

    _, ckpt = trained
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["score", "--model", "tcn-lifter", "--checkpoint", str(ckpt), "--benchmark", str(synth),
                                      "--out", str(run), "--device", "cpu", "--workers", "0"])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(run / "results.parquet")
    assert len(df) > 0 and df["error"].isna().all()
    assert set(df["input_2d"]) == {"labels"} and "S9" in set(df["subject"])  # a raw source: its clean 2D labels
    assert np.all(np.isfinite(df["mpjpe"])) and np.all(df["mpjpe"] > 0) and (df["n_nonfinite"] == 0).all()


def test_swap_sides_exchanges_left_and_right_over_a_span_with_lower_confidence():
    from corrupt_bench.data.skeleton import JOINTS_LEFT, JOINTS_RIGHT
    from corrupt_bench.models.tcn_lifter import swap_sides

    px = np.random.default_rng(0).normal(size=(8, 9, 17, 2))
    conf = np.ones((8, 9, 17))
    out, c = swap_sides(px, conf, 1.0, 0.4, np.random.default_rng(1))
    changed = np.any(out != px, axis=-1)  # (B, T, 17)
    assert changed.any() and not changed[..., [0, 7, 8, 9, 10]].any()
    for left, right in zip(JOINTS_LEFT, JOINTS_RIGHT, strict=True):
        swapped = changed[..., left]
        np.testing.assert_array_equal(swapped, changed[..., right])
        np.testing.assert_array_equal(out[..., left, :][swapped], px[..., right, :][swapped])
        assert np.all(c[..., left][swapped] == 0.4) and np.all(c[..., left][~swapped] == 1.0)
    same, c0 = swap_sides(px, conf, 0.0, 0.4, np.random.default_rng(1))
    np.testing.assert_array_equal(same, px)
