"""The corruption types (no registry, no family: every family module imports this one).

A corruption is a *family* (code: how to sample parameters and how to apply them, and the typed
model of its parameters) plus a *table* (data: `corruptions/<name>.yaml`, the parameters of
severities 1..5, a version, the source of the numbers). `sample(rng, severity, ctx)` draws every
random quantity, noise maps included; `apply(image, params)` is pure. Severity 0 ("clean") is the
identity. `engine.registry` joins the families with their tables.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from corrupt_bench.engine.params import Params, validate_row
from corrupt_bench.engine.rng import RngKey
from corrupt_bench.errors import UserError

Modality = Literal["pixel", "temporal", "multi-view", "keypoint"]
# What grows with severity (the contract tests measure it): image similarity, hidden joints,
# invalid views, time offsets, keypoint error.
Effect = Literal["ssim", "occlusion", "view", "offset", "keypoint"]
SEVERITIES = (1, 2, 3, 4, 5)
REFERENCE_SIZE = 224.0  # spatial parameters are stated for a 224 px person (ImageNet-C's image size)


@dataclass(frozen=True)
class FrameContext:
    """What a corruption may know about the frame it samples for (never the pixels themselves)."""

    subject: str
    sequence: str
    camera: str
    frame_index: int  # absolute source frame index (50 fps in Human3.6M)
    n_frames: int  # frames in the whole sequence
    fps: float
    image_shape: tuple[int, int]  # (H, W) of the image the corruption applies to
    person_box: np.ndarray | None = None  # (4,) x0, y0, x1, y1 px in that image
    joints_2d: np.ndarray | None = None  # (17, 2) px in that image
    key: RngKey | None = None  # this frame's key: temporal corruptions derive span keys from it
    keypoint_scale: float = 1.0  # image px per px of a 1000-px-wide full frame (keypoint noise units)
    occluder_bank: Any = None  # engine.voc.OccluderBank for voc_occluder (None: the built-in bank)

    @property
    def time(self) -> float:
        """Absolute time of the frame in seconds."""
        return self.frame_index / self.fps

    def spatial_scale(self) -> float:
        """Image px per px of a 224-px person: the person box's long side / 224 (no box: min(H, W) / 224),
        never below 1 (a smaller person gets ImageNet-C's pixel sizes as they are)."""
        side = float(min(self.image_shape))
        if self.person_box is not None and np.all(np.isfinite(self.person_box)):
            x0, y0, x1, y1 = (float(v) for v in self.person_box)
            if max(x1 - x0, y1 - y0) > 1:
                side = max(x1 - x0, y1 - y0)
        return max(1.0, side / REFERENCE_SIZE)

    def box_or_frame(self) -> tuple[float, float, float, float]:
        """The person box clipped to the image, or the whole image when there is none."""
        h, w = self.image_shape
        if self.person_box is None or not np.all(np.isfinite(self.person_box)):
            return 0.0, 0.0, float(w), float(h)
        x0, y0, x1, y1 = (float(v) for v in self.person_box)
        x0, x1 = min(max(x0, 0.0), w - 1.0), min(max(x1, 1.0), float(w))
        y0, y1 = min(max(y0, 0.0), h - 1.0), min(max(y1, 1.0), float(h))
        return x0, y0, max(x1, x0 + 1.0), max(y1, y0 + 1.0)


@dataclass(frozen=True)
class Family:
    """The code of one corruption: sampling and application, and the typed model of its parameters
    (the numbers live in its YAML table)."""

    name: str
    modality: Modality
    effect: Effect
    params: type[Params]  # one severity row: names, types and bounds of the parameters
    sample: Callable[[np.random.Generator, Any, FrameContext], Any]  # (rng, row: params, ctx) -> sampled
    apply: Callable[[np.ndarray, Any], np.ndarray] | None = None  # image, params -> new image
    occlusion: Callable[[Any, FrameContext], np.ndarray] | None = None  # -> (17,) bool hidden joints
    view_valid: Callable[[Any], bool] | None = None
    keypoints: Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray]] | None = None  # -> (17,2), (17,)
    clip_level: Callable[..., Any] | None = None  # whole-clip corruptions (subframe_desync)
    stochastic: bool = True  # False: `sample` draws nothing (it is given no generator)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.params.model_fields)


@dataclass(frozen=True)
class Corruption:
    """A registered corruption: its family's code and its versioned severity table."""

    family: Family
    version: int
    table: Mapping[int, Params]  # severity -> validated parameters (the family's model)
    description: str = ""
    source: str = ""
    applies_to: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def modality(self) -> str:
        return self.family.modality

    def params(self, severity: int) -> Params:
        if severity not in self.table:
            raise UserError(f"corruption '{self.name}' has no severity {severity} (use 0..5)")
        return self.table[severity]

    def overridden_row(self, severity: int, changes: Mapping[str, Any]) -> Params:
        """Severity `severity`'s parameters with `changes` applied, validated by the family's model
        (raises `ParamError` naming the key and what is allowed)."""
        return validate_row(self.family.params, {**self.params(severity).model_dump(), **changes})

    def with_overrides(self, overrides: Mapping[int, Mapping[str, Any]]) -> Corruption:
        """This corruption with some severities' parameters changed (a manifest's `overrides`)."""
        if not overrides:
            return self
        table = dict(self.table)
        for severity, changes in overrides.items():
            table[severity] = self.overridden_row(severity, changes)
        return dataclasses.replace(self, table=table)

    def sample(self, rng: np.random.Generator | None, severity: int, ctx: FrameContext) -> Any:
        """Draw this frame's parameters; None at severity 0 (identity). `rng` may be None for a
        deterministic family (`family.stochastic` False: it draws nothing)."""
        if severity == 0:
            return None
        return self.family.sample(rng, self.params(severity), ctx)

    def apply(self, image: np.ndarray, params: Any) -> np.ndarray:
        """Apply sampled parameters to one HxWx3 uint8 image (pure; returns a new array)."""
        if params is None or self.family.apply is None:
            return image.copy()
        return self.family.apply(image, params)


def params_to_json(params: Any) -> dict:
    """JSON-serialisable summary of sampled parameters (large arrays such as noise maps are left out)."""
    if params is None:
        return {}
    if isinstance(params, Mapping):
        items = params.items()
    elif dataclasses.is_dataclass(params):
        items = ((name, getattr(params, name)) for name in _field_names(type(params)))
    else:
        return {"value": _jsonable(params)}
    return {name: _jsonable(value) for name, value in items if not _is_bulk(value)}


_PLAIN = frozenset({int, float, str, bool, type(None)})  # exact types, returned as they are


@functools.lru_cache(maxsize=256)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _is_bulk(value: Any) -> bool:
    """Noise maps, kernels, patches: arrays over 64 values, or sequences of them."""
    if type(value) in _PLAIN:
        return False
    if isinstance(value, np.ndarray):
        return value.size > 64
    if isinstance(value, (list, tuple)) and value:
        return any(_is_bulk(v) for v in value)
    return False


def _jsonable(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return params_to_json(value)
    return value
