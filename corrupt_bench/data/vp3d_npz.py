"""Reader and writer of VideoPose3D's preprocessed Human3.6M files.

- `data_3d_h36m.npz`: `positions_3d` = {subject: {action: (N, 32, 3) float32 metres, world frame}}.
- `data_2d_h36m_<name>.npz` (`gt`, `cpn_ft_h36m_dbb`, `detectron_ft_h36m` or a user's name):
  `positions_2d` = {subject: {action: [4 arrays (N, J, 2) px, or (N, J, 3) with a confidence channel,
  one per camera in CAMERA_IDS order]}} and `metadata` = {"layout_name": ..., "num_joints": J,
  "keypoints_symmetry": [left, right]}.

Why pickle: VideoPose3D wrote these with `np.savez_compressed(path, positions_3d=<dict>)`. A dict is
not an array, so numpy stores each member as a 0-d object array whose content is a *pickle*; plain
`np.load` therefore refuses them unless `allow_pickle=True`. Files written by numpy <= 1.16 (the
ones VideoPose3D distributed in 2018-2019) use pickle protocol 2, which stores bytes through
`_codecs.encode` and names `numpy.core.multiarray`; newer ones use protocol 3 and, from numpy 2,
`numpy._core.multiarray`. A pickle can run arbitrary code when loaded, so each member goes through
`corrupt_bench.data.safe_pickle`, which admits exactly those numpy globals (guarded) and nothing else.
A member larger than `MAX_MEMBER_BYTES` uncompressed, or one that decompresses implausibly (a zip
bomb), is refused before it is read. The structure (types, shapes) is then checked before anything
uses it, and every fault is a UserError that names the file.
"""

from __future__ import annotations

import difflib
import io
import pickle
import re
import reprlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corrupt_bench.data import quirks, safe_pickle
from corrupt_bench.data.skeleton import N_RAW_JOINTS, raw_to_h36m17
from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_path

N_CAMERAS = 4
MAX_ABS_METRES = 100.0  # Human3.6M world coordinates lie within a few metres; larger values are not metres
MAX_MEMBER_BYTES = 4 << 30  # the largest VideoPose3D member (a 2D detection file) is a few hundred MB
MAX_RATIO = 100  # float data deflates ~1-3x; a member above BOMB_FLOOR growing more than this is a bomb
BOMB_FLOOR = 64 << 20
MAX_JOINTS = 1000
FILE_3D = "data_3d_h36m.npz"
PREFIX_2D = "data_2d_h36m_"
KEYPOINT_NAMES = ("gt", "cpn_ft_h36m_dbb", "detectron_ft_h36m")  # the files VideoPose3D distributes
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
# VideoPose3D's own metadata for its 17-joint Human3.6M layout (common/h36m_dataset.py)
H36M_METADATA = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}


@dataclass(frozen=True)
class Keypoints2D:
    """One `data_2d_h36m_<name>.npz`: positions {subject: {action: [per-camera (N, J, 2) px]}},
    confidences in the same layout ((N, J) arrays) when the file has a third channel, else None."""

    name: str
    path: Path
    positions: dict[str, dict[str, list[np.ndarray]]]
    confidences: dict[str, dict[str, list[np.ndarray]]] | None
    metadata: dict
    num_joints: int


def _member_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """The bytes of one member, refused before reading when its declared size is implausible."""
    declared = info.file_size
    if declared > MAX_MEMBER_BYTES:
        raise UserError(f"npz member '{info.filename}' declares {declared} bytes, more than {MAX_MEMBER_BYTES}", path)
    if declared > BOMB_FLOOR and declared > MAX_RATIO * max(info.compress_size, 1):
        raise UserError(
            f"npz member '{info.filename}' would grow from {info.compress_size} to {declared} bytes: not a data file", path
        )
    with archive.open(info) as member:
        data = member.read(declared + 1)
    if len(data) != declared:
        raise UserError(f"npz member '{info.filename}' holds {len(data)} bytes, its header says {declared}", path)
    return data


