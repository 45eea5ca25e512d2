"""Person boxes and square crops: one geometry shared by the generator, the detector and image models.

A crop box is (x0, y0, x1, y1) in full-frame pixels (pixel centres at integers). It maps onto a
`size` x `size` output by the affine map that sends the edge x0 - 0.5 to the output edge -0.5 and
scales by size / (x1 - x0), so crops, labels and intrinsics all agree.
"""

from __future__ import annotations

import numpy as np

from corrupt_bench.data.cameras import Camera


def person_box(joints_2d: np.ndarray, margin: float = 0.15) -> np.ndarray:
    """Tight box of (..., 17, 2) joints grown by `margin` of its size on every side: (..., 4) x0, y0, x1, y1."""
    lo = np.nanmin(joints_2d, axis=-2)
    hi = np.nanmax(joints_2d, axis=-2)
    pad = (hi - lo) * margin
    return np.concatenate([lo - pad, hi + pad], axis=-1)


def square_box(box: np.ndarray, min_side: float = 16.0) -> np.ndarray:
    """The square box with the same centre as `box` and side max(w, h) (at least `min_side`)."""
    box = np.asarray(box, dtype=np.float64)
    centre = (box[..., :2] + box[..., 2:]) / 2
    side = np.maximum(np.max(box[..., 2:] - box[..., :2], axis=-1, keepdims=True), min_side)
    return np.concatenate([centre - side / 2, centre + side / 2], axis=-1)


def crop_affine(crop: np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix mapping full-frame pixels into a size x size crop of `crop` (pixel centres aligned)."""
    x0, y0, x1, y1 = (float(v) for v in crop)
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    # continuous edges: full-frame edge x0 - 0.5 maps to crop edge -0.5
    return np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5]])


def to_crop(points: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) full-frame px -> crop px."""
    a = crop_affine(crop, size)
    return points @ a[:, :2].T + a[:, 2]


def from_crop(points: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) crop px -> full-frame px."""
    a = crop_affine(crop, size)
    return (points - a[:, 2]) / np.diag(a[:, :2])


def crop_image(image: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """Cut `crop` out of `image` and resize to size x size (bilinear; black outside the frame)."""
    import cv2

    return cv2.warpAffine(
        image, crop_affine(crop, size), (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def crop_intrinsics(camera: Camera, crop: np.ndarray, size: int) -> np.ndarray:
    """3x3 intrinsics of the crop (distortion unchanged; it acts before the affine crop map)."""
    a = crop_affine(crop, size)
    k = camera.K.copy()
    return np.vstack([a @ k, [0.0, 0.0, 1.0]])
