"""The scoring loop: walk a benchmark's grid, feed a Predictor by its InputSpec, write tidy result rows.

Layout of a run folder (`corrupt_bench.layout` names):

```
RUN/run.json                               model, checkpoint, detector, 2D input, benchmark and options of the last call
RUN/cells/<run key>/<variant>/<corruption>/<severity>/<subject>_<sequence>.rows.parquet    finished
RUN/cells/<run key>/.../<subject>_<sequence>.failed.parquet      failed: penalty rows (recomputed on the next call)
RUN/cells/<run key>/.../<subject>_<sequence>.joints.parquet      per-joint errors
RUN/cells/<run key>/computed.log           one line per cell computed (key, status)
RUN/results.parquet                        every row of this run key (merged after each call)
RUN/per_joint.parquet
RUN/detections/<detector key>/<variant>/<corruption>/<severity>/<subject>_<sequence>.parquet   2D cache
RUN/predictions/<run key>/...              with --save-predictions: each cell's poses (re-scored by `rescore`)
```

The run key digests the model (spec, config, checkpoint file, and for a `package.module:factory`
model the source of its package, `source_digest`), the benchmark (lock content digest and the root
files a scorer reads, cameras.json and manifest.yaml), the refiner, the 2D detector (identity and
source) and the run's 2D input mode: a finished cell under that key is skipped on rerun unless
`force`, anything else is recomputed. Models, refiners and detectors are built only through
`corrupt_bench.models.loading`. Every file is written to a temporary name and renamed.

Failures are counted, never dropped (`harness.evaluation.PENALTY_RULE`): a frame without a finite
prediction is a failed frame scored with the reference pose's error; a cell whose model raises is
recorded with its error and scored as failed on every frame (when its labels can be read), and the
run goes on. The loop never looks at a model's name: only at its `input_spec`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from corrupt_bench.data.skeleton import JOINT_NAMES, N_JOINTS
from corrupt_bench.errors import UserError
from corrupt_bench.harness import metrics as M
from corrupt_bench.harness.benchmark import Benchmark, CellFile
from corrupt_bench.harness.dataset import (
    Group,
    WindowDataset,
    build_groups,
    has_values,
    iterate_batches,
    stack_column,
)
from corrupt_bench.harness.evaluation import (
    ANSWERED_PREFIX,
    FRAME_SPLIT_COLUMNS,
    answered_frames,
    failed_frame_split,
    joint_set_label,
    sequence_metrics,
)
from corrupt_bench.harness.inputs import cell_input_2d, resolve_input_2d
from corrupt_bench.harness.timing import (
    PADDING,
    PADDING_NOTE,
    RESAMPLING_NOTE,
    check_frame_rate,
    resample_positions,
    same_rate,
)
from corrupt_bench.io import atomic_write_json, atomic_write_parquet, confined
from corrupt_bench.layout import (
    CELLS_DIR,
    COMPUTED_LOG_NAME,
    FAILED_SUFFIX,
    JOINTS_SUFFIX,
    PER_JOINT_NAME,
    PREDICTIONS_DIR,
    PREDICTIONS_INFO_NAME,
    RESULTS_NAME,
    ROWS_SUFFIX,
    RUN_INFO_NAME,
    prediction_path,
)
from corrupt_bench.models.loading import FACTORY_SPEC, LoadedModel, load_detector, load_model, resolve_device
from corrupt_bench.models.protocol import ALL_JOINTS, InputSpec

__all__ = ["ROW_COLUMNS", "ScoreSummary", "load_results", "rescore", "score", "sequence_metrics", "source_digest"]

METRIC_COLUMNS: tuple[str, ...] = tuple(M.METRICS)  # one column per metric of the registry
ANSWERED_COLUMNS: tuple[str, ...] = tuple(ANSWERED_PREFIX + m for m in METRIC_COLUMNS)
KEY_COLUMNS = ("model", "variant", "corruption", "severity", "subject", "action", "subaction", "camera", "sequence")
ROW_COLUMNS = (
    *KEY_COLUMNS,
    "input_2d",
    "joints",
    "refine",
    "n_frames",
    "n_nonfinite",
    "coverage",
    "n_changed_frames",
    "frame_rate",
    "padding",
    "n_padded_frames",
    "box",
    *FRAME_SPLIT_COLUMNS,
    *METRIC_COLUMNS,
    *ANSWERED_COLUMNS,
    "error",
    "seconds",
    "checkpoint",
    "benchmark",
    "run_key",
)


NUMERIC_EXTRA = (*FRAME_SPLIT_COLUMNS, "n_padded_frames")


@dataclass(frozen=True)
class ScoreSummary:
    out: Path
    run_key: str
    n_cells: int
    n_skipped: int
    n_computed: int
    n_failed: int
    results: Path
    input_2d: str | None = None  # the run's 2D input mode (None for an image model)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cell_path(cell_root: Path, relative: str) -> Path:
    """A file of one cell below the run's cell folder (the cell key is a relative path of plain names)."""
    return confined(cell_root, *relative.split("/"))


