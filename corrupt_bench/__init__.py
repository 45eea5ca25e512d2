"""corrupt-bench: deterministic corrupted Human3.6M benchmarks and a scoring harness.

The public API is imported lazily (`from corrupt_bench import InputSpec` does not import torch
until a model is built), so the package face never drags the whole toolkit in.
"""

from __future__ import annotations

import importlib
from typing import Any

from corrupt_bench._version import __version__

# public name -> module that defines it (a stable API whatever the internal layout)
_EXPORTS: dict[str, str] = {
    "InputSpec": "corrupt_bench.models.protocol",
    "Predictor": "corrupt_bench.models.protocol",
    "Refiner": "corrupt_bench.models.protocol",
    "Detector2D": "corrupt_bench.models.protocol",
    "load_model": "corrupt_bench.models.loading",
    "load_detector": "corrupt_bench.models.loading",
    "list_models": "corrupt_bench.models.loading",
    "corrupt_image": "corrupt_bench.engine.api",
    "corrupt_keypoints": "corrupt_bench.engine.api",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'corrupt_bench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
