"""corrupt_bench.engine: keyed randomness, the corruption registry and clip-level application.

Modules, bottom to top (no circle): `rng`, `params` (typed parameter models), `base` (types),
`clip` (Clip, CorruptionRecord), `per_frame` (keyed per-frame application), the family modules
(`noise`, `blur`, `photometric`, `occlusion`, `views`, `keypoints`), `registry` (families joined
with their tables), `corrupt` (`corrupt_clip`), `api` (`corrupt_image`, `corrupt_keypoints`: one call
per image or pose).

The names below are imported on first use (PEP 562), so importing a submodule such as
`corrupt_bench.engine.commands` (every CLI start does) does not load OpenCV, SciPy and the registry.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "Clip": "clip",
    "Corruption": "base",
    "CorruptionRecord": "clip",
    "Family": "base",
    "FrameContext": "base",
    "ParamError": "params",
    "Params": "params",
    "RngKey": "rng",
    "corrupt_clip": "corrupt",
    "corrupt_image": "api",
    "corrupt_keypoints": "api",
    "get_corruption": "registry",
    "list_corruptions": "registry",
    "load_registry": "registry",
    "params_to_json": "base",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'corrupt_bench.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"corrupt_bench.engine.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