# --- identity ------------------------------------------------------------------------------------------
def source_digest(spec: str) -> str:
    """16 hex of the source code a `package.module:factory` model runs; "" for any other spec.

    What counts: every `.py` file below the folder of the module's top-level package, recursively (a
    factory's helpers and the modules it imports from its own package change results as much as the
    factory's own file); for a module that is not in a package, its own file. Data files and weights
    are not source (weights are digested with the checkpoint). Paths are relative, so a copy of the
    package elsewhere has the same digest."""
    import importlib.util

    if not isinstance(spec, str) or not FACTORY_SPEC.match(spec):
        return ""
    top = spec.partition(":")[0].split(".")[0]
    found = importlib.util.find_spec(top)
    if found is None:
        return ""
    h = hashlib.sha256()
    if found.submodule_search_locations:
        for folder in sorted(str(p) for p in found.submodule_search_locations):
            root = Path(folder)
            for path in sorted(root.rglob("*.py")):
                h.update(f"{path.relative_to(root).as_posix()}\0".encode())
                h.update(path.read_bytes())
    elif found.origin and Path(found.origin).is_file():
        h.update(Path(found.origin).read_bytes())
    else:
        return ""
    return h.hexdigest()[:16]


def model_key(loaded: LoadedModel | None) -> str:
    """What a loaded model contributes to a run key: its identity and, for a plugin, its source."""
    if loaded is None:
        return ""
    code = source_digest(loaded.spec)
    return _digest(loaded.identity, code) if code else loaded.identity


def run_key(model: LoadedModel, bench: Benchmark, refiner: LoadedModel | None, detector: LoadedModel | None, input_2d: str | None,
            resample: bool = False) -> str:  # fmt: skip
    """The key of a run (see the module docstring); the same on the driver and on every worker."""
    parts = [model_key(model), bench.lock_digest, model_key(refiner), model_key(detector), input_2d or ""]
    return _digest(*parts, "resample") if resample else _digest(*parts)


# --- one cell -----------------------------------------------------------------------------------------
def model_batches(bench: Benchmark, cell: CellFile, group: Group, spec: InputSpec, batch_size: int, workers: int):
    """The batches a Predictor of `spec` gets for one group of a cell, exactly as the scoring loop feeds
    them: yields (index (B, T) frame positions in the group, batch dict)."""
    cameras = [bench.camera(cell.subject, c) for c in group.camera_ids]
    for batch in iterate_batches(WindowDataset(group, spec), batch_size, workers):
        index = batch.pop("index")
        b = len(index)
        batch.update(cameras=cameras, camera_ids=list(group.camera_ids), subject=[cell.subject] * b, sequence=[cell.sequence] * b)
        yield index, batch


@dataclass
class CellLabels:
    """One cell's labels as the rows need them: the table, what the model is fed, per-camera changed frames."""

    df: Any
    input_2d: str
    changed: dict[str, int | None] = field(default_factory=dict)

    def key(self, model: str, cell: CellFile, camera: str | None) -> dict:
        action = subaction = None
        rows = self.df[self.df["camera"] == camera] if camera is not None and self.df is not None else ()
        if len(rows):
            action = rows["action"].iloc[0] if "action" in rows else None
            subaction = rows["subaction"].iloc[0] if "subaction" in rows else None
        return {
            "model": model,
            "variant": cell.variant,
            "corruption": cell.corruption,
            "severity": int(cell.severity),
            "subject": cell.subject,
            "action": None if action is None else str(action),
            "subaction": None if subaction is None or subaction != subaction else int(subaction),
            "camera": camera,
            "sequence": cell.sequence,
        }


def camera_rows(model: str, cell: CellFile, labels: CellLabels, camera: str, frames: np.ndarray, pred: np.ndarray,
                gt: np.ndarray, occluded: np.ndarray, occlusion_recorded: bool, joints: tuple[int, ...],
                error: str | None = None, base_failed: np.ndarray | None = None, extra: dict | None = None) -> tuple[dict, list[dict]]:  # fmt: skip
    """The result row and per-joint rows of one camera of a cell (predictions (N, 17, 3) for `frames`);
    `base_failed` (N,) the frames where the base estimator gave no pose (None: the prediction's own
    failures); `extra` row fields (frame rate, padding, box protocol)."""
    values, per_joint = sequence_metrics(pred, gt, occluded, occlusion_recorded, joints)
    key = labels.key(model, cell, camera)
    changed = labels.changed.get(camera)
    row = {**key, "input_2d": labels.input_2d, "joints": joint_set_label(joints), **values,
           **failed_frame_split(pred, gt, base_failed, joints), **(extra or {}),
           "n_changed_frames": np.nan if changed is None else float(changed), "error": error}  # fmt: skip
    joint_rows = [{**key, "joint": joint, **{m: float(a[j]) for m, a in per_joint.items()}} for j, joint in enumerate(JOINT_NAMES)]
    return row, joint_rows


