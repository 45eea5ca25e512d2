"""The error model of `plugin_models.graded`: how far off it is on each frame, in mm."""

from __future__ import annotations

import numpy as np

from corrupt_bench.data.cameras import project

BASE_MM = 20.0  # error on a clean frame, plus up to SPREAD_MM depending on the frame
SPREAD_MM = 10.0
GAIN_MM_PER_PX = 200.0  # extra error per pixel of 2D input error


def frame_errors(batch: dict, extra_mm: float) -> np.ndarray:
    """(B, V, T) error in mm: a base that depends on the frame and the sequence, plus GAIN times the mean
    2D input error of the frame (the input keypoints against the projected ground truth)."""
    gt = batch["joints_3d_cam"]
    b, v, t = gt.shape[:3]
    deviation = np.zeros((b, v, t))
    for j, camera in enumerate(batch["cameras"]):
        pixels = project(gt[:, j].reshape(-1, 3), camera).reshape(b, t, 17, 2)
        deviation[:, j] = np.linalg.norm(batch["keypoints_2d"][:, j] - pixels, axis=-1).mean(axis=-1)
    per_sequence = np.array([sum(map(ord, name)) % 7 for name in batch["sequence"]], np.float64)[:, None, None]
    base = BASE_MM + SPREAD_MM * ((np.asarray(batch["frames"]) * 7) % 10)[:, None, :] / 9.0 + 2.0 * per_sequence
    return base + GAIN_MM_PER_PX * deviation + extra_mm
