"""Weak synchronisation as SyncDiffPose defines it, on the synthetic source: any two views of a
sequence differ by less than one frame (every sequence and severity of the shipped weak-sync
manifest), the frame-shift variant moves views by exactly 0 or 1 frame, and a desynchronised crop's
pixels and 2D labels agree with the renderer's body at the shifted time, cut with its own frame's box."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from corrupt_bench.data.cameras import project_world
from corrupt_bench.data.crop import crop_affine, crop_image, person_box, square_box
from corrupt_bench.data.synth import ACTIONS, appearance_for, camera_background, render_frame, write_synthetic
from corrupt_bench.engine.views import desync_offsets, mocap_at
from corrupt_bench.generate.clips import UnitFrames
from corrupt_bench.generate.run import corruption_for, generate, prepare
from corrupt_bench.generate.sources import CACHE_ENV, open_source
from corrupt_bench.generate.writers import encode_image
from corrupt_bench.layout import CLEAN


@pytest.fixture(scope="module")
def every_action(tmp_path_factory) -> Path:
    """Every synthetic motion of the weak-sync subjects, a few frames each (offsets are per sequence)."""
    path = tmp_path_factory.mktemp("synthetic-every-action")
    return write_synthetic(path, subjects=("S9", "S11"), actions=ACTIONS, seconds=0.1, divisor=16, workers=1)


def _offsets(manifest_ref, source: Path) -> dict[tuple[str, int, str], np.ndarray]:
    """(variant, severity, sequence) -> each view's offset, as generate draws them (engine keys)."""
    manifest, config, plan, _ = prepare(manifest_ref, source=source)
    found = {}
    for unit in plan.units:
        if unit.corruption == CLEAN:
            continue
        corruption = corruption_for(manifest, unit.variant, unit.corruption)
        with UnitFrames(open_source(config), unit.seq, unit.cameras, manifest.crop, with_images=False) as frames:
            clip = next(frames.chunks(unit.frames[:2], 2, 0)).clip
        draws = desync_offsets(clip, corruption, unit.severity, manifest.seed)
        found[(unit.variant, unit.severity, f"{unit.seq.subject} {unit.seq.sequence}")] = np.array([d.offset for d in draws])
    return found


def test_every_pair_of_views_is_less_than_one_frame_apart_and_frame_shifts_are_0_or_1(every_action):
    offsets = _offsets("weak-sync", every_action)
    sequences = {key[2] for key in offsets}
    assert len(sequences) == 2 * len(ACTIONS)
    subframe = {k: v for k, v in offsets.items() if k[0] == "subframe"}
    assert {k[1] for k in subframe} == {1, 2, 3, 4, 5} and len(subframe) == 5 * len(sequences)
    largest = max(float(np.ptp(v)) for v in subframe.values())
    print(f"largest pairwise offset over {len(sequences)} sequences x 5 severities: {largest:.4f} frames")
    assert largest < 1.0, largest
    assert all(len(v) == 4 and np.all(v >= 0) for v in subframe.values())
    assert max(float(np.ptp(v)) for k, v in subframe.items() if k[1] == 5) > 0.5  # severity 5 reaches far
    shift = [v for k, v in offsets.items() if k[0] == "frame-shift"]
    assert len(shift) == len(sequences)
    pairs = {float(abs(a - b)) for v in shift for a, b in itertools.combinations(v, 2)}
    assert pairs == {0.0, 1.0}
    assert {float(x) for v in shift for x in v} == {0.0, 1.0}


