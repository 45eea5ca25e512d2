"""Occlusions: block_dropout (missing data blocks, DA-3DPE), random_erase (Zhong et al. style
rectangles up to the whole person box), voc_occluder (Pascal VOC objects after Sarandi et al. 2018,
reimplemented from the paper's description) and temporal_occlusion (an occluder that persists over
spans of frames, Occluded Human3.6M).

Sizes and positions are relative to the person box of the frame. Every family records which of
the 17 joints it hides (a joint is hidden when it lies under the occluder, alpha > 0.5).

Parameter bounds (shipped tables in brackets): block_dropout count 0..64 [1..6], size 0..1 of the
box's long side [0.15..0.35]; random_erase area 0..1 of the box [0.2..1]; voc_occluder count 0..64
[1..6], scale_min <= scale_max in 0..1.5 of the box's long side [0.2..0.8]; temporal_occlusion
window_s 0.1..600 s [3.2], duration_s 0..window_s [0.32..1.6], cover 0..1 of the box [0.3..1],
kind erase or voc.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.engine.base import Family, FrameContext
from corrupt_bench.engine.params import Params

MAX_OCCLUDERS = 64  # per frame: each one is drawn, resized and pasted


class BlocksParams(Params):
    count: int = Field(ge=0, le=MAX_OCCLUDERS, description="blocks per frame")
    size: float = Field(ge=0.0, le=1.0, description="block side, fraction of the box's long side")


class EraseParams(Params):
    area: float = Field(ge=0.0, le=1.0, description="erased area, fraction of the box's area")


class OverlayParams(Params):
    count: int = Field(ge=0, le=MAX_OCCLUDERS, description="objects per frame")
    scale_min: float = Field(ge=0.0, le=1.5, description="object long side, fraction of the box's long side")
    scale_max: float = Field(ge=0.0, le=1.5, description="object long side, fraction of the box's long side")
    ordered = (("scale_min", "scale_max"),)

    def uses_occluder_bank(self) -> bool:
        return True


class TemporalParams(Params):
    window_s: float = Field(ge=0.1, le=600.0, description="one occlusion per window of this many seconds")
    duration_s: float = Field(ge=0.0, le=600.0, description="how long the occluder stays, seconds")
    cover: float = Field(ge=0.0, le=1.0, description="occluder area, fraction of the box's area")
    kind: Literal["erase", "voc"] = Field(description="flat colour rectangle, or an object of the occluder bank")
    ordered = (("duration_s", "window_s"),)

    def uses_occluder_bank(self) -> bool:
        return self.kind == "voc"


def _joints_in_rects(rects: np.ndarray, ctx: FrameContext) -> np.ndarray:
    hidden = np.zeros(N_JOINTS, dtype=bool)
    if ctx.joints_2d is None or len(rects) == 0:
        return hidden
    x, y = ctx.joints_2d[:, 0], ctx.joints_2d[:, 1]
    for x0, y0, x1, y1 in rects:
        hidden |= (x >= x0 - 0.5) & (x < x1 - 0.5) & (y >= y0 - 0.5) & (y < y1 - 0.5)
    return hidden


def _clip_rect(x0: float, y0: float, x1: float, y1: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel rectangle [x0, x1) x [y0, y1) of every pixel (centre at integers) the continuous rectangle touches."""
    h, w = shape
    return (
        min(max(math.floor(x0 + 0.5), 0), w), min(max(math.floor(y0 + 0.5), 0), h),
        min(max(math.ceil(x1 + 0.5), 0), w), min(max(math.ceil(y1 + 0.5), 0), h),
    )  # fmt: skip


# block_dropout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Blocks:
    rects: np.ndarray  # (n, 4) int x0, y0, x1, y1 in image px (pixel [x0, x1) x [y0, y1))
    fill: int = 0


def sample_blocks(rng: np.random.Generator, row: BlocksParams, ctx: FrameContext) -> Blocks:
    bx0, by0, bx1, by1 = ctx.box_or_frame()
    side = float(row.size) * max(bx1 - bx0, by1 - by0)
    rects = []
    for _ in range(int(row.count)):
        cx, cy = rng.uniform(bx0, bx1), rng.uniform(by0, by1)
        rects.append(_clip_rect(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, ctx.image_shape))
    return Blocks(np.array(rects, dtype=np.int64).reshape(-1, 4))


def apply_blocks(image: np.ndarray, p: Blocks) -> np.ndarray:
    out = image.copy()
    for x0, y0, x1, y1 in p.rects:
        out[y0:y1, x0:x1] = p.fill
    return out


def occlusion_rects(p: Any, ctx: FrameContext) -> np.ndarray:
    return _joints_in_rects(p.rects, ctx)


# random_erase ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erase:
    rects: np.ndarray  # (1, 4) int
    area: float  # fraction of the person box
    aspect: float
    noise: np.ndarray  # (h, w, 3) uint8 uniform noise filling the rectangle


def erase_draws(rng: np.random.Generator) -> tuple[float, float, float]:
    """Aspect (log-uniform in [0.3, 3.3]) and relative position (fx, fy) of an erased rectangle."""
    aspect = math.exp(rng.uniform(math.log(0.3), math.log(1 / 0.3)))
    return aspect, float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.0, 1.0))


