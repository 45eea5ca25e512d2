"""The one protocol between the harness and every model: what a model consumes and what it returns.

Model quirks live in each model's adapter; the harness only reads `input_spec` and calls `predict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

InputKind = Literal["images", "keypoints2d", "poses3d"]


@dataclass(frozen=True)
class InputSpec:
    """What a model consumes per sample.

    kind: person-crop images, 2D keypoints with confidences, or 3D pose sequences (refiners).
    multi_view: True when all views of a frame are needed together.
    window: frames per sample (1 for single-frame models); the pose of every frame is returned.
    image_size: square crop size in pixels for image models.
    needs_ground_truth: opt-in for diagnostic models only (`oracle-noise`): the harness then adds
        `joints_3d_cam` (B,V,T,17,3) mm, camera frame, to the batch. A real model never sets it.
    """

    kind: InputKind
    multi_view: bool = False
    window: int = 1
    image_size: int | None = None
    needs_ground_truth: bool = False


@runtime_checkable
class Predictor(Protocol):
    """A 3D pose model as the harness sees it.

    `predict(batch)` returns (B, V, T, 17, 3): root-relative millimetres in the camera frame of
    each view, for every frame of the window. Batch keys (numpy): `images` (B,V,T,H,W,3) uint8 RGB
    crops; `keypoints_2d` (B,V,T,17,2) full-frame px; `confidence` (B,V,T,17); `crop` (B,V,T,4);
    `cameras` (list of V Camera); `view_valid` (B,V,T); provenance (no labels): `subject` and
    `sequence` (lists of B str), `camera_ids` (list of V str), `frames` (B,T) int source frame
    indices, `pad` (B,T) bool (True on frames replicated to fill a window). No ground truth is ever
    in a batch, except `joints_3d_cam` for a model whose InputSpec opts in with `needs_ground_truth`.
    """

    name: str
    input_spec: InputSpec

    def predict(self, batch: dict) -> np.ndarray: ...


@runtime_checkable
class Refiner(Protocol):
    """Refines a whole sequence of 3D poses (T, 17, 3), root-relative camera frame, e.g. STRIDE's TTT."""

    name: str

    def refine(self, poses: np.ndarray, fps: float) -> np.ndarray: ...