def prediction_rows(model: str, labels: CellLabels, camera: str, frames: np.ndarray, pred: np.ndarray, error: str | None,
                    base_failed: np.ndarray | None = None, extra: dict | None = None) -> dict:  # fmt: skip
    """Columns of one camera's saved predictions (`score --save-predictions`): with the base estimator's
    failed frames and the row fields of `extra`, so that `rescore` writes the same rows."""
    n = len(frames)
    failed = ~answered_frames(np.asarray(pred, np.float64).reshape(n, N_JOINTS, 3)) if base_failed is None else np.asarray(base_failed, bool)
    extra = extra or {}
    return {
        "model": [model] * n, "input_2d": [labels.input_2d] * n, "camera": [camera] * n,
        "frame": np.asarray(frames, np.int32), "pose": list(np.asarray(pred, np.float64).reshape(n, -1)), "error": [error] * n,
        "base_failed": list(failed), **{k: [extra.get(k)] * n for k in SAVED_EXTRA},
    }  # fmt: skip


SAVED_EXTRA = ("frame_rate", "padding", "n_padded_frames", "box")  # row fields a prediction file carries


class CellScorer:
    """Scores one cell file with a loaded model (and optional refiner / detector); `run_dir` is the run
    folder (it holds the detection cache). `input_mode` is the run's 2D input (`harness.inputs`)."""

    def __init__(self, bench: Benchmark, model: LoadedModel, name: str, refiner: LoadedModel | None,
                 detector: LoadedModel | None, device: str, batch_size: int, workers: int, run_key: str,
                 run_dir: Path, input_mode: str | None = None, force: bool = False, resample: bool = False):  # fmt: skip
        self.bench, self.model, self.name, self.refiner = bench, model, name, refiner
        self.detector, self.device, self.batch_size, self.workers = detector, device, batch_size, workers
        self.run_key, self.run_dir, self.input_mode, self.force = run_key, Path(run_dir), input_mode, force
        self.spec = model.model.input_spec
        self.joints = tuple(getattr(self.spec, "joints", ALL_JOINTS))
        self.detector_key = model_key(detector)
        self.timing = bench.timing()
        self.model_fps = getattr(self.spec, "fps", None)
        self.frame_rate = check_frame_rate(self.model_fps, self.timing, name, resample, bench.manifest_path)
        self.resampled = self.model_fps is not None and not same_rate(float(self.model_fps), self.timing.fps)
        self.cuts = self.spec.kind == "images" and self.timing.box == "detector"  # crops cut with the detector's box

    def labels(self, cell: CellFile, detections: bool = True) -> CellLabels:
        """The cell's labels, what the model is fed there and its changed frames; with `detections`,
        the detector's keypoints joined in where the model reads them."""
        df = self.bench.labels(cell)
        mode = self.input_mode if self.spec.kind == "keypoints2d" else None
        input_2d = cell_input_2d(mode, has_values(df, "image"), has_values(df, "keypoints_2d"))
        changed = self.bench.changed_frames(cell, df)
        if input_2d == "detector" and detections:
            df = self._with_detections(df)
        if self.cuts and detections:
            df = self._with_detector_boxes(df)
        return CellLabels(df, input_2d, changed)

    def _with_detector_boxes(self, df):
        """box: detector: each row's `crop` becomes the square box around the detector's keypoints on the
        corrupted full frame, grown by the manifest's crop margin (`person_box`, as the generator grows
        the ground-truth box); NaN where it found no person (a failed frame)."""
        from corrupt_bench.data.crop import person_box, square_box

        found = self._with_detections(df)
        kp = stack_column(found, "keypoints_2d", (N_JOINTS, 2), np.float64)
        conf = stack_column(found, "keypoint_conf", (N_JOINTS,), np.float64) if has_values(found, "keypoint_conf") else np.zeros(kp.shape[:2])
        seen = np.isfinite(kp).all(axis=-1) & (np.nan_to_num(conf) > 0)
        boxes = np.full((len(found), 4), np.nan)
        person = seen.any(axis=1)
        if person.any():
            points = np.where(seen[person][..., None], kp[person], np.nan)
            boxes[person] = square_box(person_box(points, self.timing.crop_margin))
        return found.assign(crop=list(boxes))

    def _with_detections(self, df):
        from corrupt_bench.harness.detections import cached_detections

        det = cached_detections(self.run_dir, self.detector_key, self.bench.root, df, self.detector.model, refresh=self.force)
        det = det[["camera", "frame", "keypoints_2d", "keypoint_conf"]].assign(camera=lambda d: d["camera"].astype(str))
        return df.drop(columns=["keypoints_2d", "keypoint_conf"], errors="ignore").merge(det, on=["camera", "frame"], how="left")

    def predict_group(self, cell: CellFile, group: Group) -> tuple[np.ndarray, int]:
        """((V, N, 17, 3) predictions for every frame of the group (NaN where the model gave none),
        padded window frames fed). With resampling (`harness.timing`) the model reads the group at its
        own rate and each frame takes the prediction of the nearest resampled frame."""
        if not self.resampled:
            return self._predict(cell, group)
        from corrupt_bench.harness.dataset import resample_group

        positions, nearest = resample_positions(len(group.frames), self.timing.fps, float(self.model_fps))
        pred, padded = self._predict(cell, resample_group(group, positions))
        return pred[:, nearest], padded

    def _predict(self, cell: CellFile, group: Group) -> tuple[np.ndarray, int]:
        import torch

        n_views, n_frames = len(group.camera_ids), len(group.frames)
        pred = np.full((n_views, n_frames, N_JOINTS, 3), np.nan)
        padded = 0
        for index, batch in model_batches(self.bench, cell, group, self.spec, self.batch_size, self.workers):
            pad = batch["pad"]
            b = len(index)
            padded += int(np.asarray(pad).sum())
            with torch.no_grad():
                out = np.asarray(self.model.model.predict(batch), dtype=np.float64)
            expected = (b, n_views, index.shape[1], N_JOINTS, 3)
            if out.shape != expected:
                raise ValueError(f"predict returned shape {out.shape}, expected {expected}")
            for i in range(b):
                keep = ~pad[i]
                pred[:, index[i][keep]] = out[i][:, keep]
        return pred, padded

    def no_person(self, group: Group, input_2d: str) -> np.ndarray:
        """(V, N) True where a single-view keypoint model's 2D input holds no person (a detector found
        none, or every joint of the corrupted keypoints is dropped): the base estimator has no pose
        there, whatever it returns. A multi-view model may answer from the other views: never forced."""
        shape = (len(group.camera_ids), len(group.frames))
        if self.cuts:  # box: detector: no box where the detector found no person
            return ~np.isfinite(group.arrays["crop"]).all(axis=-1)
        if self.spec.multi_view or input_2d not in ("detector", "corrupted") or "keypoints_2d" not in group.arrays:
            return np.zeros(shape, bool)
        seen = np.isfinite(group.arrays["keypoints_2d"]).all(axis=-1) & (group.arrays["confidence"] > 0)
        return ~seen.any(axis=-1)

    def refine(self, poses: np.ndarray, fps: float, failed: np.ndarray) -> np.ndarray:
        """The refiner's sequence, the base estimator's failed frames handed over as `failed`."""
        import inspect

        refine = self.refiner.model.refine
        try:
            takes_failed = "failed" in inspect.signature(refine).parameters
        except (TypeError, ValueError):
            takes_failed = False
        out = refine(poses, fps, failed=failed) if takes_failed else refine(poses, fps)
        out = np.asarray(out, dtype=np.float64)
        if out.shape != poses.shape:
            raise ValueError(f"refine returned shape {out.shape}, expected {poses.shape}")
        return out

    def score(self, cell: CellFile) -> tuple[list[dict], list[dict], list[dict]]:
        """(rows, per-joint rows, prediction columns per camera) of one cell."""
        labels = self.labels(cell)
        df = labels.df
        stride = np.diff(np.unique(df["frame"].to_numpy()))
        source_fps = self.timing.source_fps
        fps = source_fps / float(np.median(stride)) if len(stride) else source_fps
        if self.spec.kind == "images" and not has_values(df, "image"):
            raise ValueError("this cell has no images (keypoint-only output or a raw source); image models need a generated benchmark with images")
        rows, joint_rows, predictions = [], [], []
        groups = build_groups(df, self.spec, labels.input_2d, self.bench.root, cut=self.cuts)
        occlusion_recorded = any(bool(g.arrays["occluded"].any()) for g in groups)  # the corruption hid joints
        for group in groups:
            pred, padded = self.predict_group(cell, group)
            pred[self.no_person(group, labels.input_2d)] = np.nan  # no 2D person: the base estimator has no pose
            scored = self.timing.evaluated(group.frames)  # evaluation frames; the others are context
            frames = group.frames[scored]
            extra = self.row_extra(padded)
            for v, camera in enumerate(group.camera_ids):
                seq = pred[v]
                base_failed = ~answered_frames(seq, self.joints)
                if self.refiner is not None:
                    seq = self.refine(np.where(base_failed[:, None, None], np.nan, seq), fps, base_failed)
                row, joints = camera_rows(self.name, cell, labels, camera, frames, seq[scored], group.arrays["joints_3d_cam"][v][scored],
                                          group.arrays["occluded"][v][scored], occlusion_recorded, self.joints, None,
                                          base_failed[scored], extra)  # fmt: skip
                rows.append(row)
                joint_rows += joints
                predictions.append(prediction_rows(self.name, labels, camera, frames, seq[scored], None, base_failed[scored], extra))
        return rows, joint_rows, predictions

    def row_extra(self, padded: int | None) -> dict:
        """Row fields of the run's time and box protocol (`harness.timing`)."""
        return {"frame_rate": self.frame_rate, "padding": PADDING, "n_padded_frames": padded, "box": self.timing.box}

    def failure(self, cell: CellFile, message: str) -> tuple[list[dict], list[dict]]:
        """Rows of a cell whose scoring raised: every frame of every camera failed (penalised), the
        error recorded; a single row without metrics when the labels themselves cannot be read."""
        try:
            labels = self.labels(cell, detections=False)
        except Exception:  # the labels are what failed: nothing to score against
            row = {**CellLabels(None, "").key(self.name, cell, None), "input_2d": None, "joints": joint_set_label(self.joints),
                   "n_frames": 0, "n_nonfinite": 0, "coverage": np.nan, "error": message}  # fmt: skip
            return [row], []
        rows, predictions = [], []
        occlusion_recorded = has_values(labels.df, "occluded") and bool(stack_column(labels.df, "occluded", (N_JOINTS,), bool).any())
        groups = build_groups(labels.df, InputSpec("keypoints2d"), None)  # every frame of each camera
        extra = self.row_extra(None)
        for group in groups:
            camera = group.camera_ids[0]
            scored = self.timing.evaluated(group.frames)
            nan = np.full((int(scored.sum()), N_JOINTS, 3), np.nan)
            row, _ = camera_rows(self.name, cell, labels, camera, group.frames[scored], nan, group.arrays["joints_3d_cam"][0][scored],
                                 group.arrays["occluded"][0][scored], occlusion_recorded, self.joints, message, None, extra)  # fmt: skip
            rows.append(row)
            predictions.append(prediction_rows(self.name, labels, camera, group.frames[scored], nan, message, None, extra))
        return rows, predictions


