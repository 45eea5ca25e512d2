"""Export a generated benchmark's 2D keypoints (and its 3D labels) in the files published lifters read.

Per variant, corruption and severity (a cell), the 2D input of a lifter: the cell's corrupted
keypoints (`keypoints_2d`, keypoint corruptions) or else its 2D labels (`joints_2d`: clean, or moved
by a desync), with a confidence per joint and the occlusion mask beside them. With `from_run`, a score
run's detections on the cell's (corrupted) images take the place of the labels.

```
OUT/<variant>/data_3d_h36m.npz                         --format vp3d: VideoPose3D's 3D file
OUT/<variant>/data_2d_h36m_<corruption>_<severity>.npz  VideoPose3D's 2D file, one per cell
OUT/<variant>/annotation_body3d/h36m_<corruption>_<severity>.npz   --format mmpose: body3d annotation
OUT/<variant>/annotation_body3d/cameras.pkl             mmpose's camera file
OUT/export-<format>.json                                what was exported from where, and every note
```

VideoPose3D (`data_2d_h36m_<tag>.npz`): `positions_2d[subject][action]` = [4 arrays (N, 17, 2) float32
px], cameras in Human3.6M order 54138969, 55011271, 58860488, 60457274, actions keyed as VideoPose3D
keys them ("Walking 1", "Photo 1" for the raw "TakingPhoto 1"); `metadata` = {layout_name "h36m",
num_joints 17, keypoints_symmetry [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}. Beside them, in the
same nesting: `confidence` ((N, 17) float32: the corruption's or the detector's; 1 for label 2D; 0
for every joint of a dropped view), `occluded` ((N, 17) bool), `view_valid` ((N,) bool) and, per
sequence, `frames` ((N,) absolute source frame indices). VideoPose3D reads only `positions_2d` and
`metadata`. `data_3d_h36m.npz`: `positions_3d[subject][action]` = (N, 32, 3) float32 metres, world
frame: the 17 joints at their raw indices and the 15 joints VideoPose3D drops at their nearest kept
ancestor (not ground truth). Every generated frame is exported (for occluded-h36m the full 50 fps: its evaluation frames, every 5th, are
those whose index is a multiple of the manifest's `eval_step`),
the same frames in the 2D and 3D files; VideoPose3D needs all four Human3.6M cameras, so a variant
without them is refused for this format. The pickles name `numpy.core.multiarray`, so numpy 1.x
(VideoPose3D's era) and 2.x both load them.

mmpose (`h36m_<tag>.npz`, no pickle): one row per (sequence, camera, frame) in that order, `imgname`
in mmpose's naming (`S9/S9_Walking_1.54138969/S9_Walking_1.54138969_000001.jpg`; no image is written),
`center`, `scale` (mmpose's box: from the 2D labels, scale = 1.2 * max side / 200), `part` (N, 17, 3)
= the 2D input and its confidence, `S` (N, 17, 4) = the 3D labels in the camera frame, metres, and 1;
plus `occluded`, `view_valid` and `frame`. `cameras.pkl`: the benchmark's `cameras.json` in mmpose's
convention (see `corrupt_bench.data.mmpose_h36m`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from corrupt_bench.data import quirks
from corrupt_bench.data.cameras import CAMERA_IDS, load_cameras
from corrupt_bench.data.mmpose_h36m import image_name, write_mmpose_cameras
from corrupt_bench.data.skeleton import h36m17_to_raw
from corrupt_bench.data.vp3d_npz import H36M_METADATA, write_npz
from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_write_json, confined
from corrupt_bench.layout import (
    CAMERA_FILE_NAME,
    CLEAN,
    DETECTIONS_DIR,
    LABEL_SUFFIX,
    LOCK_NAME,
    label_glob,
    parse_label_path,
    sequence_stem,
)

FORMATS = ("vp3d", "mmpose")
N_JOINTS = 17
LABEL_COLUMNS_READ = ("subject", "sequence", "camera", "frame", "joints_2d", "joints_3d_cam", "joints_3d_world",
                      "keypoints_2d", "keypoint_conf", "occluded", "view_valid")  # fmt: skip
DETECTION_COLUMNS = ("camera", "frame", "keypoints_2d", "keypoint_conf")


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    format: str
    files: tuple[str, ...]  # relative to out
    cells: int
    notes: tuple[str, ...]


@dataclass(frozen=True)
class SequenceArrays:
    """One sequence of one cell: per camera (V), per frame (T), ordered by camera then frame."""

    subject: str
    sequence: str
    cameras: tuple[str, ...]
    frames: np.ndarray  # (T,) absolute source frames
    keypoints: np.ndarray  # (V, T, 17, 2) float32 px: the 2D input
    confidence: np.ndarray  # (V, T, 17) float32
    occluded: np.ndarray  # (V, T, 17) bool
    view_valid: np.ndarray  # (V, T) bool
    joints_2d: np.ndarray  # (V, T, 17, 2) float32 px: the 2D labels
    joints_3d_cam: np.ndarray  # (V, T, 17, 3) float32 mm
    joints_3d_world: np.ndarray  # (T, 17, 3) float32 mm


def _list_column(table, name: str, width: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(values (R, width) float32 with NaN in null rows, valid (R,) bool) of a list column."""
    import pyarrow.compute as pc

    column = table.column(name).combine_chunks()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    values = np.full((len(column), width), np.nan, dtype=np.float32)
    if valid.any():
        present = column.filter(column.is_valid())
        lengths = pc.list_value_length(present).to_numpy(zero_copy_only=False)
        if np.any(lengths != width):
            raise UserError(f"column {name} holds lists of {sorted(set(lengths.tolist()))} values, expected {width}", path)
        values[valid] = pc.list_flatten(present).to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, width)
    return values, valid


