"""Corruption record -> label rows: a unit's label table, built chunk by chunk.

One row per kept frame and camera, frame-major (cameras in the manifest's order), in the columns
of `layout.LABEL_COLUMNS` (types: `layout.label_schema()`). 2D labels are given in full-frame px
(`joints_2d`) and in the output image's px (`joints_2d_crop`); a keypoint corruption leaves the
labels clean and writes its corrupted keypoints and confidences beside them.

`chunk_table` builds a chunk's rows as arrow columns straight from the arrays (float64 values
rounded to float32 once, as the schema stores them); `LabelSpool` keeps a unit's chunk tables in
an anonymous temporary file until the unit ends, so the rows of the many units that share decoded
frames never pile up in memory.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from corrupt_bench.engine import CorruptionRecord
from corrupt_bench.generate.clips import ClipChunk
from corrupt_bench.generate.planner import WorkUnit
from corrupt_bench.io import name_the_file
from corrupt_bench.layout import LABEL_COLUMNS, label_schema


def to_full(points_img: np.ndarray, affine: np.ndarray | None) -> np.ndarray:
    """(V, T, 17, 2) image px -> full-frame px (identity without a crop)."""
    points = np.asarray(points_img, dtype=np.float64)
    if affine is None:
        return points
    scale = np.stack([affine[..., 0, 0], affine[..., 1, 1]], axis=-1)[:, :, None, :]
    shift = affine[..., :, 2][:, :, None, :]
    return (points - shift) / scale


# Arrow arrays are built from buffers: pa.array() would also import pandas (to recognise its types),
# a second of start-up in every worker that never uses it.


def _column(values: np.ndarray, dtype):
    """1-D numeric or bool array -> arrow array of `dtype` (no nulls)."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        data = np.packbits(values, bitorder="little")
    else:
        data = values.astype(dtype.to_pandas_dtype(), copy=False)
    return pa.Array.from_buffers(dtype, len(values), [None, pa.py_buffer(data)])


def _lists(values: np.ndarray, dtype):
    """(n, ...) array -> arrow list column of `dtype` items, one list of the flattened row per row."""
    import pyarrow as pa

    n = values.shape[0]
    width = int(np.prod(values.shape[1:], dtype=np.int64))
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32) if width else np.zeros(n + 1, dtype=np.int32)
    items = _column(np.asarray(values).reshape(-1), dtype)
    return pa.Array.from_buffers(pa.list_(dtype), n, [None, pa.py_buffer(offsets)], children=[items])


def _strings(values: list[str | None]):
    """Python strings (None: null) -> arrow string array."""
    import pyarrow as pa

    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    valid = None
    if any(v is None for v in values):
        valid = pa.py_buffer(np.packbits(np.array([v is not None for v in values]), bitorder="little"))
    return pa.Array.from_buffers(pa.string(), len(values), [valid, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def chunk_table(
    unit: WorkUnit,
    chunk: ClipChunk,
    record: CorruptionRecord,
    images: Mapping[tuple[int, int], str],
    keypoint_output: bool,
):
    """The label rows of `chunk`'s kept frames as a pyarrow table; `images` maps (view, clip time)
    to the image's path relative to the benchmark root (absent without images)."""
    import pyarrow as pa

    clip = chunk.clip
    seq = unit.seq
    v_n = clip.n_views
    times = np.repeat(np.asarray(chunk.keep, dtype=np.int64), v_n)  # frame-major rows
    views = np.tile(np.arange(v_n), len(chunk.keep))
    n = len(times)
    labels_img = np.asarray(clip.joints_2d, dtype=np.float64) if keypoint_output else record.joints_2d
    labels_full = to_full(labels_img, clip.crop_affine)
    f32, i32 = pa.float32(), pa.int32()
    keypoints = confidence = pa.nulls(n, pa.list_(f32))
    if keypoint_output:
        corrupted = to_full(record.joints_2d, clip.crop_affine)
        # a missing joint (confidence 0, as joint_dropout leaves it) is (0, 0) in full-frame px, the
        # detectors' convention: not the crop's corner that (0, 0) in crop px maps to
        corrupted[np.asarray(record.confidence) == 0] = 0.0
        keypoints = _lists(corrupted[views, times], f32)
        confidence = _lists(record.confidence[views, times], f32)
    pairs = list(zip(views.tolist(), times.tolist(), strict=True))
    columns = {
        "variant": _strings([unit.variant] * n),
        "corruption": _strings([unit.corruption] * n),
        "severity": _column(np.full(n, unit.severity), pa.int8()),
        "subject": _strings([seq.subject] * n),
        "sequence": _strings([seq.sequence] * n),
        "action": _strings([seq.action] * n),
        "subaction": _column(np.full(n, seq.subaction), pa.int8()),
        "camera": _strings([clip.cameras[v].camera_id for v, _ in pairs]),
        "frame": _column(np.asarray(clip.frame_indices)[times], i32),
        "image": _strings([images.get(pair) for pair in pairs]),
        "joints_3d_cam": _lists(chunk.joints_3d_cam[views, times], f32),
        "joints_3d_world": _lists(np.asarray(clip.joints_3d_world)[times], f32),
        "joints_2d": _lists(labels_full[views, times], f32),
        "joints_2d_crop": _lists(labels_img[views, times], f32),
        "box": _lists(chunk.boxes_full[views, times], f32),
        "crop": _lists(chunk.crops[views, times], f32),
        "image_size": _lists(np.asarray(chunk.image_sizes, dtype=np.int64)[views], i32),
        "keypoints_2d": keypoints,
        "keypoint_conf": confidence,
        "occluded": _lists(np.asarray(record.occluded, dtype=bool)[views, times], pa.bool_()),
        "view_valid": _column(np.asarray(record.view_valid, dtype=bool)[views, times], pa.bool_()),
        "time_offset": _column(np.asarray(record.time_offset, dtype=np.float64)[views], f32),
        "params": _strings(
            [json.dumps(record.params[v][t], sort_keys=True, separators=(",", ":"), allow_nan=True) for v, t in pairs]
        ),
    }
    return pa.Table.from_arrays([columns[name] for name in LABEL_COLUMNS], schema=label_schema())


class LabelSpool:
    """A unit's label tables, chunk by chunk, in an anonymous temporary file in `folder` (an arrow
    IPC stream; the file has no name, so a killed run leaves nothing behind); `table()` reads them
    back as one table with contiguous columns."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        self._file = tempfile.TemporaryFile(dir=folder)
        self._writer = None

    def append(self, table) -> None:
        import pyarrow as pa

        try:
            if self._writer is None:
                self._writer = pa.ipc.new_stream(self._file, table.schema)
            self._writer.write_table(table)
        except OSError as exc:  # disk full, file-size limit: the file has no name, so name its folder
            name_the_file(exc, self._folder)
            raise

    def table(self):
        import pyarrow as pa

        if self._writer is None:
            raise ValueError("no label rows were appended")
        try:
            self._writer.close()
        except OSError as exc:
            name_the_file(exc, self._folder)
            raise
        self._file.seek(0)
        return pa.ipc.open_stream(self._file).read_all().combine_chunks()

    def close(self) -> None:
        try:
            self._file.close()  # flushes what is buffered: the disk may refuse it here
        except OSError as exc:
            name_the_file(exc, self._folder)
            raise

    def __enter__(self) -> LabelSpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
