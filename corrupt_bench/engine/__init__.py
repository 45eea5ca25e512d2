"""corrupt_bench.engine: keyed randomness, the corruption registry and clip-level application."""

from corrupt_bench.engine.base import (
    Corruption,
    Family,
    FrameContext,
    get_corruption,
    list_corruptions,
    load_registry,
)
from corrupt_bench.engine.clip import Clip, CorruptionRecord, corrupt_clip
from corrupt_bench.engine.rng import RngKey

__all__ = [
    "Clip",
    "Corruption",
    "CorruptionRecord",
    "Family",
    "FrameContext",
    "RngKey",
    "corrupt_clip",
    "get_corruption",
    "list_corruptions",
    "load_registry",
]
