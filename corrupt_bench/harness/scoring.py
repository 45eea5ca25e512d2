"""The scoring loop: walk a benchmark's grid, feed a Predictor by its InputSpec, write tidy result rows.

Layout of a run folder:

```
RUN/run.json                               model, checkpoint, detector, benchmark and options of the last call
RUN/cells/<run key>/<variant>/<corruption>/<severity>/<subject>_<sequence>.rows.parquet    finished
RUN/cells/<run key>/.../<subject>_<sequence>.failed.parquet      failed (recomputed on the next call)
RUN/cells/<run key>/.../<subject>_<sequence>.joints.parquet      per-joint errors
RUN/cells/<run key>/computed.log           one line per cell computed (key, status)
RUN/results.parquet                        every row of this run key (merged after each call)
RUN/per_joint.parquet
RUN/detections/<detector key>/<variant>/<corruption>/<severity>/<subject>_<sequence>.parquet   2D cache
```

The run key digests the model (spec, config, checkpoint file), the benchmark lock, the refiner and
the 2D detector (its identity): a finished cell under that key is skipped on rerun, anything else is
recomputed. Models, refiners and detectors are built only through `corrupt_bench.models.loading`.
Every file is written to a temporary name and renamed. A cell that raises is recorded with its
error and the run goes on. The loop never looks at a model's name: only at its `input_spec`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from corrupt_bench.data.skeleton import JOINT_NAMES, N_JOINTS
from corrupt_bench.errors import UserError
from corrupt_bench.harness import metrics as M
from corrupt_bench.harness.benchmark import Benchmark, CellFile
from corrupt_bench.harness.dataset import Group, WindowDataset, build_groups, has_values, iterate_batches
from corrupt_bench.io import atomic_write_parquet, atomic_write_text, confined
from corrupt_bench.layout import (
    CELLS_DIR,
    COMPUTED_LOG_NAME,
    FAILED_SUFFIX,
    JOINTS_SUFFIX,
    PER_JOINT_NAME,
    RESULTS_NAME,
    ROWS_SUFFIX,
    RUN_INFO_NAME,
)
from corrupt_bench.layout import H36M_FPS as FPS
from corrupt_bench.models.loading import LoadedModel, load_detector, load_model, resolve_device
from corrupt_bench.models.protocol import InputSpec

METRIC_COLUMNS: tuple[str, ...] = tuple(M.METRICS)  # one column per metric of the registry
KEY_COLUMNS = ("model", "variant", "corruption", "severity", "subject", "action", "subaction", "camera", "sequence")
ROW_COLUMNS = (
    *KEY_COLUMNS,
    "input_2d",
    "refine",
    "n_frames",
    "n_nonfinite",
    *METRIC_COLUMNS,
    "error",
    "seconds",
    "checkpoint",
    "benchmark",
    "run_key",
)


@dataclass(frozen=True)
class ScoreSummary:
    out: Path
    run_key: str
    n_cells: int
    n_skipped: int
    n_computed: int
    n_failed: int
    results: Path


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cell_path(cell_root: Path, relative: str) -> Path:
    """A file of one cell below the run's cell folder (the cell key is a relative path of plain names)."""
    return confined(cell_root, *relative.split("/"))


