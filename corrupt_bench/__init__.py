"""corrupt-bench: deterministic corrupted Human3.6M benchmarks and a scoring harness.

The public API is imported lazily (`from corrupt_bench import InputSpec` does not import torch
until a model is built), so the package face never drags the whole toolkit in.
"""

from __future__ import annotations

import importlib
from typing import Any

from corrupt_bench._version import __version__

# public name -> module that defines it
_EXPORTS: dict[str, str] = {}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'corrupt_bench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