def _frame(rows: list[dict], columns: tuple[str, ...] | None = None):
    import pandas as pd

    df = pd.DataFrame(rows)
    if columns is not None:
        for c in columns:
            if c not in df.columns:
                df[c] = np.nan if c in METRIC_COLUMNS or c in ANSWERED_COLUMNS or c in NUMERIC_EXTRA else None
        df = df[list(columns)]
    return df


def _prediction_table(columns: list[dict]):
    """The saved predictions of one cell (one row per camera and frame) as a pyarrow table."""
    import pyarrow as pa

    merged: dict[str, list] = {}
    for part in columns:
        for k, v in part.items():
            merged.setdefault(k, []).extend(list(v))
    return pa.table({
        "model": pa.array(merged.get("model", []), pa.string()),
        "input_2d": pa.array(merged.get("input_2d", []), pa.string()),
        "camera": pa.array(merged.get("camera", []), pa.string()),
        "frame": pa.array(merged.get("frame", []), pa.int32()),
        "pose": pa.array([np.asarray(p, np.float64) for p in merged.get("pose", [])], pa.list_(pa.float64())),
        "error": pa.array(merged.get("error", []), pa.string()),
        "base_failed": pa.array([bool(b) for b in merged.get("base_failed", [])], pa.bool_()),
        "frame_rate": pa.array(merged.get("frame_rate", []), pa.string()),
        "padding": pa.array(merged.get("padding", []), pa.string()),
        "n_padded_frames": pa.array([None if p is None else int(p) for p in merged.get("n_padded_frames", [])], pa.int64()),
        "box": pa.array(merged.get("box", []), pa.string()),
    })  # fmt: skip