def read_sequence(path: Path, camera_order: tuple[str, ...] | None = None) -> SequenceArrays:
    """The label file of one sequence of one cell as per-camera arrays (cameras in `camera_order`, or
    Human3.6M's order then any others as they first appear)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=list(LABEL_COLUMNS_READ))
    except (OSError, ValueError, KeyError) as exc:  # pyarrow's errors derive from these
        raise UserError(f"unreadable label file ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
    if table.num_rows == 0:
        raise UserError("label file holds no rows", path)
    plain = {name: table.column(name).to_numpy(zero_copy_only=False) for name in ("subject", "sequence", "camera", "frame", "view_valid")}
    seen = list(dict.fromkeys(plain["camera"].tolist()))
    cameras = camera_order if camera_order is not None else tuple(
        [c for c in CAMERA_IDS if c in seen] + [c for c in seen if c not in CAMERA_IDS])  # fmt: skip
    if sorted(seen) != sorted(cameras):
        raise UserError(f"label file holds cameras {', '.join(seen)}", path)
    frames = np.unique(plain["frame"]).astype(np.int64)
    v_of = {c: i for i, c in enumerate(cameras)}
    t_of = np.searchsorted(frames, plain["frame"])
    v_idx = np.array([v_of[c] for c in plain["camera"].tolist()])
    if len(table) != len(cameras) * len(frames) or len(set(zip(v_idx.tolist(), t_of.tolist(), strict=True))) != len(table):
        raise UserError("label file does not hold exactly one row per camera and frame", path)

    def grid(values: np.ndarray, tail: tuple[int, ...]) -> np.ndarray:
        out = np.empty((len(cameras), len(frames), *tail), dtype=values.dtype)
        out[v_idx, t_of] = values.reshape(len(values), *tail)
        return out

    joints_2d, _ = _list_column(table, "joints_2d", 2 * N_JOINTS, path)
    cam3d, _ = _list_column(table, "joints_3d_cam", 3 * N_JOINTS, path)
    world, _ = _list_column(table, "joints_3d_world", 3 * N_JOINTS, path)
    keypoints, has_kp = _list_column(table, "keypoints_2d", 2 * N_JOINTS, path)
    conf, has_conf = _list_column(table, "keypoint_conf", N_JOINTS, path)
    occluded = np.stack(table.column("occluded").to_numpy(zero_copy_only=False)).astype(bool)
    view_valid = plain["view_valid"].astype(bool)
    keypoints = np.where(has_kp[:, None], keypoints, joints_2d)  # label 2D where the cell has no keypoints
    conf = np.where(has_conf[:, None], conf, np.float32(1.0))
    conf = np.where(view_valid[:, None], conf, np.float32(0.0)).astype(np.float32)  # a dropped view: no confidence
    world_grid = grid(world, (N_JOINTS, 3))
    return SequenceArrays(
        subject=str(plain["subject"][0]), sequence=str(plain["sequence"][0]), cameras=tuple(cameras), frames=frames,
        keypoints=grid(keypoints, (N_JOINTS, 2)), confidence=grid(conf, (N_JOINTS,)), occluded=grid(occluded, (N_JOINTS,)),
        view_valid=grid(view_valid, ()), joints_2d=grid(joints_2d, (N_JOINTS, 2)), joints_3d_cam=grid(cam3d, (N_JOINTS, 3)),
        joints_3d_world=world_grid[0],
    )  # fmt: skip


def _with_detections(seq: SequenceArrays, path: Path) -> SequenceArrays:
    """The sequence with a detector's 2D and confidences (a cached detections parquet) as its input."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=list(DETECTION_COLUMNS))
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"unreadable detections ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
    keypoints, has_kp = _list_column(table, "keypoints_2d", 2 * N_JOINTS, path)
    conf, has_conf = _list_column(table, "keypoint_conf", N_JOINTS, path)
    if not (has_kp.all() and has_conf.all()):
        raise UserError("detections with null keypoints_2d or keypoint_conf", path)
    cameras = table.column("camera").to_numpy(zero_copy_only=False).tolist()
    frames = table.column("frame").to_numpy(zero_copy_only=False).tolist()
    row_of = {(c, int(f)): i for i, (c, f) in enumerate(zip(cameras, frames, strict=True))}
    if len(row_of) != len(cameras):
        raise UserError("detections hold a (camera, frame) twice", path)
    new_kp = np.empty_like(seq.keypoints)
    new_conf = np.empty_like(seq.confidence)
    for v, camera in enumerate(seq.cameras):
        for t, frame in enumerate(seq.frames.tolist()):
            row = row_of.get((camera, frame))
            if row is None:
                raise UserError(f"no detection for camera {camera} frame {frame} (the labels have it)", path)
            new_kp[v, t] = keypoints[row].reshape(N_JOINTS, 2)
            new_conf[v, t] = conf[row]
    return replace(seq, keypoints=new_kp, confidence=new_conf)


