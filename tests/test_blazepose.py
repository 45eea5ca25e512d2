"""blazepose: the pretrained MediaPipe Pose model as 2D detector and monocular 3D model, its registry
entries, scoring with it, and its install.

Frames are rendered in memory by the synthetic source's renderer (`corrupt_bench.data.synth`) at 1/2
of the camera resolution (person ~180-200 px tall), with exact 2D labels and camera-frame 3D ground
truth; crops are 256 px square boxes around the labels (margin 0.2), as the benchmarks cut them. The
scoring tests generate a tiny benchmark (`MANIFEST`: synthetic source at 1/4 size, three cameras, 128 px
person crops, the size the card shows BlazePose working at) and score it through the CLI.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import json
import multiprocessing
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from corrupt_bench.cli import app
from corrupt_bench.data.cameras import CAMERA_IDS, get_camera, project, project_world, world_to_camera
from corrupt_bench.data.crop import crop_image, person_box, to_crop
from corrupt_bench.data.multiview import MultiViewRig
from corrupt_bench.data.skeleton import N_JOINTS, ROOT, raw_to_h36m17
from corrupt_bench.data.synth import appearance_for, camera_background, render_frames, synthetic_motion_raw
from corrupt_bench.errors import UserError
from corrupt_bench.generate.run import generate
from corrupt_bench.generate.sources import CACHE_ENV
from corrupt_bench.harness.benchmark import Benchmark
from corrupt_bench.harness.detections import cached_detections
from corrupt_bench.layout import DETECTIONS_DIR, RESULTS_NAME, RUN_INFO_NAME
from corrupt_bench.models import blazepose
from corrupt_bench.models.blazepose import (
    PREDICTED_JOINTS,
    BlazePoseConfig,
    build_blazepose,
    build_blazepose_detector,
    h36m_confidence,
    landmark_weights,
    model_digest,
    model_files,
    to_h36m,
)
from corrupt_bench.models.checkpoint import file_digest, load_config
from corrupt_bench.models.data import crop_box_for
from corrupt_bench.models.loading import load_detector, load_model
from corrupt_bench.models.triangulation import triangulate_dlt

REPO = Path(__file__).resolve().parents[1]
FULL_MODEL = "modules/pose_landmark/pose_landmark_full.tflite"
DIVISOR = 2
SIZE = 256
# sha256 of the files the `full` graph reads, as mediapipe 0.10.14 ships them (a moved pin must show here)
BUNDLED_SHA256 = {
    "modules/pose_detection/pose_detection.tflite": "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    "modules/pose_landmark/pose_landmark_cpu.binarypb": "90ddc717625a3c1aedfdca124212a36ce595cdbbe46513fd93adca5202d8ff21",
    "modules/pose_landmark/pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
# A benchmark BlazePose can see: 1/4 size frames (persons ~85 px tall), 128 px person crops, three cameras
# (so that triangulation can drop one), 4 frames per camera, clean and one corruption.
MANIFEST = """\
name: blazepose-scoring
version: "1"
description: Tiny synthetic benchmark for scoring with BlazePose (test fixture).
paper: "none (test fixture)"
seed: 3
source: {kind: synthetic, seconds: 1.0, divisor: 4, seed: 0}
subjects: [S9]
actions: [Walking]
cameras: ["54138969", "55011271", "58860488"]
frame_step: 10
max_frames: 4
crop: {mode: person, margin: 0.15, size: 128}
output: {format: png}
variants:
  - name: tiny
    corruptions:
      - {name: brightness, severities: [1]}
