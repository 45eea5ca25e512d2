"""Keyed RNG and severity-table validation."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from corrupt_bench.engine import RngKey, get_corruption, load_registry
from corrupt_bench.engine.rng import ANY_CAMERA
from corrupt_bench.errors import UserError
from corrupt_bench.resources import resource_dir

KEY = RngKey(7, "gaussian_noise", 1, 3, "S9", "Eating 2", "54138969", 1234)


def test_key_canonical_form_and_digest_are_pinned():
    # changing the canonical form changes every benchmark: this must fail loudly
    assert KEY.canonical() == b'[7,"gaussian_noise",1,3,"S9","Eating 2","54138969",1234,"frame"]'
    assert KEY.digest() == "fc427b8f1c91593502a35794a498856d89d685575b9ea002ac456e4f1b19ec13"


def test_generator_is_a_pure_function_of_the_key():
    a = KEY.generator().integers(0, 2**63, size=4)
    KEY.generator().random(1000)  # drawing elsewhere changes nothing
    assert np.array_equal(a, KEY.generator().integers(0, 2**63, size=4))


@pytest.mark.parametrize(
    "change",
    [{"seed": 8}, {"corruption": "shot_noise"}, {"version": 2}, {"severity": 4}, {"subject": "S11"},
     {"sequence": "Eating 1"}, {"camera": "55011271"}, {"index": 1235}, {"stream": "window"}],
)  # fmt: skip
def test_every_field_changes_the_stream(change):
    other = replace(KEY, **change)
    assert other.digest() != KEY.digest()
    assert not np.array_equal(KEY.generator().random(4), other.generator().random(4))


def test_span_keys():
    span = KEY.span(3, "window")
    assert (span.index, span.stream, span.camera) == (3, "window", KEY.camera)
    assert KEY.span(3, "window", camera=ANY_CAMERA).camera == "*"


def test_table_typo_names_file_and_key(tmp_path):
    tables = tmp_path / "corruptions"
    shutil.copytree(resource_dir("corruptions"), tables)
    assert set(load_registry(tables)) == {c for c in load_registry()}
    path = tables / "contrast.yaml"
    path.write_text(path.read_text().replace("version: 1", "version: 1\nversoin: 2"))
    with pytest.raises(UserError, match="contrast.yaml.*versoin"):
        load_registry(tables)


def test_table_missing_parameter(tmp_path):
    tables = tmp_path / "corruptions"
    shutil.copytree(resource_dir("corruptions"), tables)
    path = tables / "gaussian_noise.yaml"
    path.write_text(path.read_text().replace("sigma: 0.38", "sigmaa: 0.38"))
    with pytest.raises(UserError, match=r"gaussian_noise.yaml: corruption 'gaussian_noise', severity 5, key 'sigma': missing"):
        load_registry(tables)


def test_tables_are_versioned_data():
    c = get_corruption("gaussian_noise")
    assert [c.table[s].sigma for s in range(1, 6)] == [0.08, 0.12, 0.18, 0.26, 0.38]
    dropout = get_corruption("joint_dropout").table[5]
    assert (dropout.min_missing, dropout.max_missing) == (12, 16)
    t5 = get_corruption("temporal_occlusion").table[5]
    assert (t5.window_s, t5.duration_s, t5.cover, t5.kind) == (3.2, 1.6, 1.0, "erase")


@pytest.mark.parametrize("shape", [(64, 48, 3), (5, 7, 3), (1, 1, 1), (2, 3, 1), (1, 2, 1), (0,)])
def test_uniform16_draws_what_integers_draws(shape):
    """The noise families' fast 16-bit draws: the values of `integers(0, 65536, uint16)` and the same
    generator state after (the next draws agree), from a fresh key and after a pending 32-bit half."""
    from corrupt_bench.engine.noise import uniform16

    for warm in (False, True):
        a, b = KEY.generator(), KEY.generator()
        if warm:  # a 32-bit draw leaves the high half of a 64-bit draw pending
            a.integers(0, 2**32, dtype=np.uint32), b.integers(0, 2**32, dtype=np.uint32)
        expected = a.integers(0, 65536, size=shape, dtype=np.uint16)
        got = uniform16(b, shape)
        assert got.dtype == np.uint16 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        sa, sb = a.bit_generator.state, b.bit_generator.state
        assert sa["state"] == sb["state"] and sa["has_uint32"] == sb["has_uint32"]
        if sa["has_uint32"]:  # (otherwise `uinteger` is a stale value numpy never reads)
            assert sa["uinteger"] == sb["uinteger"]
        np.testing.assert_array_equal(a.integers(0, 256, 11, dtype=np.uint8), b.integers(0, 256, 11, dtype=np.uint8))
