"""One call per image or pose: `corrupt_image(image, name, severity, seed=0)` and
`corrupt_keypoints(joints_2d, name, severity, seed=0)`.

Each builds a one-view clip of the given frames and runs the engine's `corrupt_clip` on it, so a
result is what a benchmark would hold for that frame: keyed by (seed, corruption, its version,
severity, `key`, frame index), the same bytes for the same arguments on every machine, whatever was
drawn before. Input is checked first, every fault one line (`UserError`): the image must be an
HxWx3 uint8 RGB array (a float, grayscale or RGBA image says how to convert it), the name a
registered corruption ("did you mean"), the severity an integer of its table (0: unchanged).
Multi-view and clip-level corruptions (view_drop, subframe_desync) need several views or frames:
use `corrupt_bench.engine.corrupt_clip`.
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np

from corrupt_bench.data.cameras import Camera
from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.engine.base import Corruption
from corrupt_bench.engine.clip import Clip
from corrupt_bench.engine.corrupt import corrupt_clip
from corrupt_bench.engine.registry import list_corruptions
from corrupt_bench.errors import UserError, short_repr

API_SUBJECT = "api"  # the subject and camera of an API call's key (a benchmark's are real ids)
API_CAMERA = "image"
MAX_SEED = 2**63 - 1


def _corruption(name: Any, severity: Any, modalities: tuple[str, ...], use: str) -> Corruption:
    if not isinstance(name, str):
        raise UserError(f"name must be a corruption name such as 'gaussian_noise' (a str), got {short_repr(name)}; call {use}")
    known = {c.name: c for c in list_corruptions()}
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown corruption {name!r}; {hint}known: {', '.join(sorted(known))}")
    corruption = known[name]
    if corruption.modality not in modalities or corruption.family.clip_level is not None:
        if corruption.modality == "multi-view" or corruption.family.clip_level is not None:
            where = "corrupt_bench.engine.corrupt_clip on a clip of several views"
        else:
            where = "corrupt_keypoints" if corruption.modality == "keypoint" else "corrupt_image"
        raise UserError(f"{name!r} is a {corruption.modality} corruption, not one for {use.split('(')[0]}: use {where}")
    allowed = sorted(int(s) for s in corruption.table)
    if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, (int, np.integer)) or (severity != 0 and severity not in allowed):
        raise UserError(f"severity of {name!r} must be an integer 0..{max(allowed)} (0: unchanged), got {short_repr(severity)}")
    return corruption


def _seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"seed must be an integer 0..2^63-1, got {short_repr(seed)}")
    return int(seed)


def _frame(frame_index: Any, fps: Any) -> tuple[int, float]:
    if isinstance(frame_index, (bool, np.bool_)) or not isinstance(frame_index, (int, np.integer)) or frame_index < 0:
        raise UserError(f"frame_index must be a non-negative integer, got {short_repr(frame_index)}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) or not (0 < float(fps) < 10_000):
        raise UserError(f"fps must be a positive number, got {short_repr(fps)}")
    return int(frame_index), float(fps)


def check_image(image: Any) -> np.ndarray:
    """The image as given when it is an HxWx3 uint8 array; else a one-line UserError saying how to convert it."""
    if not isinstance(image, np.ndarray):
        raise UserError(f"image must be a numpy array (H, W, 3) uint8 RGB, got {type(image).__name__}")
    shape = "x".join(map(str, image.shape))
    if image.ndim == 2:
        raise UserError(f"image is grayscale ({shape}); give H x W x 3 uint8 RGB, e.g. np.repeat(image[..., None], 3, axis=2)")
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise UserError(f"image must be H x W x 3 (RGB), got shape {shape}")
    if image.shape[2] != 3:
        fix = "drop the alpha channel: image[..., :3]" if image.shape[2] == 4 else "np.repeat(image, 3, axis=2)"
        raise UserError(f"image has {image.shape[2]} channel(s) ({shape}); give H x W x 3 uint8 RGB: {fix}")
    if image.dtype != np.uint8:
        fix = "(image * 255).round().astype(np.uint8) for values in [0, 1]" if image.dtype.kind == "f" else "image.astype(np.uint8) after checking the range 0..255"
        raise UserError(f"image is {image.dtype}, not uint8; convert it: {fix}")
    return image


def _box(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value, dtype=np.float64) if not isinstance(value, str) else None
    if array is None or array.shape != shape or not np.all(np.isfinite(array)):
        raise UserError(f"{what} must be finite numbers of shape {shape}, got {short_repr(value)}")
    return array


def _camera(width: int, height: int) -> Camera:
    """A pinhole camera of the image's size: the engine reads only its id and size here."""
    f = float(max(width, height))
    return Camera(API_SUBJECT, API_CAMERA, (f, f), (width / 2, height / 2), (0.0, 0.0, 0.0), (0.0, 0.0),
                  int(width), int(height), (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0))  # fmt: skip


