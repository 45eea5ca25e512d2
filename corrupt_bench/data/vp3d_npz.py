"""Reader of VideoPose3D's preprocessed Human3.6M files.

- `data_3d_h36m.npz`: `positions_3d` = {subject: {action: (N, 32, 3) float32 metres, world frame}}.
- `data_2d_h36m_<source>.npz`: `positions_2d` = {subject: {action: [4 arrays (N, J, 2) px, one per
  camera in CAMERA_IDS order]}} and `metadata` = {"num_joints": J, "keypoints_symmetry": [left, right], ...}.

Why pickle: VideoPose3D wrote these with `np.savez_compressed(path, positions_3d=<dict>)`. A dict is
not an array, so numpy stores each member as a 0-d object array whose content is a *pickle*; plain
`np.load` therefore refuses them unless `allow_pickle=True`. A pickle can run arbitrary code when
loaded, so instead of `np.load(..., allow_pickle=True)` we unpickle each member with an unpickler
that only admits the numpy globals an array needs (`_npz_member`). The structure (types, shapes)
is then checked before anything uses it, and every fault is a UserError that names the file.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from corrupt_bench.data import quirks
from corrupt_bench.data.skeleton import N_RAW_JOINTS, raw_to_h36m17
from corrupt_bench.errors import UserError

N_CAMERAS = 4
MAX_ABS_METRES = 100.0  # Human3.6M world coordinates lie within a few metres; larger values are not metres

# The only globals an ndarray pickle (protocols 2-5, numpy 1.x or 2.x) refers to.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
    }
)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles builtin containers and numpy arrays only; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global '{module}.{name}'")


def _npz_member(path: Path, name: str) -> Any:
    """The object stored under `name` in an npz written by np.savez[_compressed] (a pickled dict for VideoPose3D)."""
    if not path.is_file():
        raise UserError("file not found", path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
            if f"{name}.npy" not in members:
                found = ", ".join(sorted(m.removesuffix(".npy") for m in members)) or "nothing"
                raise UserError(f"no '{name}' array in the npz (it holds {found})", path)
            with archive.open(f"{name}.npy") as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                if not dtype.hasobject or shape != ():
                    raise UserError(
                        f"'{name}' is a {dtype} array of shape {shape}, expected a pickled dict", path
                    )
                value = _ArrayOnlyUnpickler(member).load()
    except UserError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise UserError(
            f"unreadable npz member '{name}' ({type(exc).__name__}: {exc})".splitlines()[0], path
        ) from exc
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


def read_positions_2d(path: str | Path) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict]:
    """`positions_2d` and `metadata` of a `data_2d_h36m_<source>.npz`.

    positions: {subject: {action: [4 arrays (N, J, 2) px, cameras in CAMERA_IDS order]}}; J from
    `metadata["num_joints"]`."""
    path = Path(path)
    metadata = _check_dict(_npz_member(path, "metadata"), "metadata", path)
    n_joints = metadata.get("num_joints")
    if not isinstance(n_joints, (int, np.integer)) or n_joints <= 0:
        raise UserError(f"metadata['num_joints'] must be a positive integer, found {n_joints!r}", path)
    symmetry = metadata.get("keypoints_symmetry")
    if symmetry is not None:
        if len(symmetry) != 2 or any(not 0 <= int(j) < n_joints for side in symmetry for j in side):
            raise UserError("metadata['keypoints_symmetry'] must be two lists of joint indices", path)
    data = _check_dict(_npz_member(path, "positions_2d"), "positions_2d", path)
    for subject, actions in data.items():
        _check_dict(actions, f"positions_2d['{subject}']", path)
        for action, views in actions.items():
            where = f"positions_2d['{subject}']['{action}']"
            if not isinstance(views, (list, tuple)) or len(views) != N_CAMERAS:
                raise UserError(f"{where} must be a list of {N_CAMERAS} arrays (one per camera)", path)
            actions[action] = [
                _check_array(view, f"{where}[{i}]", (int(n_joints), 2), path) for i, view in enumerate(views)
            ]
    return data, metadata


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
