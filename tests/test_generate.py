"""`generate` end to end on the synthetic source: every demo manifest, the label contract, identity
under worker count (in this process and on a pool), SIGKILL + resume, chunking and grouping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from golden import BENCHMARK_VERSIONS, require_versions
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.data.crop import to_crop
from corrupt_bench.generate import run
from corrupt_bench.generate.lock import _type_name, benchmark_files, read_marker, verify
from corrupt_bench.generate.planner import UnitGroup, group_units
from corrupt_bench.generate.run import RunContext, generate, prepare, run_group, run_unit
from corrupt_bench.generate.sources import CACHE_ENV
from corrupt_bench.generate.writers import decode_image
from corrupt_bench.layout import LABEL_COLUMNS, LOCK_NAME, label_schema, read_sequences

DEMOS = ("demo-da-3dpe", "demo-h36m-c", "demo-occluded-h36m", "demo-weak-sync")
# lock content digests of the demo manifests on the synthetic source (golden.BENCHMARK_VERSIONS:
# numpy 2.4.x, opencv 5.0.0, scipy 1.17.x, scikit-image 0.26.x, pyarrow 26.0.x, av 18.1.x)
DEMO_CONTENT_DIGESTS = {
    "demo-da-3dpe": "sha256:e7797ad6e0b94aefbdea47a48012fef749b7d4b55f0eb54c9b09ba54b94e6aa7",
    "demo-h36m-c": "sha256:222a4f834b3b6f5c42e7dcdcfd0c6dd6572b91b298c5a72925857bcad50d8cc2",
    "demo-occluded-h36m": "sha256:eff4eaad390b22ff4d9381728a7a88dce04a002cdf0170e431658ac0b7f66de6",
    "demo-weak-sync": "sha256:c486360a3ba8ca2dc4b9369ff8fb3959a85abaaacccbc8cc2410032186511797",
}
runner = CliRunner()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def demo_runs(cache, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demos")
    outs = {}
    for name in DEMOS:
        outs[name] = root / name
        generate(name, outs[name], workers=1, show_progress=False)
    return outs


def _labels(out: Path) -> dict[str, object]:
    return {p.relative_to(out).as_posix(): pq.read_table(p) for p in sorted(out.glob("*/*/*/labels/*.parquet"))}


@pytest.mark.parametrize("name", DEMOS)
def test_demo_manifest_generates(demo_runs, name):
    out = demo_runs[name]
    manifest, _, plan, _ = prepare(name)
    lock = json.loads((out / LOCK_NAME).read_text())
    assert lock["manifest"]["digest"] == manifest.digest()
    assert lock["units"] == len(plan.units)
    # nothing machine- or time-dependent besides versions: no timestamps, no paths
    assert set(lock) == {
        "lock_format", "tool", "libraries", "manifest", "corruptions", "units", "content_digest", "root_files", "files",
    }  # fmt: skip
    assert set(lock["manifest"]) == {"name", "version", "digest", "seed"}
    assert set(lock["root_files"]) == {"cameras.json", "sequences.json"}
    sequences = read_sequences(out)  # the source's rate per sequence: a variant's rate is fps / frame_step
    assert {(s["subject"], s["sequence"]) for s in sequences} == {(u.seq.subject, u.seq.sequence) for u in plan.units}
    assert all(s["fps"] == 50.0 and s["frame_step"] == manifest.frame_step and s["labels_3d"] for s in sequences)
    assert {"numpy", "opencv", "scipy", "scikit-image", "pyarrow"} <= set(lock["libraries"])
    assert sorted(lock["files"]) == benchmark_files(out)
    size = manifest.crop.size
    ext = manifest.output.extension
    for unit in plan.units:
        table = pq.read_table(out / unit.cell / "labels" / f"{unit.stem}.parquet")
        assert table.schema.names == list(LABEL_COLUMNS)
        assert [_type_name(t) for t in table.schema.types] == [_type_name(t) for t in label_schema().types]
        assert table.num_rows == len(unit.frames) * len(unit.cameras)
        rows = table.to_pylist()
        # frame-major, cameras in manifest order
        assert [(r["frame"], r["camera"]) for r in rows] == [(f, c) for f in unit.frames for c in unit.cameras]
        first = rows[0]
        assert first["variant"] == unit.variant and first["corruption"] == unit.corruption
        assert first["severity"] == unit.severity and first["image_size"] == [size, size]
        image = decode_image((out / first["image"]).read_bytes())
        assert image.shape == (size, size, 3)
        assert first["image"] == f"{unit.cell}/images/{unit.stem}.{first['camera']}/{first['frame']:06d}.{ext}"
        for row in rows:
            assert len(row["joints_3d_cam"]) == 51 and len(row["joints_2d"]) == 34 and len(row["occluded"]) == 17
            if unit.corruption == "clean":
                crop_pts = to_crop(np.reshape(row["joints_2d"], (17, 2)), np.asarray(row["crop"]), size)
                np.testing.assert_allclose(crop_pts, np.reshape(row["joints_2d_crop"], (17, 2)), atol=1e-3)
                assert row["view_valid"] and row["time_offset"] == 0 and not any(row["occluded"])
            assert row["keypoints_2d"] is None  # no keypoint corruption in the demos
    assert verify(out).ok


@pytest.mark.parametrize("name", DEMOS)
def test_demo_content_digests_are_pinned(demo_runs, name):
    """The benchmark's bytes: a change here under the pinned library versions is a benchmark version bump."""
    require_versions(BENCHMARK_VERSIONS)
    lock = json.loads((demo_runs[name] / LOCK_NAME).read_text())
    assert lock["content_digest"] == DEMO_CONTENT_DIGESTS[name]


