"""Would contrast and brightness gain from lookup tables? Checks that a table built with the kernel's
own arithmetic gives its bytes, then times the table against the kernel (single thread, CPU time).

    python benchmarks/photometric_lut.py [--sizes 256 1000] [--images 200]

Contrast: out_c = round(factor * x_c + (1 - factor) * mean_c), saturated (one cv2.transform). Its table
per image is cv2.transform of a 0..255 ramp with the image's matrix, applied with cv2.LUT. Checked for
every shipped factor on images that hold all 256 values in every channel, at shuffled positions and
widths, with their means spread over 0..255. Brightness: out_c = sat(round(c * gain(v))) + black(v),
v = max(r, g, b): a 256 x 256 table over (v, c) built with the same OpenCV calls, applied with
np.take; checked on all 65,536 (v, c) pairs per shipped delta, then on random images.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from corrupt_bench.engine import get_corruption
from corrupt_bench.engine.photometric import Brightness, Contrast, apply_brightness, apply_contrast

RAMP = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # (1, 256, 3)


def contrast_lut(image: np.ndarray, factor: float) -> np.ndarray:
    means = np.array(cv2.sumElems(image)[:3]) / (image.shape[0] * image.shape[1])
    matrix = np.zeros((3, 4))
    matrix[np.arange(3), np.arange(3)] = factor
    matrix[:, 3] = (1.0 - factor) * means
    return cv2.LUT(image, cv2.transform(RAMP, matrix))


def brightness_table(delta: float) -> np.ndarray:
    """(256 * 256,) uint8: the output of channel value c in a pixel of value v, at index v * 256 + c."""
    levels = np.arange(256, dtype=np.float64)
    new_v = np.minimum(levels + delta * 255.0, 255.0)
    ratio = np.divide(new_v, levels, out=np.zeros(256), where=levels > 0).astype(np.float32)
    v = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 256, axis=1)
    c = np.repeat(np.arange(256, dtype=np.uint8)[None, :], 256, axis=0)
    gain = cv2.LUT(v, ratio.reshape(1, 256))
    black = cv2.LUT(v, np.array([round(float(new_v[0]))] + [0] * 255, dtype=np.uint8).reshape(1, 256))
    return cv2.add(cv2.multiply(c, gain, dtype=cv2.CV_8U), black).reshape(-1)


def brightness_lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    r, g, b = cv2.split(image)
    v = cv2.max(cv2.max(r, g), b)
    return np.take(table, (v.astype(np.intp) << 8)[..., None] | image)


def all_values_image(rng: np.random.Generator, width: int, level: int) -> np.ndarray:
    """Every value 0..255 in every channel (shuffled), plus pixels near `level` to move the mean."""
    values = np.stack([rng.permutation(256) for _ in range(3)], axis=-1).astype(np.uint8)
    extra = 4 * width + (-(256 + 4 * width)) % width  # whole rows
    fill = np.clip(rng.normal(level, 20, (extra, 3)), 0, 255).astype(np.uint8)
    pixels = np.concatenate([values, fill])
    return pixels[rng.permutation(len(pixels))].reshape(-1, width, 3)


def check(images: int) -> None:
    rng = np.random.default_rng(0)
    factors = sorted({float(row.factor) for row in get_corruption("contrast").table.values()})
    deltas = sorted({float(row.delta) for row in get_corruption("brightness").table.values()})
    mismatched = 0
    for factor in factors:
        for _ in range(images):
            image = all_values_image(rng, int(rng.integers(1, 97)), int(rng.integers(0, 256)))
            assert len(np.unique(image[..., 0])) == 256
            mismatched += not np.array_equal(apply_contrast(image, Contrast(factor)), contrast_lut(image, factor))
    print(f"contrast: factors {factors}, {images} images each holding all 256 values per channel: "
          f"{mismatched} images differ")  # fmt: skip
    mismatched = 0
    for delta in deltas:
        table = brightness_table(delta)
        v, c = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
        keep = c <= v  # a channel never exceeds the pixel's value
        pixels = np.stack([v[keep], c[keep], np.zeros(keep.sum(), int)], axis=-1).astype(np.uint8)[None]
        mismatched += not np.array_equal(apply_brightness(pixels, Brightness(delta)), brightness_lut(pixels, table))
        for _ in range(images // 10):
            image = rng.integers(0, 256, (int(rng.integers(1, 40)), int(rng.integers(1, 97)), 3), dtype=np.uint8)
            mismatched += not np.array_equal(apply_brightness(image, Brightness(delta)), brightness_lut(image, table))
    print(f"brightness: deltas {deltas}, all (v, c) pairs and {images // 10} random images each: {mismatched} differ")


def cpu_ms(fn, repeats: int = 20, rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(repeats):
            fn()
        times.append((time.process_time() - start) / repeats * 1000)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1000])
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    check(args.images)
    rng = np.random.default_rng(1)
    table = brightness_table(0.3)
    print("\n| size | contrast cv2.transform ms | contrast table (cv2.LUT) ms | brightness OpenCV ms | brightness table (np.take) ms |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        image = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 3)
        row = [
            cpu_ms(lambda image=image: apply_contrast(image, Contrast(0.2))),
            cpu_ms(lambda image=image: contrast_lut(image, 0.2)),
            cpu_ms(lambda image=image: apply_brightness(image, Brightness(0.3))),
            cpu_ms(lambda image=image: brightness_lut(image, table)),
        ]
        print(f"| {size} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    print(f"\nOpenCV {cv2.__version__}, numpy {np.__version__}; CPU time, median of 7 x 20 calls")


if __name__ == "__main__":
    main()
