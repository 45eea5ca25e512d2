"""Hostile input, category by category: every bad file, folder or option gives exactly one line
`error: <file>: <fault>` on stderr and exit code 2, and leaves nothing behind (no new file, no
temporary, no folder); a benchmark folder is only ever written inside itself.

Everything runs through the real command line entry point (`corrupt_bench.cli.main`, in process)
on fixtures in the real formats: YAML, CDF, safetensors and torch files, VOC PNGs, parquet. The
kills, crashes and concurrent runs are in test_hostile_processes.py; the fuzzing in
test_hostile_fuzz.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from fixtures_bench import raw_source
from fixtures_hostile import (
    TINY_TEXT,
    bomb,
    one_error,
    override_in_tiny,
    replace_in_tiny,
    run,
    snapshot,
    temporaries,
)
from fixtures_raw import write_raw

from corrupt_bench.cli_utils import system_error
from corrupt_bench.data.cdf_io import read_pose_cdf, write_pose_cdf
from corrupt_bench.generate.run import generate
from corrupt_bench.generate.sources import CACHE_ENV
from corrupt_bench.layout import LOCK_NAME, OUTPUT_LOCK_NAME


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The synthetic source of TINY, built once (so that no test's snapshot sees the cache)."""
    path = tmp_path_factory.mktemp("hostile-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def bench(cache, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile-bench")
    manifest = root / "tiny.yaml"
    manifest.write_text(TINY_TEXT)
    generate(manifest, root / "bench", show_progress=False)
    return root / "bench"


@pytest.fixture(scope="module")
def source(cache, bench) -> Path:
    return next(cache.glob("synthetic-*"))


