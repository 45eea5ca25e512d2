"""`blazepose`: the pretrained BlazePose model (MediaPipe Pose) as a 2D detector and a monocular 3D model.

V. Bazarevsky et al., *BlazePose: On-device Real-time Body Pose tracking*, CVPR Workshop 2020, with
the GHUM-based 3D world landmarks of MediaPipe Pose. The model files ship inside the `mediapipe`
wheel pinned here (`MEDIAPIPE_VERSION`): its person detector and its `full` landmark model. Nothing
is downloaded, ever: `lite` and `heavy` are not in the wheel, and are refused (one line) unless their
file has been put beside the bundled one by hand.

The legacy `mediapipe.solutions.pose` graph runs with `static_image_mode=True`: every image is
detected and landmarked on its own (no tracking, no smoothing), so the outputs of a frame do not
depend on batching, order or worker count. The Tasks API is not used: its `.task` bundles are not
in the wheel. Each image gets a black border (`pad`, a fraction of its longer side) first: the person
detector misses tight person crops without it. MediaPipe's C++ code prints a few log lines to stderr
when a graph starts (no environment variable silences them in 0.10.14).

The 33 landmarks become the 17 Human3.6M joints (VideoPose3D order) through one fixed affine map
(`JOINT_RULES`, `landmark_weights`), the same for image pixels and for world metres: hips, knees,
ankles, shoulders, elbows and wrists are landmarks; pelvis, spine, thorax, neck/nose and head are
derived from the hips, shoulders and ears (constants fitted on the synthetic training subjects S1 S5,
measured on S9 S11 in `baselines/blazepose/README.md`). A joint's confidence is the lowest
`visibility` of the landmarks it is made of. An image where no person is found gives NaN keypoints
with confidence 0 (2D) and NaN poses (3D).

3D axes: MediaPipe's world landmarks are metres with the origin between the hips, x to the image's
right, y down, z away from the camera: the camera frame's axes (checked on synthetic data, see the
card). Output = 1000 * world landmarks, mapped to 17 joints, minus the pelvis joint.

Registered twice under one name (`corrupt_bench.models.registry`): the 3D model as a predictor (`score
--model blazepose`) and the 2D detector as a detector (`score --detector blazepose`). This module imports
without mediapipe (`input_spec` reads the config alone); building either model without it is a one-line
UserError naming the install command. Both declare `fingerprint` (the digest below), which enters their
identity: run keys and the detection cache key change with the model files, the mediapipe version, the
joint rules and the config.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from corrupt_bench.data.skeleton import N_JOINTS, ROOT
from corrupt_bench.errors import UserError
from corrupt_bench.models.checkpoint import file_digest
from corrupt_bench.models.protocol import InputSpec

NAME = "blazepose"
MEDIAPIPE_VERSION = "0.10.14"  # the pin of pyproject's `pretrained` extra: its wheel bundles the files below
INSTALL_HINT = "install corrupt-bench[pretrained] (make install does it)"
N_LANDMARKS = 33
COMPLEXITY: dict[str, int] = {"lite": 0, "full": 1, "heavy": 2}
DETECTOR_FILE = "modules/pose_detection/pose_detection.tflite"
GRAPH_FILE = "modules/pose_landmark/pose_landmark_cpu.binarypb"
BUNDLED: tuple[str, ...] = ("full",)  # landmark models inside the pinned wheel

# MediaPipe Pose landmark indices used by the mapping.
NOSE, LEFT_EAR, RIGHT_EAR = 0, 7, 8
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST = 11, 12, 13, 14, 15, 16
LEFT_HIP, RIGHT_HIP, LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE = 23, 24, 25, 26, 27, 28

_HIPS = (LEFT_HIP, RIGHT_HIP)
_SHOULDERS = (LEFT_SHOULDER, RIGHT_SHOULDER)
_EARS = (LEFT_EAR, RIGHT_EAR)


@dataclass(frozen=True)
class JointRule:
    """joint = mean(base) + factor * (mean(tip) - mean(base)), over landmark indices."""

    base: tuple[int, ...]
    tip: tuple[int, ...] = ()
    factor: float = 0.0


# One rule per Human3.6M joint, in VideoPose3D order. Derived constants: fitted on the synthetic training
# subjects' crops (least squares, one scalar per joint), rounded; errors on S9 S11 are in the card.
JOINT_RULES: tuple[JointRule, ...] = (
    JointRule(_HIPS),  # 0 Hip (pelvis): between the hips
    JointRule((RIGHT_HIP,)),  # 1 RHip
    JointRule((RIGHT_KNEE,)),  # 2 RKnee
    JointRule((RIGHT_ANKLE,)),  # 3 RFoot (ankle)
    JointRule((LEFT_HIP,)),  # 4 LHip
    JointRule((LEFT_KNEE,)),  # 5 LKnee
    JointRule((LEFT_ANKLE,)),  # 6 LFoot (ankle)
    JointRule(_HIPS, _SHOULDERS, 0.5),  # 7 Spine: halfway from the pelvis to the thorax
    JointRule(_SHOULDERS),  # 8 Thorax: between the shoulders
    JointRule(_SHOULDERS, _EARS, 0.75),  # 9 Neck/Nose: 3/4 of the way from the thorax to between the ears
    JointRule(_SHOULDERS, _EARS, 1.4),  # 10 Head (top): the thorax -> ears line extended by 40 %
    JointRule((LEFT_SHOULDER,)),  # 11 LShoulder
    JointRule((LEFT_ELBOW,)),  # 12 LElbow
    JointRule((LEFT_WRIST,)),  # 13 LWrist
    JointRule((RIGHT_SHOULDER,)),  # 14 RShoulder
    JointRule((RIGHT_ELBOW,)),  # 15 RElbow
    JointRule((RIGHT_WRIST,)),  # 16 RWrist
)
DERIVED_JOINTS: tuple[int, ...] = (0, 7, 8, 9, 10)
# The joints BlazePose localises itself (plus the root): the 3D model's declared joint set. The derived
# spine, thorax, neck/nose and head are output too (finite, for models that need 17 joints) but they
# measure the fixed rule above more than the model.
PREDICTED_JOINTS: tuple[int, ...] = tuple(j for j in range(N_JOINTS) if j not in DERIVED_JOINTS[1:])


def landmark_weights() -> np.ndarray:
    """(17, 33) affine map from landmarks to joints (every row sums to 1): joints = W @ landmarks."""
    w = np.zeros((N_JOINTS, N_LANDMARKS))
    for j, rule in enumerate(JOINT_RULES):
        w[j, list(rule.base)] += (1.0 - rule.factor) / len(rule.base)
        if rule.tip:
            w[j, list(rule.tip)] += rule.factor / len(rule.tip)
    return w


_WEIGHTS = landmark_weights()
_SOURCES = _WEIGHTS != 0  # (17, 33): the landmarks each joint is made of


def to_h36m(landmarks: np.ndarray) -> np.ndarray:
    """(..., 33, D) landmarks (pixels or metres) -> (..., 17, D) joints by `JOINT_RULES`."""
    return np.einsum("jl,...ld->...jd", _WEIGHTS, np.asarray(landmarks, dtype=np.float64))


def h36m_confidence(visibility: np.ndarray) -> np.ndarray:
    """(..., 33) landmark visibility -> (..., 17) joint confidence: the lowest visibility of its landmarks."""
    vis = np.asarray(visibility, dtype=np.float64)[..., None, :]
    return np.min(np.where(_SOURCES, vis, np.inf), axis=-1)


class BlazePoseConfig(BaseModel):
    """Strict config of both `blazepose` models (detector and 3D model)."""

    model_config = ConfigDict(extra="forbid")
    model: Literal["blazepose"] = NAME
    complexity: Literal["lite", "full", "heavy"] = "full"  # landmark model; only full ships in the wheel
    min_detection_confidence: float = Field(0.5, ge=0.0, le=1.0)  # person detector threshold
    # black border added on every side, as a fraction of the image's longer side: BlazePose's person
    # detector misses tight crops (see the card: 0.25 lifts found crops from 94 % to 97 %)
    pad: float = Field(0.25, ge=0.0, le=1.0)
    image_size: int = Field(256, ge=32, le=1024)  # square person-crop size asked of the harness


def input_spec(config: dict) -> InputSpec:
    """Square person crops of `image_size`, one view, one frame: read from the config alone (strictly),
    without mediapipe."""
    cfg = BlazePoseConfig.model_validate(config or {})
    return InputSpec(kind="images", multi_view=False, window=1, image_size=cfg.image_size)


def mediapipe_root() -> Path:
    """The installed `mediapipe` package folder (one-line error naming the install command if absent)."""
    try:
        import mediapipe
    except ModuleNotFoundError as exc:
        raise UserError(f"blazepose needs mediapipe {MEDIAPIPE_VERSION}: {INSTALL_HINT}") from exc
    return Path(mediapipe.__file__).resolve().parent


def landmark_file(complexity: str) -> str:
    """The landmark model of a complexity, relative to the mediapipe package."""
    if complexity not in COMPLEXITY:
        raise UserError(f"blazepose: unknown complexity '{complexity}' (lite, full or heavy)")
    return f"modules/pose_landmark/pose_landmark_{complexity}.tflite"


def model_files(complexity: str = "full") -> dict[str, Path]:
    """The files the graph of `complexity` reads; refuses (one line) when one is missing, so that
    MediaPipe never reaches for the network."""
    root = mediapipe_root()
    files = {rel: root / rel for rel in (DETECTOR_FILE, GRAPH_FILE, landmark_file(complexity))}
    for rel, path in files.items():
        if path.is_file():
            continue
        if complexity not in BUNDLED and rel == landmark_file(complexity):
            raise UserError(
                f"blazepose complexity '{complexity}' needs {rel}, which is not in the mediapipe {MEDIAPIPE_VERSION} "
                "wheel and is never downloaded at run time: put the file there, or use complexity 'full'",
                path,
            )
        raise UserError(f"blazepose: {rel} is missing from the mediapipe install; reinstall: {INSTALL_HINT}", path)
    return files


@lru_cache(maxsize=16)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return file_digest(path)


def model_digest(complexity: str = "full") -> str:
    """sha256 over the mediapipe version and the sha256 of every model file the graph reads: for run keys."""
    files = model_files(complexity)
    import mediapipe

    shas = {rel: _file_sha256(str(p), p.stat().st_mtime_ns, p.stat().st_size) for rel, p in files.items()}
    payload = {"mediapipe": mediapipe.__version__, "files": shas}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _rules_digest() -> str:
    return hashlib.sha256(_WEIGHTS.astype("<f8").tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Landmarks:
    """BlazePose output of N images: MediaPipe's 33 landmarks, NaN where no person was found."""

    image: np.ndarray  # (N, 33, 2) float64 px of the given images (pixel centres at integers)
    visibility: np.ndarray  # (N, 33) float64 in [0, 1], 0 where not found
    world: np.ndarray  # (N, 33, 3) float64 metres, origin between the hips, camera axes
    found: np.ndarray  # (N,) bool


