"""Multi-view corruptions: view_drop (DA-3DPE's missing viewpoints) and subframe_desync (per-view
time offsets, weakly synchronised multi-view; SyncDiffPose's whole-frame shift at the top).

view_drop: each view is missing for the whole sequence with probability `p_sequence` (one draw
per camera and sequence) and for spans of `span_s` seconds with probability `p_span` (one draw per
camera and span). A dropped view's images are black and its `view_valid` is False. When every
view of the clip would be missing at a frame, the view with the largest margin stays (so the
result depends on which views the clip holds, never on which frames it holds).

subframe_desync: each view gets one time offset for the sequence, uniform in +-`max_offset`
frames plus, when `whole_frame_shift` is 1, a whole frame of random sign. The view's image at
frame f shows time f + offset: interpolated with Farneback optical flow between the two clip
frames around it (frames at an integer offset are copied). Interpolation is between the clip's
consecutive frames, so give this corruption the clip at frame step 1 (with a step k > 1 the flow
spans k source frames); at the clip's first and last frame the nearest frame is used when the
shifted time falls outside the clip, so overlap pieces by one frame. 2D labels are exact: mocap
interpolated linearly at the shifted time, projected with the view's camera and mapped by the
clip's crop affine. Offsets are in source frames (50 fps for Human3.6M).

Parameter bounds (shipped tables in brackets): view_drop span_s 0.1..600 s [2], p_span and
p_sequence probabilities 0..1 [0..0.25]; subframe_desync max_offset 0..2 frames [0.2..1],
whole_frame_shift the integer 0 or 1 [0, 1] (so a view moves by at most 3 source frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
from pydantic import Field

from corrupt_bench.data.cameras import project_world
from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.engine.base import Corruption, Family, FrameContext, params_to_json
from corrupt_bench.engine.clip import Clip, CorruptionRecord
from corrupt_bench.engine.params import Params
from corrupt_bench.engine.per_frame import apply_per_frame, frame_context, frame_key
from corrupt_bench.engine.rng import RngKey
from corrupt_bench.errors import UserError

# view_drop ---------------------------------------------------------------------------------


class ViewDropParams(Params):
    span_s: float = Field(ge=0.1, le=600.0, description="length of a drop span, seconds")
    p_span: float = Field(ge=0.0, le=1.0, description="probability that a view misses a span")
    p_sequence: float = Field(ge=0.0, le=1.0, description="probability that a view misses the whole sequence")


@dataclass(frozen=True)
class ViewDrop:
    dropped: bool
    span: int
    u_sequence: float
    u_span: float
    margin: float  # > 0 when kept: min(u_sequence - p_sequence, u_span - p_span)


def sample_view_drop(rng: np.random.Generator, row: ViewDropParams, ctx: FrameContext) -> ViewDrop:
    if ctx.key is None:
        raise ValueError("view_drop needs FrameContext.key (drops are keyed by sequence and span)")
    span = int(math.floor(ctx.time / float(row.span_s) + 1e-9))
    u_seq = _key_uniform(ctx.key.span(0, "sequence"))
    u_span = _key_uniform(ctx.key.span(span, "span"))
    margin = min(u_seq - float(row.p_sequence), u_span - float(row.p_span))
    return ViewDrop(margin < 0, span, u_seq, u_span, margin)


@lru_cache(maxsize=4096)
def _key_uniform(key: RngKey) -> float:
    """The first uniform of a key's generator (cached: a pure function of the key)."""
    return float(key.generator().random())


def apply_view_drop(image: np.ndarray, p: ViewDrop) -> np.ndarray:
    return np.zeros_like(image) if p.dropped else image.copy()


def view_valid_drop(p: ViewDrop) -> bool:
    return not p.dropped


def view_drop_clip(
    clip: Clip, corruption: Corruption, severity: int, seed: int, occluder_bank=None
) -> tuple[Clip, CorruptionRecord]:
    out, record = apply_per_frame(clip, corruption, severity, seed, occluder_bank)
    all_dropped = ~record.view_valid.any(axis=0)
    if not all_dropped.any():
        return out, record
    images = out.images
    valid = record.view_valid.copy()
    for t in np.nonzero(all_dropped)[0]:
        keep = int(np.argmax([record.params[v][t]["margin"] for v in range(clip.n_views)]))
        valid[keep, t] = True
        record.params[keep][t]["dropped"] = False
        record.params[keep][t]["kept_as_last_view"] = True
        if images is not None:
            images[keep, t] = clip.images[keep, t]
    return out, replace(record, view_valid=valid)


# subframe_desync ---------------------------------------------------------------------------


class DesyncParams(Params):
    max_offset: float = Field(ge=0.0, le=2.0, description="uniform sub-frame offset in +-max_offset source frames")
    whole_frame_shift: int = Field(ge=0, le=1, description="1: add one whole frame of random sign")

    def reach_frames(self) -> float:
        return self.max_offset + self.whole_frame_shift


