"""`oracle-noise`: ground truth plus a known, seeded error, for checking metrics end to end.

The one model allowed to see ground truth: its InputSpec opts in with `needs_ground_truth`, so the
harness adds `joints_3d_cam` to its batches. Config:

- `offset_mm` (default 0): every non-root joint is moved by one constant 3D vector, the same for
  all frames, so the root-relative MPJPE over the 17 joints (root error 0 by construction) is
  exactly `offset_mm`. The vector therefore has norm offset_mm * 17 / 16 (see `offset_vector`).
- `direction` (default [1, 1, 1]): direction of that vector in the camera frame.
- `noise_mm` (default 0): isotropic Gaussian noise (std per axis) on every non-root joint, drawn
  from a generator keyed by (seed, subject, sequence, camera, frame), so it does not depend on
  batching, window or worker count.
- `seed` (default 0), `window` (default 1), `multi_view` (default false).

Unknown keys are refused (`OracleConfig`, extra="forbid").
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from corrupt_bench.data.skeleton import N_JOINTS, ROOT
from corrupt_bench.models.protocol import InputSpec


class OracleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    offset_mm: float = 0.0
    noise_mm: float = Field(0.0, ge=0.0)
    seed: int = 0
    direction: tuple[float, float, float] = (1.0, 1.0, 1.0)
    window: int = Field(1, ge=1)
    multi_view: bool = False


def input_spec(config: dict) -> InputSpec:
    """Keypoint input (ignored: the model reads ground truth), the configured window and views."""
    cfg = OracleConfig.model_validate(config or {})
    return InputSpec(kind="keypoints2d", multi_view=cfg.multi_view, window=cfg.window, needs_ground_truth=True)


def offset_vector(offset_mm: float, direction: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The constant offset added to every non-root joint, scaled so the 17-joint MPJPE equals `offset_mm`."""
    d = np.asarray(direction, dtype=np.float64)
    norm = np.linalg.norm(d)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("oracle-noise: direction must be a non-zero 3-vector")
    return d / norm * float(offset_mm) * N_JOINTS / (N_JOINTS - 1)


def _frame_generator(seed: int, subject: str, sequence: str, camera: str, frame: int) -> np.random.Generator:
    key = json.dumps(["oracle-noise", int(seed), subject, sequence, camera, int(frame)]).encode()
    entropy = int.from_bytes(hashlib.sha256(key).digest(), "little")
    return np.random.default_rng(np.random.SeedSequence(entropy))


class OracleNoise:
    """Ground truth (root-relative, camera frame) plus a constant offset and keyed Gaussian noise."""

    name = "oracle-noise"

    def __init__(self, config: dict, device: str | None = None):
        cfg = OracleConfig.model_validate(config or {})
        self.offset_mm = cfg.offset_mm
        self.noise_mm = cfg.noise_mm
        self.seed = cfg.seed
        self.offset = offset_vector(self.offset_mm, cfg.direction)
        self.input_spec = input_spec(config)
        self.module = None  # nothing to train or load

    def predict(self, batch: dict) -> np.ndarray:
        gt = np.asarray(batch["joints_3d_cam"], dtype=np.float64)  # (B, V, T, 17, 3)
        pred = gt - gt[..., ROOT : ROOT + 1, :]
        non_root = np.arange(N_JOINTS) != ROOT
        pred[..., non_root, :] += self.offset
        if self.noise_mm > 0:
            frames = np.asarray(batch["frames"])
            for b in range(pred.shape[0]):
                for v, camera in enumerate(batch["camera_ids"]):
                    for t in range(pred.shape[2]):
                        rng = _frame_generator(self.seed, batch["subject"][b], batch["sequence"][b], camera, frames[b, t])
                        pred[b, v, t, non_root] += rng.normal(0.0, self.noise_mm, size=(N_JOINTS - 1, 3))
        return pred


def build_oracle(config: dict, device: str | None = None) -> OracleNoise:
    return OracleNoise(config or {}, device)