def _manifest(tmp_path: Path) -> Path:
    """A small weak-sync benchmark: 4 views, both variants, 6 frames, 96 px crops of 1/4-size frames."""
    data = {
        "name": "ws-agreement", "version": "1", "paper": "none", "seed": 4,
        "source": {"kind": "synthetic", "seconds": 0.3, "divisor": 4, "seed": 0},
        "subjects": ["S9"], "actions": ["Walking"], "frame_step": 1, "max_frames": 6,
        "crop": {"mode": "person", "margin": 0.15, "size": 96}, "output": {"format": "png"},
        "variants": [
            {"name": "subframe", "corruptions": [{"name": "subframe_desync", "severities": [3, 5]}]},
            {"name": "frame-shift", "corruptions": [{
                "name": "subframe_desync", "severities": [1],
                "overrides": {1: {"max_offset": 0.0, "whole_frame_shift": 1}},
            }]},
        ],
    }  # fmt: skip
    path = tmp_path / "ws.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _shift_px(a: np.ndarray, b: np.ndarray) -> float:
    """Sub-pixel translation between two crops (phase correlation on grey levels, windowed)."""
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    window = cv2.createHanningWindow(ga.shape[::-1], cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(ga, gb, window)
    return float(np.hypot(dx, dy))


def test_desynchronised_crops_agree_with_the_body_rendered_at_the_shifted_time(tmp_path, monkeypatch):
    """Labels vs the rendered body's joints at the shifted time, cut with the frame's own box (the
    must-show bound: at most 0.1 crop px); whole-frame shifts byte-equal to the source frame t + 1
    cut with t's box; sub-frame images aligned with the body rendered at the shifted time."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    path = _manifest(tmp_path)
    out = tmp_path / "bench"
    generate(path, out, workers=1, show_progress=False)
    manifest, config, plan, _ = prepare(path)
    source = open_source(config)
    seq = plan.units[0].seq
    world = source.poses_world(seq)
    label_error, shift_fraction, own_box, copies = [], [], [], 0
    for cell in ("subframe/subframe_desync/3", "subframe/subframe_desync/5", "frame-shift/subframe_desync/1"):
        for row in pq.read_table(out / cell / "labels" / "S9_Walking.parquet").to_pylist():
            p = json.loads(row["params"])
            frame, s = row["frame"], p["source_time"]
            assert p["box_from"] == frame
            cam = source.camera("S9", row["camera"])
            # frame t's crop box as generate cut it (the label column stores it rounded to float32)
            crop = square_box(person_box(source.poses_2d(seq, row["camera"])[frame], 0.15))
            np.testing.assert_allclose(crop, row["crop"], atol=1e-3)
            a = crop_affine(crop, 96)
            truth = project_world(mocap_at(world, s), cam) @ a[:, :2].T + a[:, 2]  # the rendered body's joints
            label_error.append(np.abs(np.array(row["joints_2d_crop"]).reshape(17, 2) - truth).max())
            image = cv2.cvtColor(cv2.imread(str(out / row["image"])), cv2.COLOR_BGR2RGB)
            if s == frame + 1:  # a whole-frame shift: the source's next frame cut with this frame's box
                expected = crop_image(source.video(seq, row["camera"]).frame(frame + 1), crop, 96)
                assert (out / row["image"]).read_bytes() == encode_image(expected, "png")
                copies += 1
                # what cutting the next frame with its own box (version 1) would misplace: the measure sees it
                next_box = square_box(person_box(source.poses_2d(seq, row["camera"])[frame + 1], 0.15))
                own_box.append(_shift_px(image, crop_image(source.video(seq, row["camera"]).frame(frame + 1), next_box, 96)))
            elif s != frame:  # a sub-frame shift: aligned with the body rendered at time s in this box
                background = camera_background("S9", row["camera"], 4, 0)
                rendered = crop_image(render_frame(mocap_at(world, s), cam, appearance_for("S9"), background), crop, 96)
                shift_fraction.append(_shift_px(image, rendered))
    worst = float(max(label_error))
    print(f"labels vs rendered body at the shifted time: max {worst:.2e} crop px over {len(label_error)} crops; "
          f"{copies} whole-frame copies byte-equal; sub-frame crops vs body rendered at s: median "
          f"{np.median(shift_fraction):.3f} px, max {max(shift_fraction):.3f} px (n={len(shift_fraction)}); "
          f"the next frame cut with its own box would be off by median {np.median(own_box):.3f} px")  # fmt: skip
    assert worst <= 0.1
    assert copies >= 4 and len(shift_fraction) >= 8
    assert max(shift_fraction) < 0.5
    assert np.median(own_box) > 2 * np.median(shift_fraction)  # the measure sees a crop cut with another box
