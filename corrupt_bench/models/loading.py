"""The one way in: build a Predictor, Refiner or 2D detector from a spec, without branching on names.

A spec is one of
- a built-in name (`corrupt_bench.models.registry.BUILTIN`, e.g. `tcn-lifter`);
- `package.module:factory`, a user's model: `factory(config: dict, device: str | None)`;
- a checkpoint (a folder with `model.safetensors` + `model.json`, a `.safetensors` file with its
  `.json`, or a `.pt` file; a `Path`, or a string that names an existing file or folder, or holds a
  path separator): the model it holds is the one its JSON names (`"model"`).
A built-in name always means the built-in (write `./detector2d` for a folder of that name).

With a checkpoint, the config comes from the checkpoint's JSON, overridden key by key by an explicit
`config`, and the weights are loaded into the model's `.module` (a model without one accepts no
weights). Every built-in config is strict: an unknown key or a wrong type is a one-line UserError
naming the key. `LoadedModel.identity` digests what a result depends on (spec, config, weights, and
a model's own `fingerprint` if it declares one, e.g. the digest of a model file shipped in a wheel).

Importing this module imports neither torch nor any model module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corrupt_bench.errors import UserError
from corrupt_bench.models.protocol import ModelKind, satisfies
from corrupt_bench.models.registry import BUILTIN, Registry, list_models, resolve_target

MAX_PARAMETERS = 2_000_000_000  # a model config asking for more (8 GB of float32) is refused unbuilt

__all__ = ["LoadedModel", "check_config", "list_models", "load_config_file", "load_detector", "load_model", "resolve_device"]

# `package.module:attribute` (dotted identifiers, one colon)
FACTORY_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth")
KIND_WORDS = {"predictor": "a Predictor", "refiner": "a Refiner", "detector": "a 2D detector"}
KIND_NEEDS = {"predictor": "input_spec / predict", "refiner": "a refine method", "detector": "a detect method"}


def resolve_device(device: str | None = None) -> str:
    """'auto' / None: CUDA when present, else CPU; anything else is passed through."""
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def describe_config_error(exc: Exception) -> str:
    """One line for a config fault: every pydantic error as `config key 'a.b': <message>`; other
    exceptions as their first line."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":
        parts = []
        for err in errors():
            key = ".".join(str(p) for p in err.get("loc", ())) or "(config)"
            if err.get("type") == "extra_forbidden":
                parts.append(f"unknown config key '{key}'")
            else:
                parts.append(f"config key '{key}': {err.get('msg', 'invalid')} (got {err.get('input')!r})")
        return "; ".join(parts)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text


@dataclass(frozen=True)
class LoadedModel:
    """A built model with what identifies it in results: spec (built-in name or `module:factory`),
    kind, config, checkpoint digest (16 hex, "" without a checkpoint) and its declared fingerprint."""

    model: Any
    spec: str
    config: dict
    checkpoint_digest: str
    kind: ModelKind | None = None
    fingerprint: str = ""

    @property
    def identity(self) -> str:
        """Digest of spec + config + checkpoint (+ fingerprint): what a finished result depends on."""
        parts: list[Any] = [self.spec, self.config, self.checkpoint_digest]
        if self.fingerprint:
            parts.append(self.fingerprint)
        payload = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _is_checkpoint_spec(spec: str | Path, registry: Registry) -> bool:
    if isinstance(spec, Path):
        return True
    if spec in registry or FACTORY_SPEC.match(spec):
        return False
    return os.sep in spec or "/" in spec or spec.endswith(CHECKPOINT_SUFFIXES) or Path(spec).exists()


def _checkpoint_model(checkpoint: str | Path) -> str:
    """The model a checkpoint's JSON names (without loading its weights)."""
    from corrupt_bench.models.checkpoint import load_checkpoint, read_meta, resolve_checkpoint

    meta_path, meta = read_meta(checkpoint)
    if "model" not in meta and resolve_checkpoint(checkpoint).suffix != ".safetensors":
        meta = load_checkpoint(checkpoint)[1]  # a .pt file may carry its meta inside
    named = meta.get("model")
    if not isinstance(named, str) or not named:
        raise UserError("checkpoint does not name its model (no 'model' in its JSON): give the model name as well", meta_path or checkpoint)
    return named


def _factory(spec: str, registry: Registry, kind: ModelKind | None, where: str | Path | None):
    """(factory, registry entry or None) of a built-in name or a `module:factory` spec."""
    if FACTORY_SPEC.match(spec) and spec not in registry:
        import importlib

        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise UserError(f"cannot import module '{module_name}' of model spec '{spec}' ({exc})") from exc
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise UserError(f"module '{module_name}' has no callable '{attr}' (model spec '{spec}')")
        return factory, None
    entry = registry.get(spec, kind)
    if kind is not None and entry.kind != kind:
        what = f"this checkpoint holds '{spec}', a {entry.kind}," if where is not None else f"model '{spec}' is a {entry.kind},"
        raise UserError(f"{what} not {KIND_WORDS[kind]}", where)
    return resolve_target(entry.factory), entry