def _npz_member(path: Path, name: str) -> Any:
    """The object stored under `name` in an npz written by np.savez[_compressed] (a pickled dict for VideoPose3D)."""
    if not path.is_file():
        raise UserError("file not found", path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if f"{name}.npy" not in members:
                found = ", ".join(sorted(m.removesuffix(".npy") for m in members)) or "nothing"
                raise UserError(f"no '{name}' array in the npz (it holds {found})", path)
            data = _member_bytes(archive, members[f"{name}.npy"], path)
    except UserError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise UserError(f"unreadable npz member '{name}' ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
    return _unpickle_npy(data, name, path)


def _unpickle_npy(data: bytes, name: str, path: Path) -> Any:
    """The content of an .npy holding a pickled 0-d object array."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"npy format version {version} is not one numpy writes for a pickled dict")
    except ValueError as exc:
        raise UserError(f"unreadable npz member '{name}' ({exc})".splitlines()[0], path) from exc
    if not dtype.hasobject or shape != ():
        raise UserError(f"'{name}' is a {dtype} array of shape {shape}, expected a pickled dict", path)
    try:
        value = safe_pickle.loads(data[stream.tell() :])
    except Exception as exc:  # any fault of an untrusted pickle is the file's, reported in one line
        raise UserError(f"unreadable npz member '{name}' ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
    if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
        value = value.item()
    return value


def _check_dict(value: Any, what: str, path: Path) -> dict:
    if not isinstance(value, dict) or not value:
        raise UserError(f"{what} must be a non-empty dict, found {type(value).__name__}", path)
    for key in value:
        if not isinstance(key, str):
            raise UserError(f"{what} has a key {key!r} that is not a string", path)
    return value


def _check_array(value: Any, where: str, tail: tuple[int, ...], path: Path) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        kind = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
        raise UserError(f"{where} must be a float array, found {kind}", path)
    if value.ndim != 1 + len(tail) or value.shape[1:] != tail or value.shape[0] == 0:
        shape = "(N, " + ", ".join(map(str, tail)) + ")"
        raise UserError(f"{where} has shape {value.shape}, expected {shape} with N > 0", path)
    if not np.all(np.isfinite(value)):
        raise UserError(f"{where} holds NaN or infinite values", path)
    return value


def read_positions_3d(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """`positions_3d` of a `data_3d_h36m.npz`: {subject: {action: (N, 32, 3) metres, world frame}}."""
    path = Path(path)
    data = _check_dict(_npz_member(path, "positions_3d"), "positions_3d", path)
    for subject, actions in data.items():
        _check_dict(actions, f"positions_3d['{subject}']", path)
        for action, poses in actions.items():
            where = f"positions_3d['{subject}']['{action}']"
            _check_array(poses, where, (N_RAW_JOINTS, 3), path)
            if np.abs(poses).max() > MAX_ABS_METRES:
                raise UserError(f"{where} has values up to {np.abs(poses).max():.0f}: not metres", path)
    return data


def _is_index(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_metadata(metadata: Any, path: Path) -> tuple[dict, int]:
    """The metadata dict and its joint count; every odd structure is a one-line error."""
    metadata = _check_dict(metadata, "metadata", path)
    n_joints = metadata.get("num_joints")
    if not _is_index(n_joints) or not 0 < int(n_joints) <= MAX_JOINTS:
        raise UserError(f"metadata['num_joints'] must be an integer in 1..{MAX_JOINTS}, found {reprlib.repr(n_joints)}", path)
    n_joints = int(n_joints)
    layout = metadata.get("layout_name")
    if layout is not None and not isinstance(layout, str):
        raise UserError(f"metadata['layout_name'] must be a string, found {type(layout).__name__}", path)
    symmetry = metadata.get("keypoints_symmetry")
    if symmetry is not None:
        sides = list(symmetry) if isinstance(symmetry, (list, tuple, np.ndarray)) else None
        valid = sides is not None and len(sides) == 2 and all(
            isinstance(side, (list, tuple, np.ndarray)) and all(_is_index(j) and 0 <= int(j) < n_joints for j in side)
            for side in sides
        )
        if not valid:
            found = type(symmetry).__name__ if sides is None else f"{type(symmetry).__name__} of {len(sides)}"
            raise UserError(
                f"metadata['keypoints_symmetry'] must be two lists of joint indices below {n_joints}, found {found}", path
            )
    return metadata, n_joints


def read_keypoints_2d(path: str | Path) -> Keypoints2D:
    """A `data_2d_h36m_<name>.npz` (any name): per-camera 2D keypoints, their confidences when the file
    has a third channel (VideoPose3D's detection files may), and the metadata."""
    path = Path(path)
    metadata, n_joints = _check_metadata(_npz_member(path, "metadata"), path)
    data = _check_dict(_npz_member(path, "positions_2d"), "positions_2d", path)
    positions: dict[str, dict[str, list[np.ndarray]]] = {}
    confidences: dict[str, dict[str, list[np.ndarray]]] = {}
    channels: set[int] = set()
    for subject, actions in data.items():
        _check_dict(actions, f"positions_2d['{subject}']", path)
        for action, views in actions.items():
            where = f"positions_2d['{subject}']['{action}']"
            if not isinstance(views, (list, tuple)) or len(views) != N_CAMERAS:
                raise UserError(f"{where} must be a list of {N_CAMERAS} arrays (one per camera)", path)
            for i, view in enumerate(views):
                width = view.shape[-1] if isinstance(view, np.ndarray) and view.ndim == 3 and view.shape[-1] in (2, 3) else 2
                _check_array(view, f"{where}[{i}]", (n_joints, width), path)
                channels.add(width)
            positions.setdefault(subject, {})[action] = [view[..., :2] for view in views]
            confidences.setdefault(subject, {})[action] = [view[..., 2] if view.shape[-1] == 3 else None for view in views]
    if len(channels) > 1:
        raise UserError("positions_2d mixes arrays of 2 and 3 channels", path)
    name = path.name.removeprefix(PREFIX_2D).removesuffix(".npz")
    return Keypoints2D(name, path, positions, confidences if channels == {3} else None, metadata, n_joints)


def read_positions_2d(path: str | Path) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict]:
    """`positions_2d` (x, y only) and `metadata` of a `data_2d_h36m_<name>.npz`.

    positions: {subject: {action: [4 arrays (N, J, 2) px, cameras in CAMERA_IDS order]}}; J from
    `metadata["num_joints"]`."""
    keypoints = read_keypoints_2d(path)
    return keypoints.positions, keypoints.metadata


def _folder_of(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_dir() else path.parent


def list_keypoint_files(path: str | Path) -> dict[str, Path]:
    """The `data_2d_h36m_<name>.npz` files beside a `data_3d_h36m.npz` (or in a folder): {name: path}."""
    folder = _folder_of(path)
    if not folder.is_dir():
        raise UserError("folder not found", folder)
    found = {}
    for candidate in sorted(folder.glob(f"{PREFIX_2D}*.npz")):
        name = candidate.name.removeprefix(PREFIX_2D).removesuffix(".npz")
        if _NAME.match(name) and candidate.is_file():
            found[name] = candidate
    return found


def keypoint_file(path: str | Path, name: str) -> Path:
    """`data_2d_h36m_<name>.npz` beside `path` (a `data_3d_h36m.npz` or its folder); a UserError
    listing the files present when it is missing."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"keypoint file name {name!r} must be letters, digits and _ . + - (e.g. cpn_ft_h36m_dbb)")
    folder = _folder_of(path)
    candidate = folder / f"{PREFIX_2D}{name}.npz"
    if candidate.is_file():
        return candidate
    present = list_keypoint_files(folder)
    close = difflib.get_close_matches(name, list(present), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; present: {', '.join(present) or 'none'}"
    raise UserError(f"no {PREFIX_2D}{name}.npz{hint}", folder)


def pair_2d_with_3d(
    positions_3d: dict[str, dict[str, np.ndarray]],
    positions_2d: dict[str, dict[str, list[np.ndarray]]],
    path_2d: str | Path,
) -> dict[str, dict[str, list[np.ndarray]]]:
    """The 2D keypoints of every 3D sequence, truncated to the mocap length.

    As in the raw data, keypoints from a video may run longer than the mocap (they are cut, see
    quirks.usable_video_frames); a missing sequence or a shorter one is a UserError naming `path_2d`."""
    path_2d = Path(path_2d)
    paired: dict[str, dict[str, list[np.ndarray]]] = {}
    for subject, actions in positions_3d.items():
        if subject not in positions_2d:
            raise UserError(f"no 2D keypoints for subject {subject}", path_2d)
        for action, poses in actions.items():
            views = positions_2d[subject].get(action)
            if views is None:
                raise UserError(f"no 2D keypoints for {subject} '{action}'", path_2d)
            cut = []
            for i, view in enumerate(views):
                usable = quirks.usable_video_frames(len(view), len(poses))
                if usable is None:
                    raise UserError(
                        f"positions_2d['{subject}']['{action}'][{i}] has {len(view)} frames, "
                        f"fewer than the {len(poses)} of the mocap",
                        path_2d,
                    )
                cut.append(view[:usable])
            paired.setdefault(subject, {})[action] = cut
    return paired


def to_h36m17_mm(positions: np.ndarray) -> np.ndarray:
    """(N, 32, 3) metres (VideoPose3D) -> (N, 17, 3) millimetres, the toolkit's convention."""
    return raw_to_h36m17(np.asarray(positions, dtype=np.float64)) * 1000.0


class _Numpy1Pickler(pickle._Pickler):
    """Pickles numpy objects under numpy 1.x's module names (`numpy.core.multiarray._reconstruct`,
    `.scalar`), which numpy 1.x and 2.x both load; numpy 2 itself writes `numpy._core...`, which no
    numpy 1.x can load. The pure-Python pickler is used because its `save_global` can be told the name."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        from numpy._core import multiarray

        for attribute in ("_reconstruct", "scalar"):
            if obj is getattr(multiarray, attribute):
                self.write(pickle.GLOBAL + f"numpy.core.multiarray\n{attribute}\n".encode())
                self.memoize(obj)
                return
        super().save_global(obj, name)


def _npy_of_object(value: Any) -> bytes:
    """An .npy holding `value` as a 0-d object array, pickled with protocol 3 (what numpy 1.17-1.26's
    `np.save` writes for a dict)."""
    array = np.empty((), dtype=object)
    array[()] = value
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": ()})
    _Numpy1Pickler(buffer, protocol=3).dump(array)
    return buffer.getvalue()


def write_npz(path: str | Path, **members: Any) -> Path:
    """Write members the way VideoPose3D's files are made (`np.savez_compressed`: one deflated `<name>.npy`
    per member; a dict is pickled as a 0-d object array), atomically, loadable by `np.load(path,
    allow_pickle=True)` under numpy 1.x and 2.x alike. Arrays are stored as .npy without pickle."""
    path = Path(path)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in members.items():
            if isinstance(value, np.ndarray) and not value.dtype.hasobject:
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, value, allow_pickle=False)
                data = buffer.getvalue()
            else:
                data = _npy_of_object(value)
            archive.writestr(f"{name}.npy", data)
    return path
