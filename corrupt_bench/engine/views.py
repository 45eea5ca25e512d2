"""Multi-view corruptions: view_drop (DA-3DPE's missing viewpoints) and subframe_desync (per-view
time offsets, weakly synchronised multi-view; SyncDiffPose's whole-frame shift at the top).

view_drop: each view is missing for the whole sequence with probability `p_sequence` (one draw
per camera and sequence) and for spans of `span_s` seconds with probability `p_span` (one draw per
camera and span). A dropped view's images are black and its `view_valid` is False. When every
view of the clip would be missing at a frame, the view with the largest margin stays (so the
result depends on which views the clip holds, never on which frames it holds).

subframe_desync (table version 2): weakly synchronised views as SyncDiffPose defines them, any
two views of a sequence differ by less than one frame (|t_ij - t_ik| < 1/f). Each view gets one
time offset for the sequence, uniform in [0, `max_offset`) source frames with `max_offset` < 1,
so every pair of views differs by less than `max_offset` < 1 frame at every severity. The
frame-shift variant (SyncDiffPose's Human3.6M table: "a random frameshift of 0 or 1 frame across
views") is the row `whole_frame_shift: 1` with `max_offset: 0`: each view is shifted by 0 or 1
whole frame (probability 1/2 each), so two views differ by exactly 0 or 1 frame; the two kinds do
not combine (a row with both would break either definition). Offsets are in source frames (50 fps
for Human3.6M) and never negative, so the view at frame t shows time t + offset in [t, t + 1].

Pixels and labels agree: the view's image at frame t is made at the shifted time and cut with
frame t's box. On person crops the clip carries `images_next`, the next clip frame cut with frame
t's box, and the image is the Farneback optical-flow interpolation between frame t's crop and
that (an offset of 0 or 1 copies one of them); the crop of a view at frame t never uses another
frame's box. On full frames the next frame itself is used. The 2D labels are exact: mocap
interpolated linearly at the shifted time, projected with the view's camera and mapped by frame
t's crop affine. Interpolation is between the clip's consecutive frames, so give this corruption
the clip at frame step 1 (with a step k > 1 the flow spans k source frames); at the clip's last
frame, where no next frame is held, the view shows frame t itself and its labels are frame t's
(offset 0 there, recorded in `source_time`): overlap pieces by one frame.

Parameter bounds (shipped tables in brackets): view_drop span_s 0.1..600 s [2], p_span and
p_sequence probabilities 0..1 [0..0.25]; subframe_desync max_offset in [0, 1) frames
[0.2, 0.4, 0.6, 0.8, 0.95], whole_frame_shift the integer 0 or 1 [0; the frame-shift variant 1],
whole_frame_shift 1 only with max_offset 0 (so a view moves by at most one source frame).
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
    max_offset: float = Field(
        ge=0.0, lt=1.0, description="offsets uniform in [0, max_offset) source frames: pairs of views differ by < 1 frame"
    )
    whole_frame_shift: int = Field(ge=0, le=1, description="1: each view shifted by 0 or 1 whole frame (needs max_offset 0)")

    # a sub-frame offset on top of a whole-frame shift would put two views more than one frame apart
    exclusive = (("max_offset", "whole_frame_shift"),)

    def reach_frames(self) -> float:
        return self.max_offset + self.whole_frame_shift


@dataclass(frozen=True)
class Desync:
    offset: float  # frames in [0, 1], constant over the sequence for this view
    fraction: float
    shift: int


def sample_desync(rng: np.random.Generator, row: DesyncParams, ctx: FrameContext) -> Desync:
    """Per view and sequence (the sequence key): a fraction uniform in [0, max_offset), or a whole
    frame of 0 or 1 (probability 1/2 each) when whole_frame_shift is 1."""
    if ctx.key is None:
        raise ValueError("subframe_desync needs FrameContext.key")
    seq = ctx.key.span(0, "sequence").generator()
    fraction = float(row.max_offset) * float(seq.random())
    shift = int(row.whole_frame_shift) if seq.random() < 0.5 else 0
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


def desync_offsets(clip: Clip, corruption: Corruption, severity: int, seed: int) -> list[Desync]:
    """Each view's offset for the clip's sequence (a pure function of the sequence key: the same for
    every piece of the sequence)."""
    row = corruption.params(severity)
    out = []
    for v in range(clip.n_views):
        key = frame_key(clip, corruption.name, corruption.version, severity, seed, v, 0)
        out.append(sample_desync(key.generator(), row, frame_context(clip, key, v, 0)))
    return out


def _shifted_image(clip: Clip, v: int, t: int, alpha: float) -> tuple[np.ndarray, list]:
    """View `v` at clip time t + alpha (alpha in [0, 1] of the gap to the next clip frame), cut with
    frame t's box: `images[v, t]` and the next frame cut with t's box (`images_next`, or the next
    full frame without a crop)."""
    frames = clip.frame_indices
    if alpha < 1e-6:
        return clip.images[v, t], [int(frames[t])]
    following = clip.images[v, t + 1] if clip.images_next is None else clip.images_next[v, t]
    if alpha > 1.0 - 1e-6:
        return following, [int(frames[t + 1])]
    image = interpolate_flow(clip.images[v, t], following, alpha)
    return image, [int(frames[t]), int(frames[t + 1]), float(alpha)]


def desync_clip(
    clip: Clip, corruption: Corruption, severity: int, seed: int, occluder_bank=None
) -> tuple[Clip, CorruptionRecord]:
    if clip.mocap_world is None:
        raise UserError("subframe_desync needs the clip's mocap_world to recompute the 2D labels")
    if clip.images is not None and clip.crop_affine is not None and clip.images_next is None:
        raise ValueError(
            "subframe_desync on person crops needs the clip's images_next (the next frame cut with each "
            "frame's box), so that a shifted image is cut with its own frame's box"
        )
    frames = np.asarray(clip.frame_indices, dtype=np.float64)
    if np.any(np.diff(frames) <= 0):
        raise ValueError("subframe_desync needs strictly increasing frame_indices")
    v_n, t_n = clip.n_views, clip.n_times
    images = None if clip.images is None else np.empty_like(clip.images)
    joints = np.empty((v_n, t_n, N_JOINTS, 2), dtype=np.float64)
    offsets = np.zeros(v_n, dtype=np.float64)
    params: list[list[dict]] = []
    for v, p in enumerate(desync_offsets(clip, corruption, severity, seed)):
        offsets[v] = p.offset
        row_params = []
        for t in range(t_n):
            # the last clip frame has no next frame here: it shows itself (and its labels say so)
            target = frames[t] + p.offset if t + 1 < t_n else frames[t]
            pose = mocap_at(clip.mocap_world, target)
            joints[v, t] = clip.to_image(project_world(pose, clip.cameras[v]), v, t)
            entry = params_to_json(p)
            entry["source_time"] = float(target)
            if images is not None:
                alpha = 0.0 if t + 1 == t_n else (target - frames[t]) / (frames[t + 1] - frames[t])
                images[v, t], entry["image_from"] = _shifted_image(clip, v, t, alpha)
                entry["box_from"] = int(frames[t])
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
    return replace(clip, images=images, images_next=None), record


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
