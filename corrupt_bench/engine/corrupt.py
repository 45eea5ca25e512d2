"""The engine's entry point: one corruption at one severity on a multi-view clip, plus its record."""

from __future__ import annotations

from corrupt_bench.engine.base import Corruption
from corrupt_bench.engine.clip import Clip, CorruptionRecord
from corrupt_bench.engine.per_frame import apply_per_frame
from corrupt_bench.engine.registry import get_corruption
from corrupt_bench.layout import CLEAN


def corrupt_clip(
    clip: Clip, name: str, severity: int, seed: int, *, occluder_bank=None, corruption: Corruption | None = None
) -> tuple[Clip, CorruptionRecord]:
    """Apply corruption `name` at `severity` (0 or "clean": identity) to every view and frame of `clip`.

    `occluder_bank` (engine.voc.OccluderBank) feeds voc_occluder; None uses the built-in demo bank
    (the bank's digest is recorded in the params either way). `corruption` replaces the registered
    one (same name), e.g. with a manifest's overridden table. Returns a new clip (input arrays are
    never modified) and the record of what was applied.
    """
    clip.validate()
    if corruption is None:
        corruption = get_corruption(name)
    elif corruption.name != name:
        raise ValueError(f"corruption object is '{corruption.name}', not '{name}'")
    if severity == 0 or name == CLEAN:
        return clip, CorruptionRecord.identity(clip, name, corruption.version, 0 if name == CLEAN else severity, seed)
    corruption.params(severity)  # range check
    if corruption.family.clip_level is not None:
        return corruption.family.clip_level(clip, corruption, severity, seed, occluder_bank)
    return apply_per_frame(clip, corruption, severity, seed, occluder_bank)
