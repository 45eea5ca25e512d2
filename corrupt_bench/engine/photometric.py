"""Photometric and codec corruptions after ImageNet-C: brightness, contrast, jpeg_compression, pixelate.

All are deterministic (no random draw). Brightness shifts HSV value exactly (rgb * new_v / v);
contrast scales about the per-channel image mean (one affine map per channel); JPEG goes through OpenCV's
libjpeg (digests hold for the OpenCV build recorded with them); pixelate block sizes are stated
for a 224 px person and scaled by `FrameContext.spatial_scale()`.

Parameter bounds (shipped tables in brackets): brightness delta 0..1 of the HSV value [0.1..0.5];
contrast factor 0..1 [0.05..0.4]; JPEG quality an integer 1..100 [7..25]; pixelate factor in
(0, 1] [0.25..0.6].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import Field

from corrupt_bench.engine.base import Family, FrameContext
from corrupt_bench.engine.params import Params


class BrightnessParams(Params):
    delta: float = Field(ge=0.0, le=1.0, description="added to the HSV value in [0, 1]")


class ContrastParams(Params):
    factor: float = Field(ge=0.0, le=1.0, description="scale of the deviations from the channel mean")


class JpegParams(Params):
    quality: int = Field(ge=1, le=100, description="libjpeg quality")


class PixelateParams(Params):
    factor: float = Field(gt=0.0, le=1.0, description="resize factor at a 224-px person")


@dataclass(frozen=True)
class Brightness:
    delta: float  # added to HSV value in [0, 1]


def sample_brightness(rng: np.random.Generator, row: BrightnessParams, ctx: FrameContext) -> Brightness:
    return Brightness(float(row.delta))


def apply_brightness(image: np.ndarray, p: Brightness) -> np.ndarray:
    levels = np.arange(256, dtype=np.float64)
    new_v = np.minimum(levels + p.delta * 255.0, 255.0)
    ratio = np.divide(new_v, levels, out=np.zeros(256), where=levels > 0).astype(np.float32)
    r, g, b = cv2.split(image)
    v = cv2.max(cv2.max(r, g), b)
    gain = cv2.LUT(v, ratio.reshape(1, 256))
    black = cv2.LUT(v, np.array([round(float(new_v[0]))] + [0] * 255, dtype=np.uint8).reshape(1, 256))
    channels = [cv2.add(cv2.multiply(ch, gain, dtype=cv2.CV_8U), black) for ch in (r, g, b)]
    return cv2.merge(channels)


@dataclass(frozen=True)
class Contrast:
    factor: float


def sample_contrast(rng: np.random.Generator, row: ContrastParams, ctx: FrameContext) -> Contrast:
    return Contrast(float(row.factor))


def apply_contrast(image: np.ndarray, p: Contrast) -> np.ndarray:
    # sums of uint8 values are integers below 2^53, exact in any summation order
    channels = image.shape[-1]
    means = np.array(cv2.sumElems(image)[:channels]) / (image.shape[0] * image.shape[1])
    # out_c = factor * x_c + (1 - factor) * mean_c, rounded and saturated once (cv2.transform)
    matrix = np.zeros((channels, channels + 1))
    matrix[np.arange(channels), np.arange(channels)] = p.factor
    matrix[:, channels] = (1.0 - p.factor) * means
    return cv2.transform(image, matrix)


@dataclass(frozen=True)
class Jpeg:
    quality: int


def sample_jpeg(rng: np.random.Generator, row: JpegParams, ctx: FrameContext) -> Jpeg:
    return Jpeg(int(row.quality))


def apply_jpeg(image: np.ndarray, p: Jpeg) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, p.quality])
    if not ok:
        raise RuntimeError("OpenCV failed to encode JPEG")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class Pixelate:
    factor: float  # ImageNet-C's resize factor at 224 px
    size: tuple[int, int]  # (w, h) of the low-resolution image


def pixelated_side(side: int, factor: float) -> int:
    """The reduced side as ImageNet-C computes it, `int(224 * c)`: truncated, not rounded (89 px, not 90,
    for c = 0.4 at 224 px; version 1 rounded). The 1e-9 keeps a product that is a whole number in exact
    arithmetic (a 448-px person at 0.5) from falling one pixel short through float rounding."""
    return max(1, int(side * factor + 1e-9))


def sample_pixelate(rng: np.random.Generator, row: PixelateParams, ctx: FrameContext) -> Pixelate:
    h, w = ctx.image_shape
    f = min(1.0, float(row.factor) / ctx.spatial_scale())
    return Pixelate(float(row.factor), (pixelated_side(w, f), pixelated_side(h, f)))


def apply_pixelate(image: np.ndarray, p: Pixelate) -> np.ndarray:
    h, w = image.shape[:2]
    if p.size == (w, h):
        return image.copy()
    small = cv2.resize(image, p.size, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)


FAMILIES = (
    Family("brightness", "pixel", "ssim", BrightnessParams, sample_brightness, apply_brightness, stochastic=False),
    Family("contrast", "pixel", "ssim", ContrastParams, sample_contrast, apply_contrast, stochastic=False),
    Family("jpeg_compression", "pixel", "ssim", JpegParams, sample_jpeg, apply_jpeg, stochastic=False),
    Family("pixelate", "pixel", "ssim", PixelateParams, sample_pixelate, apply_pixelate, stochastic=False),
)
