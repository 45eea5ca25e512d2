"""Reader of mmpose's processed Human3.6M layout (`tools/dataset_converters/preprocess_h36m.py`).

```
ROOT/images/S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg   frame 0 (names are 1-based)
ROOT/annotation_body3d/fps50/h36m_train.npz, h36m_test.npz                   every frame (sample rate 1)
ROOT/annotation_body3d/fps10/h36m_train.npz, h36m_test.npz                   every 5th frame (the default)
ROOT/annotation_body3d/cameras.pkl                                           {(subject, camera id): params}
```

An annotation npz (no pickle) holds one row per image: `imgname` (the path below `images/`),
`center` (2) and `scale` (a box, unused here), `part` (17, 3): the D2_Positions pixels and a
visibility of 1, and `S` (17, 4): D3_Positions_mono in metres (camera frame) and 1. Names are
`<subject>_<stem with '_' for ' '>.<camera>_<frame + 1:06d>.jpg`, so the absolute source frame of each
row is recovered from its name, and the keyed RNG sees the frames it would see on the raw download.

`cameras.pkl` (read through `corrupt_bench.data.safe_pickle`): per (subject, camera id) `R` (3x3)
and `T` (3x1, metres) for row vectors, x_cam = (x_world - T^T) @ R, i.e. R is the transpose of the
world -> camera rotation and T the camera centre; `f`, `c` (2x1 px), `k` (3x1) and `p` (2x1) in the
Human3.6M metadata's order (VideoPose3D's tangential pair is `p` swapped), `w`, `h`, `name`, `id`.

The world pose of a frame is the first usable camera's `S` taken to the world by its calibration
(`problems()` reports cameras that disagree by more than `AGREE_MM`). The raw layout's quirks
apply the same way: damaged S9 sequences and the corrupt S11 video are left out unless asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrupt_bench.data import quirks, safe_pickle
from corrupt_bench.data.cameras import (
    CAMERA_IDS,
    Camera,
    camera_to_world,
    matrix_to_quaternion,
    world_to_camera,
)
from corrupt_bench.data.raw import SequenceRef, SequenceTable
from corrupt_bench.data.video import ImageSequenceReader
from corrupt_bench.errors import UserError
from corrupt_bench.io import confined
from corrupt_bench.layout import H36M_FPS

IMAGES_DIR = "images"
ANNOTATION_DIR = "annotation_body3d"
CAMERAS_NAME = "cameras.pkl"
SPLITS = ("train", "test")
N_JOINTS = 17
AGREE_MM = 1.0  # the cameras' 3D of one frame, taken to the world, agree within this
MAX_CAMERA_FILE_BYTES = 16 << 20
_IMGNAME = re.compile(r"^(S\d+)/\1_([A-Za-z]+(?:_\d+)?)\.(\d+)/\1_\2\.\3_(\d{6})\.jpg$")
_FPS_DIR = re.compile(r"^fps(\d+)$")


def sequence_of(name: str) -> str:
    """The raw stem of an mmpose name part: "Directions_1" -> "Directions 1" (mmpose wrote ' ' as '_')."""
    return re.sub(r"_(\d+)$", r" \1", name)


def image_name(subject: str, sequence: str, camera_id: str, frame: int) -> str:
    """mmpose's `imgname` of absolute source frame `frame` (0-based; the name is 1-based)."""
    base = f"{subject}_{sequence.replace(' ', '_')}.{camera_id}"
    return f"{subject}/{base}/{base}_{frame + 1:06d}.jpg"


def parse_image_name(name: str, path: Path) -> tuple[str, str, str, int]:
    """(subject, raw stem, camera id, absolute frame) of an mmpose `imgname`; a UserError otherwise."""
    match = _IMGNAME.match(name)
    if match is None:
        raise UserError(f"imgname {name!r} is not <subject>/<subject>_<sequence>.<camera>/<...>_<frame:06d>.jpg", path)
    subject, part, camera_id, number = match.groups()
    if int(number) == 0:
        raise UserError(f"imgname {name!r}: mmpose's frame numbers start at 1", path)
    return subject, sequence_of(part), camera_id, int(number) - 1


