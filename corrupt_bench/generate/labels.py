"""Corruption record -> label rows: the per-row columns of a unit's label table.

One row per kept frame and camera, frame-major (cameras in the manifest's order), in the columns
of `layout.LABEL_COLUMNS` (types: `layout.label_schema()`). 2D labels are given in full-frame px
(`joints_2d`) and in the output image's px (`joints_2d_crop`); a keypoint corruption leaves the
labels clean and writes its corrupted keypoints and confidences beside them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from corrupt_bench.data.cameras import world_to_camera
from corrupt_bench.engine import CorruptionRecord
from corrupt_bench.generate.clips import ClipChunk
from corrupt_bench.generate.planner import WorkUnit
from corrupt_bench.layout import LABEL_COLUMNS


def empty_columns() -> dict[str, list]:
    """Column name -> values, for every label column (filled by `append_rows`)."""
    return {name: [] for name in LABEL_COLUMNS}


def to_full(points_img: np.ndarray, affine: np.ndarray | None) -> np.ndarray:
    """(V, T, 17, 2) image px -> full-frame px (identity without a crop)."""
    points = np.asarray(points_img, dtype=np.float64)
    if affine is None:
        return points
    scale = np.stack([affine[..., 0, 0], affine[..., 1, 1]], axis=-1)[:, :, None, :]
    shift = affine[..., :, 2][:, :, None, :]
    return (points - shift) / scale


def _floats(array: np.ndarray) -> list[float]:
    return np.asarray(array, np.float32).ravel().tolist()


def append_rows(
    columns: dict[str, list],
    unit: WorkUnit,
    chunk: ClipChunk,
    record: CorruptionRecord,
    images: Mapping[tuple[int, int], str],
    keypoint_output: bool,
) -> None:
    """Append the rows of `chunk`'s kept frames; `images` maps (view, clip time) to the image's
    path relative to the benchmark root (absent without images)."""
    clip = chunk.clip
    seq = unit.seq
    labels_img = np.asarray(clip.joints_2d, dtype=np.float64) if keypoint_output else record.joints_2d
    labels_full = to_full(labels_img, clip.crop_affine)
    keypoints_full = to_full(record.joints_2d, clip.crop_affine) if keypoint_output else None
    confidence = record.confidence if keypoint_output else None
    for t in chunk.keep:
        world = clip.joints_3d_world[t]
        for v, cam in enumerate(clip.cameras):
            row = {
                "variant": unit.variant,
                "corruption": unit.corruption,
                "severity": unit.severity,
                "subject": seq.subject,
                "sequence": seq.sequence,
                "action": seq.action,
                "subaction": seq.subaction,
                "camera": cam.camera_id,
                "frame": int(clip.frame_indices[t]),
                "image": images.get((v, t)),
                "joints_3d_cam": _floats(world_to_camera(world, cam)),
                "joints_3d_world": _floats(world),
                "joints_2d": _floats(labels_full[v, t]),
                "joints_2d_crop": _floats(labels_img[v, t]),
                "box": _floats(chunk.boxes_full[v, t]),
                "crop": _floats(chunk.crops[v, t]),
                "image_size": [int(n) for n in chunk.image_sizes[v]],
                "keypoints_2d": None if keypoints_full is None else _floats(keypoints_full[v, t]),
                "keypoint_conf": None if confidence is None else _floats(confidence[v, t]),
                "occluded": [bool(b) for b in record.occluded[v, t]],
                "view_valid": bool(record.view_valid[v, t]),
                "time_offset": float(record.time_offset[v]),
                "params": json.dumps(record.params[v][t], sort_keys=True, separators=(",", ":"), allow_nan=True),
            }
            for name, value in row.items():
                columns[name].append(value)
