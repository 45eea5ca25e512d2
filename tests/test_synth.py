"""The synthetic raw-Human3.6M source: files in the real formats, labels that agree with each other and
with the rendered pixels, motions that are rigid, smooth, deterministic and distinct per subject."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cdflib
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.data.cameras import CAMERA_IDS, get_camera, project_world, world_to_camera
from corrupt_bench.data.cdf_io import read_pose_cdf
from corrupt_bench.data.skeleton import bone_lengths, raw_to_h36m17
from corrupt_bench.data.synth import (
    ACTIONS,
    appearance_for,
    body_shape,
    camera_background,
    render_frame,
    render_frames,
    resolve_action,
    stable_int,
    synthetic_motion,
    synthetic_motion_raw,
    write_synthetic,
)
from corrupt_bench.errors import UserError

SUBJECT = "S9"
MOTIONS = ("walk", "jump")
STEMS = ("Walking", "Posing")
SECONDS, DIVISOR, N = 0.4, 8, 20


def _write(out: Path, workers: int) -> Path:
    return write_synthetic(out, subjects=(SUBJECT,), actions=MOTIONS, seconds=SECONDS, divisor=DIVISOR, seed=0, workers=workers)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("synth") / "data", workers=2)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _decode(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    cap.release()
    return np.stack(frames)


# --- layout and formats ------------------------------------------------------------------------------
def test_writes_exactly_the_raw_layout(synth_dir):
    expected = {"cameras.json", "synth.json", ".synth.lock"}
    for stem in STEMS:
        expected.add(f"{SUBJECT}/MyPoseFeatures/D3_Positions/{stem}.cdf")
        for cam in CAMERA_IDS:
            expected.add(f"{SUBJECT}/MyPoseFeatures/D2_Positions/{stem}.{cam}.cdf")
            expected.add(f"{SUBJECT}/MyPoseFeatures/D3_Positions_mono/{stem}.{cam}.cdf")
            expected.add(f"{SUBJECT}/Videos/{stem}.{cam}.mp4")
    assert set(_files(synth_dir)) == expected
    settings = json.loads((synth_dir / "synth.json").read_text())
    assert settings["divisor"] == DIVISOR and settings["seconds"] == SECONDS


def test_cdf_round_trip_of_the_written_poses(synth_dir):
    for motion, stem in zip(MOTIONS, STEMS, strict=True):
        path = synth_dir / SUBJECT / "MyPoseFeatures" / "D3_Positions" / f"{stem}.cdf"
        pose = cdflib.CDF(str(path)).varget("Pose")
        assert pose.shape == (1, N, 96)
        expected = synthetic_motion_raw(SUBJECT, motion, N, seed=0).reshape(N, 96)
        np.testing.assert_allclose(read_pose_cdf(path, 96), expected, atol=1e-3)  # float32 in the file
        np.testing.assert_allclose(raw_to_h36m17(read_pose_cdf(path, 96)), synthetic_motion(SUBJECT, motion, N, 0), atol=1e-3)


def test_d2_is_the_projection_of_d3_in_the_video_pixels(synth_dir):
    for stem in STEMS:
        world = read_pose_cdf(synth_dir / SUBJECT / "MyPoseFeatures" / "D3_Positions" / f"{stem}.cdf", 96).reshape(N, 32, 3)
        for cam_id in CAMERA_IDS:
            camera = get_camera(SUBJECT, cam_id, root=synth_dir)  # the scaled cameras.json
            full = get_camera(SUBJECT, cam_id)
            assert camera == full.scaled(DIVISOR)
            d2 = read_pose_cdf(synth_dir / SUBJECT / "MyPoseFeatures" / "D2_Positions" / f"{stem}.{cam_id}.cdf", 64)
            err = np.abs(d2.reshape(N, 32, 2) - project_world(world, camera))
            assert err.max() < 0.5
            # and the person is in view of every camera
            assert np.all((d2[:, 0::2] > 0) & (d2[:, 0::2] < camera.width) & (d2[:, 1::2] > 0) & (d2[:, 1::2] < camera.height))
            video = _decode(synth_dir / SUBJECT / "Videos" / f"{stem}.{cam_id}.mp4")
            assert video.shape == (N, camera.height, camera.width, 3)


def test_d3_mono_is_the_world_pose_in_the_camera_frame(synth_dir):
    world = read_pose_cdf(synth_dir / SUBJECT / "MyPoseFeatures" / "D3_Positions" / "Walking.cdf", 96).reshape(N, 32, 3)
    for cam_id in CAMERA_IDS:
        mono = read_pose_cdf(synth_dir / SUBJECT / "MyPoseFeatures" / "D3_Positions_mono" / f"Walking.{cam_id}.cdf", 96)
        expected = world_to_camera(world, get_camera(SUBJECT, cam_id, root=synth_dir))
        np.testing.assert_allclose(mono.reshape(N, 32, 3), expected, atol=0.01)
        assert 3000 < expected[..., 2].min() and expected[..., 2].max() < 8000  # ~5 m in front of the camera


def test_video_is_50_fps_and_shows_the_person_on_its_joints(synth_dir):
    cam_id = CAMERA_IDS[1]
    path = synth_dir / SUBJECT / "Videos" / f"Posing.{cam_id}.mp4"
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(50.0)
    cap.release()
    frames = _decode(path)
    background = camera_background(SUBJECT, cam_id, DIVISOR, 0)
    d2 = raw_to_h36m17(read_pose_cdf(synth_dir / SUBJECT / "MyPoseFeatures" / "D2_Positions" / f"Posing.{cam_id}.cdf", 64))
    hits = []
    for n in range(0, N, 4):
        body = np.abs(frames[n].astype(int) - background.astype(int)).max(axis=-1) > 30
        body = cv2.dilate(body.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # the codec softens edges
        x, y = np.rint(d2[n]).astype(int).T
        hits.append(body[y, x])
    assert np.mean(hits) >= 0.8


# --- determinism and resuming -----------------------------------------------------------------------------
def test_output_does_not_depend_on_workers(synth_dir, tmp_path):
    other = _write(tmp_path / "one_worker", workers=1)
    assert _files(other) == _files(synth_dir)
    for rel in _files(synth_dir):
        a, b = synth_dir / rel, other / rel
        if rel.endswith(".cdf"):
            np.testing.assert_array_equal(cdflib.CDF(str(a)).varget("Pose"), cdflib.CDF(str(b)).varget("Pose"))
        elif rel.endswith(".mp4"):
            np.testing.assert_array_equal(_decode(a), _decode(b))
        assert a.read_bytes() == b.read_bytes(), rel  # single-threaded x264, uncompressed CDF: same bytes


def test_interrupted_run_is_completed_by_a_rerun(synth_dir, tmp_path):
    out = tmp_path / "resume"
    out.mkdir()
    for rel in _files(synth_dir):  # a copy of a finished run ...
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes((synth_dir / rel).read_bytes())
    lost_video = out / SUBJECT / "Videos" / f"Walking.{CAMERA_IDS[2]}.mp4"
    lost_d2 = out / SUBJECT / "MyPoseFeatures" / "D2_Positions" / f"Posing.{CAMERA_IDS[0]}.cdf"
    lost_video.unlink()  # ... that was interrupted before these were renamed into place
    lost_d2.unlink()
    half = lost_video.with_name(f".{lost_video.name}.k1ll3d.tmp")  # the temporary of the interrupted write
    half.write_bytes(b"half an mp4")
    kept = out / SUBJECT / "Videos" / f"Walking.{CAMERA_IDS[0]}.mp4"
    os.utime(kept, (1, 1))
    _write(out, workers=1)
    assert _files(out) == _files(synth_dir)
    assert lost_video.read_bytes() == (synth_dir / lost_video.relative_to(out)).read_bytes()
    np.testing.assert_array_equal(read_pose_cdf(lost_d2, 64), read_pose_cdf(synth_dir / lost_d2.relative_to(out), 64))
    assert kept.stat().st_mtime == 1  # complete files are skipped, not rewritten
    assert not half.exists()  # the temporary was removed


def test_a_second_concurrent_run_is_refused(synth_dir):
    import fcntl

    with open(synth_dir / ".synth.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            with pytest.raises(UserError, match="another synth run"):
                _write(synth_dir, workers=1)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def test_rerun_with_other_settings_is_refused(synth_dir):
    with pytest.raises(UserError, match="other settings"):
        write_synthetic(synth_dir, subjects=(SUBJECT,), actions=MOTIONS, seconds=1.0, divisor=DIVISOR, workers=1)


# --- motion -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ACTIONS)
def test_motion_is_rigid_smooth_grounded_and_deterministic(action):
    poses = synthetic_motion("S1", action, 250, seed=3)
    assert poses.shape == (250, 17, 3)
    lengths = bone_lengths(poses)
    assert np.ptp(lengths, axis=0).max() < 1e-6  # forward kinematics: constant bones
    body = body_shape("S1", 3)
    assert lengths[0, 1] == pytest.approx(body.thigh) and lengths[0, 2] == pytest.approx(body.shin)
    acc = np.linalg.norm(np.diff(poses, 2, axis=0), axis=-1) * 50.0**2 / 1000.0  # m/s^2
    assert acc.max() < 150.0
    vel = np.linalg.norm(np.diff(poses, axis=0), axis=-1) * 50.0 / 1000.0  # m/s
    assert vel.max() < 8.0
    assert poses[..., 2].min() > 0.0 and poses[..., 2].min() < 120.0  # on the floor (ankles), not below
    assert np.abs(poses[..., :2]).max() < 2500.0  # inside the capture volume
    np.testing.assert_array_equal(poses, synthetic_motion("S1", action, 250, seed=3))
    assert np.abs(poses - synthetic_motion("S1", action, 250, seed=4)).mean() > 10.0
    # the first frames do not depend on the length asked for
    np.testing.assert_allclose(synthetic_motion("S1", action, 40, seed=3), poses[:40], atol=1e-9)


def test_actions_have_different_dynamics():
    def summary(action):
        p = synthetic_motion("S5", action, 300, 0)
        root_travel = np.linalg.norm(np.diff(p[:, 0, :2], axis=0), axis=-1).sum()
        return root_travel, np.ptp(p[:, 0, 2]), p[:, [13, 16], 2].max()

    walk, wave, sit, squat, jump = (summary(a) for a in ("walk", "wave", "sit", "squat", "jump"))
    assert walk[0] > 4000 > 10 * wave[0]  # walking covers metres, waving stays put
    assert wave[2] > walk[2] + 250  # a hand above the head
    assert sit[1] > 250 and squat[1] > 250  # the hips go down
    p = synthetic_motion("S5", "jump", 300, 0)
    assert p[..., 2].min(axis=1).max() > 200  # both feet off the floor
    assert jump[1] > 300


def test_subjects_differ_and_seeds_are_stable():
    a, b = synthetic_motion("S1", "walk", 100, 0), synthetic_motion("S5", "walk", 100, 0)
    assert np.abs(a - b).mean() > 50.0
    assert not np.allclose(bone_lengths(a[:1]), bone_lengths(b[:1]), atol=5.0)
    assert appearance_for("S1") != appearance_for("S5")
    assert body_shape("S1", 0) == body_shape("S1", 0)
    assert stable_int("a", 1) == stable_int("a", 1) != stable_int("a", 2)
    # no dependence on Python's per-process hash seed
    code = "import sys; from corrupt_bench.data.synth_motion import synthetic_motion as m; sys.stdout.write(m('S11','wave',30,5).tobytes().hex())"
    outs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert outs == {synthetic_motion("S11", "wave", 30, 5).tobytes().hex()}


def test_action_names_resolve():
    assert resolve_action("Walking") == "walk" and resolve_action("greeting") == "wave"
    assert resolve_action("TakingPhoto") == resolve_action("Photo") == "bend"
    with pytest.raises(UserError, match="did you mean 'walk'"):
        resolve_action("wakl")


# --- rendering ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["walk", "sit", "bend", "wave"])
def test_projected_joints_fall_on_body_pixels(action):
    poses = synthetic_motion("S11", action, 200, seed=1)
    app = appearance_for("S11", 1)
    hits = []
    frames_by_camera = {}
    for cam_id in CAMERA_IDS:
        camera = get_camera("S11", cam_id).scaled(DIVISOR)
        background = camera_background("S11", cam_id, DIVISOR, 1)
        frames = list(render_frames(poses[::40], camera, app, background))
        frames_by_camera[cam_id] = frames
        for frame, pose in zip(frames, poses[::40], strict=True):
            body = np.any(frame != background, axis=-1)
            x, y = np.rint(project_world(pose, camera)).astype(int).T
            hits.append(body[y, x])
            assert 0.005 < body.mean() < 0.3  # a person, not an empty or a filled frame
    assert np.mean(hits) >= 0.9
    camera = get_camera("S11", CAMERA_IDS[0]).scaled(DIVISOR)
    single = render_frame(poses[40], camera, app, camera_background("S11", CAMERA_IDS[0], DIVISOR, 1))
    assert single.dtype == np.uint8 and single.shape == (camera.height, camera.width, 3)
    np.testing.assert_array_equal(single, frames_by_camera[CAMERA_IDS[0]][1])  # same pixels one by one


def test_left_and_right_sides_look_different():
    """The left arm and leg wear an accent colour far from the shirt and trousers (mocap-suit style)."""
    for subject in ("S1", "S5", "S6", "S7", "S8", "S9", "S11"):
        app = appearance_for(subject, 0)
        for colour in (app.shirt, app.trousers):
            assert np.linalg.norm(np.subtract(app.accent, colour)) > 120.0
    poses = synthetic_motion("S11", "walk", 200, seed=1)[::20]
    app = appearance_for("S11", 1)
    diffs = []
    for cam_id in CAMERA_IDS:
        camera = get_camera("S11", cam_id).scaled(DIVISOR)
        frames = render_frames(poses, camera, app, camera_background("S11", cam_id, DIVISOR, 1))
        for frame, pose in zip(frames, poses, strict=True):
            px = project_world(pose, camera)
            for left, right in (((4, 5), (1, 2)), ((11, 12), (14, 15))):  # thighs, upper arms
                xl, yl = np.rint(px[list(left)].mean(axis=0)).astype(int)
                xr, yr = np.rint(px[list(right)].mean(axis=0)).astype(int)
                diffs.append(np.abs(frame[yl, xl].astype(float) - frame[yr, xr].astype(float)).sum())
    assert np.median(diffs) > 80.0  # same-colour limbs would differ by shading only


def test_background_is_textured_and_seeded():
    camera = get_camera("S1", CAMERA_IDS[0]).scaled(8)
    bg = camera_background("S1", CAMERA_IDS[0], 8, 0)
    assert bg.shape == (camera.height, camera.width, 3)
    lower = bg[bg.shape[0] * 3 // 4 :].astype(float)  # the floor
    assert lower.std() > 8.0
    assert not np.array_equal(bg, camera_background("S1", CAMERA_IDS[0], 8, 1))
    np.testing.assert_array_equal(bg, camera_background.__wrapped__("S1", CAMERA_IDS[0], 8, 0))


# --- CLI and reader ----------------------------------------------------------------------------------------
def test_cli_synth(tmp_path):
    out = tmp_path / "cli"
    args = ["synth", "--out", str(out), "--subjects", "S11", "--actions", "squat", "--seconds", "0.1", "--divisor", "10", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    video = _decode(out / "S11" / "Videos" / f"Purchases.{CAMERA_IDS[0]}.mp4")
    assert video.shape == (5, 100, 100, 3)
    bad = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x"), "--actions", "swim"])
    assert bad.exit_code == 2 and "unknown synthetic action 'swim'" in bad.output
    bad = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "y"), "--subjects", "S2"])
    assert bad.exit_code == 2 and "S2" in bad.output


def test_raw_reader_reads_the_synthetic_source(synth_dir):
    raw_mod = pytest.importorskip("corrupt_bench.data.raw")
    raw = raw_mod.RawH36M(synth_dir)
    refs = raw.sequences()
    assert sorted(r.sequence for r in refs) == sorted(STEMS)
    assert {r.action for r in refs} == {"Walking", "Posing"}
    for ref in refs:
        assert ref.subject == SUBJECT and ref.n_frames == N and tuple(ref.cameras) == CAMERA_IDS
        motion = MOTIONS[STEMS.index(ref.sequence)]
        np.testing.assert_allclose(raw.poses_world(ref), synthetic_motion(SUBJECT, motion, N, 0), atol=1e-3)
        camera = raw.camera(SUBJECT, CAMERA_IDS[3])
        np.testing.assert_allclose(raw.poses_2d(ref, CAMERA_IDS[3]), project_world(raw.poses_world(ref), camera), atol=0.5)
        with raw.video(ref, CAMERA_IDS[3]) as video:
            assert (video.n_frames, video.width, video.height) == (N, camera.width, camera.height)
            assert video.frame(N - 1).shape == (camera.height, camera.width, 3)
    assert raw.problems() == []