def test_clean_reference_and_corruption_effects(demo_runs):
    out = demo_runs["demo-weak-sync"]
    clean = pq.read_table(out / "subframe/clean/0/labels/S9_Walking.parquet").to_pylist()
    shifted = pq.read_table(out / "frame-shift/subframe_desync/1/labels/S9_Walking.parquet").to_pylist()
    desync5 = pq.read_table(out / "subframe/subframe_desync/5/labels/S9_Walking.parquet").to_pylist()
    # the override makes a pure whole-frame shift: every view moves by exactly one frame
    assert {abs(r["time_offset"]) for r in shifted} == {1.0}
    assert max(abs(r["time_offset"]) for r in desync5) > 1.0
    # 2D labels follow the shifted time, 3D ground truth stays at the reference time
    assert any(a["joints_2d"] != b["joints_2d"] for a, b in zip(clean, shifted, strict=True))
    assert all(a["joints_3d_cam"] == b["joints_3d_cam"] for a, b in zip(clean, shifted, strict=True))
    occl = pq.read_table(
        demo_runs["demo-occluded-h36m"] / "occluded-h36m/temporal_occlusion/5/labels/S9_Walking.parquet"
    ).to_pylist()
    assert any(any(r["occluded"]) for r in occl) and not all(any(r["occluded"]) for r in occl)


