"""A generic calibrated multi-camera rig as a source: any subject and camera ids, each video's own
frame rate, OpenCV-model cameras from a calibration file, and 3D ground truth when there is some.

A rig folder holds a `rig.yaml` (read with `corrupt_bench.safe_yaml.load_yaml`: no anchors, aliases or tags, then validated
strictly: an unknown key is an error naming it):

```yaml
rig: 1                                   # the format version
calibration: {file: calibration/Calib.toml, units: m}   # pose2sim/anipose .toml; translation units m | mm
sequences:
  - subject: P1                          # letters, digits, '-' (no '_': it separates subject and sequence)
    sequence: walk                       # letters, digits, ' ', '_', '-'
    action: walk                         # optional; default: the sequence name
    videos: {cam01: videos/cam01.mp4, cam02: videos/cam02.mp4}   # camera id (a calibration name) -> file
    ground_truth:                        # optional
      file: gt/walk.npz                  # npz, no pickle: `positions` (frames, joints, 3) float, world mm
      joint_map: [0, 1, 2, ...]          # 17 indices into `positions`, in Human3.6M's joint order;
                                         # optional when `positions` already has the 17 joints
```

Paths are relative to the rig folder and may not leave it. Frame i of every video and of the ground
truth is the same instant (a synchronised rig); a sequence is as long as its shortest video (and
ground truth), and the cut is listed by `problems()`. All videos of a sequence must have the same
frame rate (that rate is the sequence's fps). A video may differ from its calibration's image size
by up to `SIZE_SLACK` px per axis (a codec's padding to whole 16-px blocks: the pose2sim demo has
1080 px wide videos calibrated at 1088); the intrinsics are used as given, the camera takes the
video's size, and `problems()` lists the difference. A larger difference is an error (the
intrinsics would need rescaling). Without ground truth, `poses_world`/`poses_2d` raise a UserError
(`has_ground_truth` says which sequences have it).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from corrupt_bench.data.cameras import (
    CAMERA_ID,
    Camera,
    project_world,
    read_calibration_toml,
    world_to_camera,
)
from corrupt_bench.data.raw import SequenceRef, SequenceTable
from corrupt_bench.data.video import VideoReader
from corrupt_bench.errors import UserError
from corrupt_bench.io import confined
from corrupt_bench.safe_yaml import load_yaml

RIG_NAME = "rig.yaml"
SIZE_SLACK = 16
FPS_TOLERANCE = 1e-6  # relative
N_JOINTS = 17
SUBJECT = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
SEQUENCE = r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalibrationSpec(_Strict):
    file: StrictStr
    units: Literal["m", "mm"]


class GroundTruthSpec(_Strict):
    file: StrictStr
    joint_map: list[StrictInt] | None = Field(default=None, min_length=N_JOINTS, max_length=N_JOINTS)


class SequenceSpec(_Strict):
    subject: StrictStr = Field(pattern=SUBJECT)
    sequence: StrictStr = Field(pattern=SEQUENCE)
    action: StrictStr | None = Field(default=None, pattern=SEQUENCE)
    videos: dict[StrictStr, StrictStr] = Field(min_length=1)
    ground_truth: GroundTruthSpec | None = None


class RigSpec(_Strict):
    rig: Literal[1]
    calibration: CalibrationSpec
    sequences: list[SequenceSpec] = Field(min_length=1)


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    if error["type"] == "missing":
        return f"key '{key}' is required"
    return f"key '{key}': {error['msg']}"


def read_rig(path: str | Path) -> RigSpec:
    """The validated `rig.yaml` (a folder or the file itself); every fault is a UserError naming it."""
    path = Path(path)
    if path.is_dir():
        path = path / RIG_NAME
    if not path.is_file():
        raise UserError(f"no {RIG_NAME} (a multi-view rig folder describes itself in one)", path)
    data = load_yaml(path, "rig file")  # size, encoding, anchors, tags and depth as for every YAML we read
    if not isinstance(data, dict):
        raise UserError("a rig file must be a YAML mapping (rig, calibration, sequences)", path)
    try:
        spec = RigSpec.model_validate(data)
    except ValidationError as exc:
        raise UserError(_describe(exc.errors()[0]), path) from None
    seen = set()
    for i, seq in enumerate(spec.sequences):
        if (seq.subject, seq.sequence) in seen:
            raise UserError(f"sequences.{i}: {seq.subject} {seq.sequence} is listed twice", path)
        seen.add((seq.subject, seq.sequence))
        for camera_id in seq.videos:
            if not CAMERA_ID.match(camera_id):
                raise UserError(f"sequences.{i}.videos: camera id {camera_id!r} must be letters, digits, '_' and '-'", path)
    return spec


def _ground_truth(path: Path, spec: GroundTruthSpec) -> np.ndarray:
    """(frames, 17, 3) world mm from the ground-truth npz through its joint map."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "positions" not in data.files:
                raise UserError(f"no 'positions' array (found: {', '.join(data.files) or 'nothing'})", path)
            positions = data["positions"]
    except UserError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"unreadable ground-truth npz ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
    if positions.ndim != 3 or positions.shape[2] != 3 or positions.shape[0] == 0 or positions.dtype.kind != "f":
        raise UserError(f"positions has shape {positions.shape} ({positions.dtype}), expected (frames, joints, 3) floats", path)
    if not np.all(np.isfinite(positions)):
        raise UserError("positions holds NaN or infinite values", path)
    joint_map = spec.joint_map
    if joint_map is None:
        if positions.shape[1] != N_JOINTS:
            raise UserError(f"positions has {positions.shape[1]} joints: give a joint_map of the 17 Human3.6M joints", path)
        joint_map = list(range(N_JOINTS))
    if any(not 0 <= j < positions.shape[1] for j in joint_map):
        raise UserError(f"joint_map points past the {positions.shape[1]} joints of positions", path)
    return positions[:, joint_map].astype(np.float64)


