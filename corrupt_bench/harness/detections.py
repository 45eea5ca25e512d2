"""2D detections for keypoint models on image cells: any `Detector2D`, cached in the score run folder.

`cached_detections` reads the images of label rows, runs the detector through its protocol
(`detect(images) -> keypoints in the pixels of those images, confidences`), maps the keypoints from
the crop to full-frame pixels with each row's crop box, and caches them per label file at
`RUN/detections/<detector key>/<variant>/<corruption>/<severity>/<subject>_<sequence>.parquet`
(`layout.detection_path`). The detector key is the loaded detector's identity (its spec, config,
weights digest), so two detectors never share a cache and the input benchmark is never written to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corrupt_bench.data.crop import from_crop
from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_write_parquet
from corrupt_bench.layout import detection_path
from corrupt_bench.models.protocol import Detector2D

DETECTION_COLUMNS = ("camera", "frame", "keypoints_2d", "keypoint_conf")


def read_image(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError("cannot read image", path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _checked(detector: Detector2D, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`detector.detect(images)` with its output shapes checked (a plugin's fault names the detector)."""
    xy, conf = detector.detect(images)
    xy, conf = np.asarray(xy, dtype=np.float64), np.asarray(conf, dtype=np.float32)
    n = len(images)
    if xy.shape != (n, N_JOINTS, 2) or conf.shape != (n, N_JOINTS):
        name = getattr(detector, "name", type(detector).__name__)
        raise ValueError(f"detector '{name}' returned shapes {xy.shape} and {conf.shape}, expected ({n}, 17, 2) and ({n}, 17)")
    missing = ~np.isfinite(xy).all(axis=-1)
    return np.where(missing[..., None], np.nan, xy), np.where(missing | ~np.isfinite(conf), 0.0, conf).astype(np.float32)


def detect_rows(detector: Detector2D, benchmark: Path, rows, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Detections for label rows: (N, 17, 2) full-frame px (NaN where no image or no person) and
    (N, 17) confidences (0 there). One `detect` call per image size within each chunk of rows."""
    n = len(rows)
    kp = np.full((n, N_JOINTS, 2), np.nan, np.float32)
    conf = np.zeros((n, N_JOINTS), np.float32)
    images = rows["image"].tolist()
    have = [i for i, im in enumerate(images) if isinstance(im, str) and im]
    for start in range(0, len(have), batch_size):
        chunk = have[start : start + batch_size]
        imgs = [read_image(benchmark / images[i]) for i in chunk]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for k, img in enumerate(imgs):  # crops: one size, one call
            by_shape.setdefault(img.shape, []).append(k)
        for members in by_shape.values():
            xy, c = _checked(detector, np.stack([imgs[k] for k in members]))
            for m, k in enumerate(members):
                i = chunk[k]
                crop = np.asarray(rows["crop"].iloc[i], dtype=np.float64)
                w, h = (int(v) for v in rows["image_size"].iloc[i])
                if w == h:
                    kp[i] = from_crop(xy[m], crop, w)
                else:  # output image not square (no crop): the crop box maps anisotropically onto W x H
                    scale = (crop[2:] - crop[:2]) / np.array([w, h])
                    kp[i] = (xy[m] + 0.5) * scale + crop[:2] - 0.5
                conf[i] = c[m]
    return kp, conf


def cached_detections(run: Path, detector_key: str, benchmark: Path, labels, detector: Detector2D, refresh: bool = False):
    """Detections for the rows of one (or more) label files, cached in the run folder `run`.

    Returns a DataFrame with columns subject, sequence, camera, frame, keypoints_2d (34 full-frame
    px), keypoint_conf (17), one row per label row (NaN / 0 for rows without an image). A cache file
    is reused when it covers every (camera, frame) asked for, unless `refresh` (`score --force`); it
    is written atomically.
    """
    import pandas as pd

    parts = []
    keys = ["variant", "corruption", "severity", "subject", "sequence"]
    for (variant, corruption, severity, subject, sequence), rows in labels.groupby(keys, sort=False):
        path = detection_path(run, detector_key, str(variant), str(corruption), int(severity), str(subject), str(sequence))
        wanted = set(zip(rows["camera"].astype(str), rows["frame"].astype(int), strict=True))
        cached = None
        if path.is_file() and not refresh:
            cached = pd.read_parquet(path)
            have = set(zip(cached["camera"].astype(str), cached["frame"].astype(int), strict=True))
            if not wanted <= have:
                cached = None
        if cached is None:
            rows = rows.reset_index(drop=True)
            kp, conf = detect_rows(detector, Path(benchmark), rows)
            cached = pd.DataFrame({
                "subject": str(subject), "sequence": str(sequence),
                "camera": rows["camera"].astype(str), "frame": rows["frame"].astype(np.int32),
                "keypoints_2d": list(kp.reshape(len(rows), -1)), "keypoint_conf": list(conf),
            })  # fmt: skip
            _write(cached, path)
        parts.append(cached)
    if not parts:
        return pd.DataFrame(columns=["subject", "sequence", *DETECTION_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def _write(df, path: Path) -> None:
    import pyarrow as pa

    table = pa.table({
        "subject": pa.array(df["subject"], pa.string()),
        "sequence": pa.array(df["sequence"], pa.string()),
        "camera": pa.array(df["camera"], pa.string()),
        "frame": pa.array(df["frame"], pa.int32()),
        "keypoints_2d": pa.array([np.asarray(v, np.float32) for v in df["keypoints_2d"]], pa.list_(pa.float32())),
        "keypoint_conf": pa.array([np.asarray(v, np.float32) for v in df["keypoint_conf"]], pa.list_(pa.float32())),
    })  # fmt: skip
    atomic_write_parquet(path, table)