def test_workers_1_and_2_give_identical_locks(demo_runs, tmp_path):
    out = tmp_path / "w2"
    result = runner.invoke(app, ["generate", "demo-occluded-h36m", "--out", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert (out / LOCK_NAME).read_bytes() == (demo_runs["demo-occluded-h36m"] / LOCK_NAME).read_bytes()


@pytest.mark.parametrize("workers", [2, 3])
def test_a_pool_gives_the_identical_lock(demo_runs, tmp_path, monkeypatch, workers):
    """Work split over this process and spawned workers (frames decoded once per group)."""
    monkeypatch.setattr(run, "MIN_ROWS_PER_WORKER", 1)  # the demos are too small to start a pool otherwise
    name = "demo-da-3dpe"
    summary = generate(name, tmp_path / "pool", workers=workers, show_progress=False)
    assert summary.ran == summary.units
    assert (tmp_path / "pool" / LOCK_NAME).read_bytes() == (demo_runs[name] / LOCK_NAME).read_bytes()


# the CLI in a subprocess, with a pool for any work (the demo is too small to start one otherwise)
_CLI_WITH_POOL = (
    "import sys; import corrupt_bench.generate.run as run; run.MIN_ROWS_PER_WORKER = 1; "
    "from corrupt_bench.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_sigkill_then_rerun_gives_identical_lock(demo_runs, cache, tmp_path):
    name = "demo-da-3dpe"
    out = tmp_path / "killed"
    total = len(prepare(name)[2].units)
    command = [sys.executable, "-c", _CLI_WITH_POOL, "generate", name, "--out", str(out), "--workers", "3"]
    env = {**os.environ, CACHE_ENV: str(cache)}
    proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done_dir = out / ".generate" / "done"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if list(done_dir.glob("**/*.json")):  # markers land a group at a time
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its pool workers, mid-run
        proc.wait()
    done = len(list(done_dir.glob("**/*.json")))
    assert 0 < done < total, f"kill landed at {done}/{total} units"
    assert not (out / LOCK_NAME).exists()
    summary = generate(name, out, workers=1, show_progress=False)
    assert summary.done_before == done and summary.ran == total - done
    assert (out / LOCK_NAME).read_bytes() == (demo_runs[name] / LOCK_NAME).read_bytes()
    assert verify(out).ok
    assert not list(out.glob("**/.*.tmp"))  # what the kill left half-written is gone


def test_rerun_of_a_finished_run_changes_nothing(demo_runs):
    out = demo_runs["demo-h36m-c"]
    before = (out / LOCK_NAME).read_bytes()
    result = runner.invoke(app, ["generate", "demo-h36m-c", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "0 run" in result.output
    assert (out / LOCK_NAME).read_bytes() == before


def test_chunking_and_grouping_do_not_change_bytes(demo_runs, tmp_path):
    """Units run alone, in split groups and all together (their frames decoded once), cut into chunks
    of 2 or 3 frames (with overlap for desync: 2 < its overlap of 3), equal the generated demo (one
    group per sequence, unchunked)."""
    for name in ("demo-weak-sync", "demo-occluded-h36m"):
        manifest, config, plan, voc = prepare(name)
        groupings = {  # label: (groups, frames per chunk)
            "alone": ([UnitGroup((u,)) for u in plan.units], 2),
            "split": (list(group_units(plan.units, min_groups=5)), 3),
            "together": (list(group_units(plan.units)), 2),
        }
        if name == "demo-weak-sync":  # both variants read the same frames: one group, frames decoded once
            assert group_units(plan.units) == (UnitGroup(plan.units),)
        for label, (groups, chunk) in groupings.items():
            out = tmp_path / f"{name}-{label}"
            ctx = RunContext(str(out), manifest.model_dump_json(), config, voc, manifest.seed, chunk_frames=chunk)
            for group in groups:
                assert [r.key for r in run_group(ctx, group)] == [u.key for u in group.units]
            for unit in plan.units:
                assert read_marker(out, unit.key) == read_marker(demo_runs[name], unit.key), (label, unit.key)
    # a finished unit of a group is skipped, the others run
    first, second = plan.units[:2]
    out = tmp_path / "partial"
    ctx = RunContext(str(out), manifest.model_dump_json(), config, voc, manifest.seed)
    run_unit(ctx, first)
    results = run_group(ctx, UnitGroup((first, second)))
    assert [(r.key, r.skipped) for r in results] == [(first.key, True), (second.key, False)]


def test_group_units_shares_frames_splits_and_caps():
    from corrupt_bench.generate.planner import SequenceInfo, WorkUnit

    s9 = SequenceInfo("S9", "Walking", "Walking", 1, ("a", "b"), 100)
    s11 = SequenceInfo("S11", "Walking", "Walking", 1, ("a", "b"), 50)
    frames9, frames11 = tuple(range(0, 100, 2)), tuple(range(0, 50, 2))
    units = [
        *(WorkUnit("v", c, 1, s9, ("a", "b"), frames9) for c in "pqrs"),
        *(WorkUnit("w", c, 1, s9, ("a", "b"), frames9) for c in "pq"),  # another variant, same frames
        WorkUnit("x", "p", 1, s9, ("a",), frames9),  # other cameras: other frames
        *(WorkUnit("v", c, 1, s11, ("a", "b"), frames11) for c in "pq"),
    ]
    groups = group_units(units)
    assert [len(g.units) for g in groups] == [6, 2, 1]  # largest first
    assert groups[0].units == tuple(units[:6]) and groups[0].n_images == 6 * 100
    split = group_units(units, min_groups=6)  # 2 parts per frames: 3 + 3, 1 + 1, 1
    assert sorted(len(g.units) for g in split) == [1, 1, 1, 3, 3]
    assert sorted(u.key for g in split for u in g.units) == sorted(u.key for u in units)
    capped = group_units(units, max_images=250)  # at most 2 units of 100 images
    assert max(g.n_images for g in capped) <= 250 and len(capped) == 3 + 1 + 1


def test_dry_run_prints_counts_and_writes_nothing(cache, tmp_path):
    out = tmp_path / "dry"
    result = runner.invoke(app, ["generate", "demo-da-3dpe", "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    # 1 sequence x (6 corruptions x 2 severities + clean) units, 6 frames, 4 cameras
    assert "units 13  frames 78  images 312" in result.output
    assert "estimated size" in result.output
    assert not out.exists()


def test_out_folder_of_another_manifest_is_refused(demo_runs):
    result = runner.invoke(app, ["generate", "demo-weak-sync", "--out", str(demo_runs["demo-h36m-c"])])
    assert result.exit_code == 2
    assert "another manifest" in result.output


def test_real_manifest_needs_source(tmp_path):
    result = runner.invoke(app, ["generate", "occluded-h36m", "--out", str(tmp_path / "o"), "--dry-run"])
    assert result.exit_code == 2
    assert "--source" in result.output


def test_full_frame_output(cache, tmp_path):
    import yaml

    manifest = {
        "name": "full", "version": "1", "paper": "none (test)", "seed": 0,
        "source": {"kind": "synthetic", "seconds": 1.0, "divisor": 8, "seed": 0},
        "subjects": ["S9"], "actions": ["Walking"], "cameras": ["54138969", "58860488"],
        "frame_step": 5, "max_frames": 2, "crop": {"mode": "full"}, "output": {"format": "png"},
        "variants": [{"name": "f", "corruptions": [{"name": "random_erase", "severities": [3]}]}],
    }  # fmt: skip
    path = tmp_path / "full.yaml"
    path.write_text(yaml.safe_dump(manifest))
    out = tmp_path / "out"
    generate(path, out, show_progress=False)
    rows = pq.read_table(out / "f/random_erase/3/labels/S9_Walking.parquet").to_pylist()
    assert len(rows) == 4
    for row in rows:
        w, h = row["image_size"]
        assert row["crop"] == [0.0, 0.0, float(w), float(h)]
        assert row["joints_2d"] == row["joints_2d_crop"]
        assert decode_image((out / row["image"]).read_bytes()).shape == (h, w, 3)
    assert verify(out).ok


def test_views_of_different_sizes_are_padded_then_cut_back():
    from corrupt_bench.generate.clips import stack_padded

    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (2, 6, 5, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (2, 4, 5, 3), dtype=np.uint8)
    stacked = stack_padded([a, b])
    assert stacked.shape == (2, 2, 6, 5, 3)
    np.testing.assert_array_equal(stacked[0], a)
    np.testing.assert_array_equal(stacked[1, :, :4], b)
    np.testing.assert_array_equal(stacked[1, :, 5], b[:, 3])  # edge replication, not black
    # in place, as the chunk buffer is filled: what np.pad(mode="edge") gives, for every shape smaller on any side
    for shape in ((6, 5), (4, 5), (6, 3), (1, 1), (3, 2)):
        view = rng.integers(0, 255, (2, *shape, 3), dtype=np.uint8)
        stacked = stack_padded([a, view])
        padded = np.pad(view, ((0, 0), (0, 6 - shape[0]), (0, 5 - shape[1]), (0, 0)), mode="edge")
        np.testing.assert_array_equal(stacked[1], padded)


def test_keypoints_only_from_videopose3d_npz(tmp_path):
    """A keypoints-only variant from VideoPose3D's npz (real structure: pickled dicts via savez)."""
    import yaml

    from corrupt_bench.data.cameras import get_camera, project_world
    from corrupt_bench.data.synth_motion import synthetic_motion_raw

    raw = {"S9": {"Walking 1": synthetic_motion_raw("S9", "walk", 40) / 1000.0,
                  "Walking": synthetic_motion_raw("S9", "walk", 30, seed=1) / 1000.0}}  # fmt: skip
    np.savez_compressed(tmp_path / "data_3d_h36m.npz", positions_3d={s: {a: p.astype(np.float32) for a, p in d.items()} for s, d in raw.items()})
    manifest = {
        "name": "kp", "version": "1", "paper": "none (test)", "seed": 5, "source": "vp3d_npz",
        "subjects": ["S9"], "cameras": ["54138969", "60457274"], "frame_step": 10,
        "crop": {"mode": "full"}, "output": {"format": "keypoints"},
        "variants": [{"name": "k", "corruptions": [{"name": "keypoint_jitter", "severities": [4]},
                                                   {"name": "joint_dropout", "severities": [5]}]}],
    }  # fmt: skip
    path = tmp_path / "kp.yaml"
    path.write_text(yaml.safe_dump(manifest))
    out = tmp_path / "out"
    summary = generate(path, out, source=tmp_path, show_progress=False)
    assert summary.units == 2 * 3 and summary.images == 0
    assert not list(out.glob("**/images"))
    clean = pq.read_table(out / "k/clean/0/labels/S9_Walking 1.parquet").to_pylist()
    jitter = pq.read_table(out / "k/keypoint_jitter/4/labels/S9_Walking 1.parquet").to_pylist()
    dropout = pq.read_table(out / "k/joint_dropout/5/labels/S9_Walking 1.parquet").to_pylist()
    assert [r["frame"] for r in clean[::2]] == [0, 10, 20, 30]
    assert clean[0]["action"] == "Walking" and clean[0]["image"] is None and clean[0]["keypoints_2d"] is None
    camera = get_camera("S9", "60457274")
    expected = project_world(raw["S9"]["Walking 1"][10][[0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]] * 1000.0, camera)
    np.testing.assert_allclose(np.reshape(clean[3]["joints_2d"], (17, 2)), expected, atol=1e-2)
    for a, b in zip(clean, jitter, strict=True):
        assert b["joints_2d"] == a["joints_2d"]  # the labels stay clean
        assert len(b["keypoints_2d"]) == 34 and len(b["keypoint_conf"]) == 17
    assert any(a["joints_2d"] != b["keypoints_2d"] for a, b in zip(clean, jitter, strict=True))
    assert any(min(r["keypoint_conf"]) == 0.0 or any(r["occluded"]) for r in dropout)
    assert verify(out).ok


def test_real_manifest_dry_run_on_a_raw_folder(tmp_path):
    """h36m_raw manifests read a raw folder (CDF + mp4); the corrupt S11 Directions camera is left out."""
    from fixtures_raw import write_raw

    raw = write_raw(tmp_path / "raw", {"S9": ["Walking 1"], "S11": ["Directions"]}, n_frames=20)
    result = runner.invoke(app, ["generate", "occluded-h36m", "--source", str(raw), "--out", str(tmp_path / "o"), "--dry-run"])
    assert result.exit_code == 0, result.output
    # 2 sequences x (clean + 2 corruptions x 5 severities); frames 0, 5, 10, 15; S11 keeps 3 cameras
    assert "units 22  frames 88  images 308" in result.output
    assert "S11 Directions: camera 54138969 not usable, left out" in result.output
    result = runner.invoke(app, ["generate", "da-3dpe", "--source", str(raw), "--out", str(tmp_path / "d"), "--dry-run"])
    assert result.exit_code == 2 and "--voc DIR" in result.output
    # an override to VOC objects in temporal_occlusion needs them too
    import yaml

    from corrupt_bench.resources import resource_dir

    data = yaml.safe_load((resource_dir("manifests") / "occluded-h36m.yaml").read_text())
    data["variants"][0]["corruptions"][1]["overrides"] = {5: {"kind": "voc"}}
    path = tmp_path / "voc.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["generate", str(path), "--source", str(raw), "--out", str(tmp_path / "v"), "--dry-run"])
    assert result.exit_code == 2 and "--voc DIR" in result.output


def test_benchmark_carries_the_calibration_of_its_source(tmp_path):
    """A source rendered at another size than the demo manifest assumes: the benchmark holds the source's
    cameras.json, the harness reads it, and the labels' 2D agree with it (not with a guessed divisor)."""
    from corrupt_bench.data.cameras import get_camera, project_world
    from corrupt_bench.data.synth import write_synthetic
    from corrupt_bench.harness.benchmark import Benchmark
    from corrupt_bench.resources import resource_dir

    source = write_synthetic(tmp_path / "src", subjects=("S9",), actions=("walk",), seconds=0.4, divisor=5, workers=1)
    out = tmp_path / "bench"
    generate(resource_dir("manifests") / "demo-weak-sync.yaml", out, source=source, show_progress=False)
    assert (out / "cameras.json").read_bytes() == (source / "cameras.json").read_bytes()
    assert "cameras.json" not in benchmark_files(out)
    bench = Benchmark(out)
    table = pq.read_table(next((out / "subframe" / "clean" / "0" / "labels").glob("*.parquet"))).to_pandas()
    row = table.iloc[0]
    cam = bench.camera("S9", row["camera"])
    assert cam == get_camera("S9", row["camera"], root=source)
    world = np.asarray(row["joints_3d_world"], dtype=np.float64).reshape(17, 3)
    np.testing.assert_allclose(project_world(world, cam), np.asarray(row["joints_2d"]).reshape(17, 2), atol=0.05)
