"""Contract tests parametrised over the registry: a new corruption gets them without being named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from engine_frames import keypoints_only, output_bytes, test_clip
from skimage.metrics import structural_similarity

from corrupt_bench.engine import corrupt_clip, get_corruption, list_corruptions
from corrupt_bench.engine.base import SEVERITIES
from corrupt_bench.errors import UserError

CORRUPTIONS = [c.name for c in list_corruptions()]


def _clip_for(name: str):
    c = get_corruption(name)
    if c.family.effect == "offset":
        return test_clip(n_views=2, n_frames=3, size=64)
    if c.modality == "keypoint":
        return test_clip(n_views=2, n_frames=3, size=64)
    return test_clip(n_views=2, n_frames=2, size=96)


def test_registry_is_complete():
    expected = {
        "gaussian_noise", "salt_pepper", "speckle_noise", "shot_noise", "block_dropout", "voc_occluder",
        "motion_blur", "random_erase", "temporal_occlusion", "view_drop", "subframe_desync", "joint_dropout",
        "keypoint_jitter", "defocus_blur", "brightness", "contrast", "jpeg_compression", "pixelate",
    }  # fmt: skip
    assert set(CORRUPTIONS) == expected
    for c in list_corruptions():
        assert sorted(c.table) == list(SEVERITIES)
        assert c.version >= 1 and c.description and c.source
        assert set(c.applies_to) == {"person_crop", "full_frame"}
        assert c.modality in ("pixel", "temporal", "multi-view", "keypoint")


def test_unknown_name_suggests():
    with pytest.raises(UserError, match="did you mean 'gaussian_noise'"):
        get_corruption("gausian_noise")


def test_unknown_severity():
    clip = test_clip()
    with pytest.raises(UserError, match="severity 6"):
        corrupt_clip(clip, "gaussian_noise", 6, 0)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_same_key_same_bytes(name):
    clip = _clip_for(name)
    a, ra = corrupt_clip(clip, name, 3, 1234)
    b, rb = corrupt_clip(clip, name, 3, 1234)
    assert output_bytes(a, ra) == output_bytes(b, rb)
    assert json.dumps(ra.params) == json.dumps(rb.params)  # params are JSON-serialisable


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_other_key_other_output(name):
    if not get_corruption(name).family.stochastic:
        pytest.skip("deterministic corruption: no random draw")
    clip = _clip_for(name)
    a, ra = corrupt_clip(clip, name, 4, 1)
    b, rb = corrupt_clip(clip, name, 4, 2)
    assert output_bytes(a, ra) != output_bytes(b, rb) or json.dumps(ra.params) != json.dumps(rb.params)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_dtype_shape_and_input_untouched(name):
    clip = _clip_for(name)
    before = clip.images.tobytes()
    out, rec = corrupt_clip(clip, name, 5, 7)
    assert clip.images.tobytes() == before
    assert out.images.dtype == np.uint8 and out.images.shape == clip.images.shape
    v, t = clip.n_views, clip.n_times
    assert rec.occluded.shape == (v, t, 17) and rec.occluded.dtype == bool
    assert rec.view_valid.shape == (v, t) and rec.time_offset.shape == (v,)
    assert rec.joints_2d.shape == (v, t, 17, 2)
    assert len(rec.params) == v and all(len(row) == t for row in rec.params)
    if rec.confidence is not None:
        assert rec.confidence.shape == (v, t, 17) and rec.confidence.dtype == np.float32


@pytest.mark.parametrize("name", [*CORRUPTIONS, "clean"])
def test_severity_zero_is_identity(name):
    clip = _clip_for(name) if name != "clean" else test_clip()
    out, rec = corrupt_clip(clip, name, 0, 3)
    assert out.images.tobytes() == clip.images.tobytes()
    assert np.array_equal(rec.joints_2d, clip.joints_2d)
    assert rec.view_valid.all() and not rec.occluded.any() and not rec.time_offset.any()


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


@pytest.mark.parametrize("name", [c.name for c in list_corruptions() if c.family.effect == "ssim"])
def test_ssim_decreases_with_severity(name):
    clip = test_clip(n_views=1, n_frames=1, size=128)
    clean = clip.images[0, 0]
    scores = [_ssim(clean, corrupt_clip(clip, name, s, 5)[0].images[0, 0]) for s in SEVERITIES]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert scores[0] < 0.999


@pytest.mark.parametrize("name", [c.name for c in list_corruptions() if c.family.effect == "occlusion"])
def test_hidden_joints_rise_with_severity(name):
    # 2 views x 48 frames spread over 9.4 s (several 3.2 s windows of temporal_occlusion)
    clip = test_clip(n_views=2, n_frames=48, size=48, start=0, step=10)
    fractions = [corrupt_clip(clip, name, s, 11)[1].occluded.mean() for s in SEVERITIES]
    assert all(a < b for a, b in zip(fractions, fractions[1:], strict=False)), fractions
    assert fractions[0] > 0


def _long_keypoint_clip():
    return keypoints_only(test_clip(n_views=4, n_frames=150, size=32, start=0, step=20, crop=True))


def test_view_invalid_fraction_rises():
    clip = _long_keypoint_clip()  # 60 s of 4 views
    fractions = [
        np.mean([1 - corrupt_clip(clip, "view_drop", s, seed)[1].view_valid.mean() for seed in range(4)])
        for s in SEVERITIES
    ]
    assert all(a < b for a, b in zip(fractions, fractions[1:], strict=False)), fractions


def test_desync_offset_rises():
    clip = keypoints_only(test_clip(n_views=4, n_frames=2, size=32))
    mags = [
        np.mean([np.abs(corrupt_clip(clip, "subframe_desync", s, seed)[1].time_offset).mean() for seed in range(10)])
        for s in SEVERITIES
    ]
    assert all(a < b for a, b in zip(mags, mags[1:], strict=False)), mags


@pytest.mark.parametrize("name", [c.name for c in list_corruptions() if c.family.effect == "keypoint"])
def test_keypoint_error_rises(name):
    clip = keypoints_only(test_clip(n_views=2, n_frames=60, size=64, start=0, step=5))
    errors = []
    for s in SEVERITIES:
        _, rec = corrupt_clip(clip, name, s, 3)
        errors.append(float(np.linalg.norm(rec.joints_2d - clip.joints_2d, axis=-1).mean()))
        assert rec.confidence is not None and ((rec.confidence >= 0) & (rec.confidence <= 1)).all()
    assert all(a < b for a, b in zip(errors, errors[1:], strict=False)), errors


LEGACY_RNG = re.compile(
    r"np\.random\.(seed|rand|randn|randint|random|normal|uniform|choice|shuffle|permutation|poisson|"
    r"RandomState|get_state|set_state|binomial|standard_normal|random_sample|beta|gamma|exponential)\b"
    r"|^\s*(import random\b|from random import)|cv2\.(setRNGSeed|randn|randu|randShuffle|theRNG)\b",
    re.MULTILINE,
)


def test_no_legacy_or_global_rng_in_package():
    package = Path(__file__).resolve().parents[1] / "corrupt_bench"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for match in LEGACY_RNG.finditer(path.read_text()):
            offenders.append(f"{path.relative_to(package.parent)}: {match.group(0).strip()}")
    assert not offenders, offenders


def test_legacy_rng_pattern_catches_offenders():
    assert LEGACY_RNG.search("x = np.random.normal(0, 1)")
    assert LEGACY_RNG.search("import random\n")
    assert LEGACY_RNG.search("cv2.setRNGSeed(3)")
    assert not LEGACY_RNG.search("rng = np.random.default_rng(3); np.random.Generator")