def erase_rect(area: float, aspect: float, fx: float, fy: float, ctx: FrameContext) -> tuple[int, int, int, int]:
    """A rectangle of `area` x the box area with this aspect, inside the box at relative position (fx, fy)."""
    bx0, by0, bx1, by1 = ctx.box_or_frame()
    bw, bh = bx1 - bx0, by1 - by0
    target = area * bw * bh
    w, h = math.sqrt(target * aspect), math.sqrt(target / aspect)
    if w > bw:
        w, h = bw, min(bh, target / bw)
    if h > bh:
        w, h = min(bw, target / bh), bh
    x0, y0 = bx0 + fx * (bw - w), by0 + fy * (bh - h)
    return _clip_rect(x0, y0, x0 + w, y0 + h, ctx.image_shape)


def sample_erase(rng: np.random.Generator, row: EraseParams, ctx: FrameContext) -> Erase:
    aspect, fx, fy = erase_draws(rng)
    rect = erase_rect(float(row.area), aspect, fx, fy, ctx)
    x0, y0, x1, y1 = rect
    noise = rng.integers(0, 256, size=(y1 - y0, x1 - x0, 3), dtype=np.uint8)
    return Erase(np.array([rect], dtype=np.int64), float(row.area), aspect, noise)


def apply_erase(image: np.ndarray, p: Erase) -> np.ndarray:
    out = image.copy()
    x0, y0, x1, y1 = p.rects[0]
    out[y0:y1, x0:x1] = p.noise
    return out


# voc_occluder ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    index: int  # occluder in the bank
    x0: int  # top-left corner in image px (may be negative: the patch is clipped)
    y0: int
    scale: float  # occluder long side / person box long side
    flip: bool


@dataclass(frozen=True)
class Overlay:
    bank: str  # digest of the occluder bank
    placements: tuple[Placement, ...]
    patches: tuple[np.ndarray, ...]  # resized (flipped) RGBA patches, one per placement


def _bank(ctx: FrameContext):
    if ctx.occluder_bank is not None:
        return ctx.occluder_bank
    from corrupt_bench.engine.voc import builtin_bank

    return builtin_bank()


