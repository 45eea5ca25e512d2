"""Generating from the field's other layouts: mmpose's processed Human3.6M (the same labels as the raw
layout for the same frames), a calibrated multi-view rig without 3D ground truth (the pose2sim demo
fixture: whole frames at its own 60 fps, joint-less labels, nothing to score) and VideoPose3D's npz
with a chosen 2D file (keypoint variants start from those detections)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from fixtures_mmpose import write_mmpose
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.data.vp3d_npz import H36M_METADATA
from corrupt_bench.errors import UserError
from corrupt_bench.generate.lock import verify
from corrupt_bench.generate.manifest import canonical_dict, parse_manifest
from corrupt_bench.generate.run import generate, prepare
from corrupt_bench.generate.sources import CACHE_ENV, resolve_source
from corrupt_bench.layout import SEQUENCES_NAME, read_sequences

POSE2SIM = Path(__file__).parent / "fixtures" / "pose2sim"
runner = CliRunner()

MMPOSE_CHECK = {
    "name": "mmpose-check", "version": "1", "paper": "none (test)", "seed": 7,
    "source": {"kind": "synthetic", "seconds": 0.5, "divisor": 8},
    "subjects": ["S9"], "actions": ["Walking"], "cameras": ["54138969", "60457274"], "frame_step": 5,
    "crop": {"mode": "person", "size": 48}, "output": {"format": "jpeg"},
    "variants": [{"name": "v", "corruptions": [{"name": "keypoint_jitter", "severities": [3]},
                                               {"name": "gaussian_noise", "severities": [2]}]}],
}  # fmt: skip


def _write(path: Path, manifest: dict) -> Path:
    path.write_text(yaml.safe_dump(manifest))
    return path


def _labels(out: Path) -> dict[str, list[dict]]:
    return {p.relative_to(out).as_posix(): pq.read_table(p).to_pylist() for p in sorted(out.glob("*/*/*/labels/*.parquet"))}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The synthetic raw source of MMPOSE_CHECK (a short S9 walk, 1/8 size) in a private cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
        manifest = parse_manifest(MMPOSE_CHECK)
        yield Path(resolve_source(manifest, None).path)


def test_mmpose_layout_generates_the_labels_of_the_raw_layout(synthetic, tmp_path):
    """mmpose's layout written from the synthetic raw source (every 5th frame as 1-based JPEG names,
    annotation npz, cameras.pkl with row-vector R and T in metres): the same label rows as generating
    from the raw layout for the same frames, keypoint corruptions keyed to the same absolute frames."""
    raw_out, mm_out = tmp_path / "raw-out", tmp_path / "mm-out"
    generate(_write(tmp_path / "raw.yaml", {**MMPOSE_CHECK, "source": {"kind": "h36m_raw"}}), raw_out, source=synthetic,
             show_progress=False)  # fmt: skip
    mm = write_mmpose(synthetic, tmp_path / "mmpose", sample_rate=5)
    assert sorted(p.name for p in (mm / "images/S9/S9_Walking.54138969").iterdir())[:2] == [
        "S9_Walking.54138969_000001.jpg", "S9_Walking.54138969_000006.jpg",
    ]  # fmt: skip
    generate(_write(tmp_path / "mm.yaml", {**MMPOSE_CHECK, "source": {"kind": "mmpose_h36m"}}), mm_out, source=mm,
             show_progress=False)  # fmt: skip
    raw_labels, mm_labels = _labels(raw_out), _labels(mm_out)
    assert list(raw_labels) == list(mm_labels) and len(raw_labels) == 3
    for name, rows in raw_labels.items():
        other = mm_labels[name]
        assert [r["frame"] for r in rows] == [r["frame"] for r in other] == [f for f in range(0, 25, 5) for _ in range(2)]
        for a, b in zip(rows, other, strict=True):
            for column in ("joints_3d_world", "joints_3d_cam"):  # S is the float32 mono CDF taken to the world
                np.testing.assert_allclose(b[column], a[column], atol=0.05)
            same = {k: v for k, v in a.items() if k not in ("joints_3d_world", "joints_3d_cam")}
            assert {k: b[k] for k in same} == same, name
    jitter = next(rows for name, rows in mm_labels.items() if "keypoint_jitter" in name)
    assert any(r["keypoints_2d"] != r["joints_2d"] for r in jitter)
    # the clean crops come from mmpose's JPEG frames: close to the raw videos' frames
    clean = next(name for name in raw_labels if "/clean/" in name)
    for row in raw_labels[clean]:
        a, b = (cv2.imread(str(out / row["image"])).astype(int) for out in (raw_out, mm_out))
        assert a.shape == b.shape == (48, 48, 3) and np.abs(a - b).mean() < 6.0
    assert read_sequences(mm_out)[0]["fps"] == 50.0 and verify(mm_out).ok
    cameras = json.loads((mm_out / "cameras.json").read_text())
    assert set(cameras["extrinsics"]["S9"]) == {"54138969", "60457274"}


def test_mmpose_every_fifth_frame_needs_a_step_of_five(synthetic, tmp_path):
    mm = write_mmpose(synthetic, tmp_path / "mmpose", sample_rate=5, images=False)
    manifest = _write(tmp_path / "m.yaml", {**MMPOSE_CHECK, "source": {"kind": "mmpose_h36m", "annotation": "fps10"},
                                            "frame_step": 2, "output": {"format": "keypoints"},
                                            "variants": [{"name": "v", "corruptions": [{"name": "keypoint_jitter"}]}]})  # fmt: skip
    with pytest.raises(UserError, match="holds every 5th frame only .* multiple of 5"):
        prepare(manifest, mm)
    with pytest.raises(UserError, match="source.annotation is for kind 'mmpose_h36m' only"):
        parse_manifest({**MMPOSE_CHECK, "source": {"kind": "h36m_raw", "annotation": "fps10"}})


POSE2SIM_MANIFEST = POSE2SIM / "manifest.yaml"


def test_the_pose2sim_rig_generates_through_the_multiview_source(tmp_path):
    """The fixture's manifest (tests/fixtures/pose2sim/manifest.yaml, the README's example) on its rig:
    whole frames of each camera's own size, labels without joints, the rig's 60 fps recorded; `info`
    says 60 fps; `score` says in one line that there are no 3D labels."""
    info = runner.invoke(app, ["info", str(POSE2SIM)])
    assert info.exit_code == 0, info.output
    assert "13 frames at 60 fps" in info.output and "50 fps" not in info.output
    out = tmp_path / "rig-out"
    result = runner.invoke(app, ["generate", str(POSE2SIM_MANIFEST), "--source", str(POSE2SIM), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(POSE2SIM_MANIFEST.read_text())
    (sequence,) = read_sequences(out)
    assert sequence["fps"] == 60.0 and sequence["frame_step"] == manifest["frame_step"] and sequence["labels_3d"] is False
    assert sequence["cameras"]["cam01"] == {"width": 1080, "height": 1920} and sequence["cameras"]["cam03"]["width"] == 1088
    rows = pq.read_table(out / "rig/gaussian_noise/3/labels/P1_demo.parquet").to_pylist()
    frames = list(range(0, manifest["max_frames"] * manifest["frame_step"], manifest["frame_step"]))
    assert [(r["frame"], r["camera"]) for r in rows] == [(f, c) for f in frames for c in manifest["cameras"]]
    for row in rows:
        assert np.isnan(row["joints_2d"]).all() and np.isnan(row["joints_3d_cam"]).all() and np.isnan(row["box"]).all()
        width, height = row["image_size"]
        assert row["crop"] == [0, 0, width, height] and (width, height) in ((1080, 1920), (1088, 1920))
        assert (out / row["image"]).is_file()
    image = cv2.imread(str(out / rows[2]["image"]))  # cam03: 1088 px wide
    assert image.shape == (1920, 1088, 3)
    cameras = json.loads((out / "cameras.json").read_text())
    assert cameras["intrinsics"]["cam01"]["distortion_model"] == "opencv"
    assert SEQUENCES_NAME in json.loads((out / "lock.json").read_text())["root_files"] and verify(out).ok
    scored = runner.invoke(app, ["score", "--benchmark", str(out), "--model", "triangulation", "--out", str(tmp_path / "run")])
    assert scored.exit_code == 2 and scored.output.strip().endswith("no 3D labels to score: the benchmark's source has no 3D ground truth (sequences.json)")
    assert len(scored.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
    table = json.loads((out / SEQUENCES_NAME).read_text())  # the lock covers sequences.json
    table["sequences"][0]["fps"] = 50.0
    (out / SEQUENCES_NAME).write_text(json.dumps(table))
    assert verify(out).altered == [SEQUENCES_NAME]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("cameras"), "key 'cameras' is required with source kind 'multiview'"),
        (lambda m: m.update(crop={"mode": "person"}), "has no 3D ground truth .* use crop: {mode: full}"),
        (lambda m: m["variants"][0]["corruptions"].append({"name": "keypoint_jitter"}), "'keypoint_jitter' corrupts 2D keypoints"),
        (lambda m: m.update(cameras=["cam01", "cam09"]), "key 'cameras\\[1\\]': no camera 'cam09' in the source .* did you mean 'cam04'"),
        (lambda m: m.update(cameras=["cam/01"]), "camera id 'cam/01' must be letters"),
        (lambda m: m.update(subjects=["P2"]), "no sequence of subject P2"),
    ],
)
def test_rig_manifest_faults_are_one_line_errors(tmp_path, change, message):
    manifest = yaml.safe_load(POSE2SIM_MANIFEST.read_text())
    change(manifest)
    with pytest.raises(UserError, match=message):
        prepare(_write(tmp_path / "m.yaml", manifest), POSE2SIM)


def test_vp3d_keypoint_file_is_chosen_and_keypoint_variants_start_from_it(tmp_path):
    """source.keypoints: cpn_ft_h36m_dbb reads data_2d_h36m_cpn_ft_h36m_dbb.npz: its 2D are the labels'
    joints_2d and the keypoint corruption perturbs them; a missing name is a one-line error."""
    from corrupt_bench.data.synth_motion import synthetic_motion_raw

    world = synthetic_motion_raw("S9", "walk", 30) / 1000.0
    np.savez_compressed(tmp_path / "data_3d_h36m.npz", positions_3d={"S9": {"Walking 1": world.astype(np.float32)}})
    rng = np.random.default_rng(3)
    detections = [rng.uniform(100, 900, (32, 17, 3)).astype(np.float32) for _ in range(4)]  # x, y, confidence
    np.savez_compressed(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d={"S9": {"Walking 1": detections}},
                        metadata=H36M_METADATA)  # fmt: skip
    manifest = {
        "name": "cpn", "version": "1", "paper": "none (test)", "seed": 1,
        "source": {"kind": "vp3d_npz", "keypoints": "cpn_ft_h36m_dbb"}, "subjects": ["S9"],
        "cameras": ["54138969", "55011271"], "frame_step": 10, "crop": {"mode": "full"}, "output": {"format": "keypoints"},
        "variants": [{"name": "k", "corruptions": [{"name": "keypoint_jitter", "severities": [5]}]}],
    }  # fmt: skip
    out = tmp_path / "out"
    generate(_write(tmp_path / "m.yaml", manifest), out, source=tmp_path, show_progress=False)
    rows = pq.read_table(out / "k/keypoint_jitter/5/labels/S9_Walking 1.parquet").to_pylist()
    assert [r["frame"] for r in rows[::2]] == [0, 10, 20]
    for row in rows:
        view = detections[("54138969", "55011271", "58860488", "60457274").index(row["camera"])]
        np.testing.assert_allclose(np.reshape(row["joints_2d"], (17, 2)), view[row["frame"], :, :2], atol=1e-3)
    assert any(r["keypoints_2d"] != r["joints_2d"] for r in rows)
    stored = yaml.safe_load((out / "manifest.yaml").read_text())
    assert stored["source"] == {"kind": "vp3d_npz", "seconds": 2.0, "divisor": 8, "seed": 0, "keypoints": "cpn_ft_h36m_dbb"}
    with pytest.raises(UserError, match="no data_2d_h36m_detectron_ft_h36m.npz"):
        prepare(_write(tmp_path / "d.yaml", {**manifest, "source": {"kind": "vp3d_npz", "keypoints": "detectron_ft_h36m"}}), tmp_path)
    with pytest.raises(UserError, match="source.keypoints is for kind 'vp3d_npz' only"):
        parse_manifest({**manifest, "source": {"kind": "h36m_raw", "keypoints": "gt"}})


def test_without_the_new_keys_the_canonical_manifest_is_unchanged():
    """source.keypoints and source.annotation enter the canonical form (and the digest) only when given."""
    base = parse_manifest({**MMPOSE_CHECK, "source": {"kind": "h36m_raw"}})
    assert set(canonical_dict(base)["source"]) == {"kind", "seconds", "divisor", "seed"}
    named = parse_manifest({**MMPOSE_CHECK, "source": {"kind": "mmpose_h36m", "annotation": "fps10"}})
    assert canonical_dict(named)["source"]["annotation"] == "fps10"


def test_sizes_of_the_estimates_come_from_the_source():
    """The dry run's size and the staged groups use the source's frames (1088 x 1920 here), not 1000 x 1000."""
    from corrupt_bench.generate.run import FULL_FRAME_PIXELS, estimate_bytes, frame_pixels
    from corrupt_bench.generate.sources import open_source

    manifest, config, plan, _ = prepare(POSE2SIM_MANIFEST, POSE2SIM)
    pixels = frame_pixels(open_source(config), plan)
    assert pixels == 1088 * 1920
    assert estimate_bytes(manifest, plan, pixels) > estimate_bytes(manifest, plan, FULL_FRAME_PIXELS) * 2


def test_a_rig_with_ground_truth_crops_corrupts_keypoints_and_scores(tmp_path):
    """With 3D ground truth (here a synthetic walk placed in the pose2sim rig), a rig benchmark gets person
    crops, keypoint corruptions and 3D labels; its clips run at the rig's 60 fps; the harness reads the
    rig's OpenCV cameras back from the benchmark: triangulating the ground-truth 2D gives the 3D labels."""
    from corrupt_bench.data.synth_motion import synthetic_motion
    from corrupt_bench.generate.clips import UnitFrames
    from corrupt_bench.generate.manifest import CropSpec
    from corrupt_bench.generate.sources import open_source

    rig = Path(shutil.copytree(POSE2SIM, tmp_path / "rig"))
    walk = synthetic_motion("S9", "walk", 13)
    np.savez(rig / "gt.npz", positions=walk - [walk[..., 0].mean(), walk[..., 1].mean(), 0.0])  # centred in the rig
    spec = yaml.safe_load((rig / "rig.yaml").read_text())
    spec["sequences"][0]["ground_truth"] = {"file": "gt.npz"}
    (rig / "rig.yaml").write_text(yaml.safe_dump(spec))
    manifest = yaml.safe_load(POSE2SIM_MANIFEST.read_text())
    manifest["crop"] = {"mode": "person", "size": 64}
    manifest["variants"][0]["corruptions"] = [{"name": "keypoint_jitter", "severities": [3]}]
    path = _write(tmp_path / "m.yaml", manifest)
    _, config, plan, _ = prepare(path, rig)
    seq = plan.units[0].seq
    with UnitFrames(open_source(config), seq, plan.units[0].cameras, CropSpec(size=64), with_images=False) as frames:
        assert seq.fps == 60.0 and next(frames.chunks((0, 2), 2, 0)).clip.fps == 60.0
    out = tmp_path / "out"
    generate(path, out, source=rig, show_progress=False)
    assert read_sequences(out)[0]["labels_3d"] is True and verify(out).ok
    rows = pq.read_table(out / "rig/keypoint_jitter/3/labels/P1_demo.parquet").to_pylist()
    assert all(r["image_size"] == [64, 64] and np.isfinite(r["joints_3d_cam"]).all() for r in rows)
    assert any(r["keypoints_2d"] != r["joints_2d"] for r in rows)
    run = tmp_path / "run"
    scored = runner.invoke(app, ["score", "--benchmark", str(out), "--model", "triangulation", "--input-2d", "gt", "--out", str(run)])
    assert scored.exit_code == 0, scored.output
    results = pq.read_table(run / "results.parquet").to_pylist()
    assert len(results) == 2 * 4 and all(r["coverage"] == 1.0 and r["mpjpe"] < 0.01 for r in results)
