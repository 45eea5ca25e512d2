"""Variants as the papers define them: DTF's missing-joints protocol (dtf-occlusion.yaml generates on
the synthetic source), missing joints at (0, 0) full-frame px on person crops too, pixelate's reduced
size as ImageNet-C computes it, and Human3.6M-C's paper-only variant."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from corrupt_bench.data.synth import write_synthetic
from corrupt_bench.engine import corrupt_clip, get_corruption
from corrupt_bench.engine.frames import demo_clip
from corrupt_bench.generate.lock import verify
from corrupt_bench.generate.manifest import load_manifest
from corrupt_bench.generate.run import generate


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synthetic-dtf")
    return write_synthetic(path, subjects=("S9", "S11"), actions=("walk",), seconds=0.4, divisor=16, workers=1)


def _rows(out: Path, cell: str) -> list[dict]:
    return [row for p in sorted((out / cell / "labels").glob("*.parquet")) for row in pq.read_table(p).to_pylist()]


def test_dtf_occlusion_generates_on_the_synthetic_source_with_dtf_missing_joint_counts(source, tmp_path):
    out = tmp_path / "dtf"
    summary = generate("dtf-occlusion", out, source=source, show_progress=False)
    assert summary.images == 0 and verify(out).ok
    severe = _rows(out, "dtf-severe/joint_dropout/5")
    counts: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    joint_sets: dict[tuple[str, str, str], set[tuple[int, ...]]] = defaultdict(set)
    for row in severe:
        conf = np.array(row["keypoint_conf"])
        missing = tuple(np.flatnonzero(conf == 0).tolist())
        counts[(row["subject"], row["sequence"], row["camera"])].add(len(missing))
        joint_sets[(row["subject"], row["sequence"], row["camera"])].add(missing)
        assert list(np.flatnonzero(row["occluded"])) == list(missing)
        keypoints = np.array(row["keypoints_2d"]).reshape(17, 2)
        assert np.all(keypoints[list(missing)] == 0.0)
        kept = [j for j in range(17) if j not in missing]
        np.testing.assert_array_equal(keypoints[kept], np.array(row["joints_2d"]).reshape(17, 2)[kept])
    assert len(counts) == 2 * 4  # 2 sequences x 4 cameras
    # one count per sequence and camera (DTF's randint(12, 16) per sequence), new joints on every frame
    assert all(len(c) == 1 and 12 <= next(iter(c)) <= 16 for c in counts.values())
    assert len({next(iter(c)) for c in counts.values()}) > 1
    assert all(len(s) > 1 for s in joint_sets.values())
    sixteen = _rows(out, "dtf-16/joint_dropout/5")
    assert sixteen and all(int(np.sum(np.array(r["keypoint_conf"]) == 0)) == 16 for r in sixteen)
    manifest, _ = load_manifest("dtf-occlusion")
    assert manifest.output.format == "keypoints" and manifest.frame_step == 1
    assert any("randint(12, 16)" in note for note in manifest.notes)
    # DTF scores on it: its own protocol, at its own rate, from the corrupted keypoints
    import pandas as pd

    from corrupt_bench.harness.scoring import score

    df = pd.read_parquet(score("dtf", out, tmp_path / "run", show_progress=False).results)
    assert set(df["variant"]) == {"dtf-severe", "dtf-16"} and set(df["corruption"]) == {"clean", "joint_dropout"}
    dropped = df["corruption"] == "joint_dropout"
    assert (df.loc[dropped, "input_2d"] == "corrupted").all() and (df.loc[~dropped, "input_2d"] == "labels").all()
    assert (df["frame_rate"] == "50 fps").all()
    assert df["error"].isna().all() and np.isfinite(df["mpjpe"]).all() and (df["coverage"] == 1.0).all()


def test_dropped_joints_on_person_crops_are_at_the_full_frame_origin(source, tmp_path):
    """Version 1 mapped the engine's (0, 0) in crop px back through the crop: the crop's corner."""
    data = {
        "name": "kp-crop", "version": "1", "paper": "none (test)", "seed": 1, "source": {"kind": "h36m_raw"},
        "subjects": ["S9"], "cameras": ["54138969", "60457274"], "frame_step": 2,
        "crop": {"mode": "person", "size": 64}, "output": {"format": "keypoints"},
        "variants": [{"name": "k", "corruptions": [{"name": "joint_dropout", "severities": [3]}]}],
    }  # fmt: skip
    path = tmp_path / "kp.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "kp"
    generate(path, out, source=source, show_progress=False)
    rows = _rows(out, "k/joint_dropout/3")
    assert rows
    dropped = 0
    for row in rows:
        conf = np.array(row["keypoint_conf"])
        keypoints = np.array(row["keypoints_2d"]).reshape(17, 2)
        labels = np.array(row["joints_2d"]).reshape(17, 2)
        assert np.all(keypoints[conf == 0] == 0.0)
        assert not np.any(np.all(np.isclose(keypoints[conf == 0], row["crop"][:2], atol=1e-3), axis=1))
        np.testing.assert_allclose(keypoints[conf > 0], labels[conf > 0], atol=1e-3)
        dropped += int(np.sum(conf == 0))
    assert dropped >= len(rows) * 4  # severity 3 drops 4 to 8 joints per frame


def test_pixelate_reduces_to_imagenet_c_sizes():
    """ImageNet-C: x.resize((int(224 * c), int(224 * c)), BOX) for a 224-px image: 134, 112, 89, 67, 56 px."""
    clip = demo_clip(n_views=1, n_frames=1, size=224)
    corruption = get_corruption("pixelate")
    assert corruption.version == 2
    for severity, expected in zip(range(1, 6), (134, 112, 89, 67, 56), strict=True):
        factor = corruption.table[severity].factor
        assert expected == int(224 * factor)
        _, record = corrupt_clip(clip, "pixelate", severity, 0)
        assert record.params[0][0]["size"] == [expected, expected], severity


def test_h36m_c_ships_the_paper_variant_beside_the_extended_one():
    for name in ("h36m-c", "demo-h36m-c"):
        manifest, _ = load_manifest(name)
        variants = {v.name: {c.name for c in v.corruptions} for v in manifest.variants}
        paper = variants["h36m-c-paper"]
        extended = variants["h36m-c"]
        assert paper < extended
        added = extended - paper
        assert added == {"defocus_blur", "brightness", "contrast", "jpeg_compression", "pixelate"}, added
        assert any("added" in note and "paper" in note for note in manifest.notes)
