"""detector2d: heatmap decoding, augmentation, training on a tiny synthetic source, checkpoints, the cache."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from corrupt_bench.data.crop import from_crop
from corrupt_bench.data.skeleton import FLIP_PERMUTATION
from corrupt_bench.data.synth import write_synthetic
from corrupt_bench.harness.detections import cached_detections
from corrupt_bench.layout import DETECTIONS_DIR
from corrupt_bench.models.checkpoint import load_checkpoint, load_config
from corrupt_bench.models.data import load_crops
from corrupt_bench.models.detector2d import DetectorConfig, augment, decode_heatmaps, gaussian_targets
from corrupt_bench.models.loading import load_detector, load_model
from corrupt_bench.models.registry import get_trainer, list_models

MICRO = {"image_size": 32, "stem_channels": 8, "stage_channels": [8, 16], "blocks": [1, 1], "deconv_channels": 16,
         "crop_step": 5, "batch_size": 16, "epochs": 3, "steps_per_epoch": 8, "lr": 0.005, "seed": 0}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    return write_synthetic(out, subjects=("S1", "S9"), actions=("walk",), seconds=1.0, divisor=8, seed=0, workers=1)


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("det") / "ckpt"
    return get_trainer("detector2d")(MICRO, data=synth, out=out, device="cpu"), out


def test_registered_and_configs_validate():
    assert "detector2d" in list_models(kind="detector")
    tiny = DetectorConfig(**load_config("detector2d", "tiny"))
    full = DetectorConfig(**load_config("detector2d", "full"))
    assert (tiny.image_size, tiny.heatmap_size) == (64, 16) and (full.image_size, full.heatmap_size) == (256, 64)
    for cfg in (tiny, full, DetectorConfig(**MICRO)):
        det = load_model("detector2d", config=cfg.model_dump(), device="cpu").model
        hm = det.heatmaps(np.zeros((1, cfg.image_size, cfg.image_size, 3), np.uint8))
        assert hm.shape == (1, 17, cfg.heatmap_size, cfg.heatmap_size)


def test_decoding_recovers_sub_pixel_peaks_and_confidence():
    rng = np.random.default_rng(0)
    stride, size = 4, 16
    crop_px = rng.uniform(4, 58, size=(3, 17, 2)).astype(np.float32)
    maps, weights = gaussian_targets((crop_px + 0.5) / stride - 0.5, size, 1.5)
    assert np.all(weights == 1)
    xy, conf = decode_heatmaps(maps * 0.8, stride)
    assert np.max(np.abs(xy - crop_px)) < 0.5  # a quarter of a heatmap cell at worst (parabola on a Gaussian)
    assert np.mean(np.abs(xy - crop_px)) < 0.25
    np.testing.assert_allclose(conf, 0.8, atol=0.1)
    xy0, conf0 = decode_heatmaps(np.zeros((1, 17, size, size), np.float32), stride)
    assert np.all(conf0 == 0)
    off = gaussian_targets(np.array([[[-5.0, 3.0]] * 17], np.float32), size, 1.0)[1]
    assert np.all(off == 0)


def test_augmentation_moves_labels_with_the_pixels_and_swaps_sides_on_flip():
    cfg = DetectorConfig(augment={"scale": 0.2, "shift": 0.1, "rotation_deg": 20, "flip_p": 1.0, "colour": 0.0})
    size = 64
    joints = np.full((1, 17, 2), 32.0)
    joints[0, 1] = (20.0, 25.0)  # right hip: the only painted joint
    img = np.zeros((1, size, size, 3), np.uint8)
    cv2.circle(img[0], (20, 25), 2, (255, 255, 255), -1)
    out, lab = augment(img, joints, cfg, np.random.default_rng(1))
    left_hip = FLIP_PERMUTATION[1]
    x, y = lab[0, left_hip]
    ys, xs = np.nonzero(out[0, ..., 0] > 128)
    assert abs(xs.mean() - x) < 1.0 and abs(ys.mean() - y) < 1.0
    again = augment(img, joints, cfg, np.random.default_rng(1))
    np.testing.assert_array_equal(again[0], out)


def test_training_lowers_the_loss(trained):
    result, out = trained
    assert result.epochs_run == MICRO["epochs"]
    assert result.last_loss < 0.7 * result.first_loss
    assert (out / "train_log.csv").read_text().count("\n") == MICRO["epochs"] + 1


def test_save_load_detect_is_identical(trained, synth):
    _, out = trained
    crops = load_crops(synth, ["S9"], size=32, step=10, margin=0.2)
    state, meta = load_checkpoint(out)
    a = load_model("detector2d", config=meta["config"], device="cpu").model
    a.module.load_state_dict(state)
    b = load_detector(out, "cpu").model
    xa, ca = a.detect(crops.images)
    xb, cb = b.detect(crops.images)
    assert xa.shape == (len(crops), 17, 2) and ca.shape == (len(crops), 17)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ca, cb)
    assert np.all((ca >= 0) & (ca <= 1))
    untrained = load_model("detector2d", config=meta["config"], device="cpu").model
    assert not np.array_equal(untrained.detect(crops.images)[0], xa)
    # larger input images are resized and the keypoints mapped back to their pixels
    big = np.stack([cv2.resize(im, (64, 64), interpolation=cv2.INTER_LINEAR) for im in crops.images])
    xbig, _ = a.detect(big)
    xs, _ = a.detect(np.stack([cv2.resize(im, (32, 32), interpolation=cv2.INTER_AREA) for im in big]))
    np.testing.assert_allclose(xbig, (xs + 0.5) * 2 - 0.5, atol=1e-4)


def test_cached_detections_map_to_full_frame_and_reuse_the_cache(trained, synth, tmp_path):
    _, ckpt = trained
    loaded = load_detector(ckpt, "cpu")
    run = tmp_path / "run"
    crops = load_crops(synth, ["S9"], size=32, step=10, margin=0.2, cameras=["54138969", "60457274"])
    bench = tmp_path / "bench"
    rel = []
    for i in range(len(crops)):
        p = Path("v") / "blur" / "1" / "images" / f"S9_{crops.sequences[i]}.{crops.cameras[i].camera_id}" / f"{crops.frames[i]:06d}.png"
        (bench / p).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(bench / p), crops.images[i][..., ::-1])
        rel.append(str(p))
    labels = pd.DataFrame({
        "variant": "v", "corruption": "blur", "severity": np.int8(1), "subject": "S9",
        "sequence": list(crops.sequences), "camera": [c.camera_id for c in crops.cameras],
        "frame": crops.frames, "image": rel, "crop": list(crops.crops), "image_size": [np.array([32, 32])] * len(crops),
    })
    labels.loc[1, "image"] = None  # a dropped view: no image, no detection
    det = cached_detections(run, loaded.identity, bench, labels, loaded.model)
    assert list(det.columns[-4:]) == ["camera", "frame", "keypoints_2d", "keypoint_conf"]
    assert len(det) == len(labels)
    xy, conf = loaded.model.detect(crops.images[:1])
    np.testing.assert_allclose(np.asarray(det["keypoints_2d"][0]).reshape(17, 2),
                               from_crop(xy[0].astype(np.float64), crops.crops[0], 32), atol=1e-3)
    np.testing.assert_allclose(det["keypoint_conf"][0], conf[0], atol=1e-6)
    assert np.all(np.isnan(det["keypoints_2d"][1])) and np.all(det["keypoint_conf"][1] == 0)
    cache = run / DETECTIONS_DIR / loaded.identity / "v" / "blur" / "1" / f"S9_{crops.sequences[0]}.parquet"
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns
    for p in rel:  # the images are gone: a second call must be served from the cache
        if p:
            (bench / p).unlink()
    again = cached_detections(run, loaded.identity, bench, labels, loaded.model)
    assert cache.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(np.stack(again["keypoints_2d"][2:]), np.stack(det["keypoints_2d"][2:]))
