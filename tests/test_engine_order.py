"""Order independence and pinned golden digests.

Golden digests depend on numpy's Generator streams (stable for PCG64, but distributions may change
between numpy versions), on the OpenCV build (filters, JPEG codec), scipy (noise tables) and
scikit-image (the built-in occluder bank's images): they hold for `golden.ENGINE_VERSIONS` and are
skipped, naming both versions, on others. A change of these digests under the pinned versions must
be a benchmark version bump, so these tests fail loudly.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from engine_frames import output_bytes, test_clip
from golden import ENGINE_VERSIONS, require_versions

from corrupt_bench.engine import corrupt_clip, list_corruptions

ORDER_CORRUPTIONS = ("gaussian_noise", "motion_blur", "temporal_occlusion", "voc_occluder", "view_drop", "keypoint_jitter")


def _clip20():
    return test_clip(n_views=2, n_frames=20, size=48, start=100, step=7)


def _one_frame(args: tuple[str, int]) -> bytes:
    name, t = args
    clip = _clip20().select([t])
    out, rec = corrupt_clip(clip, name, 5, 99)
    return output_bytes(out, rec)


def _per_frame_bytes(out, rec) -> list[bytes]:
    return [output_bytes(out.select([t]), _record_at(rec, t)) for t in range(out.n_times)]


def _record_at(rec, t):
    from dataclasses import replace

    return replace(
        rec,
        joints_2d=rec.joints_2d[:, [t]],
        occluded=rec.occluded[:, [t]],
        view_valid=rec.view_valid[:, [t]],
        confidence=None if rec.confidence is None else rec.confidence[:, [t]],
    )


@pytest.mark.parametrize("name", ORDER_CORRUPTIONS)
def test_order_and_process_independence(name):
    clip = _clip20()
    whole = _per_frame_bytes(*corrupt_clip(clip, name, 5, 99))
    forwards = [_one_frame((name, t)) for t in range(20)]
    backwards = [_one_frame((name, t)) for t in reversed(range(20))][::-1]
    order = np.random.default_rng(0).permutation(20)
    shuffled = dict(zip(order.tolist(), [_one_frame((name, int(t))) for t in order], strict=True))
    assert forwards == whole
    assert backwards == whole
    assert [shuffled[t] for t in range(20)] == whole
    # pieces in reverse order (two halves) agree too
    halves = [corrupt_clip(clip.select(list(range(10, 20))), name, 5, 99), corrupt_clip(clip.select(list(range(10))), name, 5, 99)]
    assert _per_frame_bytes(*halves[1]) + _per_frame_bytes(*halves[0]) == whole
    assert len(set(whole)) > 1  # frames differ: the test can fail


def test_pool_of_two_gives_same_bytes():
    jobs = [(name, t) for name in ("gaussian_noise", "temporal_occlusion", "keypoint_jitter") for t in range(20)]
    local = [_one_frame(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=2) as pool:
        remote = list(pool.map(_one_frame, jobs[::-1]))[::-1]
    assert remote == local


def _digest(name: str, severity: int) -> str:
    """sha256 of everything the corruption produced (pixels, labels, flags, params) on 2 views x 3 frames."""
    clip = test_clip(n_views=2, n_frames=3, size=64, start=40, step=97)
    out, rec = corrupt_clip(clip, name, severity, 2026)
    params = json.dumps(rec.params, sort_keys=True).encode()
    return hashlib.sha256(output_bytes(out, rec) + params).hexdigest()[:16]


GOLDEN: dict[tuple[str, int], str] = {
    ("block_dropout", 3): "546b37cb7c250d2f",
    ("brightness", 3): "d961af73204cc4fd",
    ("contrast", 3): "13e205268121dd25",
    ("defocus_blur", 3): "a56a6cf903b54174",
    ("gaussian_noise", 3): "e4f8553a1ed00c59",
    ("joint_dropout", 3): "6cbd829766704740",
    ("jpeg_compression", 3): "5c85edac2d0a31ea",
    ("keypoint_jitter", 3): "0d5d1488c692fa0d",
    ("motion_blur", 3): "a09297bc81786757",
    ("pixelate", 3): "6bcdf9d491079992",
    ("random_erase", 3): "e048c2fb42097d67",
    ("salt_pepper", 3): "96cc6d3cf5cbf3ac",
    ("shot_noise", 3): "d6aca12500f57749",
    ("speckle_noise", 3): "b38c221639c2fdd0",
    ("subframe_desync", 3): "634d73f179339f27",
    ("temporal_occlusion", 3): "702b1bfa2a3b0365",
    ("view_drop", 3): "bbee22df3199caad",
    ("voc_occluder", 3): "3b218d5fdd97a842",
    ("gaussian_noise", 5): "458d70a9e63afc8d",
    ("voc_occluder", 5): "19efa0e42318b7b5",
    ("subframe_desync", 5): "6ff68a0fd7627710",
    ("view_drop", 5): "5a2fb4c358f4f328",
    ("temporal_occlusion", 5): "56d82258531ce55d",
}  # ENGINE_VERSIONS: numpy 2.4.x, opencv-python-headless 5.0.0, scipy 1.17.x, scikit-image 0.26.x


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_digests(case):
    require_versions(ENGINE_VERSIONS)
    assert _digest(*case) == GOLDEN[case]


def test_golden_covers_every_corruption():
    assert {name for name, _ in GOLDEN} == {c.name for c in list_corruptions()}


def test_golden_tests_are_skipped_naming_both_versions_on_other_libraries():
    from golden import version_mismatches

    from corrupt_bench.generate.lock import library_versions

    running = library_versions()["numpy"]
    assert version_mismatches({"numpy": running}) == []
    assert version_mismatches({"numpy": "1.0"}) == [f"numpy 1.0 (golden) != {running} (here)"]
    assert version_mismatches({"nolib": "1"}) == ["nolib 1 (golden) != not installed (here)"]
    with pytest.raises(pytest.skip.Exception, match=f"numpy 1.0 \\(golden\\) != {running} \\(here\\)"):
        require_versions({"numpy": "1.0"})