"""
METRICS = ["mpjpe", "p_mpjpe"]
runner = CliRunner()


def _render(subject: str, action: str, camera_index: int, frames: list[int]):
    """(N, H, W, 3) frames, (N, 17, 2) px labels, (N, 17, 3) mm camera-frame joints."""
    raw = synthetic_motion_raw(subject, action, max(frames) + 1, 0).astype(np.float32).astype(np.float64)
    joints = raw_to_h36m17(raw)[frames]
    camera = get_camera(subject, CAMERA_IDS[camera_index]).scaled(DIVISOR)
    background = camera_background(subject, CAMERA_IDS[camera_index], DIVISOR, 0)
    images = np.stack(list(render_frames(joints, camera, appearance_for(subject, 0), background)))
    cam = world_to_camera(joints, camera)
    return images, project(cam, camera), cam


@pytest.fixture(scope="module")
def scenes():
    """16 test-subject frames: S9 and S11, walk and wave, two cameras, two instants."""
    images, labels, cams = [], [], []
    for subject in ("S9", "S11"):
        for action in ("walk", "wave"):
            for camera_index in (1, 2):  # both 1000 x 1000 (the others are 1000 x 1002)
                im, j2, jc = _render(subject, action, camera_index, [20, 120])
                images.append(im), labels.append(j2), cams.append(jc)
    return np.concatenate(images), np.concatenate(labels), np.concatenate(cams)


@pytest.fixture(scope="module")
def crops(scenes):
    images, labels, cams = scenes
    boxes = crop_box_for(labels, 0.2)
    out = np.stack([crop_image(im, box, SIZE) for im, box in zip(images, boxes, strict=True)])
    return out, np.stack([to_crop(j, box, SIZE) for j, box in zip(labels, boxes, strict=True)]), cams


@pytest.fixture(scope="module")
def detector():
    det = build_blazepose_detector({})
    yield det
    det.close()


def pck(keypoints: np.ndarray, labels: np.ndarray, threshold: float = 0.1) -> float:
    """Share of joints within threshold x the longer side of the tight label box (NaN = miss)."""
    tight = person_box(labels, 0.0)
    side = np.max(tight[:, 2:] - tight[:, :2], axis=1)
    err = np.linalg.norm(keypoints - labels, axis=-1)
    return float(np.mean(np.nan_to_num(err, nan=np.inf) < threshold * side[:, None]))


def test_detection_rate_and_cross_view_consistency_on_real_footage(detector):
    """The pose2sim demo fixture (real video, 4 cameras x 13 frames, 1080 x 1920 portrait, no 2D labels),
    whole frames at native size. Measured (benchmarks/blazepose.py --sections real): person found in 47
    of 52 frames (cam02, the frontal view, whose face the dataset pixelated: 9 of 13); the found 2D
    triangulated with the rig's calibration reproject within 35.6 px (median; persons ~770 px tall)."""
    rig = MultiViewRig(REPO / "tests/fixtures/pose2sim")
    ref = rig.sequences()[0]
    keypoints, confidence = [], []
    for camera_id in ref.cameras:
        with rig.video(ref, camera_id) as video:
            kp, conf = detector.detect(np.stack([video.frame(i) for i in range(ref.n_frames)]))
        keypoints.append(kp.astype(np.float64)), confidence.append(conf.astype(np.float64))
    kp, conf = np.stack(keypoints), np.stack(confidence)  # (4, 13, 17, 2), (4, 13, 17)
    found = np.isfinite(kp).all(axis=(-1, -2))
    assert np.all(conf[~found] == 0) and np.all(conf[found] > 0)
    assert found.sum() >= 44, f"person found in {found.sum()} of {found.size} real frames"  # floor: 85 %
    cameras = [rig.camera(ref.subject, c) for c in ref.cameras]
    world = triangulate_dlt(kp, conf, cameras)
    assert np.isfinite(world).all()  # every frame is found in at least two views
    error = np.linalg.norm(np.stack([project_world(world, c) for c in cameras]) - kp, axis=-1)
    assert np.nanmedian(error) < 60.0  # px, in the frames' own pixels: a wrong pixel mapping is hundreds


