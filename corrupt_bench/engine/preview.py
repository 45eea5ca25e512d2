"""A preview strip of one corruption: a synthetic frame at severities 0..5, one of them shown large."""

from __future__ import annotations

import cv2
import numpy as np

from corrupt_bench.engine.corrupt import corrupt_clip
from corrupt_bench.engine.frames import demo_clip
from corrupt_bench.engine.registry import get_corruption

_RED, _GREEN, _WHITE = (230, 30, 30), (40, 220, 60), (255, 255, 255)


def preview_clip(size: int):
    """The synthetic source's walking person when available, else the engine's stick figure."""
    try:
        from corrupt_bench.engine.frames import synthetic_clip

        return synthetic_clip(n_views=2, n_frames=3, size=size, start=100)
    except ImportError:
        return demo_clip(n_views=2, n_frames=3, size=size, start=100)


def _tile(name: str, severity: int, seed: int, size: int, clip) -> np.ndarray:
    out, rec = corrupt_clip(clip, name, severity, seed)
    tile = np.ascontiguousarray(out.images[0, 1])
    if rec.confidence is not None:  # keypoint corruption: clean joints green, corrupted red
        for clean, noisy, conf in zip(clip.joints_2d[0, 1], rec.joints_2d[0, 1], rec.confidence[0, 1], strict=True):
            cv2.circle(tile, tuple(int(round(c)) for c in clean), 2, _GREEN, -1, cv2.LINE_AA)
            if conf > 0:
                cv2.circle(tile, tuple(int(round(c)) for c in noisy), 2, _RED, -1, cv2.LINE_AA)
    if not rec.view_valid[0, 1]:
        cv2.putText(tile, "dropped", (4, size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _WHITE, 1, cv2.LINE_AA)
    return tile


def render_preview(name: str, severity: int, seed: int = 0, size: int = 160) -> np.ndarray:
    """RGB strip: severity `severity` at 2x on top, severities 0..5 below (the chosen one framed)."""
    corruption = get_corruption(name)
    corruption.params(severity) if severity else None
    clip = preview_clip(size)
    tiles = [_tile(name, s, seed, size, clip) for s in range(6)]
    width = 6 * size
    big = cv2.resize(tiles[severity], (2 * size, 2 * size), interpolation=cv2.INTER_NEAREST)
    top = np.full((2 * size + 30, width, 3), 24, np.uint8)
    x0 = (width - 2 * size) // 2
    top[30:, x0 : x0 + 2 * size] = big
    title = f"{name} v{corruption.version} ({corruption.modality}) severity {severity}"
    cv2.putText(top, title, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, _WHITE, 1, cv2.LINE_AA)
    row = np.full((size + 22, width, 3), 24, np.uint8)
    for s, tile in enumerate(tiles):
        row[22:, s * size : (s + 1) * size] = tile
        cv2.putText(row, f"{s}", (s * size + size // 2 - 5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _WHITE, 1, cv2.LINE_AA)
        if s == severity:
            cv2.rectangle(row, (s * size, 22), ((s + 1) * size - 1, size + 21), (250, 200, 40), 2)
    return np.concatenate([top, row], axis=0)
