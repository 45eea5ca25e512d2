"""Manifests: every built-in one validates; malformed ones give one line naming file and key, exit 2."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.errors import UserError
from corrupt_bench.generate.manifest import load_manifest, parse_manifest
from corrupt_bench.resources import resource_dir

BUILTIN = sorted(resource_dir("manifests").glob("*.yaml"))
runner = CliRunner()


def _base() -> dict:
    return {
        "name": "t",
        "version": "1",
        "paper": "none",
        "seed": 0,
        "source": "synthetic",
        "subjects": ["S9"],
        "variants": [{"name": "v", "corruptions": [{"name": "gaussian_noise", "severities": [1, 5]}]}],
    }


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_builtin_set_is_complete():
    names = {p.stem for p in BUILTIN}
    for bench in ("da-3dpe", "h36m-c", "occluded-h36m", "weak-sync"):
        assert bench in names and f"demo-{bench}" in names


@pytest.mark.parametrize("path", BUILTIN, ids=lambda p: p.stem)
def test_builtin_manifest_validates(path: Path):
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    manifest, _ = load_manifest(path)
    assert manifest.paper and manifest.notes  # cites its paper and states its choices
    if manifest.name.startswith("demo-"):
        assert manifest.source.kind == "synthetic"
    else:
        assert manifest.source.kind == "h36m_raw"


def test_validate_by_builtin_name():
    result = runner.invoke(app, ["validate", "occluded-h36m"])
    assert result.exit_code == 0, result.output


def _mutate_unknown_key(d):
    d["crop"] = {"mode": "person", "sise": 64}


def _mutate_severity(d):
    d["variants"][0]["corruptions"][0]["severities"] = [1, 7]


def _mutate_unknown_corruption(d):
    d["variants"][0]["corruptions"][0]["name"] = "gausian_noise"


def _mutate_escape(d):
    d["variants"][0]["name"] = "../x"


def _mutate_absolute(d):
    d["variants"][0]["name"] = "/tmp/x"


def _mutate_override_param(d):
    d["variants"][0]["corruptions"][0]["overrides"] = {1: {"sigmaa": 0.1}}


def _override(name: str, severity: int, params: dict):
    def mutate(d):
        d["variants"][0]["corruptions"] = [{"name": name, "severities": [severity], "overrides": {severity: params}}]

    mutate.__name__ = f"_mutate_override_{name}_{'_'.join(params)}"
    return mutate


def _override_case(name: str, severity: int, key: str, value, expected: str):
    where = f"key 'variants[0].corruptions[0].overrides.{severity}.{key}': corruption '{name}', severity {severity}: "
    return (_override(name, severity, {key: value}), [where + expected])


CASES = [
    (_mutate_unknown_key, ["crop", "'sise'", "allowed keys: mode, margin, size"]),
    (_mutate_severity, ["variants[0].corruptions[0].severities[1]", "severity 7", "allowed: 1, 2, 3, 4, 5"]),
    (_mutate_unknown_corruption, ["variants[0].corruptions[0].name", "did you mean 'gaussian_noise'?"]),
    (_mutate_escape, ["variants[0].name", "escape the output root", "'../x'"]),
    (_mutate_absolute, ["variants[0].name", "escape the output root", "'/tmp/x'"]),
    (_mutate_override_param, ["overrides.1.sigmaa", "allowed: sigma"]),
    # overrides go through the corruption's typed parameter model: types, finiteness, bounds
    _override_case("jpeg_compression", 1, "quality", "high", "got 'high'; allowed: an integer in 1..100"),
    _override_case("jpeg_compression", 2, "quality", 101, "got 101; allowed: an integer in 1..100"),
    _override_case("gaussian_noise", 5, "sigma", "abc", "got 'abc'; allowed: a finite number in [0, 1]"),
    _override_case("gaussian_noise", 5, "sigma", float("nan"), "got nan; allowed: a finite number in [0, 1]"),
    _override_case("speckle_noise", 1, "sigma", float("inf"), "got inf; allowed: a finite number in [0, 2]"),
    _override_case("block_dropout", 3, "count", 1000000000, "got 1000000000; allowed: an integer in 0..64"),
    _override_case("motion_blur", 4, "length", 223084, "got 223084; allowed: a finite number in [0, 100]"),
    _override_case("subframe_desync", 1, "whole_frame_shift", True, "got True; allowed: an integer in 0..1"),
    _override_case("temporal_occlusion", 2, "kind", "smoke", "got 'smoke'; allowed: one of 'erase', 'voc'"),
    (
        _override("joint_dropout", 3, {"min_missing": 9}),
        ["key 'variants[0].corruptions[0].overrides.3': corruption 'joint_dropout', severity 3: "
         "min_missing (9) must not exceed max_missing (8)"],
    ),  # fmt: skip
]


@pytest.mark.parametrize("mutate,expected", CASES, ids=[c[0].__name__[8:] for c in CASES])
def test_malformed_manifest_one_line_exit_2(tmp_path: Path, mutate, expected):
    data = _base()
    mutate(data)
    path = _write(tmp_path, data)
    for command in (["validate", str(path)], ["generate", str(path), "--out", str(tmp_path / "out"), "--dry-run"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: {path}: ")
        for text in expected:
            assert text in lines[0]
    assert not (tmp_path / "out").exists()


def test_top_level_unknown_key_and_yaml_error(tmp_path: Path):
    data = _base()
    data["frame_stpe"] = 5
    with pytest.raises(UserError, match="unknown key 'frame_stpe'.*allowed keys: .*frame_step"):
        parse_manifest(data, "m.yaml")
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "invalid YAML at line" in result.output


def test_missing_manifest_suggests_builtin():
    result = runner.invoke(app, ["validate", "occluded-h36"])
    assert result.exit_code == 2
    assert "did you mean 'occluded-h36m'?" in result.output


def test_digest_covers_overrides_not_local_paths():
    base = parse_manifest(_base())
    with_path = copy.deepcopy(_base())
    with_path["source"] = {"kind": "synthetic", "path": "/somewhere/else"}
    with_path["voc"] = "/data/VOC2012"
    assert parse_manifest(with_path).digest() == base.digest()
    overridden = copy.deepcopy(_base())
    overridden["variants"][0]["corruptions"][0]["overrides"] = {5: {"sigma": 0.5}}
    assert parse_manifest(overridden).digest() != base.digest()
    reseeded = copy.deepcopy(_base())
    reseeded["seed"] = 1
    assert parse_manifest(reseeded).digest() != base.digest()


def test_keypoints_output_refuses_pixel_corruptions():
    data = _base()
    data["output"] = {"format": "keypoints"}
    with pytest.raises(UserError, match="corrupts images but output.format is 'keypoints'"):
        parse_manifest(data, "m.yaml")
    data["variants"][0]["corruptions"] = [{"name": "keypoint_jitter"}]
    assert parse_manifest(data, "m.yaml").output.format == "keypoints"


@pytest.mark.parametrize("path", BUILTIN, ids=lambda p: p.stem)
def test_stored_manifest_round_trips_to_the_same_digest(path: Path):
    """generate stores canonical_dict as manifest.yaml; verify re-parses it and compares digests."""
    from corrupt_bench.generate.manifest import canonical_dict

    manifest, _ = load_manifest(path)
    again = parse_manifest(yaml.safe_load(yaml.safe_dump(canonical_dict(manifest))))
    assert again.digest() == manifest.digest()


def test_full_frame_crop_round_trips():
    data = _base()
    data["crop"] = {"mode": "full"}
    from corrupt_bench.generate.manifest import canonical_dict

    manifest = parse_manifest(data)
    assert manifest.crop.output_size is None
    assert parse_manifest(canonical_dict(manifest)).digest() == manifest.digest()
    data["crop"] = {"mode": "full", "size": 128}
    with pytest.raises(UserError, match="crop.size is only allowed with mode 'person'"):
        parse_manifest(data, "m.yaml")


def test_eval_step_defaults_to_the_frame_step_and_must_be_a_multiple_of_it(tmp_path):
    assert parse_manifest({**_base(), "frame_step": 2}).eval_step == 2
    assert parse_manifest({**_base(), "frame_step": 2, "eval_step": 10}).eval_step == 10
    for bad in (3, 1, 0, True, "10"):
        result = runner.invoke(app, ["validate", str(_write(tmp_path, {**_base(), "frame_step": 2, "eval_step": bad}))])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, (bad, result.output)
        assert "key 'eval_step'" in result.output
    occluded, _ = load_manifest("occluded-h36m")
    assert (occluded.frame_step, occluded.eval_step) == (1, 5)  # STRIDE's every 5th frame, with 50 fps context
    demo, _ = load_manifest("demo-occluded-h36m")
    assert (demo.frame_step, demo.eval_step) == (1, 5)


def test_box_protocol_is_stated_and_detector_boxes_need_full_frames(tmp_path):
    from corrupt_bench.generate.manifest import canonical_dict

    for path in BUILTIN:
        assert "\nbox: gt" in path.read_text(), path.name  # every shipped manifest states it
        assert load_manifest(path)[0].box == "gt"
    stored = canonical_dict(parse_manifest(_base()))
    assert stored["box"] == "gt" and stored["eval_step"] == 1  # the stored manifest.yaml records both
    assert parse_manifest({**_base(), "box": "gt"}).digest() == parse_manifest(_base()).digest()
    full = {**_base(), "box": "detector", "crop": {"mode": "full"}}
    assert parse_manifest(full).digest() != parse_manifest({**full, "box": "gt"}).digest()
    for data in ({**_base(), "box": "detector"}, {**_base(), "box": "yolo", "crop": {"mode": "full"}}):
        result = runner.invoke(app, ["validate", str(_write(tmp_path, data))])
        assert result.exit_code == 2 and "key 'box'" in result.output and len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["validate", str(_write(tmp_path, {**_base(), "box": "detector"}))])
    assert "crop.mode 'full'" in result.output
