"""The shared training-data module on a small raw folder written in the real formats (CDF, mp4)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from corrupt_bench.data.cameras import (
    CAMERA_IDS,
    get_camera,
    load_cameras,
    project_world,
    world_to_camera,
    write_camera_file,
)
from corrupt_bench.data.cdf_io import write_pose_cdf
from corrupt_bench.data.crop import from_crop
from corrupt_bench.data.skeleton import FLIP_PERMUTATION, H36M17_FROM_RAW
from corrupt_bench.models.data import (
    crop_box_for,
    flip_pose,
    load_crops,
    load_multiview,
    load_pose_sequences,
    mean_pose,
    normalize_screen,
    present_subjects,
    root_relative,
    sample_multiview_windows,
    sample_windows,
    unnormalize_screen,
    window_indices,
)

DIVISOR = 8  # 1000 px -> 125 px frames


def _world(n_frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform([-200.0, -150.0, 100.0], [200.0, 150.0, 1700.0], size=(32, 3))
    drift = np.linspace(0.0, 1.0, n_frames)[:, None, None] * np.array([150.0, -80.0, 0.0])
    return base[None] + drift


def _write_raw(root: Path, subjects: dict[str, list[str]], n_frames: int = 6, d2: bool = True) -> Path:
    """cameras.json (1/8 scale), D3 CDF, D2 CDF and an mp4 per camera that paints each joint a bright dot."""
    write_camera_file({k: c.scaled(DIVISOR) for k, c in load_cameras(None).items()}, root / "cameras.json")
    for s_i, (subject, stems) in enumerate(subjects.items()):
        for q_i, stem in enumerate(stems):
            world = _world(n_frames, 10 * s_i + q_i)
            feats = root / subject / "MyPoseFeatures"
            write_pose_cdf(feats / "D3_Positions" / f"{stem}.cdf", world.reshape(n_frames, 96))
            for camera_id in CAMERA_IDS:
                cam = get_camera(subject, camera_id, root)
                px = project_world(world, cam)
                if d2:
                    write_pose_cdf(feats / "D2_Positions" / f"{stem}.{camera_id}.cdf", px.reshape(n_frames, 64))
                path = root / subject / "Videos" / f"{stem}.{camera_id}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 50.0, (cam.width, cam.height))
                for i in range(n_frames):
                    img = np.zeros((cam.height, cam.width, 3), np.uint8)
                    for x, y in px[i, list(H36M17_FROM_RAW)]:
                        cv2.circle(img, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1)
                    writer.write(img)
                writer.release()
    return root


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    return _write_raw(tmp_path_factory.mktemp("raw"), {"S1": ["Walking 1", "Eating"], "S9": ["Walking"]})


def test_pose_sequences_agree_with_the_mocap_and_the_cameras(raw_root):
    seqs = load_pose_sequences(raw_root, ["S1"])
    assert len(seqs) == 2 * 4
    s = seqs[0]
    assert s.joints_3d_cam.shape == (6, 17, 3) and s.joints_2d.shape == (6, 17, 2)
    assert s.joints_3d_cam.dtype == np.float32
    np.testing.assert_allclose(s.joints_3d_cam, world_to_camera(s.joints_3d_world, s.camera), atol=1e-2)
    np.testing.assert_allclose(s.joints_2d, project_world(s.joints_3d_world, s.camera), atol=1e-2)
    assert s.camera.width == 1000 // DIVISOR
    only = load_pose_sequences(raw_root, ["S1", "S9"], cameras=["55011271"])
    assert {x.camera.camera_id for x in only} == {"55011271"} and len(only) == 3


def test_missing_d2_files_fall_back_to_the_projection(tmp_path):
    root = _write_raw(tmp_path, {"S5": ["Posing"]}, d2=False)
    s = load_pose_sequences(root, ["S5"])[0]
    np.testing.assert_allclose(s.joints_2d, project_world(s.joints_3d_world, s.camera), atol=1e-2)


def test_present_subjects_keeps_only_folders(raw_root):
    assert present_subjects(raw_root, ["S1", "S5", "S9", "S11"]) == ["S1", "S9"]


def test_multiview_stacks_views_of_one_sequence(raw_root):
    mv = load_multiview(raw_root, ["S1"])
    assert len(mv) == 2
    m = mv[0]
    assert m.joints_2d.shape == (4, 6, 17, 2) and m.joints_3d_cam.shape == (4, 6, 17, 3)
    for v, cam in enumerate(m.cameras):
        np.testing.assert_allclose(m.joints_3d_cam[v], world_to_camera(m.joints_3d_world, cam), atol=1e-2)
    j2d, j3d, idx, centre = sample_multiview_windows(mv, 5, 3, np.random.default_rng(0))
    assert j2d.shape == (3, 4, 5, 17, 2) and j3d.shape == (3, 4, 5, 17, 3)


def test_crops_hold_the_painted_joints_at_their_labels(raw_root):
    crops = load_crops(raw_root, ["S9"], size=48, step=2, margin=0.2)
    assert crops.images.shape == (4 * 3, 48, 48, 3) and crops.images.dtype == np.uint8
    assert list(crops.frames[:3]) == [0, 2, 4]
    # every label sits on a bright dot (mp4 compression blurs, so look at a small neighbourhood)
    for img, lab in zip(crops.images, crops.joints_2d, strict=True):
        for x, y in lab:
            xi, yi = int(round(x)), int(round(y))
            if 1 <= xi < 47 and 1 <= yi < 47:
                assert img[yi - 1 : yi + 2, xi - 1 : xi + 2].max() > 100
    # crop px map back onto the full-frame labels
    seqs = load_pose_sequences(raw_root, ["S9"])
    full = seqs[0].joints_2d[0]
    np.testing.assert_allclose(from_crop(crops.joints_2d[0], crops.crops[0], 48), full, atol=1e-2)
    box = crop_box_for(full, 0.2)
    assert box[2] - box[0] == pytest.approx(box[3] - box[1])


def test_window_indices_replicate_the_edges():
    assert list(window_indices(0, 5, 10)) == [0, 0, 0, 1, 2]
    assert list(window_indices(9, 5, 10)) == [7, 8, 9, 9, 9]
    assert list(window_indices(1, 5, 2)) == [0, 0, 1, 1, 1]


def test_sample_windows_is_reproducible_and_well_shaped(raw_root):
    seqs = load_pose_sequences(raw_root, ["S1"])
    a = sample_windows(seqs, 7, 16, np.random.default_rng(3))
    b = sample_windows(seqs, 7, 16, np.random.default_rng(3))
    assert a.joints_2d.shape == (16, 7, 17, 2) and a.joints_3d_cam.shape == (16, 7, 17, 3)
    np.testing.assert_array_equal(a.joints_3d_cam, b.joints_3d_cam)
    i = 0
    expected = seqs[a.sequence_index[i]].joints_3d_cam[window_indices(int(a.centre[i]), 7, 6)]
    np.testing.assert_array_equal(a.joints_3d_cam[i], expected)
    c = sample_windows(seqs, 7, 16, np.random.default_rng(4))
    assert not np.array_equal(a.centre, c.centre) or not np.array_equal(a.sequence_index, c.sequence_index)


def test_screen_normalisation_round_trips_and_matches_videopose3d():
    pts = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    n = normalize_screen(pts, 1000, 1002)
    np.testing.assert_allclose(n[0], [-1.0, -1.002])
    np.testing.assert_allclose(n[2], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(unnormalize_screen(n, 1000, 1002), pts)


def test_flip_twice_is_identity_and_swaps_sides():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(4, 17, 3))
    f = flip_pose(p)
    np.testing.assert_allclose(flip_pose(f), p)
    np.testing.assert_allclose(f[:, 1, 0], -p[:, FLIP_PERMUTATION[1], 0])
    assert FLIP_PERMUTATION[1] == 4
    import torch

    t = torch.from_numpy(p)
    np.testing.assert_allclose(flip_pose(t).numpy(), f)


def test_mean_pose_is_root_relative_average(raw_root):
    seqs = load_pose_sequences(raw_root, ["S1"])
    m = mean_pose(seqs)
    allp = np.concatenate([root_relative(s.joints_3d_cam) for s in seqs])
    np.testing.assert_allclose(m, allp.mean(axis=0), atol=1e-3)
    assert np.all(m[0] == 0)
