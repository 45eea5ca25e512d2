"""The metrics of one prediction sequence, with failed frames counted and penalised, never dropped.

A frame is *failed* when the model gave no finite prediction for every joint of its declared joint
set (`InputSpec.joints`, all 17 by default). A failed frame stays in every metric with a declared
penalty, `PENALTY_RULE`: the error of the reference pose, every joint at the root. Per joint that is
the distance of the true joint from the true root, used as the element of every position metric
(MPJPE, P-MPJPE, N-MPJPE and the visible / occluded split: a pose that does not exist is not
aligned); a velocity or acceleration difference that involves failed frames gets the largest such
distance among them; PCK3D and AUC count every joint of a failed frame as a miss (0).

What this guarantees: PCK3D and AUC can never gain from a failed frame (a miss is their worst
value). An error metric gains only where a finite answer is farther from the truth than putting
every joint at the root, i.e. never for an answer better than no answer at all.

Each row also holds `answered_<metric>`: the mean over the answered frames only (for temporal
metrics, over the differences that touch no failed frame). Reports use it for one thing: the clean
baseline of the relative robustness scores, where leaving failures out is the side that hurts the
model (see `corrupt_bench.reports.tables`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.harness.metrics import METRICS, MetricSpec, root_relative
from corrupt_bench.models.protocol import ALL_JOINTS

REFERENCE_POSE = "every joint at the root"
PENALTY_RULE = (
    "a frame without a finite prediction of every joint of the model's joint set is a failed frame: it stays in "
    "every mean with the error of the reference pose (every joint at the root), i.e. per joint the distance of the "
    "true joint from the true root, in MPJPE, P-MPJPE, N-MPJPE and the visible/occluded split, and in every velocity "
    "or acceleration difference that involves it (the largest such distance of its failed frames); PCK3D and AUC "
    "count it as a miss on every joint"
)
ANSWERED_PREFIX = "answered_"  # row column: the mean over answered frames only (relative scores' clean baseline)


def joint_set_label(joints: tuple[int, ...]) -> str:
    """How tables name a joint set: 'all 17', or 'N of 17: i,j,...'."""
    joints = tuple(joints)
    if joints == ALL_JOINTS:
        return f"all {N_JOINTS}"
    return f"{len(joints)} of {N_JOINTS}: " + ",".join(str(j) for j in joints)


def answered_frames(pred: np.ndarray, joints: tuple[int, ...] = ALL_JOINTS) -> np.ndarray:
    """(N,) True where every joint of `joints` has a finite prediction."""
    return np.isfinite(np.asarray(pred, np.float64)[:, list(joints)]).all(axis=(-1, -2))


def _elements(spec: MetricSpec, pred: np.ndarray, gt: np.ndarray, answered: np.ndarray, penalty: np.ndarray):
    """(values (M, J), clean (M,)): the metric's elements with failed frames penalised, and which
    elements touch no failed frame."""
    n, n_joints = pred.shape[:2]
    failure = 0.0 if spec.higher_is_better else None  # a miss, or the reference pose's error
    if spec.order == 0:
        values = np.empty((n, n_joints))
        if answered.any():
            values[answered] = np.asarray(spec.elements(pred[answered], gt[answered]), np.float64)
        values[~answered] = penalty[~answered] if failure is None else failure
        return values, answered
    k = spec.order
    if n <= k:
        return np.empty((0, n_joints)), np.zeros(0, bool)
    values = np.asarray(spec.elements(pred, gt), np.float64)
    window_failed = np.stack([~answered[i : n - k + i] for i in range(k + 1)])  # (k+1, M)
    hit = window_failed.any(axis=0)
    if hit.any():
        if failure is None:
            charged = np.stack([np.where(window_failed[i][:, None], penalty[i : n - k + i], 0.0) for i in range(k + 1)])
            values[hit] = charged.max(axis=0)[hit]
        else:
            values[hit] = failure
    return values, ~hit


def _mean(values: np.ndarray, mask: np.ndarray | None = None) -> float:
    if mask is not None:
        values = values[mask]
    return float(values.mean()) if values.size else float("nan")


def sequence_metrics(pred: Any, gt: Any, occluded: Any | None = None, occlusion_recorded: bool = False,
                     joints: tuple[int, ...] = ALL_JOINTS) -> tuple[dict, dict]:  # fmt: skip
    """Every metric of the registry for one prediction sequence (N, 17, 3) against gt (both made
    root-relative), on the joint set `joints`, failed frames penalised (`PENALTY_RULE`).

    Returns (row values, per-joint arrays): the row holds `n_frames`, `n_nonfinite` (failed frames),
    `coverage` (answered / all frames), each metric and its `answered_<metric>`; the visible /
    occluded split is computed where the corruption recorded occlusion (NaN elsewhere). Per-joint
    arrays (17,) of the per-frame all-joint metrics, NaN outside the joint set."""
    joints = tuple(joints)
    index = list(joints)
    gt = root_relative(np.asarray(gt, np.float64))[:, index]
    pred = np.asarray(pred, np.float64)
    answered = answered_frames(pred, joints)
    pred = root_relative(np.where(answered[:, None, None], pred, 0.0))[:, index]
    penalty = np.linalg.norm(gt, axis=-1)  # the reference pose's error: each joint's distance from the root
    n = len(pred)
    row: dict[str, Any] = {"n_frames": int(n), "n_nonfinite": int((~answered).sum()), "coverage": float(answered.mean()) if n else float("nan")}
    split = occlusion_recorded and occluded is not None and n > 0
    occ = np.asarray(occluded, bool)[:, index] if split else None
    per_joint: dict[str, np.ndarray] = {}
    for name, spec in METRICS.items():
        if spec.joints != "all" and occ is None:
            row[name] = row[ANSWERED_PREFIX + name] = float("nan")
            continue
        values, clean = _elements(spec, pred, gt, answered, penalty)
        mask = None if spec.joints == "all" else (occ if spec.joints == "occluded" else ~occ)
        row[name] = _mean(values, mask)
        row[ANSWERED_PREFIX + name] = _mean(values[clean], None if mask is None else mask[clean])
        if spec.joints == "all" and spec.order == 0 and spec.per_joint is not None and n:
            full = np.full(N_JOINTS, np.nan)
            full[index] = values.mean(axis=0)
            per_joint[name] = full
    return row, per_joint


FRAME_SPLIT_COLUMNS = ("n_base_failed", "n_filled", "mpjpe_failed_frames", "mpjpe_answered_frames")


def failed_frame_split(pred: Any, gt: Any, base_failed: Any | None, joints: tuple[int, ...] = ALL_JOINTS) -> dict:
    """The failed frames apart from the others: `n_base_failed` frames where the base estimator gave no
    pose, `n_filled` of them that the final prediction (a refiner's) answers, and the MPJPE (failed
    frames penalised as in `PENALTY_RULE`) over the base estimator's failed frames and over its
    answered frames (NaN where there are none). `base_failed` None: the base is the final prediction."""
    joints = tuple(joints)
    index = list(joints)
    pred = np.asarray(pred, np.float64)
    answered = answered_frames(pred, joints)
    failed = ~answered if base_failed is None else np.asarray(base_failed, bool)
    gt = root_relative(np.asarray(gt, np.float64))[:, index]
    penalty = np.linalg.norm(gt, axis=-1)
    values, _ = _elements(METRICS["mpjpe"], root_relative(np.where(answered[:, None, None], pred, 0.0))[:, index], gt, answered, penalty)
    per_frame = values.mean(axis=1) if values.size else np.zeros(len(pred))
    return {
        "n_base_failed": int(failed.sum()),
        "n_filled": int((failed & answered).sum()),
        "mpjpe_failed_frames": _mean(per_frame, failed),
        "mpjpe_answered_frames": _mean(per_frame, ~failed),
    }
