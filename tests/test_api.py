"""The one-call API: `corrupt_bench.corrupt_image` and `corrupt_bench.corrupt_keypoints` are keyed
(same arguments, same bytes; another seed or key, other noise), give what the engine gives for the
same frame, and refuse anything but their documented input in one line."""

from __future__ import annotations

import numpy as np
import pytest

import corrupt_bench
from corrupt_bench.errors import UserError

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (96, 72, 3), dtype=np.uint8)
JOINTS = RNG.uniform(100, 900, (17, 2))


def test_exported_lazily_from_the_package():
    assert {"corrupt_image", "corrupt_keypoints"} <= set(corrupt_bench.__all__)
    from corrupt_bench.engine.api import corrupt_image

    assert corrupt_bench.corrupt_image is corrupt_image


@pytest.mark.parametrize("name", ["gaussian_noise", "motion_blur", "pixelate", "random_erase", "voc_occluder", "contrast"])
def test_same_arguments_same_bytes(name):
    first = corrupt_bench.corrupt_image(IMAGE, name, 3)
    assert first.dtype == np.uint8 and first.shape == IMAGE.shape and first is not IMAGE
    assert corrupt_bench.corrupt_image(IMAGE.copy(), name, 3, seed=0).tobytes() == first.tobytes()
    assert not np.array_equal(first, IMAGE)
    assert np.array_equal(corrupt_bench.corrupt_image(IMAGE, name, 0), IMAGE)  # severity 0: unchanged
    assert IMAGE.flags.writeable and not np.shares_memory(first, IMAGE)


def test_seed_and_key_change_the_draw_and_match_the_engine():
    from corrupt_bench.engine import RngKey, get_corruption

    a = corrupt_bench.corrupt_image(IMAGE, "gaussian_noise", 2)
    assert not np.array_equal(a, corrupt_bench.corrupt_image(IMAGE, "gaussian_noise", 2, seed=1))
    assert not np.array_equal(a, corrupt_bench.corrupt_image(IMAGE, "gaussian_noise", 2, key="other"))
    assert not np.array_equal(a, corrupt_bench.corrupt_image(IMAGE, "gaussian_noise", 2, frame_index=4))
    # the eight lines the call replaces: key, context, sample, apply
    from corrupt_bench.engine import FrameContext

    corruption = get_corruption("gaussian_noise")
    key = RngKey(0, "gaussian_noise", corruption.version, 2, "api", "image", "image", 0)
    ctx = FrameContext("api", "image", "image", 0, 1, 50.0, IMAGE.shape[:2], np.array([0.0, 0.0, 72, 96]),
                       np.full((17, 2), np.nan), key=key, keypoint_scale=0.096)  # fmt: skip
    expected = corruption.apply(IMAGE, corruption.sample(key.generator(), 2, ctx))
    np.testing.assert_array_equal(a, expected)


def test_keypoints_keyed_for_one_pose_and_a_sequence():
    points, confidence = corrupt_bench.corrupt_keypoints(JOINTS, "keypoint_jitter", 4)
    assert points.shape == (17, 2) and confidence.shape == (17,) and not np.allclose(points, JOINTS)
    again = corrupt_bench.corrupt_keypoints(JOINTS.tolist(), "keypoint_jitter", 4)
    assert again[0].tobytes() == points.tobytes() and again[1].tobytes() == confidence.tobytes()
    clip = np.stack([JOINTS] * 6)
    seq_points, seq_conf = corrupt_bench.corrupt_keypoints(clip, "keypoint_jitter", 4)
    assert seq_points.shape == (6, 17, 2) and seq_conf.shape == (6, 17)
    np.testing.assert_array_equal(seq_points[0], points)  # frame 0 is keyed the same alone or in a sequence
    dropped, conf = corrupt_bench.corrupt_keypoints(clip, "joint_dropout", 5)
    assert (conf == 0).any()
    # noise is stated in px of a 1000 px frame: a 500 px frame gets half of it
    half, _ = corrupt_bench.corrupt_keypoints(JOINTS, "keypoint_jitter", 4, image_width=500)
    np.testing.assert_allclose(half - JOINTS, (points - JOINTS) / 2, atol=1e-9)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: corrupt_bench.corrupt_image(IMAGE.astype(np.float32) / 255, "gaussian_noise", 3), r"image is float32, not uint8; convert it: \(image \* 255\)"),
        (lambda: corrupt_bench.corrupt_image(IMAGE[..., 0], "gaussian_noise", 3), "image is grayscale .* np.repeat"),
        (lambda: corrupt_bench.corrupt_image(IMAGE[..., :1], "gaussian_noise", 3), "1 channel"),
        (lambda: corrupt_bench.corrupt_image(np.dstack([IMAGE, IMAGE[..., :1]]), "gaussian_noise", 3), r"drop the alpha channel"),
        (lambda: corrupt_bench.corrupt_image(IMAGE[None], "gaussian_noise", 3), "must be H x W x 3"),
        (lambda: corrupt_bench.corrupt_image(IMAGE.tolist(), "gaussian_noise", 3), "must be a numpy array"),
        (lambda: corrupt_bench.corrupt_image(IMAGE, "gausian_noise", 3), "unknown corruption 'gausian_noise'; did you mean 'gaussian_noise'"),
        (lambda: corrupt_bench.corrupt_image(IMAGE, 3, 2), "name must be a corruption name"),
        (lambda: corrupt_bench.corrupt_image(IMAGE, "gaussian_noise", 6), "severity of 'gaussian_noise' must be an integer 0..5"),
        (lambda: corrupt_bench.corrupt_image(IMAGE, "gaussian_noise", 2.0), "must be an integer"),
        (lambda: corrupt_bench.corrupt_image(IMAGE, "gaussian_noise", True), "must be an integer"),
        (lambda: corrupt_bench.corrupt_image(IMAGE, "gaussian_noise", 2, seed=-1), "seed must be an integer"),
        (lambda: corrupt_bench.corrupt_image(IMAGE, "view_drop", 2), "multi-view corruption.*engine.corrupt_clip"),
        (lambda: corrupt_bench.corrupt_image(IMAGE, "keypoint_jitter", 2), "use corrupt_keypoints"),
        (lambda: corrupt_bench.corrupt_image(IMAGE, "random_erase", 2, person_box=[1, 2, 3]), "person_box must be finite"),
        (lambda: corrupt_bench.corrupt_keypoints(JOINTS, "gaussian_noise", 2), "use corrupt_image"),
        (lambda: corrupt_bench.corrupt_keypoints(JOINTS[:16], "keypoint_jitter", 2), r"shape \(17, 2\) or \(T, 17, 2\)"),
        (lambda: corrupt_bench.corrupt_keypoints(np.full((17, 2), np.nan), "keypoint_jitter", 2), "NaN"),
    ],
)
def test_bad_input_is_one_line(call, message):
    with pytest.raises(UserError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
