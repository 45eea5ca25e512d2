"""Sources of frames and labels for the generator: a raw Human3.6M folder (the real download or
the synthetic one), or VideoPose3D's npz files (keypoints-only variants, no images).

A `SourceConfig` is plain data (picklable, sent to workers); `open_source` turns it into a reader,
cached per process so a worker opens each source once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from corrupt_bench.data.cameras import Camera, get_camera, project_world
from corrupt_bench.errors import UserError
from corrupt_bench.generate.manifest import Manifest
from corrupt_bench.generate.planner import SequenceInfo

CACHE_ENV = "CORRUPT_BENCH_CACHE"
VP3D_3D_NAME = "data_3d_h36m.npz"
VP3D_2D_NAME = "data_2d_h36m_gt.npz"


@dataclass(frozen=True)
class SourceConfig:
    kind: str  # "h36m_raw" | "synthetic" (both read as a raw folder) | "vp3d_npz" | "mmpose_h36m" | "multiview"
    path: str
    subjects: tuple[str, ...]
    keypoints: str | None = None  # vp3d_npz: the <name> of data_2d_h36m_<name>.npz
    annotation: str | None = None  # mmpose_h36m: the annotation folder (fps50, fps10)


class ReaderSource:
    """A source read through one of `corrupt_bench.data`'s readers (raw Human3.6M, mmpose's layout, a
    multi-view rig): its sequences as the planner's SequenceInfo (with their own fps), looked up by
    (subject, sequence). A sequence without 3D ground truth (a rig may have none) has NaN joints: its
    images are generated, its label rows carry no 3D or 2D joints."""

    def __init__(self, reader):
        self.reader = reader
        self._refs = {(r.subject, r.sequence): r for r in reader.sequences()}

    @property
    def has_images(self) -> bool:
        return bool(getattr(self.reader, "has_images", True))

    def sequences(self) -> list[SequenceInfo]:
        return [SequenceInfo.from_ref(r) for r in self._refs.values()]

    def has_ground_truth(self, seq: SequenceInfo) -> bool:
        has = getattr(self.reader, "has_ground_truth", None)
        return True if has is None else bool(has(self._refs[(seq.subject, seq.sequence)]))

    def frames(self, seq: SequenceInfo) -> tuple[int, ...]:
        """The absolute frame indices the source holds (mmpose's fps10 annotation: every 5th)."""
        return self._refs[(seq.subject, seq.sequence)].frame_indices

    def camera(self, subject: str, camera_id: str) -> Camera:
        return self.reader.camera(subject, camera_id)

    def poses_world(self, seq: SequenceInfo) -> np.ndarray:
        if not self.has_ground_truth(seq):
            return np.full((seq.n_frames, 17, 3), np.nan)
        return self.reader.poses_world(self._refs[(seq.subject, seq.sequence)])

    def poses_2d(self, seq: SequenceInfo, camera_id: str) -> np.ndarray:
        if not self.has_ground_truth(seq):
            return np.full((seq.n_frames, 17, 2), np.nan)
        return self.reader.poses_2d(self._refs[(seq.subject, seq.sequence)], camera_id)

    def video(self, seq: SequenceInfo, camera_id: str):
        return self.reader.video(self._refs[(seq.subject, seq.sequence)], camera_id)

    def check_values(self, seq: SequenceInfo, cameras: tuple[str, ...]) -> None:
        """Read the mocap and 2D files a unit of `seq` will read (UserError on NaN, infinity, a bad shape),
        so such a fault stops `generate` before it writes anything."""
        self.poses_world(seq)
        for camera_id in cameras:
            self.poses_2d(seq, camera_id)


class RawSource(ReaderSource):
    """A raw-layout folder read through `corrupt_bench.data.raw.RawH36M`."""

    def __init__(self, root: Path, subjects: tuple[str, ...]):
        from corrupt_bench.data.raw import RawH36M

        super().__init__(RawH36M(root, subjects=subjects))


class Vp3dSource:
    """VideoPose3D's `data_3d_h36m.npz` with the 2D of `data_2d_h36m_<keypoints>.npz` (ground truth or a
    detector's: keypoint corruptions start from them, and they are the label rows' `joints_2d`); without
    `keypoints`, `data_2d_h36m_gt.npz` when present, else the mocap projected. A detection file's
    confidences are not used."""

    has_images = False

    def __init__(self, path: Path, subjects: tuple[str, ...], keypoints: str | None = None):
        from corrupt_bench.data import quirks, vp3d_npz

        folder = path if path.is_dir() else path.parent
        file_3d = path if path.is_file() else folder / VP3D_3D_NAME
        if not file_3d.is_file():
            raise UserError(f"no {VP3D_3D_NAME} (source kind vp3d_npz)", file_3d)
        positions = vp3d_npz.read_positions_3d(file_3d)
        # a named keypoint file must be there; without a name, the ground-truth 2D when present
        file_2d = vp3d_npz.keypoint_file(folder, keypoints) if keypoints is not None else folder / VP3D_2D_NAME
        paired = None
        if file_2d.is_file():
            positions_2d, metadata = vp3d_npz.read_positions_2d(file_2d)
            paired = vp3d_npz.pair_2d_with_3d(positions, positions_2d, file_2d)
            self._n_joints_2d = int(metadata["num_joints"])
        self._world: dict[tuple[str, str], np.ndarray] = {}
        self._2d: dict[tuple[str, str], list[np.ndarray]] = {}
        self._seqs: list[SequenceInfo] = []
        from corrupt_bench.data.cameras import CAMERA_IDS

        for subject in subjects:
            if subject not in positions:
                raise UserError(f"no subject {subject} in positions_3d", file_3d)
            numbers = quirks.subaction_numbers(positions[subject])
            for stem in sorted(positions[subject]):
                world = vp3d_npz.to_h36m17_mm(positions[subject][stem])
                self._world[(subject, stem)] = world
                if paired is not None:
                    self._2d[(subject, stem)] = paired[subject][stem]
                action = quirks.canonical_action(stem)
                self._seqs.append(SequenceInfo(subject, stem, action, numbers[stem], CAMERA_IDS, len(world)))

    def sequences(self) -> list[SequenceInfo]:
        return list(self._seqs)

    def camera(self, subject: str, camera_id: str) -> Camera:
        return get_camera(subject, camera_id)

    def poses_world(self, seq: SequenceInfo) -> np.ndarray:
        return self._world[(seq.subject, seq.sequence)]

    def poses_2d(self, seq: SequenceInfo, camera_id: str) -> np.ndarray:
        from corrupt_bench.data.cameras import CAMERA_IDS
        from corrupt_bench.data.skeleton import raw_to_h36m17

        views = self._2d.get((seq.subject, seq.sequence))
        if views is None:
            return project_world(self.poses_world(seq), self.camera(seq.subject, camera_id))
        view = np.asarray(views[CAMERA_IDS.index(camera_id)], dtype=np.float64)
        return view if self._n_joints_2d == 17 else raw_to_h36m17(view)

    def video(self, seq: SequenceInfo, camera_id: str):
        raise UserError("source kind vp3d_npz has no videos (use output.format: keypoints)")


@lru_cache(maxsize=4)
def open_source(config: SourceConfig):
    """The reader of a source (cached per process)."""
    path = Path(config.path)
    if config.kind in ("h36m_raw", "synthetic"):
        return RawSource(path, config.subjects)
    if config.kind == "vp3d_npz":
        return Vp3dSource(path, config.subjects, config.keypoints)
    if config.kind == "mmpose_h36m":
        from corrupt_bench.data.mmpose_h36m import MmposeH36M

        return ReaderSource(MmposeH36M(path, subjects=config.subjects, annotation=config.annotation))
    if config.kind == "multiview":
        from corrupt_bench.data.multiview import MultiViewRig

        return ReaderSource(MultiViewRig(path, subjects=config.subjects))
    raise UserError(f"unknown source kind {config.kind!r}; allowed: h36m_raw, vp3d_npz, synthetic, mmpose_h36m, multiview")


def cache_root() -> Path:
    """Where generated synthetic sources are kept: $CORRUPT_BENCH_CACHE or ~/.cache/corrupt-bench."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "corrupt-bench"


def synthetic_settings(manifest: Manifest) -> dict:
    spec = manifest.source
    return {
        "subjects": list(manifest.subjects),
        "actions": None if manifest.actions is None else list(manifest.actions),
        "seconds": spec.seconds,
        "divisor": spec.divisor,
        "seed": spec.seed,
    }


def ensure_synthetic(manifest: Manifest, cache: Path | None = None, workers: int = 1) -> Path:
    """The synthetic source of a manifest, written once into the cache (temp folder + rename).

    One run builds it while the others wait (a lock per source in the cache); the builder first
    removes the temporary folders of a build that was killed."""
    from corrupt_bench.data.synth import write_synthetic
    from corrupt_bench.io import current_umask
    from corrupt_bench.outdir import wait_lock

    settings = synthetic_settings(manifest)
    tag = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    cache = cache_root() if cache is None else Path(cache)
    target = cache / f"synthetic-{tag}"
    if (target / ".complete").is_file():
        return target
    if cache.exists() and not cache.is_dir():
        raise UserError("the cache path exists and is not a folder (set CORRUPT_BENCH_CACHE)", cache)
    cache.mkdir(parents=True, exist_ok=True)
    with wait_lock(cache / f".synthetic-{tag}.lock"):
        if (target / ".complete").is_file():  # built by the run we waited for
            return target
        for stale in cache.glob(f".synthetic-{tag}-*"):  # a killed build (no one else builds it: we hold the lock)
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
        if target.is_dir():  # a folder without .complete: not ours to trust
            shutil.rmtree(target, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".synthetic-{tag}-", dir=cache))
        try:
            os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; the cache follows the umask like every file
            write_synthetic(
                tmp,
                subjects=tuple(settings["subjects"]),
                actions=None if settings["actions"] is None else tuple(settings["actions"]),
                seconds=settings["seconds"],
                divisor=settings["divisor"],
                seed=settings["seed"],
                workers=workers,
            )
            (tmp / ".complete").write_text(json.dumps(settings, sort_keys=True))
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_source(manifest: Manifest, source: Path | None, cache: Path | None = None, workers: int = 1) -> SourceConfig:
    """The source folder: `--source`, else the manifest's `source.path`, else (synthetic only) the cache."""
    kind = manifest.source.kind
    path = source if source is not None else (Path(manifest.source.path) if manifest.source.path else None)
    if path is None:
        if kind != "synthetic":
            what = "the rig folder with its rig.yaml" if kind == "multiview" else "your Human3.6M copy"
            raise UserError(f"source kind {kind!r} needs --source DIR ({what})")
        path = ensure_synthetic(manifest, cache, workers)
    if not path.exists():
        raise UserError("source not found", path)
    spec = manifest.source
    return SourceConfig(kind, str(path.resolve()), tuple(manifest.subjects), spec.keypoints, spec.annotation)