def test_mapping_rules_are_affine_and_exact_on_known_landmarks():
    w = landmark_weights()
    assert w.shape == (17, 33)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    lm = np.zeros((33, 2))
    lm[blazepose.LEFT_HIP], lm[blazepose.RIGHT_HIP] = (2.0, 0.0), (0.0, 0.0)
    lm[blazepose.LEFT_SHOULDER], lm[blazepose.RIGHT_SHOULDER] = (2.0, -4.0), (0.0, -4.0)
    lm[blazepose.LEFT_EAR], lm[blazepose.RIGHT_EAR] = (1.5, -6.0), (0.5, -6.0)
    lm[blazepose.LEFT_WRIST] = (7.0, 3.0)
    joints = to_h36m(lm)
    np.testing.assert_allclose(joints[0], (1.0, 0.0))  # pelvis: between the hips
    np.testing.assert_allclose(joints[7], (1.0, -2.0))  # spine: halfway up
    np.testing.assert_allclose(joints[8], (1.0, -4.0))  # thorax: between the shoulders
    np.testing.assert_allclose(joints[9], (1.0, -5.5))  # neck/nose: 3/4 from thorax to the ears
    np.testing.assert_allclose(joints[10], (1.0, -6.8))  # head: 1.4 x thorax -> ears
    np.testing.assert_allclose(joints[13], (7.0, 3.0))  # left wrist: the landmark itself
    np.testing.assert_allclose(joints[4], (2.0, 0.0))  # left hip
    vis = np.linspace(0.1, 0.9, 33)
    conf = h36m_confidence(vis)
    assert conf[13] == vis[blazepose.LEFT_WRIST]
    assert conf[10] == min(vis[i] for i in (11, 12, 7, 8))  # derived: the lowest of its landmarks
    assert PREDICTED_JOINTS == (0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16)


def test_detects_the_synthetic_body_on_crops_and_full_frames(detector, scenes, crops):
    images, labels, _ = crops
    kp, conf = detector.detect(images)
    assert kp.shape == (len(images), 17, 2) and kp.dtype == np.float32
    assert conf.shape == (len(images), 17) and conf.dtype == np.float32
    assert np.all((conf >= 0) & (conf <= 1))
    # measured 0.890 on these 16 crops (deterministic here; the floor leaves two left/right flips of room
    # for another CPU's float path)
    assert pck(kp, labels) >= 0.80
    frames, frame_labels, _ = scenes
    kp_full, _ = detector.detect(frames)  # full 500 x 500 frames, keypoints in their pixels
    assert pck(kp_full, frame_labels) >= 0.75  # measured 0.827


def test_identical_outputs_across_runs_batch_sizes_order_and_workers(detector, crops):
    images = crops[0][:6]
    kp, conf = detector.detect(images)
    again = build_blazepose_detector({})
    try:
        for size in (1, 4):
            parts = [again.detect(images[i : i + size]) for i in range(0, len(images), size)]
            np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), kp)
            np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), conf)
        kp_rev, conf_rev = again.detect(images[::-1])
        np.testing.assert_array_equal(kp_rev[::-1], kp)
        np.testing.assert_array_equal(conf_rev[::-1], conf)
    finally:
        again.close()
    clone = pickle.loads(pickle.dumps(detector))  # as a worker process receives it: builds its own graph
    np.testing.assert_array_equal(clone.detect(images)[0], kp)
    clone.close()
    # two worker processes, three images each
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        parts = list(pool.map(detector.detect, [images[:3], images[3:]]))
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), kp)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), conf)


def test_blank_frames_are_failed_frames(detector, crops):
    blank = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    blank[1] = 128
    batch = np.concatenate([blank, crops[0][:1]])
    kp, conf = detector.detect(batch)
    assert np.all(np.isnan(kp[:2])) and np.all(conf[:2] == 0)
    assert np.all(np.isfinite(kp[2])) and np.all(conf[2] > 0)  # a person beside them is still found
    empty_kp, empty_conf = detector.detect(np.zeros((0, SIZE, SIZE, 3), np.uint8))
    assert empty_kp.shape == (0, 17, 2) and empty_conf.shape == (0, 17)
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((1, 8, 8, 3), np.float32))