class BlazePoseRunner:
    """One MediaPipe Pose graph in static-image mode; `run(images)` landmarks each image on its own.

    The graph is built on first use and dropped on pickling (workers build their own). Not thread-safe.
    """

    def __init__(self, config: BlazePoseConfig):
        self.config = config
        self.files = model_files(config.complexity)  # refuses lite/heavy unless present
        self._graph = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_graph": None}

    def _pose(self):
        if self._graph is None:
            from mediapipe.python.solutions import pose as mp_pose

            self._graph = mp_pose.Pose(
                static_image_mode=True,
                model_complexity=COMPLEXITY[self.config.complexity],
                smooth_landmarks=False,
                enable_segmentation=False,
                min_detection_confidence=self.config.min_detection_confidence,
            )
        return self._graph

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def run(self, images: np.ndarray) -> Landmarks:
        """(N, H, W, 3) uint8 RGB -> Landmarks."""
        import warnings

        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"blazepose: images must be (N, H, W, 3) uint8 RGB, got {images.shape} {images.dtype}")
        n, h, w = images.shape[:3]
        p = int(round(self.config.pad * max(h, w)))
        image = np.full((n, N_LANDMARKS, 2), np.nan)
        world = np.full((n, N_LANDMARKS, 3), np.nan)
        visibility = np.zeros((n, N_LANDMARKS))
        found = np.zeros(n, dtype=bool)
        pose = self._pose()
        for i in range(n):
            padded = np.pad(images[i], ((p, p), (p, p), (0, 0))) if p else np.ascontiguousarray(images[i])
            with warnings.catch_warnings():  # protobuf 4 deprecation notice raised inside MediaPipe
                warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
                result = pose.process(padded)
            if result.pose_landmarks is None or result.pose_world_landmarks is None:
                continue
            found[i] = True
            lms = result.pose_landmarks.landmark
            # normalised [0, 1] across the padded image's edges -> pixel centres at integers of the given
            # image (the convention of corrupt_bench.data.crop)
            image[i] = [(lm.x * (w + 2 * p) - 0.5 - p, lm.y * (h + 2 * p) - 0.5 - p) for lm in lms]
            visibility[i] = [lm.visibility for lm in lms]
            world[i] = [(lm.x, lm.y, lm.z) for lm in result.pose_world_landmarks.landmark]
        return Landmarks(image, np.clip(visibility, 0.0, 1.0), world, found)


