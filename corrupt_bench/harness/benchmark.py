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
from corrupt_bench.layout import CAMERA_FILE_NAME, CLEAN, LABELS_DIR, label_glob, parse_label_path, unit_key
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

    # -- identity ----------------------------------------------------------------------------------
    @property
    def lock_digest(self) -> str:
        """16 hex of SHA-256 of the lock's `content_digest` (else of lock.json); for a raw folder, of its
        file names, sizes and JSON files (cameras.json)."""
        if self._lock_digest is None:
            h = hashlib.sha256()
            if self.is_generated:
                lock = self._lock()
                content = lock.get("content_digest") if isinstance(lock, dict) else None
                h.update(str(content).encode() if content else (self.root / LOCK_FILE).read_bytes())
            else:
                for path in sorted(self.root.rglob("*")):
                    if path.is_file() and path.suffix in (".cdf", ".mp4", ".json"):
                        rel = path.relative_to(self.root).as_posix()
                        h.update(f"{rel}\0{path.stat().st_size}\n".encode())
                        if path.suffix == ".json":
                            h.update(path.read_bytes())
            self._lock_digest = h.hexdigest()[:16]
        return self._lock_digest

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
            path = self.root / MANIFEST_FILE
            if path.is_file():
                from corrupt_bench.safe_yaml import load_yaml

                manifest = load_yaml(path, "stored manifest")
                source = manifest.get("source") if isinstance(manifest, dict) else None
                if isinstance(source, dict) and source.get("kind") == "synthetic":
                    from corrupt_bench.data.synth import DEFAULT_DIVISOR

                    self._divisor = int(source.get("divisor", DEFAULT_DIVISOR))
        return self._divisor

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
