"""SyncDiffPose: seeded sampling, hypothesis averaging, desync interpolation, training, checkpoints, scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corrupt_bench.data.cameras import CAMERA_IDS, get_camera
from corrupt_bench.models import syncdiffpose as sdp
from corrupt_bench.models.checkpoint import load_checkpoint, save_checkpoint
from corrupt_bench.models.loading import load_model

MICRO = {
    "token_dim": 16, "cond_layers": 1, "dim": 16, "depth": 1, "heads": 2, "diffusion_steps": 100,
    "sampling_steps": 3, "hypotheses": 4, "seed": 0, "desync_frames": 1.5, "lr": 0.003, "lr_decay": 1.0,
    "batch_size": 16, "steps_per_epoch": 12, "epochs": 3, "nll_weight": 0.1,
}  # fmt: skip


def _random_batch(rng: np.random.Generator, b: int = 3) -> dict:
    cameras = [get_camera("S9", c) for c in CAMERA_IDS]
    kp = rng.uniform(100, 900, size=(b, 4, 1, 17, 2))
    conf = rng.uniform(0.3, 1.0, size=(b, 4, 1, 17))
    valid = np.ones((b, 4, 1), bool)
    valid[0, 2] = False
    return {"keypoints_2d": kp, "confidence": conf, "cameras": cameras, "view_valid": valid}


def _predictor(config: dict):
    with torch.random.fork_rng():
        torch.manual_seed(1)
        return load_model("syncdiffpose", config=config, device="cpu").model


def test_sampling_is_deterministic_under_the_seed():
    batch = _random_batch(np.random.default_rng(0))
    p = _predictor(MICRO)
    a, b = p.predict(batch), p.predict(batch)
    np.testing.assert_array_equal(a, b)
    other = _predictor({**MICRO, "seed": 1})
    other.module.load_state_dict(p.module.state_dict())
    assert not np.allclose(other.predict(batch), a)


@pytest.mark.parametrize("frame", ["world", "reference"])
def test_returned_pose_is_the_mean_of_the_hypotheses_in_each_camera(frame):
    batch = _random_batch(np.random.default_rng(1))
    p = _predictor({**MICRO, "frame": frame})
    mean, hyps, r_ref = p.sample(batch)
    assert hyps.shape == (3, MICRO["hypotheses"], 17, 3)
    assert np.abs(hyps - hyps.mean(1, keepdims=True)).max() > 1e-3  # the hypotheses differ
    np.testing.assert_allclose(mean, hyps.mean(1), atol=1e-4)
    pred = p.predict(batch)
    assert pred.shape == (3, 4, 1, 17, 3)
    for v, cam in enumerate(batch["cameras"]):
        expected = np.einsum("bij,bkj->bki", cam.R[None] @ r_ref.transpose(0, 2, 1), hyps.mean(1))
        np.testing.assert_allclose(pred[:, v, 0], expected, atol=1e-3)
    np.testing.assert_array_equal(pred[:, :, :, 0], 0.0 * pred[:, :, :, 0])  # root-relative
    if frame == "reference":  # sample 0 has view 2 dropped, views 0.. valid: the reference is camera 0
        np.testing.assert_allclose(r_ref[0], batch["cameras"][0].R)
        np.testing.assert_allclose(pred[:, 0, 0], hyps.mean(1), atol=1e-3)


@pytest.mark.parametrize("frame", ["world", "reference"])
def test_reference_frames_round_trip_to_camera_frame_ground_truth(frame):
    from corrupt_bench.data.cameras import world_to_camera

    cams = [get_camera("S1", c) for c in CAMERA_IDS]
    rng = np.random.default_rng(2)
    world = rng.normal(size=(5, 17, 3)) * 300 + [0, 0, 1000]
    valid = np.ones((5, 4), bool)
    valid[1, 0] = valid[2, :2] = False
    r_ref, c_ref = sdp.reference_frames(cams, valid, frame)
    if frame == "reference":
        np.testing.assert_allclose(r_ref[2], cams[2].R)
        np.testing.assert_allclose(c_ref[1], cams[1].position)
    rel = world - world[:, :1]
    pose_ref = np.einsum("bij,bkj->bki", r_ref, rel)  # how the trainer builds its target
    views = sdp.to_views(pose_ref, cams, r_ref)
    for v, c in enumerate(cams):
        in_cam = world_to_camera(world, c)
        np.testing.assert_allclose(views[:, v], in_cam - in_cam[:, :1], atol=1e-9)
    feats = sdp.camera_features(cams, r_ref, c_ref)
    assert feats.shape == (5, 4, 12)
    if frame == "reference":  # the reference view sees itself: identity rotation, zero offset
        np.testing.assert_allclose(feats[2, 2], np.r_[np.eye(3).ravel(), 0, 0, 0], atol=1e-6)


def test_interpolate_sequence_at_subframe_times():
    seq = np.arange(5, dtype=np.float64)[:, None, None] * np.array([[1.0, 10.0]])  # (5, 1, 2)
    out = sdp.interpolate_sequence(seq, np.array([0.0, 1.25, 3.5, -2.0, 7.0]))
    np.testing.assert_allclose(out[:, 0], [[0, 0], [1.25, 12.5], [3.5, 35.0], [0, 0], [4, 40]])


def test_desync_batch_shifts_each_view_by_its_offset():
    from corrupt_bench.models.data import MultiViewSequence

    n = 20
    j2d = np.stack([np.arange(n, dtype=np.float64)[:, None, None] * (v + 1) * np.ones((n, 17, 2))
                    for v in range(4)])
    seq = MultiViewSequence("S1", "x", "Walking", [get_camera("S1", c) for c in CAMERA_IDS], j2d,
                            np.zeros((4, n, 17, 3)), np.zeros((n, 17, 3)))
    kp, offsets = sdp.desync_batch([seq], np.zeros(6, np.int64), np.full(6, 10), 2.0, np.random.default_rng(0))
    assert np.abs(offsets).max() <= 2.0 and np.abs(offsets).min() > 0
    for v in range(4):
        np.testing.assert_allclose(kp[:, v, 0, 0], (10 + offsets[:, v]) * (v + 1))


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
    out = tmp_path_factory.mktemp("sdp_ckpt")
    return out, sdp.train(MICRO, synthetic, out, device="cpu")


def _batch(synthetic):
    from corrupt_bench.models.data import load_multiview

    seq = load_multiview(synthetic, ["S9"])[0]
    frames = np.arange(0, seq.n_frames, 7)
    kp = seq.joints_2d[:, frames].transpose(1, 0, 2, 3)[:, :, None].astype(np.float64)
    batch = {"keypoints_2d": kp, "confidence": np.ones(kp.shape[:-1]), "cameras": seq.cameras,
             "view_valid": np.ones(kp.shape[:3], bool)}
    gt = seq.joints_3d_cam[:, frames].transpose(1, 0, 2, 3)
    return batch, gt - gt[..., :1, :]


def test_training_lowers_the_loss(trained):
    import pandas as pd

    out, result = trained
    assert result.epochs_run == MICRO["epochs"]
    log = pd.read_csv(out / "train_log.csv")  # the loss holds a Gaussian NLL (may be < 0): check its MPJPE part
    assert log["mpjpe_mm"].iloc[-1] < 0.8 * log["mpjpe_mm"].iloc[0]
    assert result.last_loss < result.first_loss
    assert (out / "model.safetensors").is_file() and (out / "train_log.csv").is_file()


def test_save_load_predict_identical(trained, synthetic, tmp_path):
    out, _ = trained
    state, meta = load_checkpoint(out)
    first = load_model("syncdiffpose", config=meta["config"], device="cpu").model
    first.module.load_state_dict(state)
    batch, gt = _batch(synthetic)
    pred = first.predict(batch)
    assert pred.shape == (len(gt), 4, 1, 17, 3)
    save_checkpoint(tmp_path / "again", "syncdiffpose", meta["config"], first.module.state_dict())
    state2, meta2 = load_checkpoint(tmp_path / "again")
    second = load_model("syncdiffpose", config=meta2["config"], device="cpu").model
    second.module.load_state_dict(state2)
    np.testing.assert_array_equal(second.predict(batch), pred)
    untrained = _predictor(meta["config"])
    err = np.linalg.norm(pred[:, :, 0] - gt, axis=-1).mean()
    err0 = np.linalg.norm(untrained.predict(batch)[:, :, 0] - gt, axis=-1).mean()
    assert err < err0


def test_score_cli_runs_syncdiffpose(trained, synthetic, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from corrupt_bench.cli import app

    out, _ = trained
    result = CliRunner().invoke(app, ["score", "--model", "syncdiffpose", "--checkpoint", str(out), "--benchmark",
                                      str(synthetic), "--out", str(tmp_path / "run"), "--device", "cpu",
                                      "--workers", "0"])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert len(df) > 0 and "S9" in set(df["subject"])
    assert np.isfinite(df["mpjpe"]).all() and (df["mpjpe"] > 0).all()


@pytest.mark.slow
def test_full_config_one_training_step_and_sampling_on_cpu():
    from corrupt_bench.models.checkpoint import load_config

    config = load_config("syncdiffpose", "full")
    predictor = _predictor(config)
    net = predictor.module
    rng = np.random.default_rng(0)
    kp = torch.from_numpy(rng.normal(size=(4, 4, 17, 3)).astype(np.float32))
    cam = torch.from_numpy(rng.normal(size=(4, 4, 12)).astype(np.float32))
    losses = net.training_losses(kp, cam, torch.ones(4, 4, dtype=torch.bool), torch.zeros(4, 17, 3))
    (losses["mpjpe"] + losses["nll"]).backward()
    pred = predictor.predict(_random_batch(rng))
    assert pred.shape == (3, 4, 1, 17, 3) and np.isfinite(pred).all()
