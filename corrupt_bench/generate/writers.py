"""Output writers: images (JPEG/PNG through cv2.imencode) and label tables (parquet through pyarrow).

Every file is written to a temporary name in its folder and renamed into place, so a reader (or a
resumed run) never sees half a file. Paths are joined with `safe_join`, which refuses anything
that would land outside the output root.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from corrupt_bench.errors import UserError

# The label table of INTERFACES.md ("Generated benchmark"), in column order.
LABEL_COLUMNS: tuple[str, ...] = (
    "variant", "corruption", "severity", "subject", "sequence", "action", "subaction", "camera", "frame",
    "image", "joints_3d_cam", "joints_3d_world", "joints_2d", "joints_2d_crop", "box", "crop", "image_size",
    "keypoints_2d", "keypoint_conf", "occluded", "view_valid", "time_offset", "params",
)  # fmt: skip


def label_schema():
    """The pyarrow schema of a label file."""
    import pyarrow as pa

    f32 = pa.list_(pa.float32())
    return pa.schema(
        [
            ("variant", pa.string()),
            ("corruption", pa.string()),
            ("severity", pa.int8()),
            ("subject", pa.string()),
            ("sequence", pa.string()),
            ("action", pa.string()),
            ("subaction", pa.int8()),
            ("camera", pa.string()),
            ("frame", pa.int32()),
            ("image", pa.string()),
            ("joints_3d_cam", f32),
            ("joints_3d_world", f32),
            ("joints_2d", f32),
            ("joints_2d_crop", f32),
            ("box", f32),
            ("crop", f32),
            ("image_size", pa.list_(pa.int32())),
            ("keypoints_2d", f32),
            ("keypoint_conf", f32),
            ("occluded", pa.list_(pa.bool_())),
            ("view_valid", pa.bool_()),
            ("time_offset", pa.float32()),
            ("params", pa.string()),
        ]
    )


def safe_join(root: str | Path, *parts: str) -> Path:
    """`root / parts...`, refusing absolute parts, '..' and anything resolving outside `root`."""
    root = Path(root)
    for part in parts:
        if Path(part).is_absolute() or ".." in Path(part).parts or not str(part):
            raise UserError(f"output path {'/'.join(parts)!r} would escape the output root", root)
    path = root.joinpath(*parts)
    resolved_root = root.resolve()
    if not path.resolve().is_relative_to(resolved_root):
        raise UserError(f"output path {'/'.join(parts)!r} would escape the output root", root)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_image(image_rgb: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    """Encode an HxWx3 uint8 RGB image as JPEG (`quality`, 4:2:0, baseline) or PNG (level 3)."""
    import cv2

    bgr = np.ascontiguousarray(image_rgb[..., ::-1])
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
    """Decode JPEG/PNG bytes into HxWx3 uint8 RGB (None-safe: raises ValueError on garbage)."""
    import cv2

    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if array is None:
        raise ValueError("not a decodable image")
    return array[..., ::-1]


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
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