def _matrix(value: object, shape: tuple[int, ...], what: str, path: Path) -> np.ndarray:
    """A finite float array of `shape` from an ndarray or nested lists of numbers (what mmpose's
    SimpleCamera accepts); anything else is a UserError."""
    array = None
    if isinstance(value, np.ndarray) and value.dtype.kind in "fi":
        array = value.astype(np.float64)
    elif isinstance(value, list):
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            array = None
    if array is None or array.shape != shape or not np.all(np.isfinite(array)):
        raise UserError(f"{what} must be a finite {shape} float array", path)
    return array


def read_mmpose_cameras(path: str | Path) -> dict[tuple[str, str], Camera]:
    """mmpose's `cameras.pkl` as Human3.6M-model cameras keyed by (subject, camera id)."""
    path = Path(path)
    if not path.is_file():
        raise UserError("file not found", path)
    if path.stat().st_size > MAX_CAMERA_FILE_BYTES:
        raise UserError(f"a camera file of {path.stat().st_size} bytes is not mmpose's cameras.pkl", path)
    try:
        data = safe_pickle.loads(path.read_bytes())
    except Exception as exc:  # any fault of an untrusted pickle is the file's, reported in one line
        raise UserError(f"unreadable pickle ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
    if not isinstance(data, dict) or not data:
        raise UserError(f"cameras.pkl must hold a non-empty dict, found {type(data).__name__}", path)
    cameras = {}
    for key, params in data.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            raise UserError(f"cameras.pkl has a key {key!r:.60}; expected (subject, camera id)", path)
        where = f"cameras.pkl[{key!r}]"
        needed = ("R", "T", "f", "c", "k", "p", "w", "h")
        if not isinstance(params, dict) or any(k not in params for k in needed):
            raise UserError(f"{where} must be a dict with {', '.join(needed)}", path)
        R = _matrix(params["R"], (3, 3), f"{where}['R']", path)  # noqa: N806 - mmpose's names
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6):
            raise UserError(f"{where}['R'] is not a rotation", path)
        centre = _matrix(params["T"], (3, 1), f"{where}['T']", path)[:, 0] * 1000.0
        f = _matrix(params["f"], (2, 1), f"{where}['f']", path)[:, 0]
        c = _matrix(params["c"], (2, 1), f"{where}['c']", path)[:, 0]
        k = _matrix(params["k"], (3, 1), f"{where}['k']", path)[:, 0]
        p = _matrix(params["p"], (2, 1), f"{where}['p']", path)[:, 0]
        w, h = params["w"], params["h"]
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in (w, h)):
            raise UserError(f"{where}: w and h must be positive integers", path)
        # mmpose's files of Human3.6M hold p in the metadata's order; ours of a rig say "opencv" (mmpose's
        # SimpleCamera projects p as OpenCV does, so such a file means the same to mmpose)
        model = params.get("distortion_model", "h36m")  # absent from mmpose's own files: optional by design
        if model not in ("h36m", "opencv"):
            raise UserError(f"{where}['distortion_model'] must be 'h36m' or 'opencv', found {model!r:.40}", path)
        tangential = (p[1], p[0]) if model == "h36m" else (p[0], p[1])
        # R (row vectors) is the transpose of world -> camera, i.e. the camera -> world rotation
        floats = lambda values: tuple(float(v) for v in values)  # noqa: E731
        cameras[key] = Camera(key[0], key[1], floats(f), floats(c), floats(k), floats(tangential), int(w), int(h),
                              floats(matrix_to_quaternion(R)), floats(centre), model)  # fmt: skip
    return cameras


@dataclass(frozen=True)
class _Rows:
    """The annotation rows of one (subject, sequence, camera), by absolute frame."""

    frames: np.ndarray  # (M,) sorted absolute frame indices
    joints_2d: np.ndarray  # (M, 17, 2) px
    joints_cam: np.ndarray  # (M, 17, 3) mm, camera frame