# --- the run -------------------------------------------------------------------------------------------
def score(
    model: str | Path,
    benchmark: str | Path,
    out: str | Path,
    *,
    checkpoint: str | Path | None = None,
    config: dict | None = None,
    name: str | None = None,
    corruptions: list[str] | None = None,
    severities: list[int] | None = None,
    variants: list[str] | None = None,
    detector: str | Path | None = None,
    input_2d: str | None = None,
    refine: str | None = None,
    refine_checkpoint: str | Path | None = None,
    device: str | None = None,
    batch_size: int = 64,
    workers: int = 0,
    force: bool = False,
    save_predictions: bool = False,
    resample: bool = False,
    show_progress: bool = True,
    executor=None,
) -> ScoreSummary:
    """Score `model` on every cell of `benchmark` not yet finished in `out` (every cell with `force`);
    merge all rows.

    `model`, `refine` and `detector` are specs as `corrupt_bench.models.loading.load_model` reads them
    (a built-in name, `package.module:factory` or a checkpoint); a spec of the wrong kind (a lifter's
    checkpoint as the detector) is a UserError before anything is written. `input_2d` ('detector',
    'corrupted', 'gt' or None) names a keypoint model's 2D input (`harness.inputs`): a keypoint model
    on cells with images and no keypoint input, without a detector, is a UserError naming the options.
    `save_predictions`: each cell's poses go to `RUN/predictions/<run key>/` (parquet), re-scored
    without the model by `rescore`. `resample`: feed a model whose `InputSpec.fps` differs from the
    benchmark's frame rate input resampled to its rate (`harness.timing`); without it that is a
    UserError with the remedy, before anything is written.

    `executor` (e.g. `make_executor("ray", address=..., num_gpus="auto")`): one task per cell, each
    loading the model where it runs; the rows come back here and are written as without one."""
    from corrupt_bench.progress import progress

    out = Path(out)
    bench = Benchmark(benchmark)
    requested_device = device
    device = resolve_device(device)
    if refine is None and refine_checkpoint is not None:
        raise UserError("--refine-checkpoint needs --refine")
    loaded = load_model(model, checkpoint, config, device, kind="predictor")
    predictor = loaded.model
    name = name or loaded.spec  # a checkpoint given as the model: the model it holds
    spec = predictor.input_spec
    if spec.kind not in ("images", "keypoints2d"):
        raise UserError(f"model '{model}' consumes '{spec.kind}': score it as a refiner (--refine) of another model")
    cells = bench.cell_files(corruptions, severities, variants)
    grid = bench.grid_inputs(cells)
    if spec.kind == "images" and not any(images for images, _ in grid.values()):
        raise UserError(f"model '{name}' reads images, but no cell of this benchmark has any (keypoint-only output or a raw source)", bench.root)
    timing = bench.timing()
    mode = resolve_input_2d(spec.kind, input_2d, detector is not None, grid, name, timing.box)
    refiner = load_model(refine, refine_checkpoint, device=device, kind="refiner") if refine is not None else None
    loaded_detector = load_detector(detector, device) if detector is not None else None
    frame_rate = check_frame_rate(getattr(spec, "fps", None), timing, name, resample, bench.manifest_path)
    resampled = getattr(spec, "fps", None) is not None and not same_rate(float(spec.fps), timing.fps)
    key = run_key(loaded, bench, refiner, loaded_detector, mode, resampled)

    out.mkdir(parents=True, exist_ok=True)
    cell_root = confined(out, CELLS_DIR, key)  # a symbolic link out of the run folder is refused
    joints = tuple(getattr(spec, "joints", ALL_JOINTS))
    run_info = {
        "run_key": key,
        "model": {"spec": str(model), "name": name, "config": loaded.config, "checkpoint": str(checkpoint) if checkpoint else None,
                  "checkpoint_digest": loaded.checkpoint_digest, "source_digest": source_digest(loaded.spec),
                  "joints": list(joints)},  # fmt: skip
        "input_2d": mode,
        "timing": {"frame_rate": frame_rate, "source_fps": timing.source_fps, "source_fps_recorded": timing.fps_recorded,
                   "frame_step": timing.frame_step, "eval_step": timing.eval_step, "model_fps": getattr(spec, "fps", None),
                   "resampling": RESAMPLING_NOTE if resampled else None, "padding": PADDING_NOTE, "box": timing.box},
        "refine": {"spec": refine, "checkpoint": str(refine_checkpoint) if refine_checkpoint else None, "identity": model_key(refiner)} if refine else None,
        "detector": {"spec": str(detector), "model": loaded_detector.spec, "config": loaded_detector.config,
                     "checkpoint_digest": loaded_detector.checkpoint_digest, "identity": model_key(loaded_detector)} if loaded_detector else None,  # fmt: skip
        "benchmark": bench.describe(),
        "device": device,
    }
    atomic_write_json(out / RUN_INFO_NAME, run_info, sort_keys=False)
    if save_predictions:
        info = {"run_key": key, "model": name, "joints": list(joints), "refine": refine, "input_2d": mode,
                "checkpoint": loaded.checkpoint_digest, "benchmark": bench.lock_digest}  # fmt: skip
        atomic_write_json(confined(out, PREDICTIONS_DIR, key, PREDICTIONS_INFO_NAME), info)

    scorer = CellScorer(bench, loaded, name, refiner, loaded_detector, device, batch_size, workers, key, out, mode, force, resample)
    todo = list(cells) if force else [c for c in cells if not _cell_path(cell_root, c.key + ROWS_SUFFIX).is_file()]
    if save_predictions:  # a finished cell without its saved predictions is scored again to write them
        pending = {c.key for c in todo}
        todo = [c for c in cells if c.key in pending or not _prediction_file(out, key, c).is_file()]
    n_failed = 0
    extra = {"refine": refine, "checkpoint": loaded.checkpoint_digest, "benchmark": bench.lock_digest, "run_key": key}
    if executor is None:
        outcomes = (score_cell(scorer, cell) for cell in todo)
    else:
        remote = RemoteScorer(str(model), str(bench.root.resolve()), None if checkpoint is None else str(checkpoint), config,
                              name, refine, None if refine_checkpoint is None else str(refine_checkpoint),
                              None if detector is None else str(detector), requested_device, batch_size, workers, key,
                              str(out.resolve()), mode, force, resample)  # fmt: skip
        outcomes = executor.map(partial(score_cell_remote, remote), todo)
    iterator = progress(outcomes, total=len(todo), description=f"scoring {name}") if show_progress else outcomes
    for cell, status, rows, joint_rows, predictions, seconds in iterator:
        write_cell(out, key, cell, status, [{**r, **extra, "seconds": seconds} for r in rows], joint_rows,
                   predictions if save_predictions else None)  # fmt: skip
        n_failed += status != "ok"
    results = merge_cells(out, key)
    return ScoreSummary(out, key, len(cells), len(cells) - len(todo), len(todo), n_failed, results, mode)


