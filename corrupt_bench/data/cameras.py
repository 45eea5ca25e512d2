"""Human3.6M cameras: the public calibration, world<->camera transforms and distorted projection.

Conventions (see DESIGN.md): camera ids 54138969, 55011271, 58860488, 60457274 (index 0..3);
the orientation quaternion (w, x, y, z) rotates camera -> world; the centre is the camera
position in world mm. Projection follows VideoPose3D's `project_to_2d`: radial (k1, k2, k3)
and tangential (p1, p2) with ``tan = p1*x + p2*y`` and ``+ (p1, p2) * r^2``. Other published
sources (OpenCV, the original Human3.6M Matlab code) order the tangential pair the other way
round; the stored pair is kept exactly as VideoPose3D stores it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_write_text
from corrupt_bench.layout import CAMERA_FILE_NAME

CAMERA_IDS: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")
DEFAULT_CAMERA_FILE = Path(__file__).with_name("h36m_cameras.json")


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
    """One calibrated Human3.6M camera of one subject. Units: mm and pixels."""

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

    @property
    def index(self) -> int:
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
        """(fx, fy, cx, cy, k1, k2, k3, p1, p2) in pixels, as VideoPose3D packs it (before normalisation)."""
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
        return {
            "focal_length": list(self.focal_length),
            "center": list(self.center),
            "radial_distortion": list(self.radial),
            "tangential_distortion": list(self.tangential),
            "res_w": self.width,
            "res_h": self.height,
        }


def world_to_camera(points_world: np.ndarray, camera: Camera) -> np.ndarray:
    """(..., 3) world mm -> camera frame mm."""
    pts = np.asarray(points_world, dtype=np.float64)
    return (pts - np.asarray(camera.position)) @ camera.R.T


def camera_to_world(points_cam: np.ndarray, camera: Camera) -> np.ndarray:
    """(..., 3) camera frame mm -> world mm."""
    pts = np.asarray(points_cam, dtype=np.float64)
    return pts @ camera.R + np.asarray(camera.position)


def project(points_cam: np.ndarray, camera: Camera) -> np.ndarray:
    """Project (..., 3) camera-frame points to (..., 2) distorted pixel coordinates (VideoPose3D model)."""
    pts = np.asarray(points_cam, dtype=np.float64)
    xy = pts[..., :2] / pts[..., 2:3]
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    k1, k2, k3 = camera.radial
    p = np.asarray(camera.tangential)
    radial = 1.0 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tan = np.sum(p * xy, axis=-1, keepdims=True)
    distorted = xy * (radial + tan) + p * r2
    return distorted * np.asarray(camera.focal_length) + np.asarray(camera.center)


def undistort(pixels: np.ndarray, camera: Camera, iterations: int = 30) -> np.ndarray:
    """Invert `project`'s distortion: (..., 2) distorted px -> (..., 2) normalised camera coordinates x/z, y/z.

    OpenCV's undistortPoints assumes another tangential model, so this is a fixed-point iteration of
    the VideoPose3D model (converges to < 1e-9 within the image for Human3.6M's small distortion).
    """
    xd = (np.asarray(pixels, dtype=np.float64) - np.asarray(camera.center)) / np.asarray(camera.focal_length)
    k1, k2, k3 = camera.radial
    p = np.asarray(camera.tangential)
    xy = xd.copy()
    for _ in range(iterations):
        r2 = np.sum(xy**2, axis=-1, keepdims=True)
        radial = 1.0 + k1 * r2 + k2 * r2**2 + k3 * r2**3
        tan = np.sum(p * xy, axis=-1, keepdims=True)
        xy = (xd - p * r2) / (radial + tan)
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


def write_camera_file(cameras: dict[tuple[str, str], Camera], path: str | Path) -> None:
    """Write cameras in the package's JSON layout (used for a synthetic source rendered at another size)."""
    intr: dict[str, dict] = {}
    ext: dict[str, dict] = {}
    for (subject, cam_id), cam in sorted(cameras.items()):
        intr[cam_id] = cam.to_json()
        ext.setdefault(subject, {})[cam_id] = {"orientation": list(cam.orientation), "centre": list(cam.position)}
    payload = {"source": "corrupt-bench: scaled public Human3.6M calibration", "intrinsics": intr, "extrinsics": ext}
    atomic_write_text(path, json.dumps(payload, indent=1))
