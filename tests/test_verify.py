"""`verify`: recomputes content digests; catches one flipped pixel byte, one deleted label row,
missing and extra files; ignores container bytes that do not change the content."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.generate.lock import pixels_digest, table_digest, verify
from corrupt_bench.generate.run import generate
from corrupt_bench.generate.sources import CACHE_ENV
from corrupt_bench.generate.writers import decode_image, encode_image

runner = CliRunner()

TINY = {
    "name": "tiny",
    "version": "1",
    "paper": "none (test)",
    "notes": ["smallest benchmark that has PNG images and two cells"],
    "seed": 7,
    "source": {"kind": "synthetic", "seconds": 0.5, "divisor": 8, "seed": 0},
    "subjects": ["S9"],
    "actions": ["Walking"],
    "cameras": ["54138969", "55011271"],
    "frame_step": 5,
    "max_frames": 3,
    "crop": {"mode": "person", "margin": 0.15, "size": 48},
    "output": {"format": "png"},
    "variants": [{"name": "v", "corruptions": [{"name": "gaussian_noise", "severities": [2]}]}],
}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verify")
    manifest = root / "tiny.yaml"
    manifest.write_text(yaml.safe_dump(TINY))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root / "cache"))
        generate(manifest, root / "bench", show_progress=False)
    return root / "bench"


@pytest.fixture
def copy(bench, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(bench, out)
    return out


def _verify_cli(out: Path):
    return runner.invoke(app, ["verify", str(out)])


def test_untouched_copy_verifies(copy):
    result = _verify_cli(copy)
    assert result.exit_code == 0, result.output
    assert "0 missing, 0 extra, 0 altered: OK" in result.output


def test_one_flipped_pixel_byte_is_caught(copy):
    path = sorted(copy.glob("v/gaussian_noise/2/images/*/*.png"))[1]
    pixels = decode_image(path.read_bytes()).copy()
    pixels[10, 20, 1] ^= 0x01  # one bit of one byte of the decoded array
    path.write_bytes(encode_image(pixels, "png"))
    result = _verify_cli(copy)
    assert result.exit_code == 1
    rel = path.relative_to(copy).as_posix()
    assert f"altered: {rel}" in result.output
    assert "1 altered" in result.output


def test_one_deleted_label_row_is_caught(copy):
    path = copy / "v/clean/0/labels/S9_Walking.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path)
    result = _verify_cli(copy)
    assert result.exit_code == 1
    assert "altered: v/clean/0/labels/S9_Walking.parquet" in result.output
    # the same with a worker pool
    result = runner.invoke(app, ["verify", str(copy), "--workers", "2"])
    assert result.exit_code == 1 and "1 altered" in result.output


def test_missing_and_extra_files_are_listed(copy):
    gone = sorted(copy.glob("v/clean/0/images/*/*.png"))[0]
    gone.unlink()
    (copy / "v/clean/0/images/notes.txt").write_text("not part of the benchmark")
    report = verify(copy)
    assert report.missing == [gone.relative_to(copy).as_posix()]
    assert report.extra == ["v/clean/0/images/notes.txt"]
    assert not report.altered and not report.ok
    assert _verify_cli(copy).exit_code == 1


def test_content_digests_ignore_container_bytes(copy):
    """Re-encoding with other settings but the same content verifies (the digests hash content)."""
    label = copy / "v/gaussian_noise/2/labels/S9_Walking.parquet"
    table = pq.read_table(label)
    pq.write_table(table, label, compression="snappy", row_group_size=2)
    image = sorted(copy.glob("v/gaussian_noise/2/images/*/*.png"))[0]
    import cv2

    bgr = cv2.imdecode(np.frombuffer(image.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok and buf.tobytes() != image.read_bytes()
    image.write_bytes(buf.tobytes())
    assert verify(copy).ok


def test_altered_manifest_is_caught(copy):
    path = copy / "manifest.yaml"
    data = yaml.safe_load(path.read_text())
    data["seed"] = 8
    path.write_text(yaml.safe_dump(data))
    report = verify(copy)
    assert report.altered == ["manifest.yaml"]


def test_altered_or_deleted_cameras_json_is_caught(copy):
    """Every scorer reads cameras.json: the lock covers it (beside content_digest, which it leaves as it was)."""
    import json

    path = copy / "cameras.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data, indent=4))  # the same content in another layout verifies
    assert verify(copy).ok
    intrinsics = next(iter(data["intrinsics"].values()))
    intrinsics["focal_length"][0] += 1.0
    path.write_text(json.dumps(data))
    report = verify(copy)
    assert report.altered == ["cameras.json"] and not report.missing
    result = _verify_cli(copy)
    assert result.exit_code == 1 and "altered: cameras.json" in result.output
    path.unlink()
    report = verify(copy)
    assert report.missing == ["cameras.json"] and not report.altered
    assert "missing: cameras.json" in _verify_cli(copy).output


def test_content_digest_covers_the_cell_files_only(copy):
    """content_digest is unchanged in meaning, so locks of older versions stay comparable."""
    import hashlib
    import json

    lock = json.loads((copy / "lock.json").read_text())
    files = json.dumps(lock["files"], sort_keys=True, separators=(",", ":")).encode()
    assert lock["content_digest"] == "sha256:" + hashlib.sha256(files).hexdigest()


def test_older_lock_without_root_files_leaves_cameras_unchecked(copy):
    import json

    lock_path = copy / "lock.json"
    lock = json.loads(lock_path.read_text())
    del lock["root_files"]
    lock_path.write_text(json.dumps(lock))
    (copy / "cameras.json").write_text("{}")
    report = verify(copy)
    assert report.ok and report.unchecked == ["cameras.json"]
    result = _verify_cli(copy)
    assert result.exit_code == 0 and "unchecked: cameras.json" in result.output


def test_altered_files_name_the_libraries_that_differ_from_the_lock(copy):
    import json

    from corrupt_bench.generate.lock import library_versions

    lock_path = copy / "lock.json"
    lock = json.loads(lock_path.read_text())
    lock["libraries"]["numpy"] = "1.26.0"
    lock_path.write_text(json.dumps(lock))
    assert verify(copy).ok and verify(copy).library_differences == []  # nothing altered: nothing to explain
    path = sorted(copy.glob("v/gaussian_noise/2/images/*/*.png"))[0]
    pixels = decode_image(path.read_bytes()).copy()
    pixels[0, 0, 0] ^= 0x01
    path.write_bytes(encode_image(pixels, "png"))
    running = library_versions()["numpy"]
    expected = f"numpy 1.26.0 in lock.json, {running} here: digests hold for the recorded versions"
    assert verify(copy).library_differences == [expected]
    result = _verify_cli(copy)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("library: ")]
    assert lines == [f"library: {expected}"]


def test_digest_functions_are_sensitive():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[3, 3, 2] = 1
    assert pixels_digest(a) != pixels_digest(b)
    assert pixels_digest(a) != pixels_digest(a.reshape(4, 12, 1))  # the shape counts
    import pyarrow as pa

    t = pa.table({"x": pa.array([1.0, 2.0], pa.float32())})
    assert table_digest(t) != table_digest(t.slice(0, 1))
    assert table_digest(t) != table_digest(pa.table({"x": pa.array([1.0, 2.5], pa.float32())}))


def test_column_memo_gives_the_plain_digests():
    """Tables digested through one ColumnMemo (shared columns serialised once) get the digests of
    table_digest alone: equal columns are recognised by type, slice and buffers, unequal never."""
    import pyarrow as pa

    from corrupt_bench.generate.lock import ColumnMemo

    lists = pa.array([[1.5, 2.0], None, [3.25]], pa.list_(pa.float32()))
    tables = [
        pa.table({"a": lists, "b": pa.array([1, 2, 3], pa.int8())}),
        pa.table({"a": lists, "b": pa.array([1, 2, 4], pa.int8())}),  # same first column
        pa.table({"a": lists.slice(1), "b": pa.array([2, 3], pa.int8())}),  # same buffers, another slice
        pa.table({"a": pa.array([[1.5, 2.0], [], [3.25]], pa.list_(pa.float32())), "b": pa.array([1, 2, 3], pa.int8())}),
        pa.table({"a": pa.array(["x", None, "y"]), "b": pa.array([1, 2, 3], pa.int16())}),  # other types
    ]
    memo = ColumnMemo()
    assert [table_digest(t, memo) for t in tables + tables] == [table_digest(t) for t in tables + tables]
    assert len({table_digest(t) for t in tables}) == len(tables)
    small = ColumnMemo(max_bytes=8)  # too small to keep anything: still the same digests
    assert [table_digest(t, small) for t in tables] == [table_digest(t) for t in tables]


def test_write_path_gives_the_bytes_and_digests_of_the_numpy_flips():
    """OpenCV's colour conversions (encode: RGB -> BGR; decode straight to RGB) give the bytes of the
    reversed-channel numpy copies they replace, for contiguous and padded (strided) images; the digest
    recorded without a decode (PNG) and from one decode (JPEG) is the digest of what a reader decodes."""
    import cv2

    from corrupt_bench.generate.lock import image_digest

    rng = np.random.default_rng(0)
    padded = rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)
    for image in (padded, padded[:37, :45], np.full((8, 8, 3), 255, np.uint8)):
        for fmt, ext, params in (("jpeg", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_OPTIMIZE, 0]),
                                 ("png", ".png", [cv2.IMWRITE_PNG_COMPRESSION, 3])):  # fmt: skip
            data = encode_image(image, fmt, 95)
            assert data == cv2.imencode(ext, np.ascontiguousarray(image[..., ::-1]), params)[1].tobytes()
            flipped = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
            np.testing.assert_array_equal(decode_image(data), flipped)
            assert image_digest(data, image, fmt) == pixels_digest(flipped)
    assert pixels_digest(padded[:37, :45]) == pixels_digest(padded[:37, :45].copy())  # strided input hashed as C order


def test_verify_without_lock_is_a_user_error(tmp_path):
    result = _verify_cli(tmp_path)
    assert result.exit_code == 2 and "no lock.json" in result.output
