"""corrupt_bench.engine: keyed randomness, the corruption registry and clip-level application.

Modules, bottom to top (no circle): `rng`, `params` (typed parameter models), `base` (types),
`clip` (Clip, CorruptionRecord), `per_frame` (keyed per-frame application), the family modules
(`noise`, `blur`, `photometric`, `occlusion`, `views`, `keypoints`), `registry` (families joined
with their tables), `corrupt` (`corrupt_clip`).
"""

from corrupt_bench.engine.base import Corruption, Family, FrameContext, params_to_json
from corrupt_bench.engine.clip import Clip, CorruptionRecord
from corrupt_bench.engine.corrupt import corrupt_clip
from corrupt_bench.engine.params import ParamError, Params
from corrupt_bench.engine.registry import get_corruption, list_corruptions, load_registry
from corrupt_bench.engine.rng import RngKey

__all__ = [
    "Clip",
    "Corruption",
    "CorruptionRecord",
    "Family",
    "FrameContext",
    "ParamError",
    "Params",
    "RngKey",
    "corrupt_clip",
    "get_corruption",
    "list_corruptions",
    "load_registry",
    "params_to_json",
]