def _cells(bench: Path) -> dict[tuple[str, str, int], dict[tuple[str, str], Path]]:
    cells: dict[tuple[str, str, int], dict[tuple[str, str], Path]] = {}
    for path in sorted(bench.glob(label_glob())):
        parsed = parse_label_path(bench, path)
        if parsed is None:
            continue
        variant, corruption, severity, subject, sequence = parsed
        cells.setdefault((variant, corruption, severity), {})[(subject, sequence)] = path
    if not cells:
        raise UserError("no label files (<variant>/<corruption>/<severity>/labels/*.parquet)", bench)
    # each variant's clean cell first: it is the reference the other cells' frames are checked against
    return dict(sorted(cells.items(), key=lambda item: (item[0][0], item[0][1] != CLEAN, item[0][1], item[0][2])))


def _detector_root(run: Path, detector: str | None) -> Path:
    root = run / DETECTIONS_DIR
    keys = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not keys:
        raise UserError(f"no cached detections ({DETECTIONS_DIR}/<detector key>/...) in the run", run)
    if detector is None:
        if len(keys) > 1:
            raise UserError(f"the run holds detections of {len(keys)} detectors: choose one with --detector ({', '.join(keys)})", run)
        detector = keys[0]
    if detector not in keys:
        raise UserError(f"no detections of detector {detector!r} (the run has {', '.join(keys)})", run)
    return confined(root, detector)


def _vp3d_action(sequence: str) -> str:
    """VideoPose3D's key of a sequence: the raw stem with its action renamed ("TakingPhoto 1" -> "Photo 1")."""
    try:
        return quirks.canonical_sequence(sequence)
    except ValueError:
        raise UserError(f"sequence {sequence!r} is not a Human3.6M sequence name: VideoPose3D's files cannot hold it") from None


def _nest(seqs: list[SequenceArrays], value) -> dict:
    """{subject: {action: value(seq)}} in VideoPose3D's keys; two sequences with one key are refused."""
    nested: dict[str, dict] = {}
    for seq in seqs:
        actions = nested.setdefault(seq.subject, {})
        key = _vp3d_action(seq.sequence)
        if key in actions:
            raise UserError(f"{seq.subject}: two sequences are both VideoPose3D's '{key}'")
        actions[key] = value(seq)
    return nested


