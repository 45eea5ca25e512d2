"""The time and box protocol of a benchmark as the harness reads it, and the frame-rate contract.

A generated benchmark stores its manifest (`layout.MANIFEST_NAME`); the harness reads four facts
from it (a missing field takes its default; nothing here imports `corrupt_bench.generate`):

- `frame_step` (default 1): the source frames kept; the frames' rate is `source fps / frame_step`
  (the source rate is the `fps` of the benchmark's sequences.json, `Benchmark.timing`; for a benchmark
  without that file, `source.fps` where the manifest records one, else `layout.H36M_FPS`).
- `eval_step` (default `frame_step`, a multiple of it): frames whose index is a multiple of it are the
  evaluation frames; the others are full-rate context that models read but that is not scored.
- `box` (`gt`, the papers' choice and the default, or `detector`): where person crops come from.
  With `detector` (full-frame images only) the harness cuts each crop at scoring time with the 2D
  detector's box on the corrupted frame; no person found is a failed frame.
- `crop` (`mode`, `margin`): the margin grows the detector's box as the generator grows the
  ground-truth one.

Frame-rate contract (`check_frame_rate`): a model whose `InputSpec.fps` differs from the frames'
rate is refused with the remedy, unless resampling is asked for (`score --resample`), in which case
`resample_positions` says which input frame feeds each model frame and every row states it.
Windows are padded at a sequence's end by repeating its last frame (`PADDING`), and rows count the
padded frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corrupt_bench.errors import UserError
from corrupt_bench.layout import H36M_FPS

PADDING = "edge"  # a window reaching past a sequence's last frame repeats that frame
PADDING_NOTE = "temporal windows are non-overlapping; the last window of a sequence is padded by repeating its last frame (edge)"
BOX_PROTOCOLS = ("gt", "detector")
RATE_TOLERANCE = 1e-3  # relative difference of two frame rates taken as equal
RESAMPLING_NOTE = "2D keypoints and confidences linearly interpolated in time, images and other inputs from the nearest frame; each scored frame takes the prediction of the nearest resampled frame"


@dataclass(frozen=True)
class Timing:
    """A benchmark's time and box protocol (see the module docstring)."""

    source_fps: float = H36M_FPS
    fps_recorded: bool = False  # whether the manifest recorded the source's rate
    frame_step: int = 1
    eval_step: int = 1
    box: str = "gt"
    crop_mode: str = "person"
    crop_margin: float = 0.15

    @property
    def fps(self) -> float:
        """The rate of the benchmark's frames."""
        return self.source_fps / self.frame_step

    def evaluated(self, frames: np.ndarray) -> np.ndarray:
        """(N,) True on the evaluation frames (source index a multiple of `eval_step`)."""
        return np.asarray(frames, np.int64) % self.eval_step == 0


def _field(manifest: dict, key: str, default: Any) -> Any:
    """A stored manifest's field; its default where missing or null."""
    return manifest[key] if key in manifest and manifest[key] is not None else default


def read_timing(manifest: Any, path: Path | None = None) -> Timing:
    """The `Timing` of a stored manifest (a dict as `safe_yaml.load_yaml` read it; None or {}: a source
    folder or a benchmark without a stored manifest, i.e. every frame at the source rate). A field of
    the wrong type or value is a one-line UserError naming `path`."""
    if not manifest:
        return Timing()
    if not isinstance(manifest, dict):
        raise UserError("stored manifest is not a mapping", path)
    source = _field(manifest, "source", {})
    if not isinstance(source, dict):
        raise UserError(f"source must be a mapping, got {source!r}", path)
    fps = _field(source, "fps", None)
    frame_step = _field(manifest, "frame_step", 1)
    if isinstance(frame_step, bool) or not isinstance(frame_step, int) or frame_step < 1:
        raise UserError(f"frame_step must be a positive integer, got {frame_step!r}", path)
    eval_step = _field(manifest, "eval_step", frame_step)
    if isinstance(eval_step, bool) or not isinstance(eval_step, int) or eval_step < 1 or eval_step % frame_step:
        raise UserError(f"eval_step must be a positive multiple of frame_step ({frame_step}), got {eval_step!r}", path)
    box = _field(manifest, "box", "gt")
    if box not in BOX_PROTOCOLS:
        raise UserError(f"box must be one of {', '.join(BOX_PROTOCOLS)}, got {box!r}", path)
    crop = _field(manifest, "crop", {})
    if not isinstance(crop, dict):
        raise UserError(f"crop must be a mapping, got {crop!r}", path)
    mode, margin = _field(crop, "mode", "person"), _field(crop, "margin", 0.15)
    if box == "detector" and mode != "full":
        raise UserError("box: detector needs crop mode 'full' (the detector's box is cut from the whole frame)", path)
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps < 10_000):
        raise UserError(f"source.fps must be a positive frame rate, got {fps!r}", path)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or margin < 0:
        raise UserError(f"crop.margin must be a non-negative number, got {margin!r}", path)
    return Timing(float(fps) if fps is not None else H36M_FPS, fps is not None, frame_step, eval_step, str(box), str(mode), float(margin))


def same_rate(a: float, b: float) -> bool:
    return abs(a - b) <= RATE_TOLERANCE * max(a, b)


def check_frame_rate(model_fps: float | None, timing: Timing, name: str, resample: bool, path: Path | None) -> str:
    """What the rows record as the model's frame rate; a UserError with the remedy when the model's
    declared rate differs from the frames' and `resample` is off."""
    rate = f"{timing.fps:g} fps"
    if model_fps is None or same_rate(float(model_fps), timing.fps):
        return rate
    if not resample:
        source = f"source {timing.source_fps:g} fps{'' if timing.fps_recorded else ' (Human3.6M, not recorded)'} / frame_step {timing.frame_step}"
        eval_step = timing.eval_step
        raise UserError(
            f"model '{name}' was trained at {float(model_fps):g} fps but this benchmark's frames are at {rate} ({source}): "
            f"regenerate the benchmark with frame_step: 1 and eval_step: {eval_step} (the model reads every frame, the same "
            f"frames are scored), or pass --resample to feed it input resampled to {float(model_fps):g} fps",
            path,
        )
    return f"{rate} resampled to {float(model_fps):g} fps"


def resample_positions(n_frames: int, src_fps: float, dst_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(positions (M,) float in input-frame units of the M model frames at `dst_fps`, nearest (N,) int:
    the model frame whose prediction each of the N input frames takes)."""
    ratio = dst_fps / src_fps
    m = max(1, int(round((n_frames - 1) * ratio)) + 1)
    positions = np.minimum(np.arange(m) / ratio, n_frames - 1)
    nearest = np.clip(np.round(np.arange(n_frames) * ratio).astype(np.int64), 0, m - 1)
    return positions, nearest


def interpolate_frames(values: np.ndarray, positions: np.ndarray, axis: int = 1) -> np.ndarray:
    """Linear interpolation of `values` along `axis` (frames) at fractional `positions`; a non-finite
    neighbour makes the result non-finite (a failed input stays failed)."""
    values = np.moveaxis(np.asarray(values, np.float64), axis, 0)
    lo = np.floor(positions).astype(np.int64)
    hi = np.minimum(lo + 1, len(values) - 1)
    w = (positions - lo).reshape(-1, *([1] * (values.ndim - 1)))
    out = values[lo] * (1 - w) + values[hi] * w
    exact = w.reshape(-1) == 0
    out[exact] = values[lo[exact]]  # no NaN leak from an unused neighbour
    return np.moveaxis(out, 0, axis)