class MultiViewRig(SequenceTable):
    """A rig folder read as a source (the interface of the raw reader, plus `fps` and ground-truth flags)."""

    has_images = True

    def __init__(self, root: str | Path, subjects: tuple[str, ...] | list[str] | None = None):
        path = Path(root)
        self.rig_file = self._where = path if path.is_file() else path / RIG_NAME
        self.root = self.rig_file.parent
        self.spec = read_rig(self.rig_file)
        calib_file = self._file(self.spec.calibration.file, "calibration.file")
        self._calibration = read_calibration_toml(calib_file, self.spec.calibration.units)
        found = list(dict.fromkeys(s.subject for s in self.spec.sequences))
        self.subjects = tuple(found if subjects is None else subjects)
        for subject in self.subjects:
            if subject not in found:
                raise UserError(f"no sequence of subject {subject} (found: {', '.join(found)})", self.rig_file)
        self._problems: list[str] = []
        self._cameras: dict[tuple[str, str], Camera] = {}
        self._truth: dict[tuple[str, str], np.ndarray | None] = {}
        self._videos: dict[tuple[str, str, str], Path] = {}
        self._refs = [self._scan(i, s) for i, s in enumerate(self.spec.sequences) if s.subject in self.subjects]

    def _file(self, relative: str, key: str) -> Path:
        parts = Path(relative).parts
        if not parts or Path(relative).is_absolute():
            raise UserError(f"{key}: {relative!r} must be a path relative to the rig folder", self.rig_file)
        path = confined(self.root, *parts)
        if not path.is_file():
            raise UserError(f"{key}: file not found", path)
        return path

    def _scan(self, index: int, seq: SequenceSpec) -> SequenceRef:
        where = f"{seq.subject} {seq.sequence}"
        lengths, rates = {}, {}
        for camera_id, relative in seq.videos.items():
            if camera_id not in self._calibration:
                raise UserError(f"sequences.{index}.videos: camera {camera_id} is not in the calibration ({', '.join(self._calibration)})", self.rig_file)
            path = self._file(relative, f"sequences.{index}.videos.{camera_id}")
            calibrated = self._calibration[camera_id]
            with VideoReader(path) as video:
                lengths[camera_id], rates[camera_id] = video.frame_count, video.fps
                size, declared = (video.width, video.height), (calibrated.width, calibrated.height)
            if max(abs(size[0] - declared[0]), abs(size[1] - declared[1])) > SIZE_SLACK:
                raise UserError(f"video is {size[0]}x{size[1]} but camera {camera_id} is calibrated at {declared[0]}x{declared[1]}: rescale the intrinsics", path)
            if size != declared:
                self._problems.append(f"{where} camera {camera_id}: video is {size[0]}x{size[1]}, calibration {declared[0]}x{declared[1]} (intrinsics used as given)")
            self._cameras[(seq.subject, camera_id)] = replace(calibrated, subject=seq.subject, width=size[0], height=size[1])
            self._videos[(seq.subject, seq.sequence, camera_id)] = path
        fps = next(iter(rates.values()))
        if any(abs(r - fps) > FPS_TOLERANCE * fps for r in rates.values()):
            listed = ", ".join(f"{c} {r:g}" for c, r in rates.items())
            raise UserError(f"sequences.{index}: the videos of {where} have different frame rates ({listed}); resample them to one", self.rig_file)
        n_frames = min(lengths.values())
        truth = None
        if seq.ground_truth is not None:
            truth = _ground_truth(self._file(seq.ground_truth.file, f"sequences.{index}.ground_truth.file"), seq.ground_truth)
            if len(truth) < n_frames:
                self._problems.append(f"{where}: ground truth has {len(truth)} frames, the videos {n_frames}: cut to {len(truth)}")
            n_frames = min(n_frames, len(truth))
            truth = truth[:n_frames]
        for camera_id, length in lengths.items():
            if length > n_frames:
                self._problems.append(f"{where} camera {camera_id}: video has {length} frames, the sequence {n_frames}: cut")
        self._truth[(seq.subject, seq.sequence)] = truth
        action = seq.action if seq.action is not None else seq.sequence
        subaction = 1 + sum(1 for s in self.spec.sequences[:index] if s.subject == seq.subject and (s.action or s.sequence) == action)
        return SequenceRef(seq.subject, seq.sequence, action, subaction, tuple(seq.videos), n_frames, fps)

    # -- the source interface (sequences(), fps(seq): the videos' rate, frames(seq) from SequenceTable)
    def has_ground_truth(self, seq) -> bool:
        ref = self._ref(seq)
        return self._truth[(ref.subject, ref.sequence)] is not None

    def camera(self, subject: str, camera_id: str) -> Camera:
        try:
            return self._cameras[(subject, str(camera_id))]
        except KeyError:
            raise UserError(f"no camera {camera_id} for subject {subject}", self.rig_file) from None

    def poses_world(self, seq) -> np.ndarray:
        """(n_frames, 17, 3) mm, world frame (the calibration's), from the ground truth."""
        ref = self._ref(seq)
        truth = self._truth[(ref.subject, ref.sequence)]
        if truth is None:
            raise UserError(f"{ref.subject} {ref.sequence} has no ground_truth in the rig file: no 3D or 2D labels", self.rig_file)
        return truth

    def poses_2d(self, seq, camera_id: str) -> np.ndarray:
        """(n_frames, 17, 2) px: the ground truth projected with the camera's OpenCV model."""
        ref = self._ref(seq)
        return project_world(self.poses_world(ref), self.camera(ref.subject, camera_id))

    def poses_cam(self, seq, camera_id: str) -> np.ndarray:
        ref = self._ref(seq)
        return world_to_camera(self.poses_world(ref), self.camera(ref.subject, camera_id))

    def video(self, seq, camera_id: str) -> VideoReader:
        """The video of one camera, cut to the sequence's length."""
        ref = self._ref(seq)
        if camera_id not in ref.cameras:
            raise UserError(f"camera {camera_id} has no video for {ref.subject} {ref.sequence}", self.rig_file)
        return VideoReader(self._videos[(ref.subject, ref.sequence, camera_id)], n_frames=ref.n_frames)

    def problems(self) -> list[str]:
        """Cuts and size differences, one line each; every frame of every video is decoded once."""
        found = list(self._problems)
        for ref in self._refs:
            for camera_id in ref.cameras:
                with self.video(ref, camera_id) as video:
                    for index in range(ref.n_frames):
                        video.frame(index)
        return found


def is_rig(path: str | Path) -> bool:
    """True for a rig folder (holding `rig.yaml`) or a rig file."""
    path = Path(path)
    return (path.is_dir() and (path / RIG_NAME).is_file()) or (path.is_file() and path.name == RIG_NAME)

