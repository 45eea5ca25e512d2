"""Temporal and multi-view behaviour: exact desync labels, flow interpolation, smooth blur drift,
occlusion spans, correlated jitter, view drops."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from engine_frames import keypoints_only, test_clip

from corrupt_bench.data.cameras import project_world
from corrupt_bench.engine import corrupt_clip, get_corruption
from corrupt_bench.engine.frames import _background, demo_motion, draw_figure
from corrupt_bench.engine.views import interpolate_flow, mocap_at
from corrupt_bench.errors import UserError


def test_desync_labels_are_exact_projections_at_the_shifted_time():
    clip = test_clip(n_views=3, n_frames=4, size=64, start=30)
    _, rec = corrupt_clip(clip, "subframe_desync", 3, 8)
    assert np.all((rec.time_offset >= 0) & (rec.time_offset < 0.6)) and len(set(rec.time_offset.tolist())) == 3
    for v, cam in enumerate(clip.cameras):
        for t, f in enumerate(clip.frame_indices):
            # the clip's last frame has no next frame: it shows itself, and its labels say so
            s = f + rec.time_offset[v] if t + 1 < clip.n_times else float(f)
            lo = int(np.floor(s))
            pose = (lo + 1 - s) * clip.mocap_world[lo] + (s - lo) * clip.mocap_world[lo + 1]
            full = project_world(pose, cam)
            a = clip.crop_affine[v, t]  # frame t's box, whatever the shift
            expected = full @ a[:, :2].T + a[:, 2]
            np.testing.assert_allclose(rec.joints_2d[v, t], expected, atol=1e-9)
            assert rec.params[v][t]["source_time"] == pytest.approx(s)
            assert rec.params[v][t]["box_from"] == f
    assert not np.allclose(rec.joints_2d, clip.joints_2d)


def test_desync_whole_frame_shift_copies_the_next_frame_cut_with_its_own_box():
    base = get_corruption("subframe_desync")
    shifted = base.with_overrides({5: {"max_offset": 0.0, "whole_frame_shift": 1}})
    clip = test_clip(n_views=4, n_frames=5, size=48, start=60)
    out, rec = corrupt_clip(clip, "subframe_desync", 5, 1, corruption=shifted)
    assert set(rec.time_offset.tolist()) == {0.0, 1.0}
    for v in range(4):
        d = int(rec.time_offset[v])
        for t in range(4):
            # the next frame cut with frame t's box (never with the next frame's own box)
            expected = clip.images_next[v, t] if d else clip.images[v, t]
            assert np.array_equal(out.images[v, t], expected)
            if d:
                assert not np.array_equal(out.images[v, t], clip.images[v, t + 1])
        assert np.array_equal(out.images[v, 4], clip.images[v, 4])


def test_desync_rows_never_put_two_views_a_frame_apart():
    from corrupt_bench.engine import ParamError

    table = get_corruption("subframe_desync").table
    assert all(row.max_offset < 1.0 and row.whole_frame_shift == 0 for row in table.values())
    base = get_corruption("subframe_desync")
    for bad in ({"max_offset": 1.0}, {"max_offset": 0.5, "whole_frame_shift": 1}, {"max_offset": -0.1}):
        with pytest.raises(ParamError):
            base.overridden_row(1, bad)


def test_desync_on_person_crops_needs_the_next_frames_cut_with_each_box():
    clip = replace(test_clip(n_views=1, n_frames=3, size=32), images_next=None)
    with pytest.raises(ValueError, match="images_next"):
        corrupt_clip(clip, "subframe_desync", 2, 0)


def test_flow_interpolation_beats_either_neighbour():
    from corrupt_bench.data.crop import crop_affine, person_box, square_box

    cam = test_clip(n_views=1, n_frames=1, size=160).cameras[0]
    mocap = demo_motion(100)
    # one fixed crop around the figure at frame 30 (fastest limb swing), 160 px
    a_map = crop_affine(square_box(person_box(project_world(mocap[30], cam), 0.3)), 160)
    bg = _background(160, 160, cam.camera_id)

    def render(time: float) -> np.ndarray:
        j = project_world(mocap_at(mocap, time), cam) @ a_map[:, :2].T + a_map[:, 2]
        return draw_figure(bg, j)

    a, b, truth = render(27.0), render(33.0), render(30.0)
    mid = interpolate_flow(a, b, 0.5)
    err = lambda x: float(np.abs(x.astype(np.int16) - truth).mean())  # noqa: E731
    assert err(mid) < 0.8 * min(err(a), err(b)), (err(mid), err(a), err(b))


def test_desync_needs_mocap():
    clip = replace(test_clip(n_views=1, n_frames=2, size=32), mocap_world=None)
    with pytest.raises(UserError, match="mocap_world"):
        corrupt_clip(clip, "subframe_desync", 2, 0)


def test_motion_blur_direction_drifts_smoothly_and_is_shared_by_severities():
    clip = test_clip(n_views=1, n_frames=60, size=32, start=0)
    angles = {s: np.array([p["angle_deg"] for p in corrupt_clip(clip, "motion_blur", s, 3)[1].params[0]]) for s in (1, 5)}
    np.testing.assert_allclose(angles[1], angles[5])
    steps = np.abs(np.diff(angles[1]))
    assert steps.max() < 2.5 and np.ptp(angles[1]) > 1.0


def test_temporal_occlusion_top_severity_covers_half_of_every_window():
    clip = test_clip(n_views=1, n_frames=480, size=48, start=0)  # 9.6 s = three 3.2 s windows
    out, rec = corrupt_clip(clip, "temporal_occlusion", 5, 21)
    active = np.array([p["active"] for p in rec.params[0]])
    for w in range(3):
        assert active[w * 160 : (w + 1) * 160].sum() == 80  # 1.6 s of 3.2 s at 50 fps
    assert rec.occluded[0, active].all()
    assert not rec.occluded[0, ~active].any()
    changed = np.any(out.images[0] != clip.images[0], axis=(1, 2, 3))
    assert np.array_equal(changed, active)


def test_keypoint_jitter_is_correlated_with_the_stated_sigma():
    clip = keypoints_only(test_clip(n_views=1, n_frames=1000, size=16, start=0, crop=False))
    row = get_corruption("keypoint_jitter").table[5]
    _, rec = corrupt_clip(clip, "keypoint_jitter", 5, 4)
    offsets = (rec.joints_2d - clip.joints_2d)[0]  # (T, 17, 2) image px
    expected_sigma = row.sigma_px * clip.cameras[0].width / 1000
    assert offsets.std() == pytest.approx(expected_sigma, rel=0.2)
    flat = offsets.reshape(len(offsets), -1)
    lag1 = np.mean([np.corrcoef(flat[:-1, k], flat[1:, k])[0, 1] for k in range(flat.shape[1])])
    assert lag1 > 0.9


def test_view_drop_keeps_one_view_and_blacks_out_dropped_ones():
    clip = test_clip(n_views=2, n_frames=200, size=16, start=0, step=10)
    out, rec = corrupt_clip(clip, "view_drop", 5, 2)
    assert rec.view_valid.any(axis=0).all()
    assert (~rec.view_valid).any()
    dropped = ~rec.view_valid
    assert not out.images[dropped].any()
    assert np.array_equal(out.images[~dropped], clip.images[~dropped])


def test_pixel_corruption_needs_images():
    with pytest.raises(UserError, match="no images"):
        corrupt_clip(keypoints_only(test_clip()), "gaussian_noise", 1, 0)


def test_temporal_occlusion_with_voc_objects_shares_the_windows():
    base = get_corruption("temporal_occlusion")
    voc = base.with_overrides({4: {"kind": "voc"}})
    clip = test_clip(n_views=1, n_frames=100, size=48, start=0, step=2)  # 4 s
    out_e, rec_e = corrupt_clip(clip, "temporal_occlusion", 4, 5)
    out_v, rec_v = corrupt_clip(clip, "temporal_occlusion", 4, 5, corruption=voc)
    active = np.array([p["active"] for p in rec_v.params[0]])
    assert np.array_equal(active, [p["active"] for p in rec_e.params[0]])
    assert active.any() and not active.all()
    changed = np.any(out_v.images[0] != clip.images[0], axis=(1, 2, 3))
    assert np.array_equal(changed, active)
    assert rec_v.occluded[0, active].any() and not rec_v.occluded[0, ~active].any()
    assert rec_v.params[0][int(np.argmax(active))]["overlay"]["bank"]