def _prediction_file(out: Path, key: str, cell: CellFile) -> Path:
    return prediction_path(out, key, cell.variant, cell.corruption, cell.severity, cell.subject, cell.sequence)


def write_cell(out: Path, key: str, cell: CellFile, status: str, rows: list[dict], joint_rows: list[dict],
               predictions: list[dict] | None) -> None:  # fmt: skip
    """Write one cell's result files (rows, per-joint rows, saved predictions) atomically and log it."""
    cell_root = out / CELLS_DIR / key
    rows_path = _cell_path(cell_root, cell.key + ROWS_SUFFIX)
    failed_path = _cell_path(cell_root, cell.key + FAILED_SUFFIX)
    if predictions is not None:
        atomic_write_parquet(_prediction_file(out, key, cell), _prediction_table(predictions))
    table = _frame(rows, ROW_COLUMNS)
    if status == "ok":
        if joint_rows:
            atomic_write_parquet(_cell_path(cell_root, cell.key + JOINTS_SUFFIX), _frame([{**r, "run_key": key} for r in joint_rows]))
        atomic_write_parquet(rows_path, table)
        failed_path.unlink(missing_ok=True)
    else:
        rows_path.unlink(missing_ok=True)
        atomic_write_parquet(failed_path, table)
    with open(cell_root / COMPUTED_LOG_NAME, "a") as log:
        log.write(f"{cell.key}\t{status}\n")