def test_3d_model_is_root_relative_millimetres_in_the_camera_frame(crops):
    images, _, cams = crops
    model = build_blazepose({})
    try:
        assert model.input_spec.kind == "images" and model.input_spec.image_size == SIZE
        assert not model.input_spec.multi_view and model.input_spec.window == 1
        b, v = 4, 2  # 8 crops as (B, V, T=1)
        batch = {"images": images[: b * v].reshape(b, v, 1, SIZE, SIZE, 3)}
        pred = model.predict(batch)
        assert pred.shape == (b, v, 1, N_JOINTS, 3)
        assert np.all(np.isfinite(pred))
        np.testing.assert_array_equal(pred[..., ROOT, :], 0.0)
        gt = cams[: b * v] - cams[: b * v, ROOT : ROOT + 1]
        flat = pred.reshape(b * v, N_JOINTS, 3)
        # the axes are the camera's, in mm: each axis correlates positively with the ground truth, and the
        # mean error is that of a monocular model (measured 114 mm on these crops), not of a wrong frame
        for axis in range(3):
            assert np.corrcoef(flat[..., axis].ravel(), gt[..., axis].ravel())[0, 1] > 0.5, axis
        assert np.mean(np.linalg.norm(flat - gt, axis=-1)) < 200.0
        # per view and frame on its own: the same crops in another batch layout give the same poses
        again = model.predict({"images": images[: b * v].reshape(b * v, 1, 1, SIZE, SIZE, 3)})
        np.testing.assert_array_equal(again.reshape(flat.shape), flat)
        blank = model.predict({"images": np.zeros((1, 1, 1, SIZE, SIZE, 3), np.uint8)})
        assert np.all(np.isnan(blank))  # no person: a failed frame, never a made-up pose
    finally:
        model.close()


def test_config_is_strict_and_lite_heavy_are_refused_without_their_file():
    assert BlazePoseConfig().complexity == "full"
    tiny, full = (BlazePoseConfig(**load_config("blazepose", name)) for name in ("tiny", "full"))
    assert (tiny.image_size, full.image_size) == (128, 256) and tiny.complexity == full.complexity == "full"
    with pytest.raises(ValueError, match="bogus"):
        build_blazepose({"bogus": 1})
    with pytest.raises(ValueError):
        build_blazepose({"complexity": "medium"})
    for complexity in ("lite", "heavy"):
        path = model_files("full")[FULL_MODEL].with_name(f"pose_landmark_{complexity}.tflite")
        if path.is_file():  # placed by hand: accepted
            assert build_blazepose_detector({"complexity": complexity}).config.complexity == complexity
            continue
        with pytest.raises(UserError, match=f"complexity '{complexity}' needs .* never downloaded") as err:
            build_blazepose_detector({"complexity": complexity})
        assert "\n" not in str(err.value)


