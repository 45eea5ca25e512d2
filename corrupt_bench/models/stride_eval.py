"""The STRIDE occlusion experiment shared by `tests/test_stride.py` and `benchmarks/stride.py`.

One definition of the briefly pretrained prior and of the test-subject sequences with a 1.6 s
failure, so that the test asserts on exactly what the model card's table reports.
"""

from __future__ import annotations

import numpy as np

from corrupt_bench.data.cameras import CAMERA_IDS, get_camera, world_to_camera
from corrupt_bench.data.synth_motion import synthetic_motion

# The tiny config's sizes and TTT settings (27 frames at 10 fps), pretrained briefly (about a minute
# on 2 cores) on three training subjects' synthetic motion: `prior_sequences()`.
PRIOR_CONFIG = {
    "dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0, "dim_rep": 64, "window": 27, "fps": 10.0,
    "pretrain": {"epochs": 6, "steps_per_epoch": 50, "batch_size": 16, "lr": 1e-3, "span_mask": 0.9, "seed": 0},
    "ttt": {"epochs": 30, "lr": 2e-4, "remask": True, "failed_target": "prior"},
}
# Test-subject sequences with a 1.6 s failure: (subject, action, camera index, noise seed).
OCCLUSION_CASES = [("S9", "walk", 0, 1), ("S9", "walk", 1, 2), ("S11", "walk", 0, 3), ("S9", "wave", 0, 4),
                   ("S11", "sit", 2, 5)]


def camera_poses(subject: str, action: str, camera: int, n_frames: int) -> np.ndarray:
    """Root-relative camera-frame (n_frames, 17, 3) mm synthetic motion seen by camera index `camera`."""
    world = synthetic_motion(subject, action, n_frames, seed=0)
    cam = world_to_camera(world, get_camera(subject, CAMERA_IDS[camera]))
    return cam - cam[:, :1]


def prior_sequences(subjects=("S1", "S5", "S6"), actions=("walk", "wave", "sit"), n_frames: int = 1000,
                    cameras=(0, 1)) -> list[np.ndarray]:
    """The pretraining sequences of the experiment's prior (every subject x action x camera)."""
    return [camera_poses(s, a, c, n_frames) for s in subjects for a in actions for c in cameras]


def occluded_case(subject: str = "S9", action: str = "walk", camera: int = 0, seed: int = 1):
    """(ground truth, base, failed) for 200 frames: the base is ground truth + 15 mm white noise per
    coordinate, NaN on frames 60-139 (1.6 s at 50 fps) where the base estimator fails."""
    gt = camera_poses(subject, action, camera, 200)
    base = gt + np.random.default_rng(seed).normal(0.0, 15.0, gt.shape)
    base = base - base[:, :1]
    failed = np.zeros(len(gt), dtype=bool)
    failed[60:140] = True
    base[failed] = np.nan
    return gt, base, failed