# --- 1. manifests: YAML and schema ------------------------------------------------------------------
MANIFEST_CASES = {
    # YAML: aliases, tags, depth, duplicates, size, encoding, constructors
    "alias_bomb_seed": (bomb("seed"), "anchor"),
    "alias_bomb_overrides": (bomb("overrides"), "anchor"),
    "one_alias": (replace_in_tiny("seed: 1\n", "seed: &s 1\nnotes: [*s]\n"), "anchor"),
    "merge_key": (TINY_TEXT + "<<: {seed: 2}\n", "merge key"),
    "tag_int_abc": (replace_in_tiny("seed: 1", "seed: !!int abc"), "!!int"),
    "tag_float_empty": (replace_in_tiny("seed: 1", "seed: !!float ''"), "!!float"),
    "tag_timestamp_abc": (replace_in_tiny("seed: 1", "seed: !!timestamp abc"), "!!timestamp"),
    "tag_python_object": (replace_in_tiny("seed: 1", "seed: !!python/object/apply:os.system [echo]"), "!!python/object/apply:os.system"),
    "tag_binary": (replace_in_tiny("seed: 1", "seed: !!binary '%%%'"), "!!binary"),
    "tag_local": (replace_in_tiny("seed: 1", "seed: !env HOME"), "!env"),
    "nested_20000_lists": (TINY_TEXT + "notes: " + "[" * 20000 + "]" * 20000 + "\n", "nesting deeper than"),
    "duplicate_key": (TINY_TEXT + "seed: 2\n", "duplicate key 'seed'"),
    "impossible_date": (replace_in_tiny("version: '1'", "version: 2001-13-45"), "month must be in 1..12"),
    "integer_of_5000_digits": (replace_in_tiny("seed: 1", "seed: " + "9" * 5000), "cannot be read"),
    "unhashable_key": (TINY_TEXT + "? [1, 2]\n: 3\n", "plain value"),
    "unclosed_bracket": (replace_in_tiny("subjects:\n- S9", "subjects: [S9"), "invalid YAML at line"),
    "not_a_mapping": ("- 1\n- 2\n", "must be a YAML mapping"),
    "empty_file": ("", "must be a YAML mapping"),
    "larger_than_1_MiB": (TINY_TEXT + "description: '" + "x" * (1 << 20) + "'\n", "larger than 1024 KiB"),
    "nul_byte": (TINY_TEXT + "notes: ['\x00']\n", "special characters"),
    # schema: types, finiteness, bounds
    "severities_true": (replace_in_tiny("severities:\n    - 1", "severities:\n    - true"), "severities must be integers"),
    "severities_string": (replace_in_tiny("severities:\n    - 1", "severities:\n    - '1'"), "valid integer"),
    "seed_nan": (replace_in_tiny("seed: 1", "seed: .nan"), "valid integer"),
    "seed_inf": (replace_in_tiny("seed: 1", "seed: .inf"), "valid integer"),
    "seed_float": (replace_in_tiny("seed: 1", "seed: 1.0"), "valid integer"),
    "seed_bool": (replace_in_tiny("seed: 1", "seed: true"), "valid integer"),
    "seed_negative": (replace_in_tiny("seed: 1", "seed: -1"), "greater than or equal to 0"),
    "seed_2_to_70": (replace_in_tiny("seed: 1", f"seed: {2**70}"), "less than or equal to"),
    "seconds_nan": (replace_in_tiny("seconds: 1.0", "seconds: .nan"), "source.seconds"),
    "seconds_inf": (replace_in_tiny("seconds: 1.0", "seconds: .inf"), "source.seconds"),
    "margin_nan": (replace_in_tiny("margin: 0.15", "margin: .nan"), "crop.margin"),
    "frame_step_0": (replace_in_tiny("frame_step: 2", "frame_step: 0"), "frame_step"),
    "max_frames_huge": (replace_in_tiny("max_frames: 4", "max_frames: 100000000000000"), "max_frames"),
    "quality_string": (replace_in_tiny("format: png", "format: png\n  quality: high"), "output.quality"),
    "unknown_key": (TINY_TEXT + "frame_stpe: 2\n", "unknown key 'frame_stpe'"),
    # overrides: types, NaN, bounds that cap time and memory
    "override_sigma_abc": (override_in_tiny("gaussian_noise", "{sigma: abc}"), "sigma"),
    "override_sigma_nan": (override_in_tiny("gaussian_noise", "{sigma: .nan}"), "got nan"),
    "override_sigma_inf": (override_in_tiny("gaussian_noise", "{sigma: .inf}"), "got inf"),
    "override_block_dropout_count_1e9": (override_in_tiny("block_dropout", "{count: 1000000000}"), "count"),
    "override_motion_blur_length_223084": (override_in_tiny("motion_blur", "{length: 223084}"), "length"),
    "override_shot_noise_photons_bool": (override_in_tiny("shot_noise", "{photons: true}"), "photons"),
    "override_unknown_parameter": (override_in_tiny("gaussian_noise", "{sigmaa: 0.1}"), "unknown parameter"),
    "override_severity_9": (replace_in_tiny("severities:\n    - 1", "severities:\n    - 1\n    overrides: {9: {sigma: 0.1}}"), "severity 9"),
    "override_severity_true": (replace_in_tiny("severities:\n    - 1", "severities:\n    - 1\n    overrides: {true: {sigma: 0.1}}"), "severities (integers)"),
    # names
    "subject_S99": (replace_in_tiny("- S9", "- S99"), "did you mean 'S9'"),
    "action_Walkin": (replace_in_tiny("- Walking", "- Walkin"), "did you mean 'Walking'"),
    "camera_unknown": (replace_in_tiny("- '54138969'", "- '54138968'"), "camera '54138968'"),
    "corruption_unknown": (replace_in_tiny("name: gaussian_noise", "name: gausian_noise"), "did you mean 'gaussian_noise'"),
    "variant_escapes": (replace_in_tiny("- name: v\n", "- name: ../x\n"), "escape the output root"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_bad_manifest_is_one_line_for_validate_dry_run_and_generate(case, cache, tmp_path, capsys):
    text, needle = MANIFEST_CASES[case]
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)
    for command in (["validate", manifest], ["generate", manifest, "--dry-run", "--out", tmp_path / "out"],
                    ["generate", manifest, "--out", tmp_path / "out"]):  # fmt: skip
        code, _, err = run(capsys, *command)
        line = one_error(code, err, str(manifest), needle)
        assert len(line) < 2000
    assert snapshot(tmp_path) == before  # no --out, no temporary


def test_not_utf8_manifest(tmp_path, capsys):
    manifest = tmp_path / "m.yaml"
    manifest.write_bytes(TINY_TEXT.encode() + b"notes: ['\xff\xfe']\n")
    one_error(*run(capsys, "validate", manifest)[::2], "not UTF-8")


def test_bad_stored_manifest_is_another_benchmark(bench, tmp_path, capsys):
    """A benchmark folder whose manifest.yaml was replaced by an alias bomb is not resumed into."""
    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    (copy / "manifest.yaml").write_text(bomb("seed"))
    manifest = tmp_path / "m.yaml"
    manifest.write_text(TINY_TEXT)
    before = snapshot(tmp_path)
    one_error(*run(capsys, "generate", manifest, "--out", copy)[::2], "another manifest")
    assert snapshot(tmp_path) == before


def test_validate_source_checks_subjects_and_actions(source, tmp_path, capsys):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(replace_in_tiny("- S9", "- S11"))  # a Human3.6M subject the source does not hold
    one_error(*run(capsys, "validate", manifest, "--source", source)[::2], "S11")
    manifest.write_text(replace_in_tiny("- Walking", "- Eating"))
    one_error(*run(capsys, "validate", manifest, "--source", source)[::2], "no action 'Eating'")
    manifest.write_text(TINY_TEXT)
    code, out, err = run(capsys, "validate", manifest, "--source", source)
    assert code == 0 and "OK" in out and not err


# --- 2. model configs: train --config, score --config -------------------------------------------------
CONFIG_CASES = {
    "alias": ("a: &x 1\nb: *x\n", "anchor"),
    "tag": ("channels: !!int abc\n", "!!int"),
    "wrong_type": ("channels: abc\n", "channels"),
    "unknown_key": ("chanels: 64\n", "chanels"),
    "list": ("- 1\n", "mapping"),
    "duplicate_key": ("epochs: 1\nepochs: 2\n", "duplicate key"),
    "nested": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nesting"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_train_config(case, source, tmp_path, capsys):
    text, needle = CONFIG_CASES[case]
    config = tmp_path / "cfg.yaml"
    config.write_text(text)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "train", "tcn-lifter", "--config", config, "--data", source, "--out", tmp_path / "out", "--device", "cpu")
    one_error(code, err, str(config), needle)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["alias", "tag", "list", "duplicate_key", "nested"])
