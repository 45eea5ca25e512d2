"""The folder contracts between the areas: what a generated benchmark and a score run hold, where.

One home for every file name, path builder and label column: `generate` writes by these names,
`verify`, `score`, `export` and the reports read by them, and no other module re-derives a path or
a column list. A generated benchmark (docs/INTERFACES.md, "Generated benchmark"):

```
OUT/lock.json  OUT/manifest.yaml  OUT/cameras.json        recipe, digests, calibration
OUT/sequences.json                                          per sequence: source fps, frames, sizes, 3D labels
OUT/<variant>/<corruption>/<severity>/labels/<subject>_<sequence>.parquet
OUT/<variant>/<corruption>/<severity>/images/<subject>_<sequence>.<camera>/<frame:06d>.<ext>
OUT/.generate/done/<unit key>.json  OUT/.generate/run_log.jsonl      state (not the benchmark)
```

A score run:

```
RUN/run.json  RUN/results.parquet  RUN/per_joint.parquet
RUN/cells/<run key>/<variant>/<corruption>/<severity>/<subject>_<sequence>.{rows,failed,joints}.parquet
RUN/cells/<run key>/computed.log  RUN/detections/<detector key>/<variant>/<corruption>/<severity>/<stem>.parquet
RUN/predictions/<run key>/predictions.json  RUN/predictions/<run key>/<variant>/<corruption>/<severity>/<stem>.parquet
```
"""

from __future__ import annotations

from pathlib import Path

from corrupt_bench.errors import UserError
from corrupt_bench.io import confined

# --- shared constants ---------------------------------------------------------------------------
CLEAN = "clean"  # severity 0 of every variant: the clean reference
H36M_FPS = 50.0  # Human3.6M videos and mocap; other sources carry their own rate

# --- a generated benchmark ----------------------------------------------------------------------
LOCK_NAME = "lock.json"
MANIFEST_NAME = "manifest.yaml"
CAMERA_FILE_NAME = "cameras.json"  # the calibration the labels were computed with (scorers read it)
SEQUENCES_NAME = "sequences.json"  # per sequence: the source's fps, frame count, image sizes, whether 3D labels exist
STATE_DIR = ".generate"  # per-unit done markers and the run log; not part of the benchmark
DONE_DIR = f"{STATE_DIR}/done"
RUN_LOG_NAME = "run_log.jsonl"
LABELS_DIR = "labels"
IMAGES_DIR = "images"
LABEL_SUFFIX = ".parquet"
IMAGE_SUFFIXES = (".jpg", ".png")
IMAGE_EXTENSIONS = {"jpeg": "jpg", "png": "png", "keypoints": None}  # output.format -> file extension
# root files of a benchmark besides its per-cell files: every one a scorer reads is in the lock
ROOT_FILES = (LOCK_NAME, MANIFEST_NAME, CAMERA_FILE_NAME, SEQUENCES_NAME)
IGNORED_DIRS = frozenset({STATE_DIR})  # folders of a benchmark that `verify` leaves alone
# the lock of an output folder while generate / score / train write it (corrupt_bench.outdir); not output
OUTPUT_LOCK_NAME = ".corrupt-bench.lock"


def read_sequences(root: str | Path) -> list[dict] | None:
    """The `sequences` list of a benchmark's sequences.json (None when the benchmark has none: older
    versions). A variant's frame rate is `fps / frame_step` (both in the file)."""
    import json

    path = confined(root, SEQUENCES_NAME)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"unreadable {SEQUENCES_NAME} ({type(exc).__name__})", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("sequences"), list):
        raise UserError(f"{SEQUENCES_NAME} must hold a 'sequences' list", path)
    return data["sequences"]


def has_no_3d_labels(root: str | Path) -> bool:
    """True when a benchmark's sequences.json says none of its sequences has 3D ground truth (a
    multi-view rig without it: images and 2D boxes only, nothing to score)."""
    sequences = read_sequences(root)
    return bool(sequences) and not any(isinstance(s, dict) and s.get("labels_3d") is True for s in sequences)


def sequence_stem(subject: str, sequence: str) -> str:
    """`<subject>_<sequence>`: the name of a label file and the prefix of its image folders."""
    return f"{subject}_{sequence}"


def split_stem(stem: str, path: str | Path | None = None) -> tuple[str, str]:
    """(subject, sequence) of a `<subject>_<sequence>` stem (subjects never hold '_')."""
    subject, sep, sequence = stem.partition("_")
    if not sep or not subject or not sequence:
        raise UserError("label file name must be <subject>_<sequence>.parquet", path)
    return subject, sequence


def cell_key(variant: str, corruption: str, severity: int) -> str:
    """`<variant>/<corruption>/<severity>`: a cell of the grid, also its folder."""
    return f"{variant}/{corruption}/{int(severity)}"


def unit_key(variant: str, corruption: str, severity: int, subject: str, sequence: str) -> str:
    """`<cell>/<subject>_<sequence>`: one sequence of one cell (a generate unit, a score cell file)."""
    return f"{cell_key(variant, corruption, severity)}/{sequence_stem(subject, sequence)}"