@dataclass(frozen=True)
class Desync:
    offset: float  # frames, constant over the sequence for this view
    fraction: float
    shift: int


def sample_desync(rng: np.random.Generator, row: DesyncParams, ctx: FrameContext) -> Desync:
    """Per view and sequence (the sequence key): uniform fraction plus an optional whole frame."""
    if ctx.key is None:
        raise ValueError("subframe_desync needs FrameContext.key")
    seq = ctx.key.span(0, "sequence").generator()
    m = float(row.max_offset)
    fraction = float(seq.uniform(-m, m))
    sign = 1 if seq.random() < 0.5 else -1
    shift = sign * int(row.whole_frame_shift)
    return Desync(fraction + shift, fraction, shift)


def interpolate_flow(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """Image at fraction `alpha` between `a` and `b`: both warped along the Farneback flow a -> b
    (evaluated at the target pixel) and blended."""
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    h, w = ga.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    fa, fb = np.float32(alpha), np.float32(1.0 - alpha)
    wa = cv2.remap(a, xs - fa * flow[..., 0], ys - fa * flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    wb = cv2.remap(b, xs + fb * flow[..., 0], ys + fb * flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.addWeighted(wa, 1.0 - alpha, wb, alpha, 0.0)


def mocap_at(mocap: np.ndarray, time_frames: float) -> np.ndarray:
    """(17, 3) world pose at a fractional source frame (linear; clamped to the sequence)."""
    t = min(max(time_frames, 0.0), len(mocap) - 1.0)
    i0 = int(math.floor(t))
    i1 = min(i0 + 1, len(mocap) - 1)
    w = t - i0
    return (1.0 - w) * np.asarray(mocap[i0], dtype=np.float64) + w * np.asarray(mocap[i1], dtype=np.float64)


def desync_clip(
    clip: Clip, corruption: Corruption, severity: int, seed: int, occluder_bank=None
) -> tuple[Clip, CorruptionRecord]:
    if clip.mocap_world is None:
        raise UserError("subframe_desync needs the clip's mocap_world to recompute the 2D labels")
    row = corruption.params(severity)
    frames = np.asarray(clip.frame_indices, dtype=np.float64)
    if np.any(np.diff(frames) <= 0):
        raise ValueError("subframe_desync needs strictly increasing frame_indices")
    v_n, t_n = clip.n_views, clip.n_times
    images = None if clip.images is None else np.empty_like(clip.images)
    joints = np.empty((v_n, t_n, N_JOINTS, 2), dtype=np.float64)
    offsets = np.zeros(v_n, dtype=np.float64)
    params: list[list[dict]] = []
    for v in range(v_n):
        key = frame_key(clip, corruption.name, corruption.version, severity, seed, v, 0)
        p = sample_desync(key.generator(), row, frame_context(clip, key, v, 0))
        offsets[v] = p.offset
        row_params = []
        for t in range(t_n):
            target = frames[t] + p.offset
            pose = mocap_at(clip.mocap_world, target)
            joints[v, t] = clip.to_image(project_world(pose, clip.cameras[v]), v, t)
            entry = params_to_json(p)
            entry["source_time"] = target
            if images is not None:
                j = int(np.searchsorted(frames, target, side="right")) - 1
                if j < 0 or (j == t_n - 1 and target > frames[-1]):
                    edge = 0 if j < 0 else t_n - 1
                    images[v, t] = clip.images[v, edge]
                    entry["image_from"] = [int(frames[edge])]
                else:
                    alpha = 0.0 if j == t_n - 1 else (target - frames[j]) / (frames[j + 1] - frames[j])
                    if alpha < 1e-6:
                        images[v, t] = clip.images[v, j]
                        entry["image_from"] = [int(frames[j])]
                    else:
                        images[v, t] = interpolate_flow(clip.images[v, j], clip.images[v, j + 1], alpha)
                        entry["image_from"] = [int(frames[j]), int(frames[j + 1]), float(alpha)]
            row_params.append(entry)
        params.append(row_params)
    record = CorruptionRecord(
        corruption=corruption.name,
        version=corruption.version,
        severity=severity,
        seed=seed,
        params=params,
        occluded=np.zeros((v_n, t_n, N_JOINTS), dtype=bool),
        view_valid=np.ones((v_n, t_n), dtype=bool),
        time_offset=offsets,
        confidence=None,
        joints_2d=joints,
    )
    return replace(clip, images=images), record


FAMILIES = (
    Family(
        "view_drop", "multi-view", "view", ViewDropParams, sample_view_drop,
        apply_view_drop, view_valid=view_valid_drop, clip_level=view_drop_clip,
    ),  # fmt: skip
    Family(
        "subframe_desync", "multi-view", "offset", DesyncParams, sample_desync,
        clip_level=desync_clip,
    ),  # fmt: skip
)
