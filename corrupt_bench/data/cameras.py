"""Cameras: the public Human3.6M calibration, OpenCV-model cameras of any rig, world<->camera
transforms and distorted projection.

Conventions (see DESIGN.md): Human3.6M camera ids 54138969, 55011271, 58860488, 60457274 (index
0..3); the orientation quaternion (w, x, y, z) rotates camera -> world; the centre is the camera
position in world mm. Two distortion models, chosen per camera by `Camera.distortion_model`:

- ``"h36m"`` (every Human3.6M camera): VideoPose3D's `project_to_2d`, radial (k1, k2, k3) and
  tangential (p1, p2) with ``tan = p1*x + p2*y`` and ``+ (p1, p2) * r^2``. The original Human3.6M
  Matlab code (`ProjectPointRadial`) and sources copied from its metadata (karfly's
  camera-parameters.json, mmpose's cameras.pkl) hold the same pair in the other order; the stored
  pair is kept exactly as VideoPose3D stores it.
- ``"opencv"`` (a calibrated rig, `read_calibration_toml`): OpenCV's model, ``x' = x*radial + 2*p1*x*y
  + p2*(r^2 + 2*x^2)``, ``y' = y*radial + p1*(r^2 + 2*y^2) + 2*p2*x*y`` with OpenCV's (p1, p2).
  The two tangential terms are different functions, not only a different order.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_write_text
from corrupt_bench.layout import CAMERA_FILE_NAME

CAMERA_IDS: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")
DEFAULT_CAMERA_FILE = Path(__file__).with_name("h36m_cameras.json")
DISTORTION_MODELS = ("h36m", "opencv")
UNITS_MM = {"mm": 1.0, "m": 1000.0}  # calibration translation units -> millimetres
CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # also a folder-name part: no '.', no '/'


def matrix_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation matrix (the inverse of `quaternion_to_matrix`)."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, 0.0]
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q = np.asarray(q)
    return q / np.linalg.norm(q) * (1.0 if q[0] >= 0 else -1.0)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True)
class Camera:
    """One calibrated camera of one subject (Human3.6M's, or a rig's with `distortion_model="opencv"`).
    Units: mm and pixels. `radial` is (k1, k2, k3); `tangential` is (p1, p2) in the model's own order."""

    subject: str
    camera_id: str
    focal_length: tuple[float, float]
    center: tuple[float, float]
    radial: tuple[float, float, float]
    tangential: tuple[float, float]
    width: int
    height: int
    orientation: tuple[float, float, float, float]  # camera -> world quaternion (w, x, y, z)
    position: tuple[float, float, float]  # camera centre in world, mm
    distortion_model: str = "h36m"  # "h36m" (VideoPose3D's) or "opencv"

    def __post_init__(self) -> None:
        if self.distortion_model not in DISTORTION_MODELS:
            raise ValueError(f"distortion model {self.distortion_model!r}; known: {', '.join(DISTORTION_MODELS)}")

    @property
    def index(self) -> int:
        """Index of a Human3.6M camera id in CAMERA_IDS (a ValueError for other rigs' ids)."""
        return CAMERA_IDS.index(self.camera_id)

    @property
    def R(self) -> np.ndarray:  # noqa: N802 - the field's name
        """World -> camera rotation (OpenCV convention: x_cam = R @ x_world + t)."""
        return quaternion_to_matrix(self.orientation).T

    @property
    def t(self) -> np.ndarray:
        """World -> camera translation in mm (OpenCV convention)."""
        return -self.R @ np.asarray(self.position, dtype=np.float64)

    @property
    def K(self) -> np.ndarray:  # noqa: N802
        """3x3 intrinsic matrix (without distortion)."""
        (fx, fy), (cx, cy) = self.focal_length, self.center
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    @property
    def intrinsic_vector(self) -> np.ndarray:
        """(fx, fy, cx, cy, k1, k2, k3, p1, p2) in pixels, as VideoPose3D packs it (before normalisation);
        only for the VideoPose3D model, whose tangential pair it means."""
        if self.distortion_model != "h36m":
            raise ValueError(f"camera {self.camera_id} has the {self.distortion_model} model: no VideoPose3D intrinsic vector")
        return np.array([*self.focal_length, *self.center, *self.radial, *self.tangential], dtype=np.float64)

    def scaled(self, divisor: int) -> Camera:
        """The same camera rendered at 1/divisor resolution (intrinsics in pixels scaled to match)."""
        if divisor == 1:
            return self
        s = 1.0 / divisor
        return replace(
            self,
            focal_length=(self.focal_length[0] * s, self.focal_length[1] * s),
            # pixel centres: continuous coordinate u maps to (u + 0.5) * s - 0.5
            center=((self.center[0] + 0.5) * s - 0.5, (self.center[1] + 0.5) * s - 0.5),
            width=int(round(self.width * s)),
            height=int(round(self.height * s)),
        )

    def to_json(self) -> dict:
        payload = {
            "focal_length": list(self.focal_length),
            "center": list(self.center),
            "radial_distortion": list(self.radial),
            "tangential_distortion": list(self.tangential),
            "res_w": self.width,
            "res_h": self.height,
        }
        if self.distortion_model != "h36m":  # Human3.6M cameras keep their file (and its digests) unchanged
            payload["distortion_model"] = self.distortion_model
        return payload


