"""The table of built-in models: one explicit, immutable list of entries, nothing registered at import.

An entry names what a model is (`kind`: predictor, refiner or 2D detector), how to build it
(`factory(config: dict, device: str | None)`), how to train it (`trainer(config, data=, out=,
device=)`, None when it needs no training), and how to read its `InputSpec` from a config without
building it (`input_spec(config) -> InputSpec`, pure: it only parses the config, strictly, so it
also rejects an unknown key). Each may be given as the callable itself or as a
`"package.module:attribute"` reference resolved on first use, so reading the table (`list_models`,
`corrupt-bench models`) imports no model module and no torch.

`BUILTIN` is the default table; a test (or a downstream package) builds its own `Registry` and hands
it to `load_model(..., registry=...)`. Unknown names get "did you mean". A name is unique per kind: one
model may be listed as a predictor and as a detector under the same name (`blazepose`: the monocular 3D
model behind `--model blazepose`, the 2D detector behind `--detector blazepose`); a look-up then says
which kind it wants.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corrupt_bench.errors import UserError
from corrupt_bench.models.protocol import InputSpec, ModelKind

Target = Callable[..., Any] | str  # a callable, or "package.module:attribute"


def resolve_target(target: Target) -> Callable[..., Any]:
    """The callable a table field refers to (imports its module on first use)."""
    if callable(target):
        return target
    module_name, sep, attr = str(target).partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"a registry reference must be 'package.module:attribute', got {target!r}")
    value = getattr(importlib.import_module(module_name), attr)
    if not callable(value):
        raise TypeError(f"registry reference {target!r} is not callable")
    return value


@dataclass(frozen=True)
class ModelEntry:
    """One built-in model (see the module docstring)."""

    name: str
    kind: ModelKind
    factory: Target  # (config: dict, device: str | None) -> Predictor | Refiner | Detector2D
    input_spec: Target  # (config: dict) -> InputSpec, without building the model
    trainer: Target | None = None  # (config: dict, *, data, out, device) -> FitResult
    description: str = ""

    def build(self, config: dict, device: str | None) -> Any:
        return resolve_target(self.factory)(config, device)

    def spec(self, config: dict) -> InputSpec:
        """The model's InputSpec for `config`, read from the config alone (no weights are built)."""
        spec = resolve_target(self.input_spec)(config)
        if not isinstance(spec, InputSpec):
            raise TypeError(f"model '{self.name}': input_spec returned {type(spec).__name__}, not InputSpec")
        return spec

    def train_function(self) -> Callable[..., Any]:
        if self.trainer is None:
            raise UserError(f"model '{self.name}' needs no training (it has no trainer)")
        return resolve_target(self.trainer)


KIND_NAMES = {"predictor": "a predictor", "refiner": "a refiner", "detector": "a 2D detector"}


@dataclass(frozen=True)
class Registry:
    """An immutable table of entries; a (name, kind) pair is listed once."""

    entries: tuple[ModelEntry, ...]

    def __post_init__(self) -> None:
        keys = [(e.name, e.kind) for e in self.entries]
        twice = sorted({f"{n} ({k})" for n, k in keys if keys.count((n, k)) > 1})
        if twice:
            raise ValueError(f"models listed twice: {', '.join(twice)}")

    def __contains__(self, name: object) -> bool:
        return any(e.name == name for e in self.entries)

    def named(self, name: str) -> tuple[ModelEntry, ...]:
        """Every entry of `name` (one per kind); "did you mean" when there is none."""
        found = tuple(e for e in self.entries if e.name == name)
        if found:
            return found
        known = sorted({e.name for e in self.entries})
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(known)}"
        raise UserError(f"unknown model '{name}'{hint}")

    def get(self, name: str, kind: ModelKind | None = None) -> ModelEntry:
        """The entry of `name`: of `kind` when the name is listed with it (otherwise its only entry, so that
        the caller can say which kind it is); without `kind`, a name listed with two kinds is refused."""
        found = self.named(name)
        of_kind = [e for e in found if e.kind == kind]
        if of_kind:
            return of_kind[0]
        if len(found) > 1:
            kinds = " and ".join(KIND_NAMES[e.kind] for e in found)
            raise UserError(f"model '{name}' is {kinds}: say which (score --model {name} / --detector {name})")
        return found[0]

    def names(self, pattern: str = "*", kind: ModelKind | None = None) -> list[str]:
        """Sorted names (each once) matching a glob pattern, of `kind` if given."""
        return sorted({e.name for e in self.entries if fnmatch.fnmatch(e.name, pattern) and (kind is None or e.kind == kind)})


def _entry(name: str, kind: ModelKind, module: str, factory: str, trainer: str | None, description: str) -> ModelEntry:
    """An entry whose callables live in `corrupt_bench.models.<module>` (its `input_spec` beside the factory)."""
    path = f"corrupt_bench.models.{module}"
    return ModelEntry(name, kind, f"{path}:{factory}", f"{path}:input_spec", None if trainer is None else f"{path}:{trainer}",
                      description)  # fmt: skip


BUILTIN = Registry((
    _entry("oracle-noise", "predictor", "oracle", "build_oracle", None,
           "Ground truth plus a known seeded error (diagnostic; sees GT)."),
    _entry("triangulation", "predictor", "triangulation", "build_triangulation", None,
           "Confidence-weighted DLT from the views' 2D keypoints (training-free)."),
    _entry("detector2d", "detector", "detector2d", "create_detector2d", "train_detector2d",
           "Heatmap 2D keypoint detector for person crops (ResNet + deconvolutions), with confidences."),
    _entry("tcn-lifter", "predictor", "tcn_lifter", "create_tcn_lifter", "train_tcn_lifter",
           "VideoPose3D temporal convolutions with TAGN and CA-Conv (Hoang et al. 2024) as switches."),
    _entry("dtf", "predictor", "dtf", "create", "train",
           "DTF (Dual Transformer Fusion): occlusion-guided single-view 2D->3D lifter over (x, y, conf) windows."),
    _entry("syncdiffpose", "predictor", "syncdiffpose", "create", "train",
           "SyncDiffPose: diffusion over the 3D pose conditioned on weakly synchronised multi-view 2D."),
    _entry("deprope", "predictor", "deprope", "build_deprope", "train_deprope",
           "DeProPose: multi-view image clips, Swin encoder, camera rays, adaptive fusion."),
    _entry("stride", "refiner", "stride", "build_stride", "train_stride",
           "STRIDE: DSTFormer motion prior + per-clip test-time training (Refiner)."),
    _entry("blazepose", "predictor", "blazepose", "build_blazepose", None,
           "Pretrained BlazePose (MediaPipe Pose, files in the mediapipe wheel): monocular 3D from person crops."),
    _entry("blazepose", "detector", "blazepose", "build_blazepose_detector", None,
           "Pretrained BlazePose (MediaPipe Pose, files in the mediapipe wheel): 2D keypoints, NaN where no person."),
))  # fmt: skip


def list_models(pattern: str = "*", kind: ModelKind | None = None, registry: Registry = BUILTIN) -> list[str]:
    """Names of the models of `registry` (built-in by default) matching a glob pattern (and a kind)."""
    return registry.names(pattern, kind)


def get_trainer(name: str, registry: Registry = BUILTIN) -> Callable[..., Any]:
    """The training function of a built-in model (UserError when it has none)."""
    trainable = [e for e in registry.named(name) if e.trainer is not None]
    return (trainable[0] if trainable else registry.named(name)[0]).train_function()