def _load_annotation(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ("imgname", "part", "S") if name in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"unreadable annotation npz ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
    for name in ("imgname", "part", "S"):
        if name not in arrays:
            raise UserError(f"no '{name}' array (mmpose's body3d annotation holds imgname, center, scale, part, S)", path)
    names, part, s3d = arrays["imgname"], arrays["part"], arrays["S"]
    n = len(names)
    if names.ndim != 1 or names.dtype.kind != "U":
        raise UserError(f"imgname must be a 1-D array of strings, found {names.dtype} {names.shape}", path)
    if part.ndim != 3 or part.shape[:2] != (n, N_JOINTS) or part.shape[2] not in (2, 3) or part.dtype.kind != "f":
        raise UserError(f"part has shape {part.shape} ({part.dtype}), expected ({n}, 17, 3) floats", path)
    if s3d.ndim != 3 or s3d.shape[:2] != (n, N_JOINTS) or s3d.shape[2] not in (3, 4) or s3d.dtype.kind != "f":
        raise UserError(f"S has shape {s3d.shape} ({s3d.dtype}), expected ({n}, 17, 4) floats", path)
    if not (np.all(np.isfinite(part[..., :2])) and np.all(np.isfinite(s3d[..., :3]))):
        raise UserError("part or S holds NaN or infinite values", path)
    return {"imgname": names, "part": part[..., :2].astype(np.float64), "S": s3d[..., :3].astype(np.float64) * 1000.0}


class MmposeH36M(SequenceTable):
    """An mmpose-processed Human3.6M folder, read as a source (the interface of the raw reader)."""

    def __init__(
        self,
        root: str | Path,
        subjects: Iterable[str] | None = None,
        annotation: str | None = None,
        include_damaged: bool = False,
        include_corrupt_video: bool = False,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError("data folder not found" if not self.root.exists() else "not a folder", self.root)
        self.annotation_dir = self._where = self._annotation_dir(annotation)
        self.cameras = read_mmpose_cameras(self.root / ANNOTATION_DIR / CAMERAS_NAME)
        self.include_damaged = include_damaged
        self.include_corrupt_video = include_corrupt_video
        self._problems: list[str] = []
        self._rows = self._read_rows()
        found = sorted({s for s, _, _ in self._rows}, key=lambda s: int(s[1:]))
        wanted = found if subjects is None else list(subjects)
        for subject in wanted:
            if subject not in found:
                raise UserError(f"no annotation rows for subject {subject} (found: {', '.join(found)})", self.annotation_dir)
        self.subjects = tuple(wanted)
        self._refs = self._make_refs()

    # -- scan --------------------------------------------------------------------------------------
    def _annotation_dir(self, annotation: str | None) -> Path:
        base = self.root / ANNOTATION_DIR
        if not base.is_dir():
            raise UserError(f"no {ANNOTATION_DIR}/ folder (mmpose's processed Human3.6M)", self.root)
        present = sorted(p.name for p in base.iterdir() if p.is_dir() and _FPS_DIR.match(p.name))
        if annotation is None:
            if len(present) == 1 or "fps50" in present:
                annotation = present[0] if len(present) == 1 else "fps50"  # the densest when several
            else:
                raise UserError(f"choose the annotation folder: {', '.join(present) or 'none found'}", base)
        if not _FPS_DIR.match(annotation) or annotation not in present:
            raise UserError(f"no annotation folder {annotation!r} (present: {', '.join(present) or 'none'})", base)
        return base / annotation

    def _read_rows(self) -> dict[tuple[str, str, str], _Rows]:
        files = [self.annotation_dir / f"h36m_{split}.npz" for split in SPLITS]
        files = [f for f in files if f.is_file()]
        if not files:
            raise UserError("no h36m_train.npz or h36m_test.npz", self.annotation_dir)
        grouped: dict[tuple[str, str, str], list[tuple[int, np.ndarray, np.ndarray]]] = {}
        for path in files:
            arrays = _load_annotation(path)
            for i, name in enumerate(arrays["imgname"]):
                subject, stem, camera_id, frame = parse_image_name(str(name), path)
                grouped.setdefault((subject, stem, camera_id), []).append((frame, arrays["part"][i], arrays["S"][i]))
        rows = {}
        for key, items in grouped.items():
            items.sort(key=lambda item: item[0])
            frames = np.array([item[0] for item in items])
            twice = frames[1:][np.diff(frames) == 0]
            if twice.size:
                raise UserError(f"{key[0]} {key[1]} camera {key[2]}: frame {twice[0] + 1} (1-based) appears twice", self.annotation_dir)
            rows[key] = _Rows(frames, np.stack([item[1] for item in items]), np.stack([item[2] for item in items]))
        return rows

    def _make_refs(self) -> list[SequenceRef]:
        refs = []
        for subject in self.subjects:
            stems = sorted({stem for s, stem, _ in self._rows if s == subject and not quirks.is_all_sequence(stem)})
            numbers = quirks.subaction_numbers(stems)
            for stem in stems:
                if quirks.is_damaged_sequence(subject, stem) and not self.include_damaged:
                    self._problems.append(f"{subject} {stem}: damaged mocap, excluded (include_damaged to keep it)")
                    continue
                cameras = []
                for camera_id in CAMERA_IDS:
                    if (subject, stem, camera_id) not in self._rows:
                        continue
                    if quirks.is_corrupt_video(subject, stem, camera_id) and not self.include_corrupt_video:
                        self._problems.append(f"{subject} {stem} camera {camera_id}: corrupt video, camera excluded")
                        continue
                    if (subject, camera_id) not in self.cameras:
                        raise UserError(f"no calibration for subject {subject} camera {camera_id}", self.root / ANNOTATION_DIR / CAMERAS_NAME)
                    cameras.append(camera_id)
                if not cameras:
                    continue
                frame_sets = [set(self._rows[(subject, stem, c)].frames.tolist()) for c in cameras]
                common = sorted(set.intersection(*frame_sets))
                if any(len(f) != len(common) for f in frame_sets):
                    self._problems.append(f"{subject} {stem}: cameras hold different frames, {len(common)} common frames used")
                if not common:
                    continue
                frames = None if common == list(range(common[-1] + 1)) else tuple(common)
                refs.append(SequenceRef(subject, stem, quirks.canonical_action(stem), numbers[stem], tuple(cameras),
                                        common[-1] + 1, H36M_FPS, frames))  # fmt: skip
        return sorted(refs, key=lambda r: (int(r.subject[1:]), r.action, r.subaction))

    # -- the source interface ----------------------------------------------------------------------
    @property
    def has_images(self) -> bool:
        """True when the extracted frames are there (`images/`); keypoint-only use needs none."""
        return (self.root / IMAGES_DIR).is_dir()

    # sequences(), fps(seq) (Human3.6M's 50 fps whatever the annotation's sampling) and frames(seq)
    # come from SequenceTable

    def camera(self, subject: str, camera_id: str) -> Camera:
        try:
            return self.cameras[(subject, str(camera_id))]
        except KeyError:
            raise UserError(f"no calibration for subject {subject} camera {camera_id}", self.root / ANNOTATION_DIR / CAMERAS_NAME) from None

    def _camera_rows(self, ref: SequenceRef, camera_id: str) -> _Rows:
        if camera_id not in ref.cameras:
            raise UserError(f"camera {camera_id} is not usable for {ref.subject} {ref.sequence} (usable: {', '.join(ref.cameras)})", self.annotation_dir)
        return self._rows[(ref.subject, ref.sequence, camera_id)]

    def _dense(self, ref: SequenceRef, rows: _Rows, values: np.ndarray) -> np.ndarray:
        """(n_frames, ...) with the values at the sequence's frames and NaN elsewhere."""
        out = np.full((ref.n_frames, *values.shape[1:]), np.nan)
        keep = np.isin(rows.frames, ref.frame_indices)
        out[rows.frames[keep]] = values[keep]
        return out

    def poses_cam(self, seq, camera_id: str) -> np.ndarray:
        """(n_frames, 17, 3) mm, camera frame (mmpose's S); NaN at frames the annotation lacks."""
        ref = self._ref(seq)
        rows = self._camera_rows(ref, camera_id)
        return self._dense(ref, rows, rows.joints_cam)

    def poses_2d(self, seq, camera_id: str) -> np.ndarray:
        """(n_frames, 17, 2) px in the full frame (mmpose's part); NaN at frames the annotation lacks."""
        ref = self._ref(seq)
        rows = self._camera_rows(ref, camera_id)
        return self._dense(ref, rows, rows.joints_2d)

    def poses_world(self, seq) -> np.ndarray:
        """(n_frames, 17, 3) mm, world frame: the first usable camera's S through its calibration."""
        ref = self._ref(seq)
        first = ref.cameras[0]
        return camera_to_world(self.poses_cam(ref, first), self.camera(ref.subject, first))

    def video(self, seq, camera_id: str) -> ImageSequenceReader:
        """The extracted frames of one camera, by absolute frame index."""
        ref = self._ref(seq)
        rows = self._camera_rows(ref, camera_id)
        images = self.root / IMAGES_DIR
        folder = confined(images, *image_name(ref.subject, ref.sequence, camera_id, 0).split("/")[:2])
        held = set(ref.frame_indices)
        return ImageSequenceReader(
            folder,
            lambda frame: confined(images, *image_name(ref.subject, ref.sequence, camera_id, frame).split("/")),
            [f for f in rows.frames.tolist() if f in held],
            ref.fps,
        )

    def problems(self) -> list[str]:
        """What was left out, and cameras whose 3D disagrees once taken to the world."""
        found = list(self._problems)
        for ref in self._refs:
            world = self.poses_world(ref)
            for camera_id in ref.cameras[1:]:
                other = world_to_camera(world, self.camera(ref.subject, camera_id))
                gap = np.nanmax(np.linalg.norm(other - self.poses_cam(ref, camera_id), axis=-1))
                if gap > AGREE_MM:
                    found.append(f"{ref.subject} {ref.sequence} camera {camera_id}: its 3D is {gap:.1f} mm from camera {ref.cameras[0]}'s (cameras.pkl does not fit the annotation)")
        return found


def mmpose_camera_params(camera: Camera, index: int) -> dict:
    """One camera in mmpose's cameras.pkl convention, as plain lists (a pickle without numpy globals,
    which any numpy loads): R = (world -> camera)^T, T = the centre in metres, f, c, k, p as columns."""
    column = lambda values: [[float(v)] for v in values]  # noqa: E731
    params = {
        "R": camera.R.T.tolist(), "T": column(np.asarray(camera.position) / 1000.0), "c": column(camera.center),
        "f": column(camera.focal_length), "k": column(camera.radial), "w": int(camera.width), "h": int(camera.height),
        "name": f"camera{index + 1}", "id": camera.camera_id,
    }  # fmt: skip
    if camera.distortion_model == "h36m":
        params["p"] = column(camera.tangential[::-1])  # the metadata's order, as mmpose's own file
    else:
        params["p"] = column(camera.tangential)
        params["distortion_model"] = camera.distortion_model
    return params


def write_mmpose_cameras(cameras: dict[tuple[str, str], Camera], path: str | Path) -> Path:
    """mmpose's `cameras.pkl` for the given (subject, camera id) cameras (written atomically)."""
    import pickle

    from corrupt_bench.io import atomic_write_bytes

    order = {camera_id: i for i, camera_id in enumerate(dict.fromkeys(c for _, c in sorted(cameras)))}
    payload = {key: mmpose_camera_params(cam, order[key[1]]) for key, cam in sorted(cameras.items())}
    return atomic_write_bytes(path, pickle.dumps(payload, protocol=3))