# --- metrics of one (sequence, camera) ---------------------------------------------------------------
def sequence_metrics(pred: np.ndarray, gt: np.ndarray, occluded: np.ndarray | None, occlusion_recorded: bool) -> tuple[dict, dict]:
    """Every metric of the registry (`metrics.METRICS`) for one prediction sequence (N, 17, 3) against
    gt, both made root-relative.

    Frames with a non-finite prediction are excluded and counted in `n_nonfinite`; temporal metrics
    only use differences between kept frames; the visible / occluded split is computed where the
    corruption recorded occlusion (NaN elsewhere). Returns (row values, per-joint arrays of the
    frame metrics)."""
    gt = M.root_relative(np.asarray(gt, np.float64))
    pred = np.asarray(pred, np.float64)
    finite = np.isfinite(pred).all(axis=(-1, -2))
    pred = M.root_relative(np.where(finite[:, None, None], pred, 0.0))
    row: dict[str, Any] = {"n_frames": int(len(pred)), "n_nonfinite": int((~finite).sum())}
    joints: dict[str, np.ndarray] = {}
    p, g = pred[finite], gt[finite]
    keep = np.broadcast_to(finite[:, None], (len(pred), N_JOINTS))
    split = occlusion_recorded and occluded is not None and len(p) > 0
    occ = np.asarray(occluded, bool)[finite] if split else None
    for name, spec in M.METRICS.items():
        if spec.temporal:
            row[name] = float(spec.fn(pred, gt, keep))
        elif spec.joints == "all":
            row[name] = float(spec.fn(p, g)) if len(p) else float("nan")
            if len(p) and spec.per_joint is not None:
                joints[name] = np.asarray(spec.per_joint(p, g), np.float64)
        elif occ is not None:
            subset = occ if spec.joints == "occluded" else ~occ
            row[name] = float(spec.fn(p, g, subset)) if subset.any() else float("nan")
        else:
            row[name] = float("nan")
    return row, joints


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


class CellScorer:
    """Scores one cell file with a loaded model (and optional refiner / detector); `run_dir` is the run
    folder (it holds the detection cache)."""

    def __init__(self, bench: Benchmark, model: LoadedModel, name: str, refiner: LoadedModel | None,
                 detector: LoadedModel | None, device: str, batch_size: int, workers: int, run_key: str,
                 run_dir: Path):  # fmt: skip
        self.bench, self.model, self.name, self.refiner = bench, model, name, refiner
        self.detector, self.device, self.batch_size, self.workers = detector, device, batch_size, workers
        self.run_key, self.run_dir = run_key, Path(run_dir)
        self.spec = model.model.input_spec

    def input_2d(self, df) -> str | None:
        if self.spec.kind != "keypoints2d":
            return None
        if has_values(df, "keypoints_2d"):
            return "corrupted"
        if self.detector is not None and has_values(df, "image"):
            return "detector"
        return "gt"

    def _with_detections(self, df):
        from corrupt_bench.harness.detections import cached_detections

        det = cached_detections(self.run_dir, self.detector.identity, self.bench.root, df, self.detector.model)
        det = det[["camera", "frame", "keypoints_2d", "keypoint_conf"]].assign(camera=lambda d: d["camera"].astype(str))
        return df.drop(columns=["keypoints_2d", "keypoint_conf"], errors="ignore").merge(det, on=["camera", "frame"], how="left")

    def predict_group(self, cell: CellFile, group: Group) -> np.ndarray:
        """(V, N, 17, 3) predictions for every frame of the group (NaN where the model gave none)."""
        import torch

        n_views, n_frames = len(group.camera_ids), len(group.frames)
        pred = np.full((n_views, n_frames, N_JOINTS, 3), np.nan)
        for index, batch in model_batches(self.bench, cell, group, self.spec, self.batch_size, self.workers):
            pad = batch["pad"]
            b = len(index)
            with torch.no_grad():
                out = np.asarray(self.model.model.predict(batch), dtype=np.float64)
            expected = (b, n_views, index.shape[1], N_JOINTS, 3)
            if out.shape != expected:
                raise ValueError(f"predict returned shape {out.shape}, expected {expected}")
            for i in range(b):
                keep = ~pad[i]
                pred[:, index[i][keep]] = out[i][:, keep]
        return pred

    def score(self, cell: CellFile) -> tuple[list[dict], list[dict]]:
        df = self.bench.labels(cell)
        input_2d = self.input_2d(df)
        if input_2d == "detector":
            df = self._with_detections(df)
        info = df.drop_duplicates("camera").set_index("camera")
        stride = np.diff(np.unique(df["frame"].to_numpy()))
        fps = FPS / float(np.median(stride)) if len(stride) else FPS
        if self.spec.kind == "images" and not has_values(df, "image"):
            raise ValueError("this cell has no images (keypoint-only output or a raw source); image models need a generated benchmark with images")
        rows, joint_rows = [], []
        groups = build_groups(df, self.spec, input_2d, self.bench.root)
        occlusion_recorded = any(bool(g.arrays["occluded"].any()) for g in groups)  # the corruption hid joints
        for group in groups:
            pred = self.predict_group(cell, group)
            for v, camera in enumerate(group.camera_ids):
                seq = pred[v]
                if self.refiner is not None:
                    seq = np.asarray(self.refiner.model.refine(seq, fps), dtype=np.float64)
                values, joints = sequence_metrics(seq, group.arrays["joints_3d_cam"][v], group.arrays["occluded"][v], occlusion_recorded)
                key = self._key(cell, camera, info)
                rows.append({**key, "input_2d": input_2d, **values, "error": None})
                for j, joint in enumerate(JOINT_NAMES):
                    joint_rows.append({**key, "joint": joint, **{m: float(a[j]) for m, a in joints.items()}})
        return rows, joint_rows

    def _key(self, cell: CellFile, camera: str | None, info=None) -> dict:
        action = subaction = None
        if info is not None and camera in info.index:
            action = info.loc[camera].get("action")
            subaction = info.loc[camera].get("subaction")
        return {
            "model": self.name,
            "variant": cell.variant,
            "corruption": cell.corruption,
            "severity": int(cell.severity),
            "subject": cell.subject,
            "action": None if action is None else str(action),
            "subaction": None if subaction is None or subaction != subaction else int(subaction),
            "camera": camera,
            "sequence": cell.sequence,
        }

    def error_rows(self, cell: CellFile, message: str) -> list[dict]:
        return [{**self._key(cell, None), "input_2d": None, "n_frames": 0, "n_nonfinite": 0, "error": message}]


