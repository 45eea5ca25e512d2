"""Blurs: defocus_blur (ImageNet-C's aliased disk) and motion_blur (a line kernel whose direction
drifts smoothly over the sequence). Kernel sizes are stated for a 224 px person and scaled by
`FrameContext.spatial_scale()`; filtering is `cv2.filter2D` (reflected border).

Parameter bounds (shipped tables in brackets): defocus radius 0..30 px at 224 px [3..10] and
alias_blur 0..2 px [0.1..0.5]; motion length 0..100 px at 224 px [6..30], drift_deg 0..180 [30],
drift_period_s 0.1..3600 s [4]. At a 1000-px person the largest kernels are about 280 x 280 px
(defocus) and 450 px long (motion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
from pydantic import Field

from corrupt_bench.engine.base import Family, FrameContext
from corrupt_bench.engine.params import Params
from corrupt_bench.engine.rng import RngKey


class DefocusParams(Params):
    radius: float = Field(ge=0.0, le=30.0, description="disk radius in px of a 224-px person")
    alias_blur: float = Field(ge=0.0, le=2.0, description="sigma of the Gaussian smoothing the disk, px")


class MotionParams(Params):
    length: float = Field(ge=0.0, le=100.0, description="line length in px of a 224-px person")
    drift_deg: float = Field(ge=0.0, le=180.0, description="amplitude of the direction's drift, degrees")
    drift_period_s: float = Field(ge=0.1, le=3600.0, description="mean period of the drift, seconds")


@dataclass(frozen=True)
class KernelBlur:
    kernel: np.ndarray  # (k, k) float32, sums to 1
    radius_px: float = 0.0  # defocus: disk radius in image px
    length_px: float = 0.0  # motion: line length in image px
    angle_deg: float = 0.0  # motion: direction


def apply_kernel(image: np.ndarray, p: KernelBlur) -> np.ndarray:
    if p.kernel.shape == (1, 1):
        return image.copy()
    return cv2.filter2D(image, -1, p.kernel, borderType=cv2.BORDER_REFLECT_101)


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """ImageNet-C's aliased disk: a binary disk of `radius` px smoothed by a small Gaussian."""
    half = max(int(math.ceil(radius)) + 1, 2)
    axis = np.arange(-half, half + 1, dtype=np.float64)
    xx, yy = np.meshgrid(axis, axis)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    if disk.sum() == 0:
        disk[half, half] = 1.0
    disk /= disk.sum()
    ksize = 3 if radius <= 8 else 5
    kernel = cv2.GaussianBlur(disk, (ksize, ksize), alias_blur) if alias_blur > 0 else disk
    return (kernel / kernel.sum()).astype(np.float32)


def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Anti-aliased centred line of `length` px at `angle_deg` (weight: 1 - distance to the segment)."""
    if length < 1.0:
        return np.ones((1, 1), dtype=np.float32)
    half = int(math.ceil(length / 2)) + 1
    axis = np.arange(-half, half + 1, dtype=np.float64)
    xx, yy = np.meshgrid(axis, axis)
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    along = np.clip(xx * c + yy * s, -length / 2, length / 2)
    dist = np.hypot(xx - along * c, yy - along * s)
    kernel = np.clip(1.0 - dist, 0.0, None)
    return (kernel / kernel.sum()).astype(np.float32)


def sample_defocus(rng: np.random.Generator, row: DefocusParams, ctx: FrameContext) -> KernelBlur:
    radius = float(row.radius) * ctx.spatial_scale()
    return KernelBlur(disk_kernel(radius, float(row.alias_blur)), radius_px=radius)


def motion_angle(key: RngKey, time_s: float, row: MotionParams) -> float:
    """Blur direction at absolute time `time_s`: a per-camera base angle plus a slow sinusoidal drift.

    The base angle, drift period and phase come from the sequence key (with severity 0, so every
    severity blurs along the same directions), so every frame of the sequence agrees whatever clip
    it is processed in.
    """
    # the direction schedule is shared by all severities (severity 0 in its key): only the length grows
    base, period_factor, phase = _drift_draws(replace(key, severity=0).span(0, "sequence"))
    period = period_factor * float(row.drift_period_s)
    return base + float(row.drift_deg) * math.sin(2 * math.pi * time_s / period + phase)


@lru_cache(maxsize=1024)
def _drift_draws(key: RngKey) -> tuple[float, float, float]:
    seq = key.generator()
    return float(seq.uniform(-180.0, 180.0)), float(seq.uniform(0.5, 1.5)), float(seq.uniform(0.0, 2 * math.pi))


def sample_motion(rng: np.random.Generator, row: MotionParams, ctx: FrameContext) -> KernelBlur:
    if ctx.key is None:
        raise ValueError("motion_blur needs FrameContext.key (its direction drifts over the sequence)")
    length = float(row.length) * ctx.spatial_scale()
    angle = motion_angle(ctx.key, ctx.time, row)
    return KernelBlur(line_kernel(length, angle), length_px=length, angle_deg=angle)


FAMILIES = (
    Family("defocus_blur", "pixel", "ssim", DefocusParams, sample_defocus, apply_kernel, stochastic=False),
    Family("motion_blur", "pixel", "ssim", MotionParams, sample_motion, apply_kernel),
)
