"""What `score` reads: a generated benchmark (lock.json + label parquet files + images) or a raw folder.

A generated benchmark (docs/INTERFACES.md, "Generated benchmark") is walked as it is on disk:
`<variant>/<corruption>/<severity>/labels/<subject>_<sequence>.parquet`. A raw-layout folder (the
real download or the synthetic source) is read through `RawH36M` as variant `source`, corruption
`clean`, severity 0, with the same label columns built from the mocap (no images).

The unit of work of the scoring loop is one `CellFile`: one label file of one grid point.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrupt_bench.data.cameras import CAMERA_IDS, Camera, get_camera
from corrupt_bench.errors import UserError
from corrupt_bench.io import confined
from corrupt_bench.layout import (
    CAMERA_FILE_NAME,
    CLEAN,
    LABELS_DIR,
    has_no_3d_labels,
    label_glob,
    label_path,
    parse_label_path,
    unit_key,
)
from corrupt_bench.layout import LOCK_NAME as LOCK_FILE
from corrupt_bench.layout import MANIFEST_NAME as MANIFEST_FILE

SOURCE_VARIANT = "source"


@dataclass(frozen=True)
class CellFile:
    """One label file of one (variant, corruption, severity) grid point."""

    variant: str
    corruption: str
    severity: int
    subject: str
    sequence: str
    path: Path | None  # the label parquet (None for a raw source)

    @property
    def key(self) -> str:
        """Relative id, also the relative path of its result file (without suffix)."""
        return unit_key(self.variant, self.corruption, self.severity, self.subject, self.sequence)


class Benchmark:
    """A benchmark folder opened for scoring (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError("benchmark folder not found", self.root)
        self.is_generated = (self.root / LOCK_FILE).is_file()
        if self.is_generated and has_no_3d_labels(self.root):
            raise UserError("no 3D labels to score: the benchmark's source has no 3D ground truth (sequences.json)", self.root)
        self._raw = None
        if not self.is_generated:
            from corrupt_bench.data.raw import RawH36M

            try:
                self._raw = RawH36M(self.root)
            except UserError as exc:
                raise UserError(
                    f"neither a generated benchmark (no {LOCK_FILE}) nor a raw Human3.6M folder ({exc.fault})", self.root
                ) from None
        self._lock_digest: str | None = None
        self._divisor: int | None = None
        self._manifest: dict | None = None
        self._files: dict[str, str] | None = None

    # -- identity ----------------------------------------------------------------------------------
    @property
    def lock_digest(self) -> str:
        """16 hex of SHA-256 of what a scorer reads: for a generated benchmark, the lock's
        `content_digest` (else lock.json's bytes; the per-cell label and image files) and the
        root files as they are on disk now (cameras.json by its canonical JSON, manifest.yaml by
        its bytes: the calibration and the synthetic divisor); for a raw folder, its file names,
        sizes and JSON files (cameras.json)."""
        if self._lock_digest is None:
            h = hashlib.sha256()
            if self.is_generated:
                lock = self._lock()
                content = lock.get("content_digest") if isinstance(lock, dict) else None
                h.update(str(content).encode() if content else (self.root / LOCK_FILE).read_bytes())
                for name in (CAMERA_FILE_NAME, MANIFEST_FILE):
                    h.update(f"\0{name}\0{self._root_file_digest(name)}".encode())
            else:
                for path in sorted(self.root.rglob("*")):
                    if path.is_file() and path.suffix in (".cdf", ".mp4", ".json"):
                        rel = path.relative_to(self.root).as_posix()
                        h.update(f"{rel}\0{path.stat().st_size}\n".encode())
                        if path.suffix == ".json":
                            h.update(path.read_bytes())
            self._lock_digest = h.hexdigest()[:16]
        return self._lock_digest

    def _root_file_digest(self, name: str) -> str:
        """Digest of a root file as a scorer reads it ("absent" when there is none)."""
        path = self.root / name
        if not path.is_file():
            return "absent"
        if name == CAMERA_FILE_NAME:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UserError(f"unreadable calibration ({type(exc).__name__})", path) from exc
            return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        return hashlib.sha256(path.read_bytes()).hexdigest()

    # -- grid --------------------------------------------------------------------------------------
    def cell_files(
        self, corruptions: list[str] | None = None, severities: list[int] | None = None, variants: list[str] | None = None
    ) -> list[CellFile]:
        """Every label file of the grid present, filtered. The clean cells (severity 0) are always kept:
        relative robustness scores need them."""
        cells: list[CellFile] = []
        if self._raw is not None:
            for what, asked, have in (("variant", variants, SOURCE_VARIANT), ("corruption", corruptions, CLEAN), ("severity", severities, 0)):
                if asked and any(a != have for a in asked):
                    raise UserError(f"a raw folder is scored as variant '{SOURCE_VARIANT}', corruption '{CLEAN}', severity 0 only ({what} {asked} asked)", self.root)
            for ref in self._raw.sequences():
                cells.append(CellFile(SOURCE_VARIANT, CLEAN, 0, ref.subject, ref.sequence, None))
            return cells
        for path in sorted(self.root.glob(label_glob())):
            parsed = parse_label_path(self.root, path)
            if parsed is None:
                continue
            variant, corruption, severity, subject, sequence = parsed
            if variants and variant not in variants:
                continue
            is_clean = severity == 0 or corruption == CLEAN
            if not is_clean:
                if corruptions and corruption not in corruptions:
                    continue
                if severities and severity not in severities:
                    continue
            cells.append(CellFile(variant, corruption, severity, subject, sequence, path))
        if not cells:
            raise UserError("no label files (<variant>/<corruption>/<severity>/labels/*.parquet) match", self.root)
        self._check_selection(corruptions, severities, variants)
        return cells

    def _check_selection(self, corruptions, severities, variants) -> None:
        """A named corruption, severity or variant that the benchmark does not hold is a user error."""
        present = [p.relative_to(self.root).parts[:3] for p in self.root.glob(f"*/*/*/{LABELS_DIR}")]
        checks = (("variant", variants, {v for v, _, _ in present}), ("corruption", corruptions, {c for _, c, _ in present}),
                  ("severity", severities, {int(s) for _, _, s in present if s.isdigit()}))  # fmt: skip
        for what, asked, have in checks:
            missing = [a for a in asked or [] if a not in have]
            if missing:
                known = ", ".join(str(h) for h in sorted(have))
                raise UserError(f"no {what} {', '.join(map(str, missing))} in this benchmark (present: {known})", self.root)

    def grid_inputs(self, cells: list[CellFile]) -> dict[tuple[str, str, int], tuple[bool, bool]]:
        """(has images, has keypoint input) of each grid point of `cells`, read from the `image` and
        `keypoints_2d` columns of one of its label files (a raw folder has neither)."""
        import pyarrow.parquet as pq

        out: dict[tuple[str, str, int], tuple[bool, bool]] = {}
        for cell in cells:
            point = (cell.variant, cell.corruption, int(cell.severity))
            if point in out:
                continue
            if cell.path is None:
                out[point] = (False, False)
                continue
            try:
                schema = pq.read_schema(cell.path)
                present = [c for c in ("image", "keypoints_2d") if c in schema.names]
                table = pq.read_table(cell.path, columns=present)
            except Exception as exc:
                raise UserError(f"unreadable label file ({type(exc).__name__}: {exc})".splitlines()[0], cell.path) from exc
            has = {c: c in present and table.column(c).null_count < table.num_rows for c in ("image", "keypoints_2d")}
            out[point] = (has["image"], has["keypoints_2d"])
        return out

    def changed_frames(self, cell: CellFile, df) -> dict[str, int | None]:
        """Per camera, how many frames of a corrupted cell file the corruption changed, compared with the
        clean cell of the same variant at the same camera and frame: a frame is changed when its image
        differs (the lock's pixel digests, `lock.json` "files") or a label-side effect does (the 2D input
        a keypoint model reads: `keypoints_2d` / `keypoint_conf`, else `joints_2d`; `occluded`,
        `view_valid`, `time_offset`, `crop`). None for a camera where that cannot be told (no clean
        cell, a frame or an image digest missing); {} for a clean cell or a raw folder."""
        if cell.path is None or cell.corruption == CLEAN or int(cell.severity) == 0:
            return {}
        cameras = list(dict.fromkeys(df["camera"].astype(str)))
        clean_path = label_path(self.root, cell.variant, CLEAN, 0, cell.subject, cell.sequence)
        if not clean_path.is_file():
            return dict.fromkeys(cameras)
        import pandas as pd

        clean = pd.read_parquet(clean_path)
        clean["camera"] = clean["camera"].astype(str)
        files = self._lock_files()
        out: dict[str, int | None] = {}
        for camera in cameras:
            mine = df[df["camera"] == camera].set_index("frame")
            theirs = clean[clean["camera"] == camera].drop_duplicates("frame").set_index("frame")
            if not set(mine.index) <= set(theirs.index):
                out[camera] = None
                continue
            theirs = theirs.loc[mine.index]
            changed = np.zeros(len(mine), bool)
            unknown = False
            for i, (a, b) in enumerate(zip(_column(mine, "image"), _column(theirs, "image"), strict=True)):
                if a is None and b is None:
                    continue
                da, db = files.get(a) if a else None, files.get(b) if b else None
                if da is None or db is None:
                    unknown = True
                    break
                changed[i] |= da != db
            if unknown:
                out[camera] = None
                continue
            for key in ("input_2d", "input_conf", "occluded", "view_valid", "time_offset", "crop"):
                changed |= ~_equal_rows(_label_values(mine, key), _label_values(theirs, key))
            out[camera] = int(changed.sum())
        return out

    def _lock_files(self) -> dict[str, str]:
        """The lock's per-file digests (path relative to the root -> digest), read once."""
        if self._files is None:
            lock = self._lock() if self.is_generated else {}
            files = lock.get("files") if isinstance(lock, dict) else None
            self._files = {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
        return self._files

    # -- data --------------------------------------------------------------------------------------
    def camera(self, subject: str, camera_id: str) -> Camera:
        """Calibration of the benchmark's source: OUT/cameras.json if present; else, for a benchmark of the
        synthetic source rendered at 1/divisor size (manifest.yaml `source: {kind: synthetic, divisor}`),
        the public calibration scaled the way the synthetic writer scales it; else the public one."""
        if self._raw is not None:
            return self._raw.camera(subject, camera_id)
        camera = get_camera(subject, camera_id, root=self.root)
        if (self.root / CAMERA_FILE_NAME).is_file():
            return camera
        return camera.scaled(self._synthetic_divisor())

    def _synthetic_divisor(self) -> int:
        if self._divisor is None:
            self._divisor = 1
            manifest = self.stored_manifest()
            source = manifest.get("source") if isinstance(manifest, dict) else None
            if isinstance(source, dict) and source.get("kind") == "synthetic":
                from corrupt_bench.data.synth import DEFAULT_DIVISOR

                self._divisor = int(source.get("divisor", DEFAULT_DIVISOR))
        return self._divisor

    @property
    def manifest_path(self) -> Path:
        """Where a generated benchmark stores its manifest (`layout.MANIFEST_NAME`)."""
        return self.root / MANIFEST_FILE

    def stored_manifest(self) -> dict:
        """The stored manifest as read through `safe_yaml` ({} when the benchmark has none: a source
        folder, or a benchmark written without one)."""
        if self._manifest is None:
            self._manifest = {}
            if self.manifest_path.is_file():
                from corrupt_bench.safe_yaml import load_yaml

                manifest = load_yaml(self.manifest_path, "stored manifest")
                if not isinstance(manifest, dict):
                    raise UserError("stored manifest is not a mapping", self.manifest_path)
                self._manifest = manifest
        return self._manifest

    def timing(self):
        """The benchmark's time and box protocol (`harness.timing.Timing`) from its stored manifest, at
        the source frame rate recorded in sequences.json (each sequence's `fps`; a benchmark without the
        file: the manifest's `source.fps`, else Human3.6M's 50)."""
        import dataclasses

        from corrupt_bench.harness.timing import read_timing
        from corrupt_bench.layout import SEQUENCES_NAME, read_sequences

        timing = read_timing(self.stored_manifest(), self.manifest_path)
        sequences = read_sequences(self.root)
        rates = sorted({float(s["fps"]) for s in sequences or [] if isinstance(s, dict) and s.get("fps") is not None})
        if len(rates) > 1:
            raise UserError(f"sequences at different frame rates ({', '.join(f'{r:g}' for r in rates)} fps): generate them as separate benchmarks to score them", self.root / SEQUENCES_NAME)
        if rates:
            timing = dataclasses.replace(timing, source_fps=rates[0], fps_recorded=True)
        return timing

    def image_path(self, relative: str) -> Path:
        """Absolute path of an image named in the labels (refuses paths outside the benchmark)."""
        return confined(self.root, *relative.split("/")).resolve()

    def labels(self, cell: CellFile):
        """The label table of one cell file (pandas; list columns as arrays), sorted by camera and frame."""
        import pandas as pd

        if cell.path is None:
            df = self._raw_labels(cell)
        else:
            try:
                df = pd.read_parquet(cell.path)
            except Exception as exc:
                raise UserError(f"unreadable label file ({type(exc).__name__}: {exc})".splitlines()[0], cell.path) from exc
            missing = {"camera", "frame", "joints_3d_cam"} - set(df.columns)
            if missing:
                raise UserError(f"label file lacks columns {sorted(missing)}", cell.path)
        df["camera"] = df["camera"].astype(str)
        order = {c: i for i, c in enumerate(CAMERA_IDS)}
        rank = np.array([order.get(c, len(order)) for c in df["camera"]], dtype=np.int64)
        idx = np.lexsort((df["frame"].to_numpy(), rank))
        return df.iloc[idx].reset_index(drop=True)

    def _raw_labels(self, cell: CellFile):
        import pandas as pd

        assert self._raw is not None
        ref = next(r for r in self._raw.sequences() if r.subject == cell.subject and r.sequence == cell.sequence)
        frames = np.arange(ref.n_frames, dtype=np.int32)
        parts = []
        for camera_id in ref.cameras:
            cam3d = self._raw.poses_cam(ref, camera_id).astype(np.float32)
            kp2d = self._raw.poses_2d(ref, camera_id).astype(np.float32)
            parts.append(
                pd.DataFrame(
                    {
                        "variant": SOURCE_VARIANT,
                        "corruption": CLEAN,
                        "severity": np.int8(0),
                        "subject": ref.subject,
                        "sequence": ref.sequence,
                        "action": ref.action,
                        "subaction": np.int8(ref.subaction),
                        "camera": camera_id,
                        "frame": frames,
                        "image": None,
                        "joints_3d_cam": list(cam3d.reshape(len(frames), -1)),
                        "joints_2d": list(kp2d.reshape(len(frames), -1)),
                        "keypoints_2d": None,
                        "keypoint_conf": None,
                        "occluded": list(np.zeros((len(frames), 17), dtype=bool)),
                        "view_valid": True,
                        "time_offset": np.float32(0.0),
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    def describe(self) -> dict:
        """Provenance recorded with a run."""
        info = {"path": str(self.root.resolve()), "lock_digest": self.lock_digest, "generated": self.is_generated}
        if self.is_generated:
            lock = self._lock()
            manifest = lock.get("manifest") if isinstance(lock, dict) else None
            info["content_digest"] = lock.get("content_digest") if isinstance(lock, dict) else None
            info["manifest"] = manifest if isinstance(manifest, dict) else None
        return info

    def _lock(self):
        try:
            return json.loads((self.root / LOCK_FILE).read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"lock file is not valid JSON (line {exc.lineno})", self.root / LOCK_FILE) from exc


def _column(df, name: str) -> list:
    """A column's values as a list (Nones where the column is absent or null)."""
    if name not in df.columns:
        return [None] * len(df)
    return [None if v is None or (np.isscalar(v) and v != v) else v for v in df[name].tolist()]


def _label_values(df, key: str) -> list:
    """One label-side effect per row, as compared by `Benchmark.changed_frames`: the 2D input a keypoint
    model reads (`input_2d`: keypoints_2d, else joints_2d; `input_conf`: keypoint_conf, else all ones)
    or a label column as it is."""
    if key == "input_2d":
        return [k if k is not None else j for k, j in zip(_column(df, "keypoints_2d"), _column(df, "joints_2d"), strict=True)]
    if key == "input_conf":
        return [np.ones(17, np.float32) if c is None else c for c in _column(df, "keypoint_conf")]
    return _column(df, key)


def _equal_rows(a: list, b: list) -> np.ndarray:
    """(N,) True where two lists of row values are equal (arrays element by element, NaN equal to NaN)."""
    out = np.empty(len(a), bool)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x is None or y is None:
            out[i] = x is None and y is None
        else:
            xa, ya = np.asarray(x), np.asarray(y)
            out[i] = xa.shape == ya.shape and bool(np.array_equal(xa, ya, equal_nan=xa.dtype.kind == "f"))
    return out