def load_model(
    name_or_spec: str | Path,
    checkpoint: str | Path | None = None,
    config: dict | None = None,
    device: str | None = None,
    *,
    kind: ModelKind | None = None,
    registry: Registry = BUILTIN,
) -> LoadedModel:
    """Build the model of `name_or_spec` (see the module docstring) with weights from `checkpoint`.

    `kind` ("predictor", "refiner", "detector"): refuse anything else with a one-line UserError,
    before any weights are read when the spec says what it is."""
    from corrupt_bench.models.checkpoint import file_digest, load_checkpoint, resolve_checkpoint

    if _is_checkpoint_spec(name_or_spec, registry):
        if checkpoint is not None:
            raise UserError(f"'{name_or_spec}' is a checkpoint: give it as the model or as the checkpoint, not both")
        checkpoint = Path(name_or_spec)
        spec = _checkpoint_model(checkpoint)
    else:
        spec = str(name_or_spec)
    factory, entry = _factory(spec, registry, kind, checkpoint)
    state: dict | None = None
    cfg: dict = {}
    digest = ""
    if checkpoint is not None:
        state, meta = load_checkpoint(checkpoint)
        named = meta.get("model")
        if named and named != spec and not FACTORY_SPEC.match(spec):
            raise UserError(f"checkpoint is for model '{named}', not '{spec}'", checkpoint)
        cfg = dict(meta.get("config") or {})
        digest = file_digest(resolve_checkpoint(checkpoint))[:16]
    cfg.update(config or {})
    device = resolve_device(device)
    try:
        if entry is not None:
            entry.spec(cfg)  # the config alone, strictly: an unknown key fails here, before any weights
        _refuse_oversized(factory, cfg, state, spec, checkpoint)
        model = factory(cfg, device)
    except UserError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(f"cannot build model '{spec}': {describe_config_error(exc)}") from exc
    if kind is not None and not satisfies(model, kind):
        raise UserError(f"model '{spec}' is not {KIND_WORDS[kind]} (no {KIND_NEEDS[kind]})")
    module = getattr(model, "module", None)
    if state is not None:
        if module is None:
            if state:
                raise UserError(f"model '{spec}' has no weights, but the checkpoint holds {len(state)} tensors", checkpoint)
        else:
            try:
                module.load_state_dict(state)
            except RuntimeError as exc:
                raise UserError(f"checkpoint does not fit model '{spec}': {str(exc).splitlines()[0]}", checkpoint) from exc
            module.to(device)
    if module is not None:
        module.eval()
    fingerprint = getattr(model, "fingerprint", "")
    return LoadedModel(model, spec, cfg, digest, entry.kind if entry is not None else kind, str(fingerprint or ""))


def _refuse_oversized(factory, cfg: dict, state: dict | None, spec: str, checkpoint) -> None:
    """Refuse, before any memory is allocated, a config whose model would be larger than its checkpoint's
    weights (every parameter must come from them) or than MAX_PARAMETERS without a checkpoint.

    The model is built once on PyTorch's `meta` device (shapes only, no memory). A factory that cannot
    build there is not pre-checked: its real build and `load_state_dict` check the shapes."""
    import torch

    try:
        with torch.device("meta"):
            probe = factory(dict(cfg), "meta")
        module = getattr(probe, "module", None)
        planned = None if module is None else sum(p.numel() for p in module.parameters())
    except Exception:  # see the docstring: the real build reports its own fault
        return
    if planned is None:
        return
    held = None if state is None else sum(int(t.numel()) for t in state.values())
    if held is not None and planned > held:
        raise UserError(
            f"the checkpoint's config asks for a model '{spec}' of {planned:,} parameters but its weights hold "
            f"{held:,} values: refused before building it",
            checkpoint,
        )
    if held is None and planned > MAX_PARAMETERS:
        raise UserError(f"the config asks for a model '{spec}' of {planned:,} parameters (more than {MAX_PARAMETERS:,}): refused")


def load_detector(spec: str | Path, device: str | None = None, *, registry: Registry = BUILTIN) -> LoadedModel:
    """A 2D detector (`Detector2D`) from a built-in detector name, a detector checkpoint or
    `package.module:factory`, exactly as `load_model`; anything else (a lifter's checkpoint) is a
    one-line UserError."""
    return load_model(spec, device=device, kind="detector", registry=registry)


def check_config(name: str, config: dict, path: str | Path | None = None, registry: Registry = BUILTIN) -> None:
    """Validate a built-in model's config strictly without building it (UserError naming the key); a name
    listed with two kinds validates it for each."""
    for entry in registry.named(name):
        try:
            entry.spec(config)
        except (ValueError, TypeError, KeyError) as exc:
            raise UserError(f"model '{name}': {describe_config_error(exc)}", path) from exc


def load_config_file(path: str | Path | None) -> dict:
    """A YAML/JSON model config file given on the command line ({} for None)."""
    from corrupt_bench.models.checkpoint import read_config_file

    return {} if path is None else read_config_file(path)