def world_to_camera(points_world: np.ndarray, camera: Camera) -> np.ndarray:
    """(..., 3) world mm -> camera frame mm."""
    pts = np.asarray(points_world, dtype=np.float64)
    return (pts - np.asarray(camera.position)) @ camera.R.T


def camera_to_world(points_cam: np.ndarray, camera: Camera) -> np.ndarray:
    """(..., 3) camera frame mm -> world mm."""
    pts = np.asarray(points_cam, dtype=np.float64)
    return pts @ camera.R + np.asarray(camera.position)


def _distortion_terms(xy: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) with distorted = xy * scale + offset, for normalised coordinates xy (..., 2)."""
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    k1, k2, k3 = camera.radial
    p1, p2 = camera.tangential
    radial = 1.0 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    x, y = xy[..., :1], xy[..., 1:]
    if camera.distortion_model == "opencv":
        offset = np.concatenate([2 * p1 * x * y + p2 * (r2 + 2 * x * x), p1 * (r2 + 2 * y * y) + 2 * p2 * x * y], axis=-1)
        return radial, offset
    tan = p1 * x + p2 * y
    return radial + tan, np.concatenate([p1 * r2, p2 * r2], axis=-1)


def project(points_cam: np.ndarray, camera: Camera) -> np.ndarray:
    """Project (..., 3) camera-frame points to (..., 2) distorted pixel coordinates (the camera's model)."""
    pts = np.asarray(points_cam, dtype=np.float64)
    xy = pts[..., :2] / pts[..., 2:3]
    scale, offset = _distortion_terms(xy, camera)
    return (xy * scale + offset) * np.asarray(camera.focal_length) + np.asarray(camera.center)


def undistort(pixels: np.ndarray, camera: Camera, iterations: int = 30) -> np.ndarray:
    """Invert `project`'s distortion: (..., 2) distorted px -> (..., 2) normalised camera coordinates x/z, y/z.

    A fixed-point iteration of the camera's own model (OpenCV's undistortPoints iterates the OpenCV
    model the same way; it does not know the VideoPose3D one); converges to < 1e-9 within the image
    for the small distortions of Human3.6M and the pose2sim rig.
    """
    xd = (np.asarray(pixels, dtype=np.float64) - np.asarray(camera.center)) / np.asarray(camera.focal_length)
    xy = xd.copy()
    for _ in range(iterations):
        scale, offset = _distortion_terms(xy, camera)
        xy = (xd - offset) / scale
    return xy


def project_world(points_world: np.ndarray, camera: Camera) -> np.ndarray:
    """World mm -> distorted pixels."""
    return project(world_to_camera(points_world, camera), camera)


def _read_camera_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read camera file ({exc.strerror})", path) from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"camera file is not valid JSON (line {exc.lineno})", path) from exc
    if not isinstance(data, dict) or not {"intrinsics", "extrinsics"} <= data.keys():
        raise UserError("camera file must hold 'intrinsics' and 'extrinsics'", path)
    return data


@lru_cache(maxsize=16)
def _load(path: Path) -> dict[tuple[str, str], Camera]:
    data = _read_camera_file(path)
    cameras: dict[tuple[str, str], Camera] = {}
    for subject, per_cam in data["extrinsics"].items():
        for cam_id, ext in per_cam.items():
            intr = data["intrinsics"].get(cam_id)
            if intr is None:
                raise UserError(f"no intrinsics for camera {cam_id}", path)
            model = intr.get("distortion_model", "h36m")  # absent in Human3.6M files: optional by design
            if model not in DISTORTION_MODELS:
                raise UserError(f"camera {cam_id}: distortion_model {model!r}; known: {', '.join(DISTORTION_MODELS)}", path)
            cameras[(subject, cam_id)] = Camera(
                subject=subject,
                camera_id=cam_id,
                focal_length=tuple(map(float, intr["focal_length"])),
                center=tuple(map(float, intr["center"])),
                radial=tuple(map(float, intr["radial_distortion"])),
                tangential=tuple(map(float, intr["tangential_distortion"])),
                width=int(intr["res_w"]),
                height=int(intr["res_h"]),
                orientation=tuple(map(float, ext["orientation"])),
                position=tuple(map(float, ext["centre"])),
                distortion_model=model,
            )
    return cameras


def camera_file_for(root: str | Path | None) -> Path:
    """The camera file that applies to a data folder: its own `cameras.json` if present, else the public one."""
    if root is not None:
        own = Path(root) / CAMERA_FILE_NAME
        if own.is_file():
            return own.resolve()
    return DEFAULT_CAMERA_FILE


def load_cameras(root: str | Path | None = None) -> dict[tuple[str, str], Camera]:
    """All cameras keyed by (subject, camera_id), for the data folder `root` (None: public calibration)."""
    return dict(_load(camera_file_for(root)))


def get_camera(subject: str, camera_id: str, root: str | Path | None = None) -> Camera:
    """One camera; raises UserError naming the camera file when the subject or camera is unknown."""
    cams = _load(camera_file_for(root))
    try:
        return cams[(subject, str(camera_id))]
    except KeyError:
        raise UserError(
            f"no calibration for subject {subject} camera {camera_id}", camera_file_for(root)
        ) from None


def write_camera_file(
    cameras: dict[tuple[str, str], Camera], path: str | Path, source: str = "corrupt-bench: scaled public Human3.6M calibration"
) -> None:
    """Write cameras in the package's JSON layout (a synthetic source rendered at another size; the
    calibration of another source a benchmark was generated from). Intrinsics are per camera id."""
    intr: dict[str, dict] = {}
    ext: dict[str, dict] = {}
    for (subject, cam_id), cam in sorted(cameras.items()):
        intr[cam_id] = cam.to_json()
        ext.setdefault(subject, {})[cam_id] = {"orientation": list(cam.orientation), "centre": list(cam.position)}
    payload = {"source": source, "intrinsics": intr, "extrinsics": ext}
    atomic_write_text(path, json.dumps(payload, indent=1))


def opencv_camera(
    camera_id: str,
    K: np.ndarray,  # noqa: N803 - the field's name
    distortion: tuple[float, ...],
    R: np.ndarray,  # noqa: N803
    t: np.ndarray,
    width: int,
    height: int,
    subject: str = "",
) -> Camera:
    """A camera of OpenCV's model from K (3x3, no skew), distortion (k1, k2, p1, p2[, k3]) in OpenCV's
    order, R and t world -> camera (x_cam = R @ x_world + t, t in mm) and the image size."""
    K = np.asarray(K, dtype=np.float64)  # noqa: N806
    R = np.asarray(R, dtype=np.float64)  # noqa: N806
    k1, k2, p1, p2, *rest = (float(v) for v in distortion)
    return Camera(
        subject=subject,
        camera_id=camera_id,
        focal_length=(float(K[0, 0]), float(K[1, 1])),
        center=(float(K[0, 2]), float(K[1, 2])),
        radial=(k1, k2, rest[0] if rest else 0.0),
        tangential=(p1, p2),
        width=int(width),
        height=int(height),
        orientation=tuple(float(v) for v in matrix_to_quaternion(R.T)),
        position=tuple(float(v) for v in -R.T @ np.asarray(t, dtype=np.float64)),
        distortion_model="opencv",
    )


_TOML_CAMERA_KEYS = ("name", "size", "matrix", "distortions", "rotation", "translation", "fisheye")


def _numbers(value: Any, shape: tuple[int, ...], what: str, path: Path) -> np.ndarray:
    """A finite float array of exactly `shape` from TOML arrays of numbers (booleans and strings refused)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            raise UserError(f"{what} must hold numbers, found {type(item).__name__}", path)
    try:
        array = np.asarray(value, dtype=np.float64)
    except ValueError:
        raise UserError(f"{what} must be an array of shape {shape}, found ragged arrays", path) from None
    if array.shape != shape:
        raise UserError(f"{what} must be an array of shape {shape}, found shape {array.shape}", path)
    if not np.all(np.isfinite(array)):
        raise UserError(f"{what} holds NaN or infinite values", path)
    return array


def _toml_camera(section: str, table: Any, units: str, path: Path) -> Camera:
    import cv2

    where = f"[{section}]"
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table of camera parameters", path)
    unknown = sorted(set(table) - set(_TOML_CAMERA_KEYS))
    missing = [key for key in _TOML_CAMERA_KEYS if key not in table]
    if unknown or missing:
        fault = f"unknown key '{unknown[0]}'" if unknown else f"no '{missing[0]}'"
        raise UserError(f"{where}: {fault} (a camera has {', '.join(_TOML_CAMERA_KEYS)})", path)
    name = table["name"]
    if not isinstance(name, str) or not CAMERA_ID.match(name):
        raise UserError(f"{where}: name {name!r} must be letters, digits, '_' and '-' (it names the camera)", path)
    if table["fisheye"] is not False:
        raise UserError(f"{where}: fisheye = {table['fisheye']!r}; only the pinhole model (fisheye = false) is read", path)
    size = _numbers(table["size"], (2,), f"{where} size", path)
    if np.any(size < 1) or np.any(size != np.round(size)):
        raise UserError(f"{where} size must be two positive whole numbers [width, height]", path)
    K = _numbers(table["matrix"], (3, 3), f"{where} matrix", path)  # noqa: N806
    if K[0, 1] != 0 or np.any(K[1:, 0] != 0) or K[2, 1] != 0 or K[2, 2] != 1 or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise UserError(f"{where} matrix must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0", path)
    n = len(table["distortions"]) if isinstance(table["distortions"], list) else -1
    if n not in (4, 5):
        raise UserError(f"{where} distortions must be [k1, k2, p1, p2] or [k1, k2, p1, p2, k3] (OpenCV order)", path)
    distortion = _numbers(table["distortions"], (n,), f"{where} distortions", path)
    rvec = _numbers(table["rotation"], (3,), f"{where} rotation (a Rodrigues vector)", path)
    t = _numbers(table["translation"], (3,), f"{where} translation", path) * UNITS_MM[units]
    R = cv2.Rodrigues(rvec)[0]  # noqa: N806
    return opencv_camera(name, K, tuple(distortion), R, t, int(size[0]), int(size[1]))


def read_calibration_toml(path: str | Path, units: str) -> dict[str, Camera]:
    """The cameras of a pose2sim / anipose calibration file (.toml), keyed by their `name`.

    One table per camera: `name`, `size = [w, h]`, `matrix` (K), `distortions = [k1, k2, p1, p2(, k3)]`
    (OpenCV), `rotation` (Rodrigues vector, world -> camera), `translation` (world -> camera, in
    `units`: "m" as pose2sim writes, or "mm"), `fisheye = false`; a `[metadata]` table is allowed and
    ignored. Anything else is a UserError naming the file. Cameras get subject "" (a rig's calibration
    serves every subject; the reader of the rig sets it)."""
    path = Path(path)
    if units not in UNITS_MM:
        raise UserError(f"calibration units {units!r}; allowed: {', '.join(UNITS_MM)}", path)
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise UserError("reading a .toml calibration needs Python 3.11 or later (tomllib)", path) from None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read calibration file ({exc.strerror})", path) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"calibration file is not valid TOML ({exc})".splitlines()[0], path) from exc
    cameras: dict[str, Camera] = {}
    for section, table in data.items():
        if section == "metadata":
            if not isinstance(table, dict):
                raise UserError("[metadata] must be a table", path)
            continue
        camera = _toml_camera(section, table, units, path)
        if camera.camera_id in cameras:
            raise UserError(f"[{section}]: camera name '{camera.camera_id}' is used twice", path)
        cameras[camera.camera_id] = camera
    if not cameras:
        raise UserError("calibration file holds no camera table", path)
    return cameras