def _clip(key: str, fps: float, frames: np.ndarray, camera: Camera, images, joints: np.ndarray, boxes: np.ndarray, n_frames: int) -> Clip:
    t_n = len(frames)
    return Clip(
        subject=API_SUBJECT, sequence=key, fps=fps, frame_indices=frames, cameras=(camera,), images=images,
        joints_2d=joints, joints_3d_world=np.zeros((t_n, N_JOINTS, 3)), boxes=boxes, n_frames=n_frames,
    )  # fmt: skip


def corrupt_image(
    image: np.ndarray,
    name: str,
    severity: int,
    seed: int = 0,
    *,
    person_box: Any = None,
    joints_2d: Any = None,
    frame_index: int = 0,
    fps: float = 50.0,
    key: str = "image",
    occluder_bank: Any = None,
) -> np.ndarray:
    """`image` (H x W x 3 uint8 RGB) corrupted by `name` at `severity`: a new array, the same bytes for
    the same arguments. `person_box` (x0, y0, x1, y1 px) scales spatial corruptions to the person and
    places occluders on it (default: the whole image); `joints_2d` (17 x 2 px) is only read by
    occluders. `frame_index` and `fps` place the frame in time (temporal corruptions); `key` names the
    image in the random key, so two images with the same seed get different noise when their keys
    differ. `occluder_bank`: an `engine.voc.OccluderBank` for voc_occluder (None: the built-in one)."""
    image = check_image(image)
    corruption = _corruption(name, severity, ("pixel", "temporal"), "corrupt_image(image, name, severity, seed=0)")
    seed, (frame, rate) = _seed(seed), _frame(frame_index, fps)
    if not isinstance(key, str) or not key:
        raise UserError(f"key must be a non-empty str, got {short_repr(key)}")
    h, w = image.shape[:2]
    box = _box(person_box, "person_box", (4,))
    joints = _box(joints_2d, "joints_2d", (N_JOINTS, 2))
    boxes = (np.array([0.0, 0.0, w, h]) if box is None else box).reshape(1, 1, 4)
    joints = (np.full((N_JOINTS, 2), np.nan) if joints is None else joints).reshape(1, 1, N_JOINTS, 2)
    clip = _clip(key, rate, np.array([frame]), _camera(w, h), image[None, None], joints, boxes, frame + 1)
    corrupted, _ = corrupt_clip(clip, corruption.name, int(severity), seed, occluder_bank=occluder_bank, corruption=corruption)
    return np.array(corrupted.images[0, 0], dtype=np.uint8)


def corrupt_keypoints(
    joints_2d: Any,
    name: str,
    severity: int,
    seed: int = 0,
    *,
    image_width: int = 1000,
    first_frame: int = 0,
    fps: float = 50.0,
    key: str = "keypoints",
) -> tuple[np.ndarray, np.ndarray]:
    """2D keypoints (17 x 2, or T x 17 x 2 for T consecutive frames from `first_frame`, px) corrupted by
    a keypoint corruption (keypoint_jitter, joint_dropout, ...): (keypoints, confidences (..., 17)),
    new arrays, the same for the same arguments. Noise is stated in px of a 1000 px wide frame:
    `image_width` is the width of the frame the keypoints are in."""
    corruption = _corruption(name, severity, ("keypoint",), "corrupt_keypoints(joints_2d, name, severity, seed=0)")
    array = np.asarray(joints_2d) if isinstance(joints_2d, (np.ndarray, list, tuple)) else None
    if array is None or array.dtype.kind not in "fiu" or array.shape[-2:] != (N_JOINTS, 2) or array.ndim not in (2, 3) or array.size == 0:
        got = f"shape {array.shape} {array.dtype}" if array is not None else type(joints_2d).__name__
        raise UserError(f"joints_2d must be numbers of shape (17, 2) or (T, 17, 2) px, got {got}")
    if not np.all(np.isfinite(array)):
        raise UserError("joints_2d holds NaN or infinite values")
    if isinstance(image_width, (bool, np.bool_)) or not isinstance(image_width, (int, np.integer)) or image_width < 1:
        raise UserError(f"image_width must be a positive integer (px), got {short_repr(image_width)}")
    if not isinstance(key, str) or not key:
        raise UserError(f"key must be a non-empty str, got {short_repr(key)}")
    seed, (first, rate) = _seed(seed), _frame(first_frame, fps)
    single = array.ndim == 2
    joints = np.asarray(array, dtype=np.float64).reshape(-1, N_JOINTS, 2)
    t_n = len(joints)
    frames = np.arange(first, first + t_n)
    boxes = np.concatenate([joints.min(axis=1), joints.max(axis=1)], axis=-1)[None]
    camera = _camera(int(image_width), int(image_width))
    clip = _clip(key, rate, frames, camera, None, joints[None], boxes, first + t_n)
    _, record = corrupt_clip(clip, corruption.name, int(severity), seed, corruption=corruption)
    points = np.array(record.joints_2d[0], dtype=np.float64)
    confidence = np.ones((t_n, N_JOINTS), dtype=np.float32) if record.confidence is None else np.array(record.confidence[0])
    return (points[0], confidence[0]) if single else (points, confidence)