def test_no_network_is_ever_touched(monkeypatch, crops):
    def refuse(*args, **kwargs):
        raise AssertionError("blazepose tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("urllib.request.urlopen", refuse)
    det = build_blazepose_detector({})
    try:
        kp, _ = det.detect(crops[0][:1])
        assert np.all(np.isfinite(kp))
    finally:
        det.close()
    lite = model_files("full")[FULL_MODEL].with_name("pose_landmark_lite.tflite")
    if not lite.is_file():  # not in the wheel: refused before MediaPipe would fetch it
        with pytest.raises(UserError):
            build_blazepose_detector({"complexity": "lite"})


def test_model_digest_names_the_files_and_the_config():
    files = model_files("full")
    assert {rel: file_digest(p) for rel, p in files.items()} == BUNDLED_SHA256
    digest = model_digest("full")
    assert re.fullmatch("[0-9a-f]{64}", digest) and digest == model_digest("full")
    a = build_blazepose_detector({}).digest
    b = build_blazepose_detector({"min_detection_confidence": 0.6}).digest
    assert a != b and a == build_blazepose({}).digest


def test_install_has_one_cv2_and_a_clean_pip_check():
    """mediapipe installed with its own dependencies (the `pretrained` extra): pip check is clean, one
    distribution provides cv2 (mediapipe's opencv-contrib-python), and the pose graph imports no jax."""
    assert md.version("mediapipe") == blazepose.MEDIAPIPE_VERSION
    pyproject = (REPO / "pyproject.toml").read_text()
    extras = dict(re.findall(r"^(\w+) = \[(.*)\]$", pyproject, re.MULTILINE))
    assert f'"mediapipe=={blazepose.MEDIAPIPE_VERSION}"' in extras["pretrained"]
    assert "opencv-contrib-python" in extras["pretrained"] and "opencv-python-headless" in extras["headless"]
    core = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "opencv" not in core  # only the two extras bring OpenCV
    providers = md.packages_distributions().get("cv2", [])
    assert len(providers) == 1, f"cv2 is provided by {providers}"
    import cv2

    dist = md.distribution(providers[0])
    assert Path(cv2.__file__).resolve() in {Path(dist.locate_file(f)).resolve() for f in dist.files or []}
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and check.stdout.strip() == "No broken requirements found.", check.stdout
    probe = ("import sys, numpy as np; from corrupt_bench.models.blazepose import build_blazepose_detector as b; "
             "b({}).detect(np.zeros((1, 64, 64, 3), np.uint8)); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'jaxlib', 'sounddevice'}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_names_the_extras_without_opencv_and_warns_on_two(tmp_path):
    """No cv2: one line naming the two extras, exit 2. Two distributions of cv2 (a second one's real
    dist-info metadata on the path): a one-line warning naming both, and the command still runs."""
    blocked = "import sys; sys.modules['cv2'] = None; from corrupt_bench.cli import main; sys.exit(main(['--version']))"
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: OpenCV (the cv2 module) is not installed: "
                                     "install corrupt-bench[headless] or corrupt-bench[pretrained]")
    installed = md.packages_distributions()["cv2"][0]
    other = "opencv-python" if installed != "opencv-python" else "opencv-python-headless"
    info = tmp_path / f"{other.replace('-', '_')}-4.9.0.80.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {other}\nVersion: 4.9.0.80\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}
    code = "import sys; from corrupt_bench.cli import main; sys.exit(main(['--version']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0 and result.stdout.strip()
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and installed in warning[0] and other in warning[0], result.stderr


# --- registered: --model blazepose, --detector blazepose ------------------------------------------------
def test_registered_as_a_predictor_and_a_detector_with_its_digest_in_the_identity():
    model = load_model("blazepose", device="cpu", kind="predictor")
    detector = load_detector("blazepose", "cpu")
    assert model.kind == "predictor" and detector.kind == "detector"
    assert model.fingerprint == model.model.digest == detector.fingerprint
    assert dataclasses.replace(model, fingerprint="").identity != model.identity  # the digest enters run keys
    assert load_model("blazepose", config={"pad": 0.3}, device="cpu", kind="predictor").identity != model.identity
    with pytest.raises(UserError, match="is a predictor and a 2D detector: say which"):
        load_model("blazepose", device="cpu")


def test_module_imports_and_reads_its_spec_without_mediapipe():
    code = (
        "import sys; sys.modules['mediapipe'] = None\n"
        "from corrupt_bench.errors import UserError\n"
        "from corrupt_bench.models.loading import load_model\n"
        "from corrupt_bench.models.registry import BUILTIN\n"
        "spec = BUILTIN.get('blazepose', 'predictor').spec({'image_size': 128})\n"
        "assert spec.kind == 'images' and spec.image_size == 128, spec\n"
        "try:\n"
        "    load_model('blazepose', device='cpu', kind='predictor')\n"
        "except UserError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"blazepose needs mediapipe {blazepose.MEDIAPIPE_VERSION}: "
                                  "install corrupt-bench[pretrained] (make install does it)")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("blazepose-bench")
    (root / "manifest.yaml").write_text(MANIFEST)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root / "cache"))
        generate(root / "manifest.yaml", root / "bench", show_progress=False)
    return root / "bench"


