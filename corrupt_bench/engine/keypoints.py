"""Keypoint corruptions for 2D-to-3D lifters: joint_dropout (DTF-style missing joints, up to 12-16
of 17 per frame) and keypoint_jitter (temporally correlated pixel noise, TAGN-style).

joint_dropout (table version 2) draws the number of missing joints n uniform in
[min_missing, max_missing], either per frame (`count_per: frame`) or once per sequence and camera
(`count_per: sequence`, DTF's released code: `random.randint(12, 16)` once per sequence and camera,
then n joints chosen at random on every frame); the n joints are drawn per frame either way.

Both change `CorruptionRecord.joints_2d` (the clean labels stay in the clip) and return
confidences. Pixel amounts are stated for a 1000-px-wide full Human3.6M frame and scaled into the
clip's image pixels by `FrameContext.keypoint_scale`.

Parameter bounds (shipped tables in brackets): joint_dropout min_missing <= max_missing, integers
0..17 [1..16], count_per frame or sequence [frame]; keypoint_jitter sigma_px 0..100 px [2..16], correlation_s 0.01..60 s [0.2],
confidence_px 0.1..1000 px [10].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import Field

from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.engine.base import Family, FrameContext
from corrupt_bench.engine.params import Params
from corrupt_bench.engine.rng import RngKey


class DropoutParams(Params):
    min_missing: int = Field(ge=0, le=N_JOINTS, description="fewest joints missing per frame")
    max_missing: int = Field(ge=0, le=N_JOINTS, description="most joints missing per frame")
    count_per: Literal["frame", "sequence"] = Field(
        description="draw the number of missing joints per frame, or once per sequence and camera (DTF's code)"
    )
    ordered = (("min_missing", "max_missing"),)


class JitterParams(Params):
    sigma_px: float = Field(ge=0.0, le=100.0, description="noise standard deviation, px of a 1000-px frame")
    correlation_s: float = Field(ge=0.01, le=60.0, description="knot spacing of the smooth noise, seconds")
    confidence_px: float = Field(ge=0.1, le=1000.0, description="offset at which confidence is exp(-1/2), px")


@dataclass(frozen=True)
class Dropout:
    missing: np.ndarray  # (17,) bool


def sample_dropout(rng: np.random.Generator, row: DropoutParams, ctx: FrameContext) -> Dropout:
    low, high = int(row.min_missing), int(row.max_missing) + 1
    if row.count_per == "sequence":
        if ctx.key is None:
            raise ValueError("joint_dropout with count_per 'sequence' needs FrameContext.key")
        n = _sequence_count(ctx.key.span(0, "sequence"), low, high)
    else:
        n = int(rng.integers(low, high))
    missing = np.zeros(N_JOINTS, dtype=bool)
    missing[rng.permutation(N_JOINTS)[:n]] = True
    return Dropout(missing)


@lru_cache(maxsize=4096)
def _sequence_count(key: RngKey, low: int, high: int) -> int:
    """The number of missing joints of a sequence and camera (cached: a pure function of the key)."""
    return int(key.generator().integers(low, high))


def keypoints_dropout(joints: np.ndarray, p: Dropout) -> tuple[np.ndarray, np.ndarray]:
    """Missing joints are set to (0, 0) with confidence 0 (the usual convention of detectors)."""
    out = np.array(joints, dtype=np.float64)
    out[p.missing] = 0.0
    return out, (~p.missing).astype(np.float32)


def occlusion_dropout(p: Dropout, ctx: FrameContext) -> np.ndarray:
    return p.missing.copy()


@dataclass(frozen=True)
class Jitter:
    offset: np.ndarray  # (17, 2) px in the clip's images
    confidence: np.ndarray  # (17,) float32


def _knot(key: RngKey, index: int) -> np.ndarray:
    return _knot_values(key.span(index, "knot"))


@lru_cache(maxsize=4096)
def _knot_values(key: RngKey) -> np.ndarray:
    values = key.generator().standard_normal((N_JOINTS, 2))
    values.flags.writeable = False
    return values


def correlated_normal(key: RngKey, time_s: float, knot_s: float) -> np.ndarray:
    """(17, 2) standard normal values, smooth in time: knots every `knot_s` seconds, keyed by knot
    index, blended with a cosine weight and renormalised so each frame's marginal is N(0, 1)."""
    u = time_s / knot_s
    k = int(math.floor(u + 1e-9))
    frac = min(max(u - k, 0.0), 1.0)
    w = (1.0 - math.cos(math.pi * frac)) / 2.0
    a = _knot(key, k)
    if w < 1e-12:
        return a
    b = _knot(key, k + 1)
    return ((1.0 - w) * a + w * b) / math.sqrt((1.0 - w) ** 2 + w**2)


def sample_jitter(rng: np.random.Generator, row: JitterParams, ctx: FrameContext) -> Jitter:
    if ctx.key is None:
        raise ValueError("keypoint_jitter needs FrameContext.key (noise is correlated in time)")
    z = correlated_normal(ctx.key, ctx.time, float(row.correlation_s))
    offset = z * float(row.sigma_px) * ctx.keypoint_scale
    d = np.linalg.norm(offset, axis=1) / (float(row.confidence_px) * ctx.keypoint_scale)
    return Jitter(offset, np.exp(-0.5 * d**2).astype(np.float32))


def keypoints_jitter(joints: np.ndarray, p: Jitter) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(joints, dtype=np.float64) + p.offset, p.confidence.copy()


FAMILIES = (
    Family(
        "joint_dropout", "keypoint", "keypoint", DropoutParams, sample_dropout,
        occlusion=occlusion_dropout, keypoints=keypoints_dropout,
    ),  # fmt: skip
    Family(
        "keypoint_jitter", "keypoint", "keypoint", JitterParams,
        sample_jitter, keypoints=keypoints_jitter,
    ),  # fmt: skip
)
