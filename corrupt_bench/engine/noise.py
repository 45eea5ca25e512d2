"""Pixel noise: gaussian_noise, shot_noise, salt_pepper, speckle_noise (ImageNet-C's definitions).

Every noise map is drawn in `sample` as 16-bit uniforms from the frame's generator and turned into
noise by inverse-CDF tables, so sampling is fast and exactly reproducible; `apply` only adds,
multiplies or looks up with saturating OpenCV arithmetic. The 16-bit inverse CDF resolves
probabilities to 2^-16: Gaussian tails are cut at 4.3 sigma, Poisson tails beyond a 1.5e-5
quantile are folded into the last value.

Parameter bounds (shipped tables in brackets): gaussian sigma 0..1 of the intensity range
[0.08..0.38]; shot noise 1..1000 photons per unit intensity [3..60] (the Poisson table holds
photons + 12 sqrt(photons) + 30 values per intensity); salt-and-pepper amount 0..1 [0.03..0.27];
speckle sigma 0..2 [0.15..0.6].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from pydantic import Field
from scipy.special import ndtri

from corrupt_bench.engine.base import Family, FrameContext
from corrupt_bench.engine.params import Params

_LEVELS = 65536


def _uniform16(rng: np.random.Generator, ctx: FrameContext) -> np.ndarray:
    h, w = ctx.image_shape
    return uniform16(rng, (h, w, 3))


def uniform16(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """`rng.integers(0, 65536, shape, dtype=np.uint16)`: the same values and the same generator state
    after, in half the time. numpy fills such an array from 32-bit draws, two values each (low half
    first), and PCG64 serves 32-bit draws from 64-bit ones (low half first, the high half kept for
    the next draw): the values are the little-endian 16-bit quarters of `random_raw`. (Tested against
    `integers`; any other bit generator, or a pending 32-bit half, goes through `integers`.)"""
    bitgen = rng.bit_generator
    if not isinstance(bitgen, np.random.PCG64) or bitgen.state["has_uint32"]:
        return rng.integers(0, _LEVELS, size=shape, dtype=np.uint16)
    n = math.prod(shape)
    raw = bitgen.random_raw((n + 3) // 4)
    values = raw.astype("<u8", copy=False).view("<u2")[:n].astype(np.uint16, copy=False).reshape(shape)
    if (n + 1) // 2 % 2:  # an odd number of 32-bit draws: numpy keeps the high half of the last 64 bits
        state = bitgen.state
        state["has_uint32"], state["uinteger"] = 1, int(raw[-1]) >> 32
        bitgen.state = state
    return values


@lru_cache(maxsize=1)
def _normal_quantiles() -> np.ndarray:
    """Standard normal at the centres of 65536 equiprobable bins (float64)."""
    return ndtri((np.arange(_LEVELS, dtype=np.float64) + 0.5) / _LEVELS)


@lru_cache(maxsize=8)
def _gaussian_lut(sigma_levels: float) -> np.ndarray:
    """u16 -> round(sigma * z) as int16 (adding round(n) to an integer equals rounding x + n)."""
    return np.rint(_normal_quantiles() * sigma_levels).clip(-32000, 32000).astype(np.int16)


@lru_cache(maxsize=8)
def _speckle_lut(sigma: float) -> np.ndarray:
    return (1.0 + sigma * _normal_quantiles()).astype(np.float32)


@lru_cache(maxsize=2)
def _poisson_table(photons: float) -> np.ndarray:
    """(256 * 65536,) uint8: output level of intensity x at uniform u, out = 255 * Poisson(x/255 * photons) / photons."""
    k_max = int(photons + 12 * math.sqrt(photons) + 30)
    k = np.arange(k_max + 1, dtype=np.float64)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(k[1:]))])
    table = np.empty((256, _LEVELS), dtype=np.uint8)
    for x in range(256):
        lam = x / 255.0 * photons
        if lam == 0:
            table[x] = 0
            continue
        cdf = np.cumsum(np.exp(k * math.log(lam) - lam - log_fact))
        # u_i = (i + 0.5) / L draws the smallest k with cdf(k) > u_i: count the u_i below each cdf(k)
        below = np.clip(np.ceil(cdf * _LEVELS - 0.5), 0, _LEVELS).astype(np.int64)
        below[-1] = _LEVELS
        counts = np.diff(np.concatenate([[0], np.maximum.accumulate(below)]))
        values = np.clip(np.rint(k * 255.0 / photons), 0, 255).astype(np.uint8)
        table[x] = np.repeat(values, counts)
    return table.reshape(-1)


# gaussian_noise ---------------------------------------------------------------------------


class GaussianParams(Params):
    sigma: float = Field(ge=0.0, le=1.0, description="standard deviation, fraction of the intensity range")


@dataclass(frozen=True)
class AdditiveNoise:
    sigma: float  # in units of the full intensity range (ImageNet-C)
    noise: np.ndarray  # (H, W, 3) int16: rounded noise in intensity levels


def sample_gaussian(rng: np.random.Generator, row: GaussianParams, ctx: FrameContext) -> AdditiveNoise:
    sigma = float(row.sigma)
    lut = _gaussian_lut(sigma * 255.0)
    return AdditiveNoise(sigma, np.take(lut, _uniform16(rng, ctx)))


def apply_additive(image: np.ndarray, p: AdditiveNoise) -> np.ndarray:
    return cv2.add(image, p.noise, dtype=cv2.CV_8U)


# shot_noise -------------------------------------------------------------------------------


class ShotParams(Params):
    photons: float = Field(ge=1.0, le=1000.0, description="photons per unit intensity (ImageNet-C's c)")


@dataclass(frozen=True)
class ShotNoise:
    photons: float  # ImageNet-C's c: photons per unit intensity
    uniform: np.ndarray  # (H, W, 3) uint16


def sample_shot(rng: np.random.Generator, row: ShotParams, ctx: FrameContext) -> ShotNoise:
    return ShotNoise(float(row.photons), _uniform16(rng, ctx))


def apply_shot(image: np.ndarray, p: ShotNoise) -> np.ndarray:
    table = _poisson_table(p.photons)
    index = image.astype(np.intp)  # intp indices: np.take skips a conversion
    np.left_shift(index, 16, out=index)
    np.bitwise_or(index, p.uniform, out=index)
    return np.take(table, index)


# salt_pepper ------------------------------------------------------------------------------


class SaltPepperParams(Params):
    amount: float = Field(ge=0.0, le=1.0, description="probability that a channel value is replaced")


@dataclass(frozen=True)
class SaltPepper:
    amount: float  # fraction of values replaced (half salt, half pepper), per channel value
    salt: np.ndarray  # (H, W, 3) uint8 255 where salt
    pepper: np.ndarray  # (H, W, 3) uint8 255 where pepper


def sample_salt_pepper(rng: np.random.Generator, row: SaltPepperParams, ctx: FrameContext) -> SaltPepper:
    amount = float(row.amount)
    u = _uniform16(rng, ctx)
    half = int(round(amount / 2 * _LEVELS))
    salt = np.less(u, half).view(np.uint8)
    pepper = np.greater_equal(u, _LEVELS - half).view(np.uint8)
    return SaltPepper(amount, np.multiply(salt, 255, dtype=np.uint8), np.multiply(pepper, 255, dtype=np.uint8))


def apply_salt_pepper(image: np.ndarray, p: SaltPepper) -> np.ndarray:
    return cv2.subtract(cv2.max(image, p.salt), p.pepper)


# speckle_noise ----------------------------------------------------------------------------


class SpeckleParams(Params):
    sigma: float = Field(ge=0.0, le=2.0, description="standard deviation of the multiplicative gain")


@dataclass(frozen=True)
class Speckle:
    sigma: float
    gain: np.ndarray  # (H, W, 3) float32: 1 + sigma * z


def sample_speckle(rng: np.random.Generator, row: SpeckleParams, ctx: FrameContext) -> Speckle:
    sigma = float(row.sigma)
    return Speckle(sigma, np.take(_speckle_lut(sigma), _uniform16(rng, ctx)))


def apply_speckle(image: np.ndarray, p: Speckle) -> np.ndarray:
    return cv2.multiply(image, p.gain, dtype=cv2.CV_8U)


FAMILIES = (
    Family("gaussian_noise", "pixel", "ssim", GaussianParams, sample_gaussian, apply_additive),
    Family("shot_noise", "pixel", "ssim", ShotParams, sample_shot, apply_shot),
    Family("salt_pepper", "pixel", "ssim", SaltPepperParams, sample_salt_pepper, apply_salt_pepper),
    Family("speckle_noise", "pixel", "ssim", SpeckleParams, sample_speckle, apply_speckle),
)