def _score(args: list[str]) -> pd.DataFrame:
    result = runner.invoke(app, ["score", *args])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(Path(args[args.index("--out") + 1]) / RESULTS_NAME)


def test_score_model_blazepose_gives_finite_rows(bench, tmp_path):
    rows = _score(["--model", "blazepose", "--config", str(REPO / "baselines/blazepose/tiny.yaml"),
                   "--benchmark", str(bench), "--out", str(tmp_path / "run")])
    assert len(rows) == 6 and set(rows["corruption"]) == {"clean", "brightness"}  # 2 cells x 3 cameras
    assert rows["error"].isna().all() and (rows["input_2d"] == "images").all()  # an image model reads the images
    assert (rows["n_frames"] == 4).all() and (rows["n_nonfinite"] == 0).all()  # measured: found in all 24 crops
    assert np.isfinite(rows[METRICS].to_numpy()).all()
    assert (rows["mpjpe"] < 400).all()  # a monocular model's error (measured 95-260 mm), not a wrong frame


def test_keypoint_model_scores_with_detector_blazepose(bench, tmp_path):
    run = tmp_path / "run"
    rows = _score(["--model", "triangulation", "--detector", "blazepose", "--benchmark", str(bench), "--out", str(run)])
    assert len(rows) == 6 and rows["error"].isna().all() and (rows["input_2d"] == "detector").all()
    assert np.isfinite(rows[METRICS].to_numpy()).all() and (rows["n_nonfinite"] == 0).all()
    # the detections are cached under the detector's identity (its digest included), in full-frame pixels
    identity = load_detector("blazepose", "cpu").identity
    assert json.loads((run / RUN_INFO_NAME).read_text())["detector"]["identity"] == identity
    assert sorted(p.name for p in (run / DETECTIONS_DIR).iterdir()) == [identity]
    cache = pd.read_parquet(run / DETECTIONS_DIR / identity / "tiny" / "clean" / "0" / "S9_Walking.parquet")
    labels = Benchmark(bench).labels(Benchmark(bench).cell_files(["clean"])[0])
    merged = labels.merge(cache[["camera", "frame", "keypoints_2d"]], on=["camera", "frame"], suffixes=("", "_det"))
    det = np.stack(merged["keypoints_2d_det"]).reshape(-1, 17, 2)
    gt = np.stack(merged["joints_2d"]).reshape(-1, 17, 2)
    assert len(det) == 12 and np.median(np.linalg.norm(det - gt, axis=-1)) < 5.0  # measured 2.2 px (1/4 size frames)


def test_failed_detections_reach_the_lifter_as_missing(bench, tmp_path):
    """One blank crop (a copy of the benchmark): its detection is NaN with confidence 0 in the cache, and
    triangulation drops that view for that frame (two views remain), so the frame is still predicted."""
    copy = tmp_path / "bench"
    shutil.copytree(bench, copy)
    labels = Benchmark(copy).labels(Benchmark(copy).cell_files(["clean"])[0])
    target = labels[(labels["camera"] == "55011271") & (labels["frame"] == 10)].iloc[0]
    blank = np.zeros((128, 128, 3), np.uint8)
    assert cv2.imwrite(str(copy / target["image"]), blank)
    detector = load_detector("blazepose", "cpu")
    det = cached_detections(tmp_path / "cache-run", detector.identity, copy, labels, detector.model)
    missing = (det["camera"] == "55011271") & (det["frame"] == 10)
    assert missing.sum() == 1
    assert np.isnan(det.loc[missing, "keypoints_2d"].iloc[0]).all() and (det.loc[missing, "keypoint_conf"].iloc[0] == 0).all()
    assert all(np.isfinite(v).all() for v in det.loc[~missing, "keypoints_2d"])
    rows = _score(["--model", "triangulation", "--detector", "blazepose", "--corruptions", "clean",
                   "--benchmark", str(copy), "--out", str(tmp_path / "run")])
    assert (rows["n_nonfinite"] == 0).all() and np.isfinite(rows[METRICS].to_numpy()).all()