def _check_vp3d_cameras(cells: dict[tuple[str, str, int], dict[tuple[str, str], Path]]) -> None:
    """Before anything is written: every label file holds the four Human3.6M cameras and a Human3.6M
    sequence name (VideoPose3D's loader asserts one 2D array per camera of its dataset)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for files in cells.values():
        for (subject, sequence), path in files.items():
            _vp3d_action(sequence)
            try:
                cameras = set(pc.unique(pq.read_table(path, columns=["camera"]).column("camera")).to_pylist())
            except (OSError, ValueError, KeyError) as exc:
                raise UserError(f"unreadable label file ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
            if cameras != set(CAMERA_IDS):
                raise UserError(
                    f"{subject} {sequence} has cameras {', '.join(sorted(cameras))}: VideoPose3D's files hold the four "
                    f"Human3.6M cameras ({', '.join(CAMERA_IDS)}); export --format mmpose instead", path
                )


def _write_vp3d(folder: Path, corruption: str, severity: int, seqs: list[SequenceArrays]) -> list[Path]:
    path = folder / f"data_2d_h36m_{corruption}_{severity}.npz"
    write_npz(
        path,
        positions_2d=_nest(seqs, lambda s: [np.ascontiguousarray(s.keypoints[v]) for v in range(len(s.cameras))]),
        metadata=dict(H36M_METADATA),
        confidence=_nest(seqs, lambda s: [np.ascontiguousarray(s.confidence[v]) for v in range(len(s.cameras))]),
        occluded=_nest(seqs, lambda s: [np.ascontiguousarray(s.occluded[v]) for v in range(len(s.cameras))]),
        view_valid=_nest(seqs, lambda s: [np.ascontiguousarray(s.view_valid[v]) for v in range(len(s.cameras))]),
        frames=_nest(seqs, lambda s: s.frames.astype(np.int32)),
    )
    return [path]


def _write_vp3d_3d(folder: Path, seqs: list[SequenceArrays]) -> Path:
    positions = _nest(seqs, lambda s: h36m17_to_raw(s.joints_3d_world.astype(np.float64) / 1000.0).astype(np.float32))
    return write_npz(folder / "data_3d_h36m.npz", positions_3d=positions)


def _mmpose_camera_id(seq: SequenceArrays) -> None:
    for name, value in (("subject", seq.subject), *(("camera", c) for c in seq.cameras)):
        if "_" in value or "." in value:
            raise UserError(f"{name} {value!r}: mmpose parses image names at '_' and '.', so its ids may hold neither")
    if "." in seq.sequence:
        raise UserError(f"sequence {seq.sequence!r}: mmpose parses image names at '.'")


def _write_mmpose(folder: Path, corruption: str, severity: int, seqs: list[SequenceArrays]) -> list[Path]:
    names, centers, scales, parts, s3d, occluded, valid, frames = [], [], [], [], [], [], [], []
    for seq in seqs:
        _mmpose_camera_id(seq)
        for v, camera in enumerate(seq.cameras):
            names.extend(image_name(seq.subject, seq.sequence, camera, int(f)) for f in seq.frames)
            lo, hi = seq.joints_2d[v].min(axis=1), seq.joints_2d[v].max(axis=1)
            centers.append((lo + hi) / 2.0)
            scales.append(1.2 * np.max(hi - lo, axis=1) / 200.0)
            parts.append(np.concatenate([seq.keypoints[v], seq.confidence[v][..., None]], axis=-1))
            ones = np.ones((len(seq.frames), N_JOINTS, 1), np.float32)
            s3d.append(np.concatenate([seq.joints_3d_cam[v] / np.float32(1000.0), ones], axis=-1))
            occluded.append(seq.occluded[v])
            valid.append(seq.view_valid[v])
            frames.append(seq.frames)
    path = folder / f"h36m_{corruption}_{severity}.npz"
    arrays = {
        "imgname": np.array(names), "center": np.concatenate(centers).astype(np.float32),
        "scale": np.concatenate(scales).astype(np.float32), "part": np.concatenate(parts).astype(np.float32),
        "S": np.concatenate(s3d).astype(np.float32), "occluded": np.concatenate(occluded),
        "view_valid": np.concatenate(valid), "frame": np.concatenate(frames).astype(np.int32),
    }  # fmt: skip
    write_npz(path, **arrays)
    return [path]


def export(
    bench: str | Path,
    out: str | Path,
    fmt: str,
    from_run: str | Path | None = None,
    detector: str | None = None,
    show_progress: bool = False,
) -> ExportSummary:
    """Write every cell of a generated benchmark in `fmt` ("vp3d" or "mmpose") under `out`."""
    bench, out = Path(bench), Path(out)
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if not (bench / LOCK_NAME).is_file():
        raise UserError(f"not a generated benchmark (no {LOCK_NAME})", bench)
    try:
        lock = json.loads((bench / LOCK_NAME).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable {LOCK_NAME} ({exc})".splitlines()[0], bench / LOCK_NAME) from exc
    cells = _cells(bench)
    if fmt == "vp3d":
        _check_vp3d_cameras(cells)
    detections = None if from_run is None else _detector_root(Path(from_run), detector)
    notes: list[str] = []
    written: list[Path] = []
    exported: list[dict] = []
    items = list(cells.items())
    if show_progress:
        from corrupt_bench.progress import progress

        items = progress(items, len(items), f"exporting {fmt}")
    reference: dict[str, list[SequenceArrays]] = {}
    for (variant, corruption, severity), files in items:
        folder = confined(out, variant)
        seqs = [read_sequence(path) for _, path in sorted(files.items())]
        if detections is not None:
            found = {key: confined(detections, variant, corruption, str(severity), sequence_stem(*key) + LABEL_SUFFIX) for key in files}
            missing = [f"{s} {q}" for (s, q), p in sorted(found.items()) if not p.is_file()]
            if missing:
                notes.append(f"{variant}/{corruption}/{severity}: no detections for {len(missing)} of {len(found)} sequences ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): not exported")
                continue
            seqs = [_with_detections(seq, found[(seq.subject, seq.sequence)]) for seq in seqs]
        _check_same_frames(variant, corruption, severity, seqs, reference)
        if fmt == "vp3d":
            written += _write_vp3d(folder, corruption, severity, seqs)
        else:
            written += _write_mmpose(confined(folder, "annotation_body3d"), corruption, severity, seqs)
        exported.append({"variant": variant, "corruption": corruption, "severity": severity,
                         "input_2d": "detector" if detections is not None else "labels",
                         "sequences": len(seqs), "frames": int(sum(len(s.frames) for s in seqs))})  # fmt: skip
    for variant, seqs in reference.items():
        if fmt == "vp3d":
            written.append(_write_vp3d_3d(confined(out, variant), seqs))
        else:
            used = {(s.subject, c) for s in seqs for c in s.cameras}
            cameras = load_cameras(bench) if (bench / CAMERA_FILE_NAME).is_file() else load_cameras(None)
            lacking = sorted(used - set(cameras))
            if lacking:
                raise UserError(f"no calibration for {lacking[0][0]} camera {lacking[0][1]}", bench / CAMERA_FILE_NAME)
            written.append(write_mmpose_cameras({k: cameras[k] for k in used}, confined(out, variant, "annotation_body3d", "cameras.pkl")))
    if fmt == "vp3d" and (bench / CAMERA_FILE_NAME).is_file():
        notes.extend(_calibration_notes(bench, reference))
    rel = tuple(p.relative_to(out).as_posix() for p in written)
    record = {
        "format": fmt, "benchmark": str(bench.resolve()), "benchmark_content_digest": lock.get("content_digest"),
        "from_run": None if from_run is None else str(Path(from_run).resolve()),
        "detector": None if detections is None else detections.name, "cells": exported, "files": list(rel), "notes": notes,
    }  # fmt: skip
    atomic_write_json(out / f"export-{fmt}.json", record)
    return ExportSummary(out, fmt, rel + (f"export-{fmt}.json",), len(exported), tuple(notes))


def _check_same_frames(variant: str, corruption: str, severity: int, seqs: list[SequenceArrays],
                       reference: dict[str, list[SequenceArrays]]) -> None:  # fmt: skip
    """Every cell of a variant must hold the sequences and frames of the first one exported (its clean
    cell when present): one 3D file per variant serves them all."""
    first = reference.setdefault(variant, seqs)
    if first is seqs:
        return
    shape = lambda group: [(s.subject, s.sequence, s.cameras, s.frames.tolist()) for s in group]  # noqa: E731
    if shape(first) != shape(seqs):
        raise UserError(f"{variant}/{corruption}/{severity} holds other sequences, cameras or frames than the variant's other cells")


def _calibration_notes(bench: Path, reference: dict[str, list[SequenceArrays]]) -> list[str]:
    """VideoPose3D projects with its built-in Human3.6M cameras: say when the benchmark's are others."""
    ours, public = load_cameras(bench), load_cameras(None)
    differ = sorted({(s.subject, c) for seqs in reference.values() for s in seqs for c in s.cameras
                     if (s.subject, c) not in public or ours.get((s.subject, c)) != public[(s.subject, c)]})  # fmt: skip
    if not differ:
        return []
    subject, camera = differ[0]
    return [f"the benchmark's cameras.json is not the public Human3.6M calibration ({subject} {camera} and "
            f"{len(differ) - 1} more differ): VideoPose3D normalises 2D and places 3D with its own built-in cameras"]  # fmt: skip

