"""One way in for every built-in model: `create_model(name, config)`, `list_models(pattern)`.

Models register a factory (config dict -> Predictor) and, when trainable, a trainer. The registry
is an explicit object, so tests can build their own without touching the default one.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corrupt_bench.errors import UserError

# Modules that register built-in models when imported (kept explicit: no import-time globbing).
BUILTIN_MODEL_MODULES: tuple[str, ...] = (
    "corrupt_bench.models.oracle",
    "corrupt_bench.models.triangulation",
    "corrupt_bench.models.detector2d",
    "corrupt_bench.models.tcn_lifter",
    "corrupt_bench.models.dtf",
    "corrupt_bench.models.syncdiffpose",
    "corrupt_bench.models.deprope",
    "corrupt_bench.models.stride",
)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., Any]  # (config: dict, device) -> Predictor / Refiner
    trainer: Callable[..., Path] | None = None  # (config_name, data, out, **options) -> checkpoint path
    description: str = ""


@dataclass
class Registry:
    entries: dict[str, ModelEntry] = field(default_factory=dict)

    def register(self, entry: ModelEntry) -> None:
        if entry.name in self.entries and self.entries[entry.name] != entry:
            raise ValueError(f"model '{entry.name}' registered twice")
        self.entries[entry.name] = entry

    def get(self, name: str) -> ModelEntry:
        if name not in self.entries:
            close = difflib.get_close_matches(name, list(self.entries), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(sorted(self.entries))}"
            raise UserError(f"unknown model '{name}'{hint}")
        return self.entries[name]

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self.entries if fnmatch.fnmatch(n, pattern))


_DEFAULT = Registry()
_loaded = False


def default_registry() -> Registry:
    """The registry of built-in models (their modules are imported on first use)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODEL_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # a real missing dependency inside the module: surface it
                    raise
    return _DEFAULT


def register_model(name: str, *, trainer: Callable[..., Path] | None = None, description: str = ""):
    """Decorator: register `factory(config: dict, device) -> Predictor` under `name` in the default registry."""

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        _DEFAULT.register(ModelEntry(name, factory, trainer, description or (factory.__doc__ or "").strip()))
        return factory

    return decorate


def create_model(name: str, config: dict | None = None, device: str | None = None) -> Any:
    """Build a built-in model from its config dict (no weights)."""
    return default_registry().get(name).factory(config or {}, device)


def list_models(pattern: str = "*") -> list[str]:
    """Names of built-in models matching a glob pattern."""
    return default_registry().names(pattern)


def get_trainer(name: str) -> Callable[..., Path]:
    entry = default_registry().get(name)
    if entry.trainer is None:
        raise UserError(f"model '{name}' needs no training (it has no trainer)")
    return entry.trainer