def cell_dir(root: str | Path, variant: str, corruption: str, severity: int) -> Path:
    return confined(root, variant, corruption, str(int(severity)))


def label_path(root: str | Path, variant: str, corruption: str, severity: int, subject: str, sequence: str) -> Path:
    return confined(root, variant, corruption, str(int(severity)), LABELS_DIR, sequence_stem(subject, sequence) + LABEL_SUFFIX)


def image_folder(root: str | Path, variant: str, corruption: str, severity: int, subject: str, sequence: str, camera: str) -> Path:
    return confined(root, variant, corruption, str(int(severity)), IMAGES_DIR, f"{sequence_stem(subject, sequence)}.{camera}")


def image_name(frame: int, extension: str) -> str:
    return f"{int(frame):06d}.{extension}"


def label_glob() -> str:
    """Glob (relative to a benchmark root) of every label file."""
    return f"*/*/*/{LABELS_DIR}/*{LABEL_SUFFIX}"


def parse_label_path(root: str | Path, path: str | Path) -> tuple[str, str, int, str, str] | None:
    """(variant, corruption, severity, subject, sequence) of a label file, or None when `path` does not
    follow the layout (a folder whose severity is not an integer)."""
    rel = Path(path).relative_to(root).parts
    if len(rel) != 5 or rel[3] != LABELS_DIR or not rel[4].endswith(LABEL_SUFFIX):
        return None
    variant, corruption, severity = rel[:3]
    try:
        level = int(severity)
    except ValueError:
        return None
    subject, sequence = split_stem(rel[4][: -len(LABEL_SUFFIX)], path)
    return variant, corruption, level, subject, sequence


def marker_path(root: str | Path, key: str) -> Path:
    """The done-marker of a generate unit (its key is a relative path of plain names)."""
    return confined(root, STATE_DIR, "done", *f"{key}.json".split("/"))


# --- label columns (one row per frame and camera) -----------------------------------------------
LABEL_COLUMNS: tuple[str, ...] = (
    "variant", "corruption", "severity", "subject", "sequence", "action", "subaction", "camera", "frame",
    "image", "joints_3d_cam", "joints_3d_world", "joints_2d", "joints_2d_crop", "box", "crop", "image_size",
    "keypoints_2d", "keypoint_conf", "occluded", "view_valid", "time_offset", "params",
)  # fmt: skip


def label_schema():
    """The pyarrow schema of a label file (docs/INTERFACES.md has the meaning of every column)."""
    import pyarrow as pa

    f32 = pa.list_(pa.float32())
    types = {
        "variant": pa.string(), "corruption": pa.string(), "severity": pa.int8(), "subject": pa.string(),
        "sequence": pa.string(), "action": pa.string(), "subaction": pa.int8(), "camera": pa.string(),
        "frame": pa.int32(), "image": pa.string(), "joints_3d_cam": f32, "joints_3d_world": f32,
        "joints_2d": f32, "joints_2d_crop": f32, "box": f32, "crop": f32, "image_size": pa.list_(pa.int32()),
        "keypoints_2d": f32, "keypoint_conf": f32, "occluded": pa.list_(pa.bool_()), "view_valid": pa.bool_(),
        "time_offset": pa.float32(), "params": pa.string(),
    }  # fmt: skip
    return pa.schema([(name, types[name]) for name in LABEL_COLUMNS])


# --- a score run --------------------------------------------------------------------------------
RUN_INFO_NAME = "run.json"
RESULTS_NAME = "results.parquet"
PER_JOINT_NAME = "per_joint.parquet"
CELLS_DIR = "cells"
COMPUTED_LOG_NAME = "computed.log"
DETECTIONS_DIR = "detections"
PREDICTIONS_DIR = "predictions"  # score --save-predictions: each cell's poses, re-scored without the model
PREDICTIONS_INFO_NAME = "predictions.json"  # model name, joint set, refiner, run key of a predictions folder
ROWS_SUFFIX = ".rows.parquet"
FAILED_SUFFIX = ".failed.parquet"
JOINTS_SUFFIX = ".joints.parquet"


def detection_path(run: str | Path, detector_key: str, variant: str, corruption: str, severity: int, subject: str,
                   sequence: str) -> Path:  # fmt: skip
    """The 2D detections of one label file by one detector, cached in a score run folder."""
    return confined(run, DETECTIONS_DIR, detector_key, variant, corruption, str(int(severity)),
                    sequence_stem(subject, sequence) + LABEL_SUFFIX)  # fmt: skip


def prediction_path(run: str | Path, run_key: str, variant: str, corruption: str, severity: int, subject: str,
                    sequence: str) -> Path:  # fmt: skip
    """The saved predictions of one label file under one run key (`score --save-predictions`)."""
    return confined(run, PREDICTIONS_DIR, run_key, variant, corruption, str(int(severity)),
                    sequence_stem(subject, sequence) + LABEL_SUFFIX)  # fmt: skip
