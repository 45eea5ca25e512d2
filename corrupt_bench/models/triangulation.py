"""`triangulation`: confidence-weighted DLT from the views' 2D keypoints (training-free multi-view baseline).

Each view's distorted pixels are undistorted to normalised coordinates (x/z, y/z) with the VideoPose3D
distortion model (`cameras.undistort`), giving two linear equations per view on the homogeneous world
point X: x (r3.X + t3) - (r1.X + t1) = 0 and y (r3.X + t3) - (r2.X + t2) = 0. The rows are weighted by
the keypoint confidence times the view's validity and solved per joint by SVD (algebraic
triangulation). The world point is returned in every view's camera frame, root-relative. A joint seen
by fewer than `min_views` views (weight > 0) is NaN, which the harness counts as non-finite.

Config (`TriangulationConfig`, unknown keys refused): `min_views` (default 2), `min_confidence`
(default 0: weights below it count as 0).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from corrupt_bench.data.cameras import Camera, undistort
from corrupt_bench.data.skeleton import ROOT
from corrupt_bench.models.protocol import InputSpec


class TriangulationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_views: int = Field(2, ge=1)
    min_confidence: float = Field(0.0, ge=0.0)


def input_spec(config: dict) -> InputSpec:
    """All views' 2D keypoints of one frame."""
    TriangulationConfig.model_validate(config or {})
    return InputSpec(kind="keypoints2d", multi_view=True, window=1)


def triangulate_dlt(keypoints_2d: np.ndarray, weights: np.ndarray, cameras: list[Camera], min_views: int = 2) -> np.ndarray:
    """World points (..., J, 3) mm from distorted pixels (V, ..., J, 2) and weights (V, ..., J).

    Weights <= 0 drop a view for that joint; fewer than `min_views` remaining views give NaN.
    """
    kp = np.asarray(keypoints_2d, dtype=np.float64)
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64), nan=0.0)
    if kp.shape[0] != len(cameras):
        raise ValueError(f"{kp.shape[0]} views of keypoints but {len(cameras)} cameras")
    finite = np.isfinite(kp).all(axis=-1)
    w = np.where(finite & (w > 0), w, 0.0)
    rows = []
    for v, camera in enumerate(cameras):
        xy = undistort(np.where(finite[v][..., None], kp[v], 0.0), camera)  # (..., J, 2)
        p = np.concatenate([camera.R, camera.t[:, None]], axis=1)  # (3, 4) world -> camera, mm
        r1 = xy[..., 0:1] * p[2] - p[0]  # (..., J, 4)
        r2 = xy[..., 1:2] * p[2] - p[1]
        # rows normalised so that the weights alone decide a view's influence
        r1 = r1 / np.linalg.norm(r1, axis=-1, keepdims=True)
        r2 = r2 / np.linalg.norm(r2, axis=-1, keepdims=True)
        rows += [w[v][..., None] * r1, w[v][..., None] * r2]
    a = np.stack(rows, axis=-2)  # (..., J, 2V, 4)
    # condition: the world point is far from the origin in mm; scale the homogeneous coordinate
    scale = 1000.0
    a = a * np.array([1.0, 1.0, 1.0, scale])
    _, _, vt = np.linalg.svd(a)
    h = vt[..., -1, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        points = h[..., :3] / (h[..., 3:4] * scale)
    n_views = (w > 0).sum(axis=0)
    return np.where((n_views >= min_views)[..., None], points, np.nan)


class Triangulation:
    """Multi-view DLT; returns each view's camera-frame pose, root-relative."""

    name = "triangulation"

    def __init__(self, config: dict, device: str | None = None):
        cfg = TriangulationConfig.model_validate(config or {})
        self.min_views = cfg.min_views
        self.min_confidence = cfg.min_confidence
        self.input_spec = input_spec(config)
        self.module = None  # no weights

    def predict(self, batch: dict) -> np.ndarray:
        kp = np.asarray(batch["keypoints_2d"], dtype=np.float64)  # (B, V, T, J, 2)
        conf = np.asarray(batch["confidence"], dtype=np.float64)  # (B, V, T, J)
        valid = np.asarray(batch["view_valid"], dtype=bool)  # (B, V, T)
        cameras: list[Camera] = list(batch["cameras"])
        w = np.where(conf >= self.min_confidence, conf, 0.0) * valid[..., None]
        world = triangulate_dlt(np.moveaxis(kp, 1, 0), np.moveaxis(w, 1, 0), cameras, self.min_views)  # (B, T, J, 3)
        out = np.stack([(world - np.asarray(c.position)) @ c.R.T for c in cameras], axis=1)  # (B, V, T, J, 3)
        return out - out[..., ROOT : ROOT + 1, :]


def build_triangulation(config: dict, device: str | None = None) -> Triangulation:
    return Triangulation(config or {}, device)