def score_cell(scorer: CellScorer, cell: CellFile) -> tuple[CellFile, str, list[dict], list[dict], list[dict], float]:
    """One cell, isolated: (cell, "ok" | "failed", rows, per-joint rows, prediction columns, seconds).
    A cell that raises gets penalty rows (every frame failed) with its error."""
    started = time.perf_counter()
    try:
        rows, joint_rows, predictions = scorer.score(cell)
        status = "ok"
    except Exception as exc:  # per-cell isolation: record, count every frame as failed, go on
        message = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        if os.environ.get("CORRUPT_BENCH_TRACEBACK"):
            traceback.print_exc()
        (rows, predictions), joint_rows, status = scorer.failure(cell, message), [], "failed"
    return cell, status, rows, joint_rows, predictions, time.perf_counter() - started


# --- re-scoring saved predictions ------------------------------------------------------------------------
def rescore(predictions: str | Path, benchmark: str | Path, out: str | Path, *, show_progress: bool = True) -> ScoreSummary:
    """Score the predictions a run saved (`score --save-predictions`) against `benchmark`'s labels,
    without the model: `predictions` is the run folder (its only predictions folder) or
    `RUN/predictions/<run key>`. Writes a run folder `out` whose rows equal the original run's (the
    same metrics, counts, 2D input and changed frames; only `seconds` differs)."""
    import pandas as pd

    from corrupt_bench.progress import progress

    folder = _predictions_folder(Path(predictions))
    try:
        info = json.loads((folder / PREDICTIONS_INFO_NAME).read_text())
        key, name, joints = str(info["run_key"]), str(info["model"]), tuple(int(j) for j in info["joints"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"unreadable {PREDICTIONS_INFO_NAME} ({type(exc).__name__})", folder / PREDICTIONS_INFO_NAME) from exc
    bench = Benchmark(benchmark)
    if info.get("benchmark") != bench.lock_digest:
        raise UserError(f"these predictions were made on another benchmark (digest {info.get('benchmark')}, this one {bench.lock_digest})", folder)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = {"refine": info.get("refine"), "checkpoint": info.get("checkpoint"), "benchmark": bench.lock_digest, "run_key": key}
    cells = [c for c in bench.cell_files() if _prediction_file(folder.parent.parent, key, c).is_file()]
    if not cells:
        raise UserError("no saved predictions of this benchmark's cells", folder)
    iterator = progress(cells, total=len(cells), description=f"re-scoring {name}") if show_progress else cells
    for cell in iterator:
        started = time.perf_counter()
        saved = pd.read_parquet(_prediction_file(folder.parent.parent, key, cell))
        df = bench.labels(cell)
        input_2d = str(saved["input_2d"].iloc[0]) if len(saved) else ""
        labels = CellLabels(df, input_2d, bench.changed_frames(cell, df))
        errors = saved["error"].dropna()
        message = str(errors.iloc[0]) if len(errors) else None
        occlusion_recorded = False
        per_camera = []
        for camera, part in saved.groupby("camera", sort=False):
            rows = df[df["camera"] == str(camera)].drop_duplicates("frame").set_index("frame").loc[part["frame"].to_numpy()]
            occluded = np.stack([np.asarray(o, bool) for o in rows["occluded"]]) if "occluded" in rows else np.zeros((len(rows), N_JOINTS), bool)
            gt = np.stack([np.asarray(j, np.float64).reshape(N_JOINTS, 3) for j in rows["joints_3d_cam"]])
            pred = np.stack([np.asarray(p, np.float64).reshape(N_JOINTS, 3) for p in part["pose"]])
            occlusion_recorded |= bool(occluded.any())
            base_failed = part["base_failed"].to_numpy(bool) if "base_failed" in part else None
            fields = {k: _saved_value(part, k) for k in SAVED_EXTRA}
            per_camera.append((str(camera), part["frame"].to_numpy(), pred, gt, occluded, base_failed, fields))
        rows_out, joints_out = [], []
        for camera, frames, pred, gt, occluded, base_failed, fields in per_camera:
            row, joint_rows = camera_rows(name, cell, labels, camera, frames, pred, gt, occluded, occlusion_recorded, joints, message,
                                          base_failed, fields)  # fmt: skip
            rows_out.append(row)
            joints_out += joint_rows
        seconds = time.perf_counter() - started
        write_cell(out, key, cell, "failed" if message else "ok", [{**r, **extra, "seconds": seconds} for r in rows_out],
                   [] if message else joints_out, None)  # fmt: skip
    results = merge_cells(out, key)
    atomic_write_json(out / RUN_INFO_NAME, {"run_key": key, "rescored_from": str(folder.resolve()), "model": {"name": name, "joints": list(joints)},
                                            "input_2d": info.get("input_2d"), "benchmark": bench.describe()}, sort_keys=False)  # fmt: skip
    return ScoreSummary(out, key, len(cells), 0, len(cells), 0, results, info.get("input_2d"))


def _saved_value(part, column: str):
    """A row field a prediction file carries (the same on every frame of a camera), None if absent."""
    if column not in part or not len(part) or part[column].isna().all():
        return None
    value = part[column].iloc[0]
    return int(value) if column == "n_padded_frames" else str(value)


def _predictions_folder(path: Path) -> Path:
    """`RUN/predictions/<run key>` from itself or from a run folder holding exactly one."""
    if (path / PREDICTIONS_INFO_NAME).is_file():
        return path
    found = sorted(p.parent for p in (path / PREDICTIONS_DIR).glob(f"*/{PREDICTIONS_INFO_NAME}"))
    if len(found) != 1:
        what = "no saved predictions (score --save-predictions)" if not found else f"{len(found)} prediction folders: name one ({PREDICTIONS_DIR}/<run key>)"
        raise UserError(what, path)
    return found[0]


@dataclass(frozen=True)
class RemoteScorer:
    """What an executor's worker needs to rebuild the run's CellScorer (plain data; the model loads there)."""

    model: str
    benchmark: str
    checkpoint: str | None
    config: dict | None
    name: str
    refine: str | None
    refine_checkpoint: str | None
    detector: str | None
    device: str | None  # as requested ("auto": the GPU the task was given, if any)
    batch_size: int
    workers: int
    run_key: str
    out: str  # the run folder (its detection cache; same path on every node, as the benchmark)
    input_mode: str | None = None  # the run's 2D input (resolved by the driver)
    force: bool = False
    resample: bool = False


@lru_cache(maxsize=1)
def _worker_scorer(spec_json: str) -> CellScorer:
    """The scorer of one run, built once per worker process (tasks of a run reuse the loaded model)."""
    spec = RemoteScorer(**json.loads(spec_json))
    device = resolve_device(spec.device)
    loaded = load_model(spec.model, spec.checkpoint, spec.config, device, kind="predictor")
    refiner = load_model(spec.refine, spec.refine_checkpoint, device=device, kind="refiner") if spec.refine else None
    detector = load_detector(spec.detector, device) if spec.detector else None
    scorer = CellScorer(Benchmark(spec.benchmark), loaded, spec.name, refiner, detector, device, spec.batch_size, spec.workers,
                        spec.run_key, Path(spec.out), spec.input_mode, spec.force, spec.resample)  # fmt: skip
    if run_key(loaded, scorer.bench, refiner, detector, spec.input_mode, scorer.resampled) != spec.run_key:
        raise UserError("this worker sees another model, checkpoint or benchmark than the driver (same paths on every node?)", spec.benchmark)
    return scorer


def score_cell_remote(spec: RemoteScorer, cell: CellFile) -> tuple[CellFile, str, list[dict], list[dict], list[dict], float]:
    """`score_cell` in an executor's worker (Ray task): the rows are returned, never written here."""
    import dataclasses

    return score_cell(_worker_scorer(json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)), cell)


