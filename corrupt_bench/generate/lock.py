"""lock.json: what a generated benchmark must contain, as digests two labs can compare; and `verify`.

Digests are of content, not of container bytes: an image's digest hashes its *decoded* pixels
(shape + array bytes), a label file's digest hashes a canonical JSON serialisation of its table
(schema + column values), so a re-encoded parquet with the same rows matches. The lock holds no
wall-clock time; timings go to `.generate/run_log.jsonl`.

`content_digest` covers the per-cell files (`files`) only, as it always has, so locks of older
versions stay comparable. The root files a scorer reads are covered beside it: the manifest by
its canonical digest (`manifest.digest`), `cameras.json` and `sequences.json` by the digests of
their canonical JSON (`root_files`). `verify` checks both; a lock without `root_files` (older versions) leaves
`cameras.json` unchecked and says so.

Resumability: every work unit writes its files atomically, then a done-marker
`.generate/done/<unit key>.json` with the digests of its files. The lock is assembled from the
markers sorted by key, so it does not depend on order, worker count or interruptions.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corrupt_bench.io import atomic_write_bytes, confined, is_temporary
from corrupt_bench.layout import (
    CAMERA_FILE_NAME,
    IGNORED_DIRS,
    IMAGE_SUFFIXES,
    LABEL_SUFFIX,
    LOCK_NAME,
    MANIFEST_NAME,
    OUTPUT_LOCK_NAME,
    ROOT_FILES,
    SEQUENCES_NAME,
    marker_path,
)

LOCK_FORMAT = 1


def pixels_digest(image: np.ndarray) -> str:
    """sha256 of a decoded image: dtype, shape and the C-ordered array bytes (hashed in place when
    the array is contiguous, copied once otherwise)."""
    array = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{array.dtype.str}|{'x'.join(map(str, array.shape))}|".encode())
    h.update(memoryview(array).cast("B"))
    return "sha256:" + h.hexdigest()


def image_digest(data: bytes, image_rgb: np.ndarray, fmt: str) -> str:
    """The lock's pixel digest of an image just encoded from `image_rgb` as `data` by `writers.encode_image`:
    the digest of what a reader decodes. PNG is lossless, so that is `image_rgb` itself (no decode);
    JPEG is decoded (without looking for an EXIF orientation, which our encoder never writes)."""
    if fmt == "png":
        return pixels_digest(image_rgb)
    import cv2

    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        raise ValueError("not a decodable image")
    return pixels_digest(pixels)


def _type_name(dtype) -> str:
    """Arrow type without the names of list items (parquet reads `list<item>` back as `list<element>`)."""
    import pyarrow as pa

    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"list<{_type_name(dtype.value_type)}>"
    return str(dtype)


def table_digest(table, memo: ColumnMemo | None = None) -> str:
    """sha256 of a canonical serialisation of a pyarrow table (schema, then each column's values).
    `memo`: serialisations of columns seen before, for tables that share columns."""
    h = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        h.update(json.dumps([name, _type_name(column.type)]).encode())
        h.update(_column_json(column) if memo is None else memo.column_json(column))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def _column_json(column) -> bytes:
    return json.dumps(column.to_pylist(), allow_nan=True, separators=(",", ":")).encode()


class ColumnMemo:
    """Column serialisations for `table_digest`, keyed by the column's type, slices and buffer bytes
    (equal keys mean equal values). The label tables of units that read the same frames share most
    columns (ground truth, boxes, crops, cameras), and turning floats into JSON is the bulk of a
    digest: each such column is serialised once. At most `max_bytes` are kept."""

    def __init__(self, max_bytes: int = 64 * 2**20):
        self._json: dict[bytes, bytes] = {}
        self._room = max_bytes

    def column_json(self, column) -> bytes:
        import pyarrow as pa

        key = hashlib.sha256(str(column.type).encode())
        for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
            key.update(f"|{chunk.offset}:{len(chunk)}".encode())
            for buffer in chunk.buffers():
                key.update(b"|-" if buffer is None else f"|{buffer.size}:".encode())
                if buffer is not None:
                    key.update(buffer)
        found = self._json.get(key.digest())
        if found is None:
            found = _column_json(column)
            if len(found) <= self._room:
                self._json[key.digest()] = found
                self._room -= len(found)
        return found


def file_digest(path: Path) -> str:
    """Content digest of one output file, by kind (image pixels or label table)."""
    if path.suffix in IMAGE_SUFFIXES:
        from corrupt_bench.generate.writers import decode_image

        return pixels_digest(decode_image(path.read_bytes()))
    if path.suffix == LABEL_SUFFIX:
        import pyarrow.parquet as pq

        return table_digest(pq.read_table(path))
    raise ValueError(f"no digest for {path.name}")


def json_digest(path: Path) -> str:
    """sha256 of a JSON file's canonical serialisation (sorted keys, no spaces): its content, not its layout."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def root_file_digests(out: Path) -> dict[str, str]:
    """Digests of the root files a scorer reads besides the manifest (which has its own digest)."""
    return {name: json_digest(out / name) for name in (CAMERA_FILE_NAME, SEQUENCES_NAME) if (out / name).is_file()}


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour can change pixels or labels: numpy (distributions),
    OpenCV (filters, codecs, decoding), scipy (the inverse normal CDF of the noise tables),
    scikit-image (the images of the built-in occluder bank), cdflib (raw poses), pyarrow (label
    tables), pydantic and PyYAML (manifests and tables), PyAV when installed (the synthetic source's
    video encoder)."""
    import cdflib
    import cv2
    import pyarrow
    import pydantic
    import scipy
    import skimage
    import yaml

    versions = {
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "scipy": scipy.__version__,
        "scikit-image": skimage.__version__,
        "cdflib": cdflib.__version__,
        "pyarrow": pyarrow.__version__,
        "pydantic": pydantic.__version__,
        "pyyaml": yaml.__version__,
    }
    if "av" in sys.modules:
        versions["av"] = sys.modules["av"].__version__
    else:  # optional; its version without importing it (a twentieth of a second)
        from importlib import metadata

        try:
            versions["av"] = metadata.version("av")
        except metadata.PackageNotFoundError:
            pass
    return versions


def write_marker(out: Path, key: str, files: dict[str, str], stats: dict) -> None:
    payload = {"key": key, "files": dict(sorted(files.items())), **stats}
    atomic_write_bytes(marker_path(out, key), json.dumps(payload, sort_keys=True, indent=1).encode())


def read_marker(out: Path, key: str) -> dict | None:
    """The marker of a finished unit whose files are all present, else None (unit to redo)."""
    path = marker_path(out, key)
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if marker.get("key") != key or not all((out / rel).is_file() for rel in marker.get("files", {})):
        return None
    return marker


def build_lock(
    manifest_info: dict, corruption_versions: dict[str, str], keys: Iterable[str], out: Path
) -> dict:
    """Assemble the lock from the markers of `keys` (all must be present)."""
    from corrupt_bench._version import __version__

    files: dict[str, str] = {}
    units = sorted(keys)
    for key in units:
        marker = read_marker(out, key)
        if marker is None:
            raise RuntimeError(f"unit {key} has no complete marker")
        files.update(marker["files"])
    files = dict(sorted(files.items()))
    content = hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {
        "lock_format": LOCK_FORMAT,
        "tool": {"name": "corrupt-bench", "version": __version__},
        "libraries": library_versions(),
        "manifest": manifest_info,
        "corruptions": dict(sorted(corruption_versions.items())),
        "units": len(units),
        "content_digest": "sha256:" + content,
        "root_files": root_file_digests(out),
        "files": files,
    }


def write_lock(out: Path, lock: dict) -> None:
    atomic_write_bytes(confined(out, LOCK_NAME), (json.dumps(lock, sort_keys=True, indent=1) + "\n").encode())


# ---------------------------------------------------------------------------------------------
# verify


@dataclass
class VerifyReport:
    """Outcome of `verify`: relative paths that are missing, extra or altered; root files the lock
    does not cover (older locks); and, when files are altered, the libraries whose recorded versions
    differ from the running ones (one line each)."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    library_differences: list[str] = field(default_factory=list)
    temporaries: list[str] = field(default_factory=list)  # left by interrupted writes (not the benchmark)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.altered or self.temporaries)


def benchmark_files(out: Path) -> list[str]:
    """Relative paths (posix) of every image and label file under `out`, outside the ignored folders."""
    return _walk(out)[0]


def temporary_files(out: Path) -> list[str]:
    """Relative paths (posix) of the temporaries that interrupted writes left anywhere under `out`."""
    return _walk(out)[1]


def _walk(out: Path) -> tuple[list[str], list[str]]:
    """(benchmark files, temporaries) under `out`; the state folders hold no benchmark file but are
    searched for temporaries; the output folder's lock file is neither."""
    found: list[str] = []
    temporaries: list[str] = []
    for dirpath, dirnames, filenames in os.walk(out):
        rel_dir = Path(dirpath).relative_to(out)
        state = bool(rel_dir.parts) and rel_dir.parts[0] in IGNORED_DIRS
        dirnames.sort()
        for name in sorted(filenames):
            if is_temporary(name):
                temporaries.append((rel_dir / name).as_posix())
            elif state or (rel_dir == Path(".") and name in (*ROOT_FILES, OUTPUT_LOCK_NAME)):
                continue
            else:
                found.append((rel_dir / name).as_posix())
    return found, temporaries


def load_lock(out: Path) -> dict:
    """lock.json of a benchmark, its structure checked (a fault is one line naming the file)."""
    from corrupt_bench.errors import UserError

    path = out / LOCK_NAME
    try:
        lock = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise UserError("no lock.json: not a generated benchmark (or generation did not finish)", out) from None
    except OSError as exc:
        raise UserError(f"cannot read lock.json ({exc.strerror or exc})", path) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UserError(f"lock.json is not valid JSON: {str(exc)[:200]}", path) from None
    except RecursionError:
        raise UserError("lock.json is not valid JSON: nested too deeply", path) from None
    if not isinstance(lock, dict) or lock.get("lock_format") != LOCK_FORMAT or "files" not in lock:
        raise UserError(f"unsupported lock format; expected a JSON object with lock_format {LOCK_FORMAT} and files", path)
    files = lock["files"]
    if not isinstance(files, dict):
        raise UserError("key 'files' of lock.json must map relative paths to digests", path)
    for rel, digest in files.items():
        if not isinstance(digest, str) or not rel or rel.startswith("/") or ".." in rel.split("/") or "\\" in rel:
            raise UserError(f"key 'files' of lock.json holds an entry that is not a relative path and a digest: {rel[:80]!r}", path)
    for key in ("manifest", "root_files", "libraries"):
        if key in lock and not isinstance(lock[key], dict):
            raise UserError(f"key '{key}' of lock.json must be a JSON object", path)
    return lock


def _check_one(args: tuple[str, str, str]) -> tuple[str, str]:
    out, rel, expected = args
    try:
        actual = file_digest(confined(Path(out), *rel.split("/")))  # a symbolic link out of the benchmark: unreadable
    except Exception:  # an unreadable file counts as altered
        actual = "unreadable"
    return rel, "ok" if actual == expected else "altered"


def verify(out: Path, lock: dict | None = None, show_progress: bool = False, workers: int = 1) -> VerifyReport:
    """Recompute the digest of every file of the lock; list missing, extra and altered files."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from corrupt_bench.progress import progress

    out = Path(out)
    lock = load_lock(out) if lock is None else lock
    expected: dict[str, str] = lock["files"]
    files, temporaries = _walk(out)
    present = set(files)
    report = VerifyReport(temporaries=temporaries)
    report.extra = sorted(present - set(expected))
    report.missing = sorted(set(expected) - present)
    todo = [(str(out), rel, digest) for rel, digest in sorted(expected.items()) if rel in present]
    pool = None
    if workers > 1 and len(todo) > 1:
        from corrupt_bench.processes import end_with_parent

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=end_with_parent)
        items = pool.map(_check_one, todo, chunksize=max(1, min(256, len(todo) // (8 * workers))))
    else:
        items = map(_check_one, todo)
    if show_progress:
        items = progress(items, total=len(todo), description="verify")
    try:
        for rel, status in items:
            report.checked += 1
            if status != "ok":
                report.altered.append(rel)
    except BrokenProcessPool as exc:
        from corrupt_bench.processes import pool_exit_codes, worker_died

        codes = pool_exit_codes(pool)  # before shutdown: it forgets its processes
        pool.shutdown(wait=True, cancel_futures=True)
        raise worker_died(exc, out, codes) from None
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    report.altered.sort()
    _check_root_files(out, lock, report)
    if report.altered:
        report.library_differences = library_differences(lock)
    return report


def _check_root_files(out: Path, lock: dict, report: VerifyReport) -> None:
    """The manifest against the lock's manifest digest, cameras.json against `root_files`."""
    manifest_file = out / MANIFEST_NAME
    info = lock.get("manifest", {})
    if manifest_file.is_file() and info.get("digest"):
        from corrupt_bench.generate.manifest import parse_manifest
        from corrupt_bench.safe_yaml import load_yaml

        try:
            digest = parse_manifest(load_yaml(manifest_file, "stored manifest"), manifest_file, False).digest()
        except Exception:  # any fault in the stored manifest is an alteration
            digest = None
        if digest != info["digest"]:
            report.altered.insert(0, MANIFEST_NAME)
    elif not manifest_file.is_file():
        report.missing.insert(0, MANIFEST_NAME)
    recorded = lock["root_files"] if isinstance(lock.get("root_files"), dict) else {}
    if CAMERA_FILE_NAME not in recorded:
        report.unchecked.append(CAMERA_FILE_NAME)
    for name in (CAMERA_FILE_NAME, SEQUENCES_NAME):  # sequences.json: recorded since it exists
        if name not in recorded:
            continue
        path = out / name
        if not path.is_file():
            report.missing.insert(0, name)
            continue
        try:
            digest = json_digest(path)
        except (OSError, ValueError):  # unreadable or not JSON: altered
            digest = None
        if digest != recorded[name]:
            report.altered.insert(0, name)


def library_differences(lock: dict) -> list[str]:
    """One line per library whose version recorded in the lock differs from the running one."""
    recorded = lock["libraries"] if isinstance(lock.get("libraries"), dict) else {}
    running = library_versions()
    lines = []
    for name, version in sorted(recorded.items()):
        here = running.get(name)
        if here != version:
            now = f"{here} here" if here is not None else "not installed here"
            lines.append(f"{name} {version} in lock.json, {now}: digests hold for the recorded versions")
    return lines