class _BlazePoseModel:
    """What the detector and the 3D model share: config, graph runner, input spec, digest."""

    name = NAME

    def __init__(self, config: dict | None = None, device: str | None = None):
        self.config = BlazePoseConfig(**(config or {}))
        self.device = "cpu"  # MediaPipe's Python graph runs on the CPU whatever is asked
        self.runner = BlazePoseRunner(self.config)
        self.input_spec = input_spec(self.config.model_dump())

    @property
    def digest(self) -> str:
        """Identity for run keys and caches: mediapipe version, model files, joint rules and config."""
        payload = {"model": model_digest(self.config.complexity), "rules": _rules_digest(),
                   "config": self.config.model_dump()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """What `corrupt_bench.models.loading` adds to the model's identity: the digest."""
        return self.digest

    def close(self) -> None:
        self.runner.close()


class BlazePoseDetector(_BlazePoseModel):
    """The `blazepose` 2D detector: `detect(images (N, H, W, 3) uint8 RGB)` -> keypoints (N, 17, 2) float32
    in the pixels of the given images, confidence (N, 17) float32. Person crops or full frames; an image
    without a person gives NaN keypoints and confidence 0."""

    def detect(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.asarray(images)
        if len(images) == 0:
            return np.zeros((0, N_JOINTS, 2), np.float32), np.zeros((0, N_JOINTS), np.float32)
        lm = self.runner.run(images)
        keypoints = to_h36m(lm.image).astype(np.float32)
        confidence = np.where(lm.found[:, None], h36m_confidence(lm.visibility), 0.0).astype(np.float32)
        return keypoints, confidence


class BlazePose3D(_BlazePoseModel):
    """The `blazepose` monocular 3D model: person crops in, (B, V, T, 17, 3) root-relative mm in each view's
    camera frame out; every view and frame on its own. NaN where no person is found. Declared joint set:
    `predicted_joints` (the root and the 12 limb joints BlazePose localises)."""

    predicted_joints: tuple[int, ...] = PREDICTED_JOINTS

    def predict(self, batch: dict) -> np.ndarray:
        images = np.asarray(batch["images"])  # (B, V, T, H, W, 3)
        lead = images.shape[:3]
        lm = self.runner.run(images.reshape(-1, *images.shape[3:]))
        joints = to_h36m(lm.world) * 1000.0  # metres -> mm; MediaPipe's axes are the camera's
        joints = joints - joints[:, ROOT : ROOT + 1]
        return joints.reshape(*lead, N_JOINTS, 3)


def build_blazepose(config: dict | None = None, device: str | None = None) -> BlazePose3D:
    """Factory of the 3D model (`score --model blazepose`)."""
    return BlazePose3D(config, device)


def build_blazepose_detector(config: dict | None = None, device: str | None = None) -> BlazePoseDetector:
    """Factory of the 2D detector (`score --detector blazepose`)."""
    return BlazePoseDetector(config, device)