def merge_cells(out: Path, run_key: str) -> Path:
    """Merge the cell files of `run_key` into RUN/results.parquet and RUN/per_joint.parquet."""
    import pandas as pd

    cell_root = confined(out, CELLS_DIR, run_key)  # a symbolic link out of the run folder is refused
    parts = [pd.read_parquet(p) for p in sorted(cell_root.rglob("*" + ROWS_SUFFIX))]
    parts += [pd.read_parquet(p) for p in sorted(cell_root.rglob("*" + FAILED_SUFFIX))]
    results = pd.concat(parts, ignore_index=True) if parts else _frame([], ROW_COLUMNS)
    atomic_write_parquet(out / RESULTS_NAME, results)
    joints = [pd.read_parquet(p) for p in sorted(cell_root.rglob("*" + JOINTS_SUFFIX))]
    if joints:
        atomic_write_parquet(out / PER_JOINT_NAME, pd.concat(joints, ignore_index=True))
    return out / RESULTS_NAME


def load_results(run: str | Path):
    """The long result table of a run folder (or a results parquet file)."""
    import pandas as pd

    path = Path(run)
    if path.is_dir():
        path = path / RESULTS_NAME
    if not path.is_file():
        raise UserError("no results.parquet: not a finished score run", path)
    try:
        return pd.read_parquet(path)
    except Exception as exc:
        raise UserError(f"unreadable results ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
