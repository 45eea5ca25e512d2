"""Reader of a raw Human3.6M download laid out as the official archives unpack.

```
ROOT/S9/MyPoseFeatures/D3_Positions/<Seq>.cdf               Pose (1, N, 96) mm, world frame
ROOT/S9/MyPoseFeatures/D2_Positions/<Seq>.<camid>.cdf       Pose (1, N, 64) px
ROOT/S9/MyPoseFeatures/D3_Positions_mono/<Seq>.<camid>.cdf  Pose (1, N, 96) mm, camera frame
ROOT/S9/Videos/<Seq>.<camid>.mp4                            50 fps
ROOT/cameras.json                                           optional; wins over the public calibration
```

The mocap (D3_Positions) defines a sequence and its length. Opening a `RawH36M` scans file names and
CDF headers only (fast); `problems()` reads every file once (what `info` reports). Every quirk of the
raw data is decided in `corrupt_bench.data.quirks`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrupt_bench.data import quirks
from corrupt_bench.data.cameras import CAMERA_IDS, Camera, get_camera, world_to_camera
from corrupt_bench.data.cdf_io import read_pose_cdf
from corrupt_bench.data.skeleton import N_RAW_JOINTS, raw_to_h36m17
from corrupt_bench.data.video import VideoReader
from corrupt_bench.errors import UserError
from corrupt_bench.layout import H36M_FPS

POSE_DIR = "MyPoseFeatures"
D3_DIR = "D3_Positions"
D2_DIR = "D2_Positions"
D3_MONO_DIR = "D3_Positions_mono"
VIDEO_DIR = "Videos"
_SUBJECT = re.compile(r"^S\d+$")

Progress = Callable[[Iterable, int, str], Iterable]


@dataclass(frozen=True)
class SequenceRef:
    """One sequence of one subject, with the cameras that can be used with it (every source reader
    of `corrupt_bench.data` describes its sequences with this)."""

    subject: str  # "S9"
    sequence: str  # raw file stem, e.g. "Eating 2", "TakingPhoto 1"
    action: str  # canonical action, e.g. "Eating", "Photo", "WalkDog"
    subaction: int  # 1 or 2 (order of the takes of the action, see quirks.subaction_numbers)
    cameras: tuple[str, ...]  # camera ids with a usable video / 2D file
    n_frames: int  # mocap length (videos truncated to it); frame indices run 0..n_frames-1
    fps: float = H36M_FPS  # rate of the frame indices (a rig's videos carry their own)
    frames: tuple[int, ...] | None = None  # the frame indices the source holds when not all (mmpose: every 5th)

    @property
    def frame_indices(self) -> tuple[int, ...]:
        """The absolute frame indices this sequence has data for."""
        return tuple(range(self.n_frames)) if self.frames is None else self.frames


class SequenceTable:
    """What the readers of other layouts share: their sequences, looked up by the (subject, sequence)
    of any object that has them (a SequenceRef, the generator's SequenceInfo). Subclasses set `_refs`
    and `_where` (the file a missing sequence is reported against)."""

    _refs: list[SequenceRef]
    _where: Path

    def sequences(self) -> list[SequenceRef]:
        return list(self._refs)

    def _ref(self, seq) -> SequenceRef:
        for ref in self._refs:
            if (ref.subject, ref.sequence) == (seq.subject, seq.sequence):
                return ref
        raise UserError(f"no sequence {seq.subject} {seq.sequence}", self._where)

    def fps(self, seq) -> float:
        """The rate of the sequence's frame indices."""
        return self._ref(seq).fps

    def frames(self, seq) -> np.ndarray:
        """The absolute frame indices the source holds for every camera of the sequence."""
        return np.asarray(self._ref(seq).frame_indices, dtype=np.int64)


def _subject_key(subject: str) -> int:
    return int(subject[1:])


def _cdf_pose_shape(path: Path) -> tuple[int, int]:
    """(N, width) of the `Pose` variable of a CDF from its header, without reading the data."""
    import cdflib

    try:
        info = cdflib.CDF(str(path)).varinq("Pose")
    except Exception as exc:  # cdflib raises OSError, ValueError, KeyError... on damaged files
        raise UserError(f"unreadable CDF ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
    dims = list(info.Dim_Sizes)
    records = int(info.Last_Rec) + 1
    if len(dims) == 2 and records == 1:  # (1, N, D): the layout of the official files
        return int(dims[0]), int(dims[1])
    if len(dims) == 1:  # (N, D) stored as N records
        return records, int(dims[0])
    raise UserError(f"CDF variable 'Pose' has shape {(records, *dims)}, expected (1, N, D)", path)


def _check_width(path: Path, shape: tuple[int, int], width: int) -> int:
    if shape[1] != width:
        raise UserError(
            f"CDF variable 'Pose' has shape (1, {shape[0]}, {shape[1]}), expected (1, N, {width})", path
        )
    return shape[0]


class RawH36M:
    """A raw Human3.6M folder (the real download or the synthetic source written by `synth`).

    Known damaged recordings are left out unless `include_damaged` (S9 sequences with drifting
    mocap) or `include_corrupt_video` (the S11 "Directions" video of camera 54138969); each
    exclusion is listed by `problems()`."""

    def __init__(
        self,
        root: str | Path,
        subjects: Iterable[str] | None = None,
        include_damaged: bool = False,
        include_corrupt_video: bool = False,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError("data folder not found" if not self.root.exists() else "not a folder", self.root)
        self.include_damaged = include_damaged
        self.include_corrupt_video = include_corrupt_video
        found = sorted(
            (p.name for p in self.root.iterdir() if p.is_dir() and _SUBJECT.match(p.name)), key=_subject_key
        )
        self._explicit = subjects is not None
        if subjects is None:
            if not found:
                raise UserError("no subject folders (S1, S5, ...) in the data folder", self.root)
            self.subjects = tuple(found)
        else:
            self.subjects = tuple(subjects)
            for subject in self.subjects:
                if subject not in found:
                    raise UserError(f"no folder for subject {subject}", self.root / subject)
        self._refs: list[SequenceRef] | None = None
        self._scan_problems: list[str] = []
        self._problems: list[str] | None = None
        self._cache: dict[Path, np.ndarray] = {}

    # -- paths -------------------------------------------------------------------------------------
    def d3_path(self, ref: SequenceRef) -> Path:
        return self.root / ref.subject / POSE_DIR / D3_DIR / f"{ref.sequence}.cdf"

    def d2_path(self, ref: SequenceRef, camera_id: str) -> Path:
        return self.root / ref.subject / POSE_DIR / D2_DIR / f"{ref.sequence}.{camera_id}.cdf"

    def d3_mono_path(self, ref: SequenceRef, camera_id: str) -> Path:
        return self.root / ref.subject / POSE_DIR / D3_MONO_DIR / f"{ref.sequence}.{camera_id}.cdf"

    def video_path(self, ref: SequenceRef, camera_id: str) -> Path:
        return self.root / ref.subject / VIDEO_DIR / f"{ref.sequence}.{camera_id}.mp4"

    # -- scan --------------------------------------------------------------------------------------
    def sequences(self) -> list[SequenceRef]:
        """Every usable sequence, by subject (S1, S5, ..., S11), canonical action and subaction (scanned once, from file names and CDF headers)."""
        if self._refs is None:
            refs: list[SequenceRef] = []
            scanned = 0
            for subject in self.subjects:
                subject_refs = self._scan_subject(subject)
                if subject_refs is not None:
                    scanned += 1
                    refs.extend(subject_refs)
            if scanned == 0:
                raise UserError(f"no mocap found: expected S*/{POSE_DIR}/{D3_DIR}/<Seq>.cdf", self.root)
            self._refs = refs
        return list(self._refs)

    def _scan_subject(self, subject: str) -> list[SequenceRef] | None:
        """The subject's sequences; None when it has no mocap folder (an error if it was asked for)."""
        note = self._scan_problems.append
        base = self.root / subject
        d3_dir = base / POSE_DIR / D3_DIR
        if not d3_dir.is_dir():
            if self._explicit:
                raise UserError(f"folder not found (the mocap defines the sequences of {subject})", d3_dir)
            note(f"{subject}: no {POSE_DIR}/{D3_DIR} folder, subject skipped")
            return None
        stems: list[str] = []
        skipped_all: list[str] = []
        for path in sorted(d3_dir.glob("*.cdf"), key=lambda p: p.stem):
            if path.name.startswith("."):  # hidden: a temporary of an interrupted write, never a sequence
                continue
            stem = path.stem
            if quirks.is_all_sequence(stem):
                skipped_all.append(stem)
                continue
            try:
                quirks.split_stem(stem)
            except ValueError:
                note(f"{subject} {path.name}: not a sequence name of the form '<Action>[ <n>]', skipped")
                continue
            stems.append(stem)
        if skipped_all:
            note(f"{subject}: whole-session files skipped: {', '.join(skipped_all)}")
        numbers = quirks.subaction_numbers(stems)  # numbered before exclusions, so numbers stay stable

        has = {name: (base / POSE_DIR / name).is_dir() for name in (D2_DIR, D3_MONO_DIR)}
        has[VIDEO_DIR] = (base / VIDEO_DIR).is_dir()
        self._note_orphans(subject, set(stems), has)

        refs = []
        for stem in stems:
            if quirks.is_damaged_sequence(subject, stem) and not self.include_damaged:
                note(f"{subject} {stem}: damaged mocap, excluded (include_damaged to keep it)")
                continue
            d3 = d3_dir / f"{stem}.cdf"
            n_frames = _check_width(d3, _cdf_pose_shape(d3), 3 * N_RAW_JOINTS)
            if n_frames == 0:
                raise UserError("CDF variable 'Pose' holds no frames", d3)
            probe = SequenceRef(subject, stem, quirks.canonical_action(stem), numbers[stem], (), n_frames)
            cameras = tuple(c for c in CAMERA_IDS if self._camera_usable(probe, c, has))
            refs.append(
                SequenceRef(subject, stem, quirks.canonical_action(stem), numbers[stem], cameras, n_frames)
            )
        return sorted(refs, key=lambda r: (r.action, r.subaction))

    def _camera_usable(self, ref: SequenceRef, camera_id: str, has: dict[str, bool]) -> bool:
        """Whether a camera of a sequence has every per-camera file its subject provides (checks CDF headers)."""
        where = f"{ref.subject} {ref.sequence} camera {camera_id}"
        if has[VIDEO_DIR] and quirks.is_corrupt_video(ref.subject, ref.sequence, camera_id):
            if not self.include_corrupt_video:
                if self.video_path(ref, camera_id).is_file():
                    self._scan_problems.append(
                        f"{where}: corrupt video, camera excluded (include_corrupt_video to keep it)"
                    )
                    return False
        missing = []
        if has[D2_DIR] and not self.d2_path(ref, camera_id).is_file():
            missing.append(D2_DIR)
        if has[VIDEO_DIR] and not self.video_path(ref, camera_id).is_file():
            missing.append(VIDEO_DIR)
        if missing:
            self._scan_problems.append(f"{where}: no file in {' and '.join(missing)}, camera left out")
            return False
        for folder, path, width in (
            (D2_DIR, self.d2_path(ref, camera_id), 2 * N_RAW_JOINTS),
            (D3_MONO_DIR, self.d3_mono_path(ref, camera_id), 3 * N_RAW_JOINTS),
        ):
            if has[folder] and path.is_file():
                n = _check_width(path, _cdf_pose_shape(path), width)
                if n != ref.n_frames:
                    raise UserError(
                        f"{n} frames but the mocap {D3_DIR}/{ref.sequence}.cdf has {ref.n_frames}", path
                    )
        return True

    def _note_orphans(self, subject: str, stems: set[str], has: dict[str, bool]) -> None:
        """List per-camera files that have no mocap or name an unknown camera (they are ignored)."""
        folders = [
            (self.root / subject / POSE_DIR / name, ".cdf") for name in (D2_DIR, D3_MONO_DIR) if has[name]
        ]
        if has[VIDEO_DIR]:
            folders.append((self.root / subject / VIDEO_DIR, ".mp4"))
        for folder, suffix in folders:
            for path in sorted(folder.glob(f"*{suffix}")):
                if path.name.startswith("."):
                    continue
                stem, _, camera_id = path.name[: -len(suffix)].rpartition(".")
                if quirks.is_all_sequence(stem) or (stem in stems and camera_id in CAMERA_IDS):
                    continue
                why = f"unknown camera '{camera_id}'" if stem in stems else f"no mocap {D3_DIR}/{stem}.cdf"
                self._scan_problems.append(f"{subject} {folder.name}/{path.name}: {why}, ignored")

    # -- data --------------------------------------------------------------------------------------
    def camera(self, subject: str, camera_id: str) -> Camera:
        """The calibrated camera; a `cameras.json` in the data folder wins over the public calibration."""
        return get_camera(subject, camera_id, root=self.root)

    def _read(self, path: Path, width: int, n_frames: int) -> np.ndarray:
        pose = self._cache.get(path)
        if pose is None:
            pose = read_pose_cdf(path, width)
            if len(pose) != n_frames:
                raise UserError(f"{len(pose)} frames but the mocap has {n_frames}", path)
            if len(self._cache) >= 8:
                self._cache.pop(next(iter(self._cache)))
            self._cache[path] = pose
        return pose

    def poses_world_raw(self, ref: SequenceRef) -> np.ndarray:
        """(N, 32, 3) mm, world frame: all raw joints of the mocap."""
        return self._read(self.d3_path(ref), 3 * N_RAW_JOINTS, ref.n_frames).reshape(-1, N_RAW_JOINTS, 3)

    def poses_world(self, ref: SequenceRef) -> np.ndarray:
        """(N, 17, 3) mm, world frame (the 17-joint subset)."""
        return raw_to_h36m17(self.poses_world_raw(ref))

    def _require_camera(self, ref: SequenceRef, camera_id: str, path: Path) -> None:
        if camera_id not in ref.cameras:
            raise UserError(
                f"camera {camera_id} is not usable for {ref.subject} {ref.sequence} (usable: {', '.join(ref.cameras) or 'none'})",
                path,
            )

    def poses_2d(self, ref: SequenceRef, camera_id: str) -> np.ndarray:
        """(N, 17, 2) px in the full video frame, from D2_Positions."""
        path = self.d2_path(ref, camera_id)
        self._require_camera(ref, camera_id, path)
        return raw_to_h36m17(self._read(path, 2 * N_RAW_JOINTS, ref.n_frames).reshape(-1, N_RAW_JOINTS, 2))

    def poses_cam(self, ref: SequenceRef, camera_id: str) -> np.ndarray:
        """(N, 17, 3) mm in the camera frame: the world mocap through this folder's calibration."""
        return world_to_camera(self.poses_world(ref), self.camera(ref.subject, camera_id))

    def video(self, ref: SequenceRef, camera_id: str) -> VideoReader:
        """The video of one camera, truncated to the mocap length (with a warning when longer)."""
        self._require_camera(ref, camera_id, self.video_path(ref, camera_id))
        reader = self._open_video(ref, camera_id)
        if reader.frame_count > reader.n_frames:
            warnings.warn(
                f"{reader.path}: video has {reader.frame_count} frames, mocap {ref.n_frames}: truncated to the mocap",
                stacklevel=2,
            )
        return reader

    def _open_video(self, ref: SequenceRef, camera_id: str) -> VideoReader:
        path = self.video_path(ref, camera_id)
        reader = VideoReader(path)
        usable = quirks.usable_video_frames(reader.frame_count, ref.n_frames)
        if usable is None:
            reader.close()
            raise UserError(
                f"video has {reader.frame_count} frames, fewer than the {ref.n_frames} of its mocap", path
            )
        reader.n_frames = usable
        return reader

    # -- checks ------------------------------------------------------------------------------------
    def problems(self, progress: Progress | None = None) -> list[str]:
        """Everything left out or adjusted, one line each; reads every file once (cached).

        Raises UserError on a fault no quirk explains: unreadable CDF, wrong shape, frame counts that
        disagree, a video that does not open or is shorter than its mocap. `progress(items, total,
        description)` may wrap the loop (the CLI passes `corrupt_bench.progress.progress`)."""
        if self._problems is None:
            refs = self.sequences()
            found = list(self._scan_problems)
            items: Iterable[SequenceRef] = refs
            if progress is not None:
                items = progress(refs, len(refs), "checking files")
            for ref in items:
                found.extend(self._check_sequence(ref))
            self._problems = found
        return list(self._problems)

    def _check_sequence(self, ref: SequenceRef) -> list[str]:
        found = []
        self.poses_world_raw(ref)
        for camera_id in ref.cameras:
            where = f"{ref.subject} {ref.sequence} camera {camera_id}"
            d2, mono, video = (
                self.d2_path(ref, camera_id),
                self.d3_mono_path(ref, camera_id),
                self.video_path(ref, camera_id),
            )
            if d2.is_file():
                self._read(d2, 2 * N_RAW_JOINTS, ref.n_frames)
            if mono.is_file():
                self._read(mono, 3 * N_RAW_JOINTS, ref.n_frames)
            if not video.is_file():
                continue
            with self._open_video(ref, camera_id) as reader:
                if reader.frame_count > ref.n_frames:
                    found.append(
                        f"{where}: video has {reader.frame_count} frames, mocap {ref.n_frames}: truncated"
                    )
                if abs(reader.fps - H36M_FPS) > 1e-3 * H36M_FPS:
                    found.append(
                        f"{where}: video is {reader.fps:g} fps, the mocap {H36M_FPS:g}: video frame i is not mocap frame i"
                    )
                camera = self.camera(ref.subject, camera_id)
                if (reader.width, reader.height) != (camera.width, camera.height):
                    found.append(
                        f"{where}: video is {reader.width}x{reader.height}, calibration says {camera.width}x{camera.height}"
                    )
                reader.frame(0)  # the first frame must decode
        self._cache.clear()
        return found


@dataclass(frozen=True)
class SubjectSummary:
    subject: str
    sequences: int
    frames: int  # frames the source holds
    cameras: tuple[str, ...]
    seconds: float  # the time the sequences span (n_frames / fps each)


def _subject_order(subject: str) -> tuple[int, int | str]:
    """S1 < S5 < S11 for Human3.6M's subjects; other ids (a rig's) after them, by name."""
    return (0, int(subject[1:])) if _SUBJECT.match(subject) else (1, subject)


def summarize(refs: Iterable[SequenceRef]) -> list[SubjectSummary]:
    """Per subject: number of sequences, frames held, seconds spanned, and the cameras used by any
    sequence (Human3.6M's in their order, then any other ids in order of appearance)."""
    per: dict[str, list[SequenceRef]] = {}
    for ref in refs:
        per.setdefault(ref.subject, []).append(ref)
    summaries = []
    for subject, group in sorted(per.items(), key=lambda kv: _subject_order(kv[0])):
        used = list(dict.fromkeys(c for r in group for c in r.cameras))
        cameras = [c for c in CAMERA_IDS if c in used] + [c for c in used if c not in CAMERA_IDS]
        summaries.append(SubjectSummary(subject, len(group), sum(len(r.frame_indices) for r in group), tuple(cameras),
                                        sum(r.n_frames / r.fps for r in group)))  # fmt: skip
    return summaries