def _frame(rows: list[dict], columns: tuple[str, ...] | None = None):
    import pandas as pd

    df = pd.DataFrame(rows)
    if columns is not None:
        for c in columns:
            if c not in df.columns:
                df[c] = np.nan if c in METRIC_COLUMNS else None
        df = df[list(columns)]
    return df


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
    refine: str | None = None,
    refine_checkpoint: str | Path | None = None,
    device: str | None = None,
    batch_size: int = 64,
    workers: int = 0,
    show_progress: bool = True,
    executor=None,
) -> ScoreSummary:
    """Score `model` on every cell of `benchmark` not yet finished in `out`; merge all rows.

    `model`, `refine` and `detector` are specs as `corrupt_bench.models.loading.load_model` reads them
    (a built-in name, `package.module:factory` or a checkpoint); a spec of the wrong kind (a lifter's
    checkpoint as the detector) is a UserError before anything is written.

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
    if predictor.input_spec.kind not in ("images", "keypoints2d"):
        raise UserError(f"model '{model}' consumes '{predictor.input_spec.kind}': score it as a refiner (--refine) of another model")
    refiner = load_model(refine, refine_checkpoint, device=device, kind="refiner") if refine is not None else None
    loaded_detector = load_detector(detector, device) if detector is not None else None
    refine_id = refiner.identity if refiner else ""
    detector_id = loaded_detector.identity if loaded_detector else ""
    run_key = _digest(loaded.identity, bench.lock_digest, refine_id, detector_id)
    cells = bench.cell_files(corruptions, severities, variants)

    out.mkdir(parents=True, exist_ok=True)
    cell_root = confined(out, CELLS_DIR, run_key)  # a symbolic link out of the run folder is refused
    run_info = {
        "run_key": run_key,
        "model": {"spec": str(model), "name": name, "config": loaded.config, "checkpoint": str(checkpoint) if checkpoint else None,
                  "checkpoint_digest": loaded.checkpoint_digest},  # fmt: skip
        "refine": {"spec": refine, "checkpoint": str(refine_checkpoint) if refine_checkpoint else None, "identity": refine_id} if refine else None,
        "detector": {"spec": str(detector), "model": loaded_detector.spec, "config": loaded_detector.config,
                     "checkpoint_digest": loaded_detector.checkpoint_digest, "identity": detector_id} if loaded_detector else None,  # fmt: skip
        "benchmark": bench.describe(),
        "device": device,
    }
    atomic_write_text(out / RUN_INFO_NAME, json.dumps(run_info, indent=1, default=str))

    scorer = CellScorer(bench, loaded, name, refiner, loaded_detector, device, batch_size, workers, run_key, out)
    todo = [c for c in cells if not _cell_path(cell_root, c.key + ROWS_SUFFIX).is_file()]
    n_failed = 0
    extra = {"refine": refine, "checkpoint": loaded.checkpoint_digest, "benchmark": bench.lock_digest, "run_key": run_key}
    if executor is None:
        outcomes = (score_cell(scorer, cell) for cell in todo)
    else:
        spec = RemoteScorer(str(model), str(bench.root.resolve()), None if checkpoint is None else str(checkpoint), config,
                            name, refine, None if refine_checkpoint is None else str(refine_checkpoint),
                            None if detector is None else str(detector), requested_device, batch_size, workers, run_key,
                            str(out.resolve()))  # fmt: skip
        outcomes = executor.map(partial(score_cell_remote, spec), todo)
    iterator = progress(outcomes, total=len(todo), description=f"scoring {name}") if show_progress else outcomes
    for cell, status, rows, joint_rows, seconds in iterator:
        rows_path = _cell_path(cell_root, cell.key + ROWS_SUFFIX)
        failed_path = _cell_path(cell_root, cell.key + FAILED_SUFFIX)
        n_failed += status != "ok"
        table = _frame([{**r, **extra, "seconds": seconds} for r in rows], ROW_COLUMNS)
        if status == "ok":
            if joint_rows:
                atomic_write_parquet(_cell_path(cell_root, cell.key + JOINTS_SUFFIX), _frame([{**r, "run_key": run_key} for r in joint_rows]))
            atomic_write_parquet(rows_path, table)
            failed_path.unlink(missing_ok=True)
        else:
            atomic_write_parquet(failed_path, table)
        with open(cell_root / COMPUTED_LOG_NAME, "a") as log:
            log.write(f"{cell.key}\t{status}\n")
    results = merge_cells(out, run_key)
    return ScoreSummary(out, run_key, len(cells), len(cells) - len(todo), len(todo), n_failed, results)


def score_cell(scorer: CellScorer, cell: CellFile) -> tuple[CellFile, str, list[dict], list[dict], float]:
    """One cell, isolated: (cell, "ok" | "failed", rows, per-joint rows, seconds)."""
    started = time.perf_counter()
    try:
        rows, joint_rows = scorer.score(cell)
        status = "ok"
    except Exception as exc:  # per-cell isolation: record and go on
        message = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        if os.environ.get("CORRUPT_BENCH_TRACEBACK"):
            traceback.print_exc()
        rows, joint_rows, status = scorer.error_rows(cell, message), [], "failed"
    return cell, status, rows, joint_rows, time.perf_counter() - started


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


@lru_cache(maxsize=1)
def _worker_scorer(spec_json: str) -> CellScorer:
    """The scorer of one run, built once per worker process (tasks of a run reuse the loaded model)."""
    spec = RemoteScorer(**json.loads(spec_json))
    device = resolve_device(spec.device)
    loaded = load_model(spec.model, spec.checkpoint, spec.config, device, kind="predictor")
    refiner = load_model(spec.refine, spec.refine_checkpoint, device=device, kind="refiner") if spec.refine else None
    detector = load_detector(spec.detector, device) if spec.detector else None
    scorer = CellScorer(Benchmark(spec.benchmark), loaded, spec.name, refiner, detector, device, spec.batch_size, spec.workers,
                        spec.run_key, Path(spec.out))  # fmt: skip
    ids = (loaded.identity, scorer.bench.lock_digest, refiner.identity if refiner else "", detector.identity if detector else "")
    if _digest(*ids) != spec.run_key:
        raise UserError("this worker sees another model, checkpoint or benchmark than the driver (same paths on every node?)", spec.benchmark)
    return scorer


def score_cell_remote(spec: RemoteScorer, cell: CellFile) -> tuple[CellFile, str, list[dict], list[dict], float]:
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
