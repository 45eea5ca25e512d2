"""Load a Predictor (or Refiner) from a model spec and an optional checkpoint, without branching on names.

A spec is a built-in model name (`corrupt_bench.models.registry`) or `package.module:factory` for a
user's model; either way the factory is called as `factory(config, device)`. With a checkpoint, the
config comes from the checkpoint's JSON (overridden key by key by an explicit `config`) and the
weights are loaded into `predictor.module`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corrupt_bench.errors import UserError, validation_text

MAX_PARAMETERS = 2_000_000_000  # a model config asking for more (8 GB of float32) is refused unbuilt


def resolve_device(device: str | None = None) -> str:
    """'auto' / None: CUDA when present, else CPU; anything else is passed through."""
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def _factory_for(spec: str):
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise UserError(f"cannot import module '{module_name}' of model spec '{spec}' ({exc})") from exc
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise UserError(f"module '{module_name}' has no callable '{attr}' (model spec '{spec}')")
        return factory
    from corrupt_bench.models.registry import default_registry

    return default_registry().get(spec).factory


@dataclass(frozen=True)
class LoadedModel:
    """A built model with what identifies it in results: spec, config and checkpoint digests."""

    model: Any
    spec: str
    config: dict
    checkpoint_digest: str  # "" without a checkpoint

    @property
    def identity(self) -> str:
        """Digest of spec + config + checkpoint: what a finished result cell depends on."""
        payload = json.dumps([self.spec, self.config, self.checkpoint_digest], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_model(spec: str, checkpoint: str | Path | None = None, device: str | None = None, config: dict | None = None) -> LoadedModel:
    """Build the model of `spec` with weights from `checkpoint` (if any)."""
    from corrupt_bench.models.checkpoint import file_digest, load_checkpoint, resolve_checkpoint

    factory = _factory_for(spec)
    state: dict | None = None
    cfg: dict = {}
    digest = ""
    if checkpoint is not None:
        state, meta = load_checkpoint(checkpoint)
        named = meta.get("model")
        if named and ":" not in spec and named != spec:
            raise UserError(f"checkpoint is for model '{named}', not '{spec}'", checkpoint)
        cfg = dict(meta.get("config") or {})
        digest = file_digest(resolve_checkpoint(checkpoint))[:16]
    cfg.update(config or {})
    _refuse_oversized(factory, cfg, state, spec, checkpoint)
    try:
        model = factory(cfg, resolve_device(device))
    except UserError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(f"cannot build model '{spec}': {validation_text(exc)}", checkpoint) from None
    if state is not None:
        module = getattr(model, "module", None)
        if module is None:
            if state:
                raise UserError(f"model '{spec}' has no weights, but the checkpoint holds {len(state)} tensors", checkpoint)
        else:
            try:
                module.load_state_dict(state)
            except RuntimeError as exc:
                raise UserError(f"checkpoint does not fit model '{spec}': {str(exc).splitlines()[0]}", checkpoint) from exc
            module.to(resolve_device(device))
    if getattr(model, "module", None) is not None:
        model.module.eval()
    return LoadedModel(model, spec, cfg, digest)


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


def load_predictor(spec: str, checkpoint: str | Path | None = None, device: str | None = None, config: dict | None = None):
    """The Predictor of `spec` (see `load_model`); raises UserError when it lacks `input_spec`/`predict`."""
    loaded = load_model(spec, checkpoint, device, config)
    if not (hasattr(loaded.model, "input_spec") and callable(getattr(loaded.model, "predict", None))):
        raise UserError(f"model '{spec}' is not a Predictor (no input_spec / predict)")
    return loaded.model


def load_config_file(path: str | Path | None) -> dict:
    """A YAML/JSON model config file given on the command line ({} for None)."""
    if path is None:
        return {}
    from corrupt_bench.safe_yaml import load_yaml

    path = Path(path)
    if not path.is_file():
        raise UserError("config file not found", path)
    data = load_yaml(path, "model config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError("a model config must be a mapping", path)
    return data