def test_bad_score_config(case, bench, tmp_path, capsys):
    text, needle = CONFIG_CASES[case]
    config = tmp_path / "cfg.yaml"
    config.write_text(text)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "score", "--model", "oracle-noise", "--config", config, "--benchmark", bench, "--out", tmp_path / "run")
    one_error(code, err, str(config), needle)
    assert snapshot(tmp_path) == before


# --- 3. lock.json ------------------------------------------------------------------------------------------
LOCK_CASES = {
    "not_json": (b"{not json", "not valid JSON"),
    "empty": (b"", "not valid JSON"),
    "binary": (bytes(range(256)), "not valid JSON"),
    "list": (b"[]", "unsupported lock format"),
    "no_files": (b'{"lock_format": 1}', "unsupported lock format"),
    "files_list": (b'{"lock_format": 1, "files": []}', "key 'files'"),
    "files_escape": (b'{"lock_format": 1, "files": {"../../etc/passwd": "sha256:0"}}', "not a relative path"),
    "files_absolute": (b'{"lock_format": 1, "files": {"/etc/passwd": "sha256:0"}}', "not a relative path"),
    "digest_not_string": (b'{"lock_format": 1, "files": {"a.png": 5}}', "not a relative path and a digest"),
    "manifest_list": (b'{"lock_format": 1, "files": {}, "manifest": []}', "key 'manifest'"),
    "nested": (b'{"lock_format": 1, "files": {}, "x": ' + b"[" * 100000 + b"]" * 100000 + b"}", "nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(LOCK_CASES))
def test_verify_malformed_lock(case, bench, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    data, needle = LOCK_CASES[case]
    (copy / LOCK_NAME).write_bytes(data)
    before = snapshot(tmp_path)
    for workers in ("1", "2"):
        one_error(*run(capsys, "verify", copy, "--workers", workers)[::2], LOCK_NAME, needle)
    assert snapshot(tmp_path) == before


# --- 4. checkpoints ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lifter_state():
    from corrupt_bench.models.loading import load_model

    return load_model("tcn-lifter", device="cpu").model.module.state_dict()


class Payload:
    """What a hostile .pt may hold: unpickling it would run a shell command."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _checkpoint(kind: str, root: Path, state) -> Path:
    import torch

    from corrupt_bench.models.checkpoint import save_checkpoint

    folder = root / kind
    if kind == "model_json_list":
        save_checkpoint(folder, "tcn-lifter", {}, state)
        (folder / "model.json").write_text("[]")
    elif kind == "config_not_object":
        save_checkpoint(folder, "tcn-lifter", {}, state)
        (folder / "model.json").write_text('{"model": "tcn-lifter", "config": 5}')
    elif kind == "ten_million_channels":
        save_checkpoint(folder, "tcn-lifter", {"channels": 10**7}, state)
    elif kind == "garbage_safetensors":
        save_checkpoint(folder, "tcn-lifter", {}, state)
        (folder / "model.safetensors").write_bytes(b"\xff" * 64)
    elif kind == "pt_with_code":
        folder.mkdir(parents=True)
        torch.save({"state_dict": dict(state), "extra": Payload()}, folder / "model.pt")
        return folder / "model.pt"
    elif kind == "pt_list":
        folder.mkdir(parents=True)
        torch.save([1, 2, 3], folder / "model.pt")
        return folder / "model.pt"
    return folder


CHECKPOINT_CASES = {
    "model_json_list": "must be a JSON object",
    "config_not_object": "must be a JSON object",
    "ten_million_channels": "refused before building it",
    "garbage_safetensors": "unreadable checkpoint",
    "pt_with_code": "could run code",
    "pt_list": "holds no state_dict",
}


@pytest.mark.parametrize("kind", sorted(CHECKPOINT_CASES))
def test_bad_checkpoint(kind, bench, lifter_state, tmp_path, capsys):
    checkpoint = _checkpoint(kind, tmp_path / "ckpt", lifter_state)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "score", "--model", "tcn-lifter", "--checkpoint", checkpoint, "--benchmark", bench,
                       "--out", tmp_path / "run", "--device", "cpu")  # fmt: skip
    line = one_error(code, err, CHECKPOINT_CASES[kind])
    assert "weights_only=False" not in line and "pwned" not in err
    assert snapshot(tmp_path) == before


def test_lifter_checkpoint_as_detector(bench, lifter_state, tmp_path, capsys):
    from corrupt_bench.models.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "lifter", "tcn-lifter", {}, lifter_state)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "score", "--model", "tcn-lifter", "--checkpoint", tmp_path / "lifter", "--detector",
                       tmp_path / "lifter", "--benchmark", bench, "--out", tmp_path / "run", "--device", "cpu")  # fmt: skip
    one_error(code, err, str(tmp_path / "lifter"))
    assert snapshot(tmp_path) == before


# --- 5. VOC images -------------------------------------------------------------------------------------------
def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a palette image) and whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"PLTE", b"\0\0\0") + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


VOC_CASES = {
    "garbage_mask": (b"this is not a png" * 10, "cannot decode the image"),
    "truncated_mask": (None, "cannot decode the image"),
    "rgb_mask": ("rgb", "must be a palette PNG"),
    "mask_claims_5000_px_square": (_png_header_only(5000, 5000), "larger than a VOC image"),
    "mask_claims_100000_px_square": (_png_header_only(100_000, 100_000), "decompression bomb"),
}


@pytest.mark.parametrize("case", sorted(VOC_CASES))
def test_bad_voc_mask(case, cache, tmp_path, capsys):
    from PIL import Image
    from test_engine_voc import write_voc

    voc = write_voc(tmp_path / "VOC2012")
    mask = voc / "SegmentationObject" / "2007_000001.png"
    data, needle = VOC_CASES[case]
    if data is None:
        mask.write_bytes(mask.read_bytes()[:60])
    elif data == "rgb":
        Image.new("RGB", (120, 90)).save(mask)
    else:
        mask.write_bytes(data)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(replace_in_tiny("name: gaussian_noise", "name: voc_occluder"))
    before = snapshot(tmp_path)
    one_error(*run(capsys, "generate", manifest, "--voc", voc, "--out", tmp_path / "out")[::2], str(mask), needle)
    assert snapshot(tmp_path) == before


# --- 6. output paths ---------------------------------------------------------------------------------------
def test_out_that_is_a_file(bench, source, tmp_path, capsys):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(TINY_TEXT)
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    before = snapshot(tmp_path)
    commands = {
        "generate": ["generate", manifest, "--out"],
        "score": ["score", "--model", "oracle-noise", "--benchmark", bench, "--out"],
        "train": ["train", "tcn-lifter", "--data", source, "--device", "cpu", "--out"],
        "synth": ["synth", "--subjects", "S9", "--seconds", "0.1", "--out"],
    }
    for command in commands.values():
        for out, needle in ((afile, "not a folder"), (afile / "sub", "is a file")):
            code, _, err = run(capsys, *command, out)
            one_error(code, err, str(afile), needle)
    assert snapshot(tmp_path) == before and afile.read_text() == "keep me\n"


@pytest.mark.parametrize("link", ["images", "labels", ".generate"])
def test_symlink_below_the_benchmark_is_refused(link, bench, tmp_path, capsys):
    """A folder below --out that leads outside (a symbolic link): refused before anything is written."""
    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(copy / ".generate" / "done" / "v" / "gaussian_noise")  # the unit is to be redone
    target = copy / ".generate" if link == ".generate" else copy / "v" / "gaussian_noise" / "1" / link
    shutil.rmtree(target)
    target.symlink_to(outside, target_is_directory=True)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(TINY_TEXT)
    before = snapshot(tmp_path)
    one_error(*run(capsys, "generate", manifest, "--out", copy)[::2], "symbolic link")
    assert snapshot(tmp_path) == before and not any(outside.iterdir())


# --- 7. devices ------------------------------------------------------------------------------------------------
def test_device_cuda_without_cuda(bench, source, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    before = snapshot(tmp_path)
    one_error(*run(capsys, "score", "--model", "oracle-noise", "--benchmark", bench, "--out", tmp_path / "run", "--device", "cuda")[::2], "CUDA is not available")
    one_error(*run(capsys, "train", "tcn-lifter", "--data", source, "--out", tmp_path / "t", "--device", "cuda")[::2], "CUDA is not available")
    one_error(*run(capsys, "score", "--model", "oracle-noise", "--benchmark", bench, "--out", tmp_path / "run", "--device", "gpu")[::2], "not a device")
    assert snapshot(tmp_path) == before


# --- 8. runs: failed cells, all-failed reports ------------------------------------------------------------------
def test_score_with_failed_cells_exits_1_and_says_how_many(tmp_path, capsys):
    raw = raw_source(tmp_path / "raw")
    code, _, err = run(capsys, "score", "--model", "fixtures_bench:failing", "--benchmark", raw, "--out", tmp_path / "run", "--device", "cpu")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err
    assert "1 of 3 cells failed" in errors[0]


def test_report_on_an_all_failed_run(tmp_path, capsys):
    raw = raw_source(tmp_path / "raw")
    config = tmp_path / "fail-all.yaml"
    config.write_text('bad_subject: "*"\n')
    code, _, _ = run(capsys, "score", "--model", "fixtures_bench:failing", "--config", config, "--benchmark", raw,
                     "--out", tmp_path / "run", "--device", "cpu")  # fmt: skip
    assert code == 1
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    before = snapshot(tmp_path)
    one_error(*run(capsys, "report", tmp_path / "run", "--out", tmp_path / "report")[::2], "every result row", "failed")
    one_error(*run(capsys, "report", tmp_path / "run", "--out", afile)[::2], str(afile), "not a folder")
    assert snapshot(tmp_path) == before


# --- 9. corruptions NAME ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("pattern", "needle"), [("nosuch", "unknown corruption 'nosuch'"), ("gausian_noise", "did you mean 'gaussian_noise'"),
                                                 ("zz*", "no corruption matches 'zz*'")])  # fmt: skip
def test_corruptions_unknown_name(pattern, needle, capsys):
    one_error(*run(capsys, "corruptions", pattern)[::2], needle)


# --- 10. NaN and infinity in CDFs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("folder", "value"), [("D3_Positions", np.nan), ("D2_Positions", np.inf), ("D3_Positions_mono", -np.inf)])
def test_non_finite_cdf_values_are_refused(folder, value, tmp_path, capsys):
    raw = write_raw(tmp_path / "raw", {"S9": ["Walking 1"]}, n_frames=6)
    name = "Walking 1.cdf" if folder == "D3_Positions" else "Walking 1.54138969.cdf"
    path = raw / "S9" / "MyPoseFeatures" / folder / name
    pose = read_pose_cdf(path, 96 if "D3" in folder else 64)
    pose[2, :3] = value
    pose[4, 5] = value
    write_pose_cdf(path, pose)
    needle = "4 NaN or infinite values in 2 of 6 frames"
    one_error(*run(capsys, "info", raw)[::2], str(path), needle)
    if folder == "D3_Positions_mono":
        return  # generate reads the mocap and the 2D files, not the camera-frame mono files
    manifest = tmp_path / "m.yaml"
    manifest.write_text(replace_in_tiny("kind: synthetic", "kind: h36m_raw"))
    before = snapshot(tmp_path)
    one_error(*run(capsys, "generate", manifest, "--source", raw, "--out", tmp_path / "out")[::2], str(path), needle)
    assert snapshot(tmp_path) == before


# --- 11. the machine: disk full, read-only, permissions, file size -------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EFBIG])
def test_system_errors_are_one_line_naming_the_file(code):
    error = system_error(OSError(code, os.strerror(code), "/bench/v/images/000000.png"))
    assert error is not None and str(error).startswith("/bench/v/images/000000.png: ")
    assert errno.errorcode[code] in str(error) and "\n" not in str(error)
    assert system_error(OSError(errno.EBADF, "bad file descriptor")) is None  # a bug stays a traceback


def test_permission_denied_is_one_line(cache, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes through permissions; test_hostile_processes covers this with a read-only mount")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(TINY_TEXT)
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        one_error(*run(capsys, "generate", manifest, "--out", parent / "out")[::2], str(parent / "out"), "EACCES")
    finally:
        parent.chmod(0o755)
    assert not (parent / "out").exists()


# --- 12. temporaries and modes ---------------------------------------------------------------------------------------
def test_temporaries_are_reported_by_verify_and_removed_by_generate(bench, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    leftovers = [copy / ".manifest.yaml.k1l2.tmp", copy / ".lock.json.a9b8.tmp",
                 copy / "v" / "clean" / "0" / "labels" / ".S9_Walking.parquet.x1y2.tmp",
                 copy / ".generate" / "done" / "v" / "clean" / "0" / ".S9_Walking.json.q9w8.tmp"]  # fmt: skip
    for path in leftovers:
        path.write_bytes(b"half")
    code, out, _ = run(capsys, "verify", copy)
    assert code == 1 and "4 temporary: DIFFERS" in out
    for path in leftovers:
        assert f"temporary: {path.relative_to(copy).as_posix()}" in out
    manifest = tmp_path / "m.yaml"
    manifest.write_text(TINY_TEXT)
    (copy / ".generate" / "done" / "v" / "clean" / "0" / "S9_Walking.json").unlink()  # that unit is redone
    assert run(capsys, "generate", manifest, "--out", copy)[0] == 0
    remaining = temporaries(copy)
    assert remaining == [], remaining
    code, out, _ = run(capsys, "verify", copy)
    assert code == 0 and "OK" in out


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)])
def test_every_file_follows_the_umask(umask, file_mode, dir_mode, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))  # the synthetic source too
    manifest = tmp_path / "m.yaml"
    manifest.write_text(TINY_TEXT)
    old = os.umask(umask)
    try:
        assert run(capsys, "generate", manifest, "--out", tmp_path / "out")[0] == 0
    finally:
        os.umask(old)
    for root in (tmp_path / "out", next((tmp_path / "cache").glob("synthetic-*"))):
        for dirpath, _dirnames, filenames in os.walk(root):
            assert os.stat(dirpath).st_mode & 0o777 == dir_mode, dirpath
            for name in filenames:
                assert os.stat(os.path.join(dirpath, name)).st_mode & 0o777 == file_mode, os.path.join(dirpath, name)
    assert not (tmp_path / "out" / OUTPUT_LOCK_NAME).exists()  # the folder lock goes with its run


def test_stale_lock_of_a_killed_run_does_not_block(bench, tmp_path, capsys):
    """A lock file left by a killed run (its flock released by the OS) names a dead pid: ignored."""
    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    (copy / OUTPUT_LOCK_NAME).write_text(json.dumps({"pid": 999999, "command": "corrupt-bench generate (killed)"}))
    manifest = tmp_path / "m.yaml"
    manifest.write_text(TINY_TEXT)
    code, out, _ = run(capsys, "generate", manifest, "--out", copy)
    assert code == 0 and "already done" in out and not (copy / OUTPUT_LOCK_NAME).exists()


@pytest.mark.parametrize("command", ["generate", "score", "train"])
def test_a_second_run_into_a_held_folder_names_the_holder(command, bench, source, tmp_path, capsys):
    """The folder lock (an flock: a second open file of this very process conflicts as another process would)."""
    from corrupt_bench.outdir import output_lock

    manifest = tmp_path / "m.yaml"
    manifest.write_text(TINY_TEXT)
    out = tmp_path / "out"
    args = {
        "generate": ["generate", manifest, "--out", out],
        "score": ["score", "--model", "oracle-noise", "--benchmark", bench, "--out", out, "--device", "cpu"],
        "train": ["train", "tcn-lifter", "--data", source, "--out", out, "--device", "cpu"],
    }[command]
    with output_lock(out, "holder"):
        before = snapshot(tmp_path)
        code, _, err = run(capsys, *args)
        one_error(code, err, str(out), f"another {command} run is writing this folder: pid {os.getpid()} (")
        assert snapshot(tmp_path) == before
    assert not out.exists()  # the holder created it and, having written nothing, took it away again
