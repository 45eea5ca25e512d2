"""3D pose metrics as the field defines them, vectorised over numpy arrays or torch tensors.

Every metric takes `pred` and `gt` of shape (..., 17, 3) in millimetres and returns the mean over
all leading axes and joints (a float for numpy input, a 0-d tensor for torch input). `mpjve` and
`accel_error` read the first axis as time. `*_per_joint` variants return (17,). An optional
`mask` (..., 17) of bools keeps only the selected joints (e.g. occluded or visible ones); a mean
over nothing is NaN. The metrics do not subtract the root: the harness makes both poses
root-relative first (`root_relative`).

- `mpjpe`: mean per-joint position error (Protocol 1).
- `p_mpjpe`: after a per-pose similarity Procrustes alignment (rotation with the reflection fix,
  isotropic scale, translation) of pred onto gt (Protocol 2).
- `n_mpjpe`: after a per-pose scale-only alignment, as VideoPose3D's `n_mpjpe`.
- `mpjve`: error of first differences along time (mm per frame), as VideoPose3D.
- `accel_error`: error of second differences x[t-1] - 2 x[t] + x[t+1] (mm per frame^2), as VIBE.
- `pck3d`: fraction of joints with error < 150 mm; `auc`: mean PCK over 31 thresholds 0..150 mm.

`METRICS` is the one registry of what a score row holds: name -> `MetricSpec(fn, per_joint,
elements, unit, higher_is_better, order, joints)`. Scoring computes every entry from its `elements`
(failed frames penalised, `harness.evaluation`), reports read units and directions from it; no
other module lists metric names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.linspace(0.0, 150.0, 31)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _check(pred: Any, gt: Any) -> tuple[Any, Any]:
    if _is_torch(pred) or _is_torch(gt):
        import torch

        ref = pred if _is_torch(pred) else gt
        dtype = ref.dtype if ref.is_floating_point() else torch.float64
        pred = torch.as_tensor(pred, device=ref.device, dtype=dtype)
        gt = torch.as_tensor(gt, device=ref.device, dtype=dtype)
    else:
        pred = np.asarray(pred, dtype=np.float64)
        gt = np.asarray(gt, dtype=np.float64)
    if tuple(pred.shape) != tuple(gt.shape) or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must share a shape (..., J, 3); got {tuple(pred.shape)} and {tuple(gt.shape)}")
    return pred, gt


def _norm(x: Any) -> Any:
    if _is_torch(x):
        import torch

        return torch.linalg.vector_norm(x, dim=-1)
    return np.linalg.norm(x, axis=-1)


def _masked_mean(values: Any, mask: Any | None, axis: tuple[int, ...] | None = None) -> Any:
    """Mean of `values` over `axis` (None: all) keeping only entries where `mask` is True."""
    torch_mode = _is_torch(values)
    if mask is None:
        if torch_mode:
            return values.mean() if axis is None else values.mean(dim=axis)
        return float(values.mean()) if axis is None else values.mean(axis=axis)
    if torch_mode:
        import torch

        mask = torch.as_tensor(mask, device=values.device, dtype=torch.bool)
        mask = torch.broadcast_to(mask, values.shape)
        weights = mask.to(values.dtype)
        filled = torch.where(mask, values, torch.zeros_like(values))
        if axis is None:
            return filled.sum() / weights.sum()
        return filled.sum(dim=axis) / weights.sum(dim=axis)
    mask = np.broadcast_to(np.asarray(mask, dtype=bool), values.shape)
    filled = np.where(mask, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if axis is None:
            count = mask.sum()
            return float(filled.sum() / count) if count else float("nan")
        return filled.sum(axis=axis) / mask.sum(axis=axis)


def _leading_axes(x: Any) -> tuple[int, ...]:
    return tuple(range(x.ndim - 1))


def root_relative(poses: Any, root: int = 0) -> Any:
    """Subtract the root joint from every joint of (..., J, 3) poses."""
    return poses - poses[..., root : root + 1, :]


def joint_errors(pred: Any, gt: Any) -> Any:
    """Euclidean error of every joint, shape (..., J)."""
    pred, gt = _check(pred, gt)
    return _norm(pred - gt)


# --- alignments ------------------------------------------------------------------------------------
def procrustes_align(pred: Any, gt: Any) -> Any:
    """Pred aligned onto gt per pose by the best similarity transform (R, s, t), reflections excluded.

    Umeyama's solution: with centred X = pred, Y = gt and H = X^T Y = U S V^T, R = V D U^T where
    D = diag(1, 1, sign(det(V U^T))) removes a reflection, s = tr(D S) / |X|^2.
    """
    pred, gt = _check(pred, gt)
    torch_mode = _is_torch(pred)
    mu_x = pred.mean(-2, keepdims=True) if not torch_mode else pred.mean(dim=-2, keepdim=True)
    mu_y = gt.mean(-2, keepdims=True) if not torch_mode else gt.mean(dim=-2, keepdim=True)
    x, y = pred - mu_x, gt - mu_y
    if torch_mode:
        import torch

        h = x.transpose(-1, -2) @ y
        u, s, vt = torch.linalg.svd(h)
        v = vt.transpose(-1, -2)
        sign = torch.sign(torch.linalg.det(v @ u.transpose(-1, -2)))
        sign = torch.where(sign == 0, torch.ones_like(sign), sign)
        d = torch.ones_like(s)
        d = torch.cat([d[..., :2], sign[..., None]], dim=-1)
        r = v @ (d[..., :, None] * u.transpose(-1, -2))
        var_x = (x**2).sum(dim=(-1, -2))
        scale = (s * d).sum(dim=-1) / torch.clamp(var_x, min=torch.finfo(x.dtype).tiny)
        return scale[..., None, None] * (x @ r.transpose(-1, -2)) + mu_y
    h = np.swapaxes(x, -1, -2) @ y
    u, s, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    sign = np.sign(np.linalg.det(v @ np.swapaxes(u, -1, -2)))
    sign = np.where(sign == 0, 1.0, sign)
    d = np.concatenate([np.ones_like(s[..., :2]), sign[..., None]], axis=-1)
    r = v @ (d[..., :, None] * np.swapaxes(u, -1, -2))
    var_x = (x**2).sum(axis=(-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = (s * d).sum(axis=-1) / np.maximum(var_x, np.finfo(np.float64).tiny)
    return scale[..., None, None] * (x @ np.swapaxes(r, -1, -2)) + mu_y


def scale_align(pred: Any, gt: Any) -> Any:
    """Pred scaled per pose by s = <pred, gt> / <pred, pred> (VideoPose3D's `n_mpjpe`, no rotation or shift)."""
    pred, gt = _check(pred, gt)
    if _is_torch(pred):
        num = (pred * gt).sum(dim=(-1, -2), keepdim=True)
        den = (pred * pred).sum(dim=(-1, -2), keepdim=True)
    else:
        num = (pred * gt).sum(axis=(-1, -2), keepdims=True)
        den = (pred * pred).sum(axis=(-1, -2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pred * (num / den)


# --- position errors -------------------------------------------------------------------------------
def mpjpe(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    """Mean per-joint position error (mm)."""
    return _masked_mean(joint_errors(pred, gt), mask)


def mpjpe_per_joint(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    """MPJPE of each joint, (J,)."""
    err = joint_errors(pred, gt)
    return _masked_mean(err, mask, _leading_axes(err))


def p_mpjpe(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    """MPJPE after similarity Procrustes alignment of each pose (mm)."""
    return mpjpe(procrustes_align(pred, gt), gt, mask)


def p_mpjpe_per_joint(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    return mpjpe_per_joint(procrustes_align(pred, gt), gt, mask)


def n_mpjpe(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    """MPJPE after scale-only alignment of each pose (mm)."""
    return mpjpe(scale_align(pred, gt), gt, mask)


def n_mpjpe_per_joint(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    return mpjpe_per_joint(scale_align(pred, gt), gt, mask)


# --- temporal errors -------------------------------------------------------------------------------
def _diff(x: Any, order: int) -> Any:
    if order == 1:
        return x[1:] - x[:-1]
    return x[:-2] - 2 * x[1:-1] + x[2:]


def _temporal_mask(mask: Any | None, order: int) -> Any | None:
    if mask is None:
        return None
    if _is_torch(mask):
        import torch

        mask = torch.as_tensor(mask, dtype=torch.bool)
    else:
        mask = np.asarray(mask, dtype=bool)
    if order == 1:
        return mask[1:] & mask[:-1]
    return mask[:-2] & mask[1:-1] & mask[2:]


def _temporal(pred: Any, gt: Any, mask: Any | None, order: int, per_joint: bool) -> Any:
    pred, gt = _check(pred, gt)
    if pred.ndim < 3:
        raise ValueError(f"temporal metrics need (T, ..., J, 3); got {tuple(pred.shape)}")
    if pred.shape[0] <= order:
        if per_joint:
            return np.full(pred.shape[-2], np.nan) if not _is_torch(pred) else pred.new_full((pred.shape[-2],), float("nan"))
        return float("nan") if not _is_torch(pred) else pred.new_tensor(float("nan"))
    err = _norm(_diff(pred, order) - _diff(gt, order))
    tmask = _temporal_mask(mask, order)
    return _masked_mean(err, tmask, _leading_axes(err) if per_joint else None)


def mpjve(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    """Mean per-joint velocity error (mm/frame); first axis is time. A joint counts where it is kept at both frames."""
    return _temporal(pred, gt, mask, 1, False)


def mpjve_per_joint(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    return _temporal(pred, gt, mask, 1, True)


def accel_error(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    """Acceleration error (mm/frame^2) as VIBE; first axis is time. A joint counts where kept at all three frames."""
    return _temporal(pred, gt, mask, 2, False)


def accel_error_per_joint(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    return _temporal(pred, gt, mask, 2, True)


# --- detection-style scores ------------------------------------------------------------------------
def _pck_values(err: Any, threshold: float) -> Any:
    hit = err < threshold
    return hit.to(err.dtype) if _is_torch(err) else hit.astype(np.float64)


def pck3d(pred: Any, gt: Any, mask: Any | None = None, threshold: float = PCK_THRESHOLD_MM) -> Any:
    """Fraction (0..1) of joints whose error is below `threshold` mm (150 mm by default)."""
    return _masked_mean(_pck_values(joint_errors(pred, gt), threshold), mask)


def pck3d_per_joint(pred: Any, gt: Any, mask: Any | None = None, threshold: float = PCK_THRESHOLD_MM) -> Any:
    err = joint_errors(pred, gt)
    return _masked_mean(_pck_values(err, threshold), mask, _leading_axes(err))


def auc(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    """Area under the PCK curve: mean PCK over the 31 thresholds 0, 5, ..., 150 mm (0..1)."""
    err = joint_errors(pred, gt)
    values = [_masked_mean(_pck_values(err, float(t)), mask) for t in AUC_THRESHOLDS_MM]
    if _is_torch(err):
        import torch

        return torch.stack(values).mean()
    return float(np.mean(values))


def auc_per_joint(pred: Any, gt: Any, mask: Any | None = None) -> Any:
    err = joint_errors(pred, gt)
    axes = _leading_axes(err)
    values = [_masked_mean(_pck_values(err, float(t)), mask, axes) for t in AUC_THRESHOLDS_MM]
    if _is_torch(err):
        import torch

        return torch.stack(values).mean(dim=0)
    return np.mean(values, axis=0)


# --- per-element values: what a metric averages, before any mean ------------------------------------
def joint_hits(pred: Any, gt: Any, threshold: float = PCK_THRESHOLD_MM) -> Any:
    """1.0 where a joint's error is below `threshold` mm, else 0.0, shape (..., J) (PCK3D's elements)."""
    return _pck_values(joint_errors(pred, gt), threshold)


def joint_auc(pred: Any, gt: Any) -> Any:
    """Each joint's share of the 31 thresholds 0..150 mm it is within, shape (..., J) (AUC's elements)."""
    err = joint_errors(pred, gt)
    values = [_pck_values(err, float(t)) for t in AUC_THRESHOLDS_MM]
    if _is_torch(err):
        import torch

        return torch.stack(values).mean(dim=0)
    return np.mean(values, axis=0)


def procrustes_errors(pred: Any, gt: Any) -> Any:
    """Per-joint errors after similarity Procrustes of each pose (P-MPJPE's elements), (..., J)."""
    return joint_errors(procrustes_align(pred, gt), gt)


def scaled_errors(pred: Any, gt: Any) -> Any:
    """Per-joint errors after scale alignment of each pose (N-MPJPE's elements), (..., J)."""
    return joint_errors(scale_align(pred, gt), gt)


def velocity_errors(pred: Any, gt: Any) -> Any:
    """Per-joint error of the first differences along time (T-1, ..., J) (MPJVE's elements)."""
    pred, gt = _check(pred, gt)
    return _norm(_diff(pred, 1) - _diff(gt, 1))


def acceleration_errors(pred: Any, gt: Any) -> Any:
    """Per-joint error of the second differences along time (T-2, ..., J) (acceleration error's elements)."""
    pred, gt = _check(pred, gt)
    return _norm(_diff(pred, 2) - _diff(gt, 2))


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a score row.

    fn(pred, gt, mask=None): the value over a sequence; per_joint(pred, gt, mask=None): (J,) or None.
    elements(pred, gt): the per-(frame or difference, joint) values the metric is the mean of,
    (T - order, J); the harness replaces the elements of failed frames by the declared penalty
    (`harness.evaluation`) before taking the mean. unit: "mm", "mm/frame", "mm/frame^2" or
    "fraction" (0..1). higher_is_better: False for errors, True for the fractions (pck3d, auc).
    order: 0 for a per-frame metric, 1 (velocity) or 2 (acceleration) for a temporal one whose
    elements are differences of `order + 1` consecutive frames. joints: "all", or the occlusion
    split ("visible" / "occluded": computed only where the corruption recorded occlusion).
    """

    fn: Callable[..., Any]
    per_joint: Callable[..., Any] | None
    elements: Callable[[Any, Any], Any]
    unit: str
    higher_is_better: bool
    order: int = 0
    joints: Literal["all", "visible", "occluded"] = "all"
    description: str = ""

    @property
    def temporal(self) -> bool:
        """The first axis is time (elements are differences of consecutive frames)."""
        return self.order > 0

    def error(self, values: Any) -> Any:
        """The value as an error (lower is better): itself for an error metric, 1 - value for a
        higher-is-better fraction. CE and relative CE are ratios of these errors."""
        if not self.higher_is_better:
            return values
        if self.unit != "fraction":
            raise ValueError("a higher-is-better metric must be a fraction (its error is 1 - value)")
        return 1.0 - values


METRICS: Mapping[str, MetricSpec] = MappingProxyType({
    "mpjpe": MetricSpec(mpjpe, mpjpe_per_joint, joint_errors, "mm", False, description="MPJPE (Protocol 1)"),
    "p_mpjpe": MetricSpec(p_mpjpe, p_mpjpe_per_joint, procrustes_errors, "mm", False, description="MPJPE after similarity Procrustes (Protocol 2)"),
    "n_mpjpe": MetricSpec(n_mpjpe, n_mpjpe_per_joint, scaled_errors, "mm", False, description="MPJPE after scale alignment"),
    "mpjve": MetricSpec(mpjve, mpjve_per_joint, velocity_errors, "mm/frame", False, order=1, description="velocity error"),
    "accel_error": MetricSpec(accel_error, accel_error_per_joint, acceleration_errors, "mm/frame^2", False, order=2, description="acceleration error"),
    "pck3d": MetricSpec(pck3d, pck3d_per_joint, joint_hits, "fraction", True, description="PCK3D@150 mm"),
    "auc": MetricSpec(auc, auc_per_joint, joint_auc, "fraction", True, description="AUC of PCK over 0..150 mm"),
    "mpjpe_visible": MetricSpec(mpjpe, mpjpe_per_joint, joint_errors, "mm", False, joints="visible", description="MPJPE of the visible joints"),
    "mpjpe_occluded": MetricSpec(mpjpe, mpjpe_per_joint, joint_errors, "mm", False, joints="occluded", description="MPJPE of the occluded joints"),
})  # fmt: skip


def metric(name: str) -> MetricSpec:
    """The registry entry of `name` (ValueError naming the known ones)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric '{name}' (one of {', '.join(METRICS)})")
    return METRICS[name]
