"""The one atomic write and the one confined join (corrupt_bench.io)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from corrupt_bench.errors import UserError
from corrupt_bench.io import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    confined,
    is_temporary,
    remove_temporaries,
)


def test_confined_joins_plain_names(tmp_path: Path):
    assert confined(tmp_path, "v", "clean", "0") == tmp_path / "v" / "clean" / "0"
    assert confined(tmp_path, "v", "labels", "S9_Eating 2.parquet").parent == tmp_path / "v" / "labels"
    assert confined(tmp_path, "v/clean/0") == tmp_path / "v" / "clean" / "0"


@pytest.mark.parametrize("parts", [("..", "x"), ("/etc",), ("v", "../../x"), ("",)])
def test_confined_refuses_escapes(tmp_path: Path, parts):
    with pytest.raises(UserError, match="would leave"):
        confined(tmp_path, *parts)


def test_confined_refuses_a_symlink_out_of_the_root(tmp_path: Path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "images").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UserError, match="symbolic link"):
        confined(root, "images", "000001.jpg")


def test_atomic_write_leaves_no_temporary_and_respects_the_umask(tmp_path: Path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "a" / "b.bin", b"data")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"data"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["b.bin"]


def test_a_failed_write_removes_its_temporary(tmp_path: Path):
    target = tmp_path / "x.json"
    with pytest.raises(ValueError):
        atomic_write_json(target, {"bad": float("nan")})  # NaN is refused before anything is renamed
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert list(tmp_path.iterdir()) == []


def test_two_writers_of_one_file_use_distinct_temporaries(tmp_path: Path):
    target = tmp_path / "lock.json"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_text("1")
        second.write_text("2")
    assert target.read_text() == "1"  # the outer writer renamed last
    assert list(tmp_path.iterdir()) == [target]


def test_temporaries_are_recognised_and_removed(tmp_path: Path):
    with atomic_path(tmp_path / "pose.cdf", suffix=".cdf") as tmp:
        assert is_temporary(tmp.name) and tmp.name.endswith(".cdf")
        (tmp_path / ".stale.json.k1ll3d.tmp").write_text("x")
        tmp.write_text("ok")
    assert not is_temporary("pose.cdf") and not is_temporary(".hidden")
    assert remove_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose.cdf"]
