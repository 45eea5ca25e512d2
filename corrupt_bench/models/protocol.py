"""The protocols between the harness and every model: what a model consumes and what it returns.

Three kinds of model, each a `typing.Protocol` (structural: a plugin implements the methods, it
inherits nothing): a `Predictor` (2D keypoints or person crops -> 3D poses), a `Refiner` (a whole
3D pose sequence -> a refined one, e.g. STRIDE) and a `Detector2D` (images -> 17 2D keypoints with
confidences). Model quirks live in each model's adapter; the harness reads `input_spec` and calls
`predict` / `refine` / `detect`, never a model's name. Plugin authors import these from the package
face (`from corrupt_bench import InputSpec, Predictor, Detector2D`).

This module imports numpy only (no torch), so the package face stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

InputKind = Literal["images", "keypoints2d", "poses3d"]
ModelKind = Literal["predictor", "refiner", "detector"]
ALL_JOINTS: tuple[int, ...] = tuple(range(17))  # the 17 Human3.6M joints, VideoPose3D order; 0 is the root


@dataclass(frozen=True)
class InputSpec:
    """What a model consumes per sample.

    kind: person-crop images, 2D keypoints with confidences, or 3D pose sequences (refiners).
    multi_view: True when all views of a frame are needed together.
    window: frames per sample (1 for single-frame models); the pose of every frame is returned.
    image_size: square crop size in pixels for image models.
    needs_ground_truth: opt-in for diagnostic models only (`oracle-noise`): the harness then adds
        `joints_3d_cam` (B,V,T,17,3) mm, camera frame, to the batch. A real model never sets it.
    joints: the joints the model predicts by design (indices into the 17, VideoPose3D order; the
        root 0 always among them, since every metric is root-relative). Its metrics are computed on
        these joints only and every table says so; a frame counts as predicted when all of them are
        finite (the others may be anything, NaN included). Default: all 17.
    fps: the frame rate (frames per second) a temporal model was trained at: its frame-rate
        contract. The harness refuses (exit 2, with the remedy) to score it on frames at another rate
        unless the user opts in to resampling (`score --resample`). None: no temporal contract
        (single-frame models, and models that take any rate). The built-in temporal models declare
        the rate of the frames they train on (Human3.6M's 50 fps divided by their training stride).
    """

    kind: InputKind
    multi_view: bool = False
    window: int = 1
    image_size: int | None = None
    needs_ground_truth: bool = False
    joints: tuple[int, ...] = ALL_JOINTS
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.fps is not None and not (isinstance(self.fps, int | float) and 0 < float(self.fps) < 10_000):
            raise ValueError(f"InputSpec.fps must be a positive frame rate or None, got {self.fps!r}")
        joints = tuple(int(j) for j in self.joints)
        if not joints or joints != tuple(sorted(set(joints))) or joints[0] != 0 or joints[-1] >= len(ALL_JOINTS):
            raise ValueError(f"InputSpec.joints must be increasing joint indices in 0..16 that include the root 0, got {self.joints!r}")
        object.__setattr__(self, "joints", joints)


@runtime_checkable
class Predictor(Protocol):
    """A 3D pose model as the harness sees it.

    `predict(batch)` returns (B, V, T, 17, 3): root-relative millimetres in the camera frame of
    each view, for every frame of the window; a frame it cannot predict is non-finite (a failed
    frame: counted by the harness and scored with its declared penalty, never dropped; only the
    joints of `input_spec.joints` are read). Batch keys (numpy): `images` (B,V,T,H,W,3) uint8 RGB crops (image models);
    `keypoints_2d` (B,V,T,17,2) full-frame px and `confidence` (B,V,T,17) (keypoint models);
    `crop` (B,V,T,4); `cameras` (list of V Camera); `view_valid` (B,V,T); provenance (no labels):
    `subject` and `sequence` (lists of B str), `camera_ids` (list of V str), `frames` (B,T) int
    source frame indices, `pad` (B,T) bool (True on frames replicated to fill a window). No ground
    truth is ever in a batch, except `joints_3d_cam` for a model whose InputSpec opts in with
    `needs_ground_truth`. The model picks its own device when it is built (`factory(config,
    device)`); the harness never moves it.
    """

    name: str
    input_spec: InputSpec

    def predict(self, batch: dict) -> np.ndarray: ...


@runtime_checkable
class Refiner(Protocol):
    """Refines a whole sequence of 3D poses (T, 17, 3), root-relative camera frame mm, e.g. STRIDE's TTT;
    `fps` is the frame rate of the sequence.

    `failed` (T,) bool marks the frames where the base estimator gave no pose (its output was
    non-finite, or its 2D input held no person: a detector found none); those frames are also
    non-finite in `poses`. A refiner that fills gaps returns finite poses there (the harness counts
    them as filled); one that cannot returns them non-finite. A refiner whose `refine` takes no
    `failed` keyword is called without it (the non-finite frames carry the same information)."""

    name: str

    def refine(self, poses: np.ndarray, fps: float, failed: np.ndarray | None = None) -> np.ndarray: ...


@runtime_checkable
class Detector2D(Protocol):
    """A 2D keypoint detector: `detect(images)` with images or person crops (N, H, W, 3) uint8 RGB of one
    size returns `(keypoints (N, 17, 2), confidence (N, 17))`: the 17 Human3.6M joints (VideoPose3D
    order) in the pixels of the given images (x right, y down, pixel centres at integers) and
    confidences in [0, 1]. Where it finds no person, that image's keypoints are non-finite and its
    confidences 0 (a failed frame, never a guess)."""

    name: str

    def detect(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


# The protocol of each registry kind.
PROTOCOLS: dict[str, type] = {"predictor": Predictor, "refiner": Refiner, "detector": Detector2D}


def satisfies(model: object, kind: ModelKind) -> bool:
    """Whether `model` offers what the harness calls for `kind`: `predict` with an InputSpec
    `input_spec` (predictor), `refine` (refiner) or `detect` (detector)."""
    if kind == "predictor":
        return callable(getattr(model, "predict", None)) and isinstance(getattr(model, "input_spec", None), InputSpec)
    if kind == "refiner":
        return callable(getattr(model, "refine", None))
    return callable(getattr(model, "detect", None))
