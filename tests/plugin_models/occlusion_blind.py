"""A plugin image Predictor that fails where the person is hidden: the behaviour STRIDE exists for.

`build({"image_size": 64})` reads person crops and, as a diagnostic model (`needs_ground_truth`), the
true pose and the corruption's occlusion flags: on a frame where more than half of the joints are
occluded it returns NaN (no pose), elsewhere the true root-relative pose with every non-root joint
moved by `offset_mm` * 17 / 16 along x (MPJPE `offset_mm` exactly).
"""

from __future__ import annotations

import numpy as np

from corrupt_bench.models.protocol import InputSpec

HIDDEN_FRACTION = 0.5  # a frame with more of its joints occluded has no pose


class OcclusionBlind:
    name = "occlusion-blind"
    module = None

    def __init__(self, config: dict):
        self.offset_mm = float(config.get("offset_mm", 20.0))
        self.input_spec = InputSpec(kind="images", window=int(config.get("window", 1)), image_size=int(config.get("image_size", 64)),
                                    needs_ground_truth=True)  # fmt: skip

    def predict(self, batch: dict) -> np.ndarray:
        gt = np.asarray(batch["joints_3d_cam"], np.float64)
        out = gt - gt[..., :1, :]
        out[..., 1:, 0] += self.offset_mm * 17 / 16
        hidden = np.asarray(batch["occluded"], bool).mean(axis=-1) > HIDDEN_FRACTION
        out[hidden] = np.nan
        return out


def build(config: dict, device) -> OcclusionBlind:
    return OcclusionBlind(config or {})