def place_occluders(
    rng: np.random.Generator, count: int, scale_min: float, scale_max: float, ctx: FrameContext
) -> Overlay:
    bank = _bank(ctx)
    bx0, by0, bx1, by1 = ctx.box_or_frame()
    long_side = max(bx1 - bx0, by1 - by0)
    placements, patches = [], []
    for _ in range(count):
        index = int(rng.integers(0, len(bank)))
        scale = float(rng.uniform(scale_min, scale_max))
        flip = bool(rng.integers(0, 2))
        cx, cy = rng.uniform(bx0, bx1), rng.uniform(by0, by1)
        occ = bank.occluders[index]
        f = scale * long_side / max(occ.shape[:2])
        w, h = max(1, int(round(occ.shape[1] * f))), max(1, int(round(occ.shape[0] * f)))
        patch = cv2.resize(occ, (w, h), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        if flip:
            patch = np.ascontiguousarray(patch[:, ::-1])
        x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
        placements.append(Placement(index, x0, y0, scale, flip))
        patches.append(patch)
    return Overlay(bank.digest, tuple(placements), tuple(patches))


def sample_overlay(rng: np.random.Generator, row: OverlayParams, ctx: FrameContext) -> Overlay:
    return place_occluders(rng, int(row.count), float(row.scale_min), float(row.scale_max), ctx)


def _visible_window(p: Placement, patch: np.ndarray, shape: tuple[int, ...]):
    h, w = patch.shape[:2]
    ix0, iy0 = max(p.x0, 0), max(p.y0, 0)
    ix1, iy1 = min(p.x0 + w, shape[1]), min(p.y0 + h, shape[0])
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    return (iy0, iy1, ix0, ix1), (iy0 - p.y0, iy1 - p.y0, ix0 - p.x0, ix1 - p.x0)


def apply_overlay(image: np.ndarray, p: Overlay) -> np.ndarray:
    out = image.copy()
    for place, patch in zip(p.placements, p.patches, strict=True):
        win = _visible_window(place, patch, out.shape)
        if win is None:
            continue
        (y0, y1, x0, x1), (py0, py1, px0, px1) = win
        rgba = patch[py0:py1, px0:px1]
        alpha = rgba[..., 3:4].astype(np.float32) * np.float32(1 / 255)
        bg = out[y0:y1, x0:x1].astype(np.float32)
        blended = bg + (rgba[..., :3].astype(np.float32) - bg) * alpha
        out[y0:y1, x0:x1] = np.rint(blended).astype(np.uint8)
    return out


def occlusion_overlay(p: Overlay, ctx: FrameContext) -> np.ndarray:
    """Joints under the occluders: combined alpha at the joint's pixel above 0.5."""
    if ctx.joints_2d is None:
        return np.zeros(N_JOINTS, dtype=bool)
    visible = np.ones(N_JOINTS)
    h, w = ctx.image_shape
    finite = np.all(np.isfinite(ctx.joints_2d), axis=1)  # a joint without a position (no labels) is never hidden
    px = np.rint(np.where(finite[:, None], ctx.joints_2d, -1.0)).astype(np.int64)
    for place, patch in zip(p.placements, p.patches, strict=True):
        lx, ly = px[:, 0] - place.x0, px[:, 1] - place.y0
        inside = (lx >= 0) & (ly >= 0) & (lx < patch.shape[1]) & (ly < patch.shape[0])
        inside &= (px[:, 0] >= 0) & (px[:, 1] >= 0) & (px[:, 0] < w) & (px[:, 1] < h)
        alpha = np.zeros(N_JOINTS)
        alpha[inside] = patch[ly[inside], lx[inside], 3] / 255.0
        visible *= 1.0 - alpha
    return visible < 0.5


# temporal_occlusion ------------------------------------------------------------------------


@dataclass(frozen=True)
class SpanOcclusion:
    window: int  # index of the window (span) of `window_s` seconds
    active: bool
    start_s: float  # occlusion start within the window
    duration_s: float
    kind: str  # "erase" (flat colour rectangle) or "voc" (an object of the occluder bank)
    rects: np.ndarray  # (0 or 1, 4) int: the occluder's rectangle when active
    colour: tuple[int, int, int]
    overlay: Overlay | None = None  # kind "voc": the object, resized to the rectangle


def sample_temporal(rng: np.random.Generator, row: TemporalParams, ctx: FrameContext) -> SpanOcclusion:
    """Per window of `window_s` seconds one occlusion of `duration_s`; its start, shape, position,
    colour or object come from the window's key, so every frame of the window agrees."""
    if ctx.key is None:
        raise ValueError("temporal_occlusion needs FrameContext.key (spans are keyed)")
    window_s, duration, kind = float(row.window_s), float(row.duration_s), str(row.kind)
    window = int(math.floor(ctx.time / window_s + 1e-9))
    start_u, colour, aspect, fx, fy, object_u, flip = _window_draws(ctx.key.span(window, "window"))
    start = start_u * max(window_s - duration, 0.0)
    local = ctx.time - window * window_s
    active = start - 1e-9 <= local < start + duration - 1e-9
    overlay = None
    if kind == "voc":
        bank = _bank(ctx)
        index = min(int(object_u * len(bank)), len(bank) - 1)
        occ = bank.occluders[index]
        aspect = occ.shape[1] / occ.shape[0]  # the object keeps its own aspect
    rect = erase_rect(float(row.cover), aspect, fx, fy, ctx)
    if kind == "voc" and active:
        x0, y0, x1, y1 = rect
        w, h = max(x1 - x0, 1), max(y1 - y0, 1)
        patch = cv2.resize(occ, (w, h), interpolation=cv2.INTER_AREA if w < occ.shape[1] else cv2.INTER_LINEAR)
        if flip:
            patch = np.ascontiguousarray(patch[:, ::-1])
        bx0, by0, bx1, by1 = ctx.box_or_frame()
        scale = max(w, h) / max(bx1 - bx0, by1 - by0)
        overlay = Overlay(bank.digest, (Placement(index, x0, y0, float(scale), bool(flip)),), (patch,))
    rects = np.array([rect] if active else [], dtype=np.int64).reshape(-1, 4)
    return SpanOcclusion(window, bool(active), start, duration, kind, rects, colour, overlay)


@lru_cache(maxsize=1024)
def _window_draws(key) -> tuple[float, tuple[int, int, int], float, float, float, float, bool]:
    span = key.generator()
    start_u = float(span.uniform(0.0, 1.0))
    colour = tuple(int(c) for c in span.integers(0, 256, size=3))
    aspect, fx, fy = erase_draws(span)
    return start_u, colour, aspect, fx, fy, float(span.uniform(0.0, 1.0)), bool(span.integers(0, 2))


def apply_temporal(image: np.ndarray, p: SpanOcclusion) -> np.ndarray:
    if p.overlay is not None:
        return apply_overlay(image, p.overlay)
    out = image.copy()
    for x0, y0, x1, y1 in p.rects:
        out[y0:y1, x0:x1] = p.colour
    return out


def occlusion_temporal(p: SpanOcclusion, ctx: FrameContext) -> np.ndarray:
    if p.overlay is not None:
        return occlusion_overlay(p.overlay, ctx)
    return _joints_in_rects(p.rects, ctx)


FAMILIES = (
    Family("block_dropout", "pixel", "occlusion", BlocksParams, sample_blocks, apply_blocks, occlusion_rects),
    Family("random_erase", "pixel", "occlusion", EraseParams, sample_erase, apply_erase, occlusion_rects),
    Family(
        "voc_occluder", "pixel", "occlusion", OverlayParams,
        sample_overlay, apply_overlay, occlusion_overlay,
    ),  # fmt: skip
    Family(
        "temporal_occlusion", "temporal", "occlusion", TemporalParams,
        sample_temporal, apply_temporal, occlusion_temporal,
    ),  # fmt: skip
)
