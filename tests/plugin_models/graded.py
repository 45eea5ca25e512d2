"""A plugin Predictor whose error grows with its 2D input's error, and that can hide its worst frames.

`build({"hide": 0.3})` returns NaN on the 30 % of each batch's frames where its error is largest,
the behaviour a benchmark must not reward; `extra_mm` adds a constant error. It reads ground truth
(`needs_ground_truth`) only to construct its error exactly: MPJPE of a frame = its error.
"""

from __future__ import annotations

import numpy as np

from corrupt_bench.models.protocol import InputSpec
from plugin_models.errors import frame_errors


class Graded:
    module = None

    def __init__(self, config: dict):
        self.hide = float(config.get("hide", 0.0))
        self.extra_mm = float(config.get("extra_mm", 0.0))
        self.name = "graded-hiding" if self.hide else "graded"
        self.input_spec = InputSpec(kind="keypoints2d", window=4, needs_ground_truth=True)

    def predict(self, batch: dict) -> np.ndarray:
        gt = np.asarray(batch["joints_3d_cam"], np.float64)
        out = gt - gt[..., :1, :]
        error = frame_errors(batch, self.extra_mm)
        out[..., 1:, 0] += (error * 17 / 16)[..., None]  # 16 joints moved by e * 17/16: MPJPE e
        if self.hide:
            real = ~np.broadcast_to(np.asarray(batch["pad"])[:, None, :], error.shape)
            cut = np.quantile(error[real], 1.0 - self.hide)
            out[(error >= cut) & real] = np.nan
        return out


def build(config: dict, device) -> Graded:
    return Graded(config or {})
