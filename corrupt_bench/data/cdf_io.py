"""Read and write Human3.6M pose CDF files (variable `Pose`, shape (1, N, D)) through cdflib."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_path


def read_pose_cdf(path: str | Path, width: int) -> np.ndarray:
    """Return the `Pose` variable of a Human3.6M CDF as (N, width) float64; UserError names the file on any fault
    (NaN or infinite values included: the raw data has none, so a file with them is damaged)."""
    import cdflib

    path = Path(path)
    if not path.is_file():
        raise UserError("file not found", path)
    try:
        cdf = cdflib.CDF(str(path))
        pose = cdf.varget("Pose")
    except Exception as exc:  # cdflib raises a zoo of types for corrupt files
        raise UserError(f"unreadable CDF ({type(exc).__name__}: {exc})".splitlines()[0], path) from exc
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim == 3 and pose.shape[0] == 1:
        pose = pose[0]
    if pose.ndim != 2 or pose.shape[1] != width:
        raise UserError(f"CDF variable 'Pose' has shape {tuple(np.shape(pose))}, expected (1, N, {width})", path)
    bad = ~np.isfinite(pose)
    if bad.any():  # a pose with NaN or infinity would give NaN labels and blank crops: refused, never guessed
        frames = np.flatnonzero(bad.any(axis=1))
        raise UserError(
            f"CDF variable 'Pose' holds {int(bad.sum())} NaN or infinite values in {len(frames)} of {len(pose)} frames "
            f"(first at frame {int(frames[0])}); refused",
            path,
        )
    return pose


def write_pose_cdf(path: str | Path, pose: np.ndarray) -> None:
    """Write (N, D) poses as a Human3.6M-style CDF with variable `Pose` of shape (1, N, D), atomically."""
    from cdflib.cdfwrite import CDF as CDFWriter

    path = Path(path)
    pose = np.asarray(pose, dtype=np.float32)
    if pose.ndim != 2:
        raise ValueError(f"pose must be (N, D), got {pose.shape}")
    with atomic_path(path, suffix=".cdf") as tmp:  # cdflib insists on the .cdf extension
        writer = CDFWriter(str(tmp), cdf_spec={"Majority": "Row_major", "rDim_sizes": []}, delete=True)
        try:
            var_spec = {
                "Variable": "Pose",
                "Data_Type": writer.CDF_FLOAT,
                "Num_Elements": 1,
                "Rec_Vary": True,
                "Dim_Sizes": [pose.shape[0], pose.shape[1]],
                "Compress": 0,  # cdflib gzips with the current time in the header: same data, other bytes
            }
            writer.write_var(var_spec, var_attrs={}, var_data=pose[None])
        finally:
            writer.close()
