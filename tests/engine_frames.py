"""Deterministic test clips for the engine tests (no conftest: import explicitly).

The frames are the engine's demo clip: a stick figure drawn at the exact projections of a
synthetic mocap sequence through the real Human3.6M cameras, over a keyed textured background.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from corrupt_bench.engine.clip import Clip
from corrupt_bench.engine.frames import demo_clip


@lru_cache(maxsize=8)
def _cached(n_views: int, n_frames: int, size: int, start: int, step: int, crop: bool) -> Clip:
    return demo_clip(n_views=n_views, n_frames=n_frames, size=size, start=start, step=step, crop=crop)


def test_clip(n_views: int = 1, n_frames: int = 1, size: int = 96, start: int = 10, step: int = 1, crop: bool = True) -> Clip:
    """A cached clip; never modify its arrays (corrupt_clip does not)."""
    return _cached(n_views, n_frames, size, start, step, crop)


test_clip.__test__ = False  # not a pytest test


def keypoints_only(clip: Clip) -> Clip:
    from dataclasses import replace

    return replace(clip, images=None, images_next=None)


def output_bytes(clip: Clip, record) -> bytes:
    """Everything a corruption produced, as bytes (images, labels, flags, confidences)."""
    parts = [] if clip.images is None else [clip.images.tobytes()]
    parts += [
        np.ascontiguousarray(record.joints_2d, dtype=np.float64).tobytes(),
        record.occluded.tobytes(),
        record.view_valid.tobytes(),
        np.asarray(record.time_offset, dtype=np.float64).tobytes(),
    ]
    if record.confidence is not None:
        parts.append(np.ascontiguousarray(record.confidence).tobytes())
    return b"".join(parts)
