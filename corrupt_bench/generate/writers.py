"""Output writers: images (JPEG/PNG through cv2.imencode) and label tables (parquet through pyarrow).

Every file goes through `corrupt_bench.io` (atomic write, confined paths); the label columns and
their schema are `corrupt_bench.layout`'s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corrupt_bench.io import atomic_write_bytes, atomic_write_parquet
from corrupt_bench.layout import LABEL_COLUMNS, label_schema


def encode_image(image_rgb: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    """Encode an HxWx3 uint8 RGB image as JPEG (`quality`, 4:2:0, baseline) or PNG (level 3)."""
    import cv2

    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)  # the same bytes as a reversed copy, without numpy's strided copy
    if fmt == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_OPTIMIZE, 0]
        ok, buf = cv2.imencode(".jpg", bgr, params)
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image_rgb.shape} image as {fmt}")
    return buf.tobytes()


def decode_image(data: bytes) -> np.ndarray:
    """Decode JPEG/PNG bytes into HxWx3 uint8 RGB (contiguous; raises ValueError on garbage)."""
    import cv2

    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR_RGB)
    if array is None:
        raise ValueError("not a decodable image")
    return array


def write_image(path: Path, image_rgb: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    """Encode and atomically write one image; return the encoded bytes (for the digest)."""
    data = encode_image(image_rgb, fmt, quality)
    atomic_write_bytes(path, data)
    return data


def labels_table(rows: dict[str, list]):
    """A pyarrow table with the label schema from column lists."""
    import pyarrow as pa

    schema = label_schema()
    missing = [c for c in LABEL_COLUMNS if c not in rows]
    if missing:
        raise ValueError(f"label columns missing: {missing}")
    return pa.table({c: pa.array(rows[c], type=schema.field(c).type) for c in LABEL_COLUMNS}, schema=schema)


def write_labels(path: Path, table) -> None:
    """Atomically write a label table as parquet (zstd, no pandas metadata)."""
    atomic_write_parquet(path, table, compression="zstd")
