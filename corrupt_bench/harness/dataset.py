"""Model inputs of one label file: frames grouped into views and windows, images decoded by DataLoader workers.

A `Group` holds the frames that one model call sees together: all cameras of a frame for a
multi-view model (frames present in every camera), one camera for a single-view model. Windows of
T frames are non-overlapping chunks of the group's frames in time order; the last chunk is padded
by repeating the last frame (`pad` marks those), so every frame gets exactly one prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.models.protocol import InputSpec


@dataclass
class Group:
    """Arrays (V, N, ...) of the frames that are fed together; `frames` (N,) source frame indices."""

    camera_ids: tuple[str, ...]
    frames: np.ndarray
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    image_paths: np.ndarray | None = None  # (V, N) object: absolute path or None
    image_hw: tuple[int, int] | None = None
    cut: bool = False  # images are full frames: cut each person crop with `arrays["crop"]` (box: detector)


def stack_column(df, column: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """A flat list column -> (rows, *shape) array; null entries become NaN (False for bool)."""
    values = df[column].to_numpy()
    size = int(np.prod(shape))
    present = np.array([v is not None and not (np.isscalar(v) and v != v) for v in values], dtype=bool)
    if present.all() and len(values):
        try:
            return np.stack(values).astype(dtype, copy=False).reshape(len(values), *shape)
        except ValueError:
            pass  # ragged: fall through to the per-row path, which names the fault
    fill = False if dtype is bool else np.nan
    out = np.full((len(df), *shape), fill, dtype=dtype)
    for i in np.flatnonzero(present):
        arr = np.asarray(values[i], dtype=dtype)
        if arr.size != size:
            raise ValueError(f"column '{column}' holds {arr.size} values, expected {size}")
        out[i] = arr.reshape(shape)
    return out


def has_values(df, column: str) -> bool:
    """True when the column exists and holds at least one non-null entry."""
    return column in df.columns and bool(df[column].notna().any())


def build_groups(df, spec: InputSpec, input_2d: str | None, image_root: Path | None = None, cut: bool = False) -> list[Group]:
    """Groups of one label table (sorted by camera, frame). `input_2d`: what the cell feeds a keypoint
    model (`harness.inputs.ROW_INPUTS`: 'corrupted' | 'detector' | 'gt' | 'labels'), or 'images' / None.

    For 'corrupted' and 'detector' the table's `keypoints_2d` / `keypoint_conf` columns are the input;
    for 'gt' and 'labels' it is `joints_2d` with confidence 1.
    """
    cameras = list(dict.fromkeys(df["camera"]))
    per_cam = {c: df[df["camera"] == c] for c in cameras}
    if spec.multi_view:
        common = set(per_cam[cameras[0]]["frame"])
        for c in cameras[1:]:
            common &= set(per_cam[c]["frame"])
        frames = np.array(sorted(common), dtype=np.int64)
        tables = [per_cam[c].set_index("frame").loc[frames].reset_index() for c in cameras]
        return [_group(tuple(cameras), frames, tables, spec, input_2d, image_root, cut)]
    groups = []
    for c in cameras:
        table = per_cam[c].drop_duplicates("frame").reset_index(drop=True)
        groups.append(_group((c,), table["frame"].to_numpy(np.int64), [table], spec, input_2d, image_root, cut))
    return groups


def _group(cameras, frames, tables, spec: InputSpec, input_2d, image_root, cut: bool = False) -> Group:
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in ("joints_3d_cam", "occluded", "view_valid", "crop", "keypoints_2d", "confidence")}
    for t in tables:
        n = len(t)
        arrays["joints_3d_cam"].append(stack_column(t, "joints_3d_cam", (N_JOINTS, 3), np.float64))
        arrays["occluded"].append(stack_column(t, "occluded", (N_JOINTS,), bool) if "occluded" in t else np.zeros((n, N_JOINTS), bool))
        arrays["view_valid"].append(t["view_valid"].to_numpy(bool) if "view_valid" in t else np.ones(n, bool))
        arrays["crop"].append(stack_column(t, "crop", (4,)) if has_values(t, "crop") else np.full((n, 4), np.nan, np.float32))
        if input_2d in ("gt", "labels"):
            arrays["keypoints_2d"].append(stack_column(t, "joints_2d", (N_JOINTS, 2)))
            arrays["confidence"].append(np.ones((n, N_JOINTS), np.float32))
        elif input_2d in ("corrupted", "detector"):
            arrays["keypoints_2d"].append(stack_column(t, "keypoints_2d", (N_JOINTS, 2)))
            conf = stack_column(t, "keypoint_conf", (N_JOINTS,)) if has_values(t, "keypoint_conf") else np.ones((n, N_JOINTS), np.float32)
            arrays["confidence"].append(np.nan_to_num(conf, nan=0.0))
    out = {k: np.stack(v) for k, v in arrays.items() if v}
    group = Group(tuple(cameras), frames, out, cut=cut)
    if spec.kind == "images":
        paths = np.empty((len(tables), len(frames)), dtype=object)
        for v, t in enumerate(tables):
            for i, rel in enumerate(t["image"].to_numpy() if "image" in t else [None] * len(t)):
                paths[v, i] = None if rel is None or rel != rel else _image_path(image_root, rel)
        group.image_paths = paths
        sizes = stack_column(tables[0], "image_size", (2,), np.float64) if has_values(tables[0], "image_size") else None
        if sizes is not None and len(sizes):
            group.image_hw = (int(sizes[0, 1]), int(sizes[0, 0]))
    return group


def _image_path(root: Path | None, relative: str) -> str:
    from corrupt_bench.errors import UserError
    from corrupt_bench.io import confined

    if root is None:
        raise UserError(f"image '{relative}' named but no benchmark folder to read it from")
    return str(confined(root, *relative.split("/")))


def resample_group(group: Group, positions: np.ndarray) -> Group:
    """The group seen at fractional frame `positions` (another frame rate, `harness.timing`): 2D
    keypoints and confidences linearly interpolated, every other input (images, crops, validity, labels)
    from the nearest frame; `frames` the nearest source frame indices."""
    from corrupt_bench.harness.timing import interpolate_frames

    nearest = np.clip(np.round(positions).astype(np.int64), 0, len(group.frames) - 1)
    arrays = {}
    for k, v in group.arrays.items():
        arrays[k] = interpolate_frames(v, positions).astype(v.dtype) if k in ("keypoints_2d", "confidence") else v[:, nearest]
    paths = group.image_paths[:, nearest] if group.image_paths is not None else None
    return Group(group.camera_ids, group.frames[nearest], arrays, paths, group.image_hw, group.cut)


def window_starts(n_frames: int, window: int) -> list[int]:
    """Starts of the non-overlapping windows covering n_frames."""
    return list(range(0, max(n_frames, 0), max(window, 1)))


class WindowDataset:
    """torch-style map dataset of the windows of one Group (workers decode the images)."""

    def __init__(self, group: Group, spec: InputSpec):
        self.group = group
        self.spec = spec
        self.starts = window_starts(len(group.frames), spec.window)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict:
        g, window = self.group, max(self.spec.window, 1)
        pos = self.starts[i] + np.arange(window)
        pad = pos >= len(g.frames)
        idx = np.minimum(pos, len(g.frames) - 1)
        sample: dict = {"index": idx, "pad": pad, "frames": g.frames[idx]}
        sample["view_valid"] = g.arrays["view_valid"][:, idx]
        sample["crop"] = g.arrays["crop"][:, idx]
        if "keypoints_2d" in g.arrays:
            sample["keypoints_2d"] = g.arrays["keypoints_2d"][:, idx]
            sample["confidence"] = g.arrays["confidence"][:, idx]
        if self.spec.needs_ground_truth:
            sample["joints_3d_cam"] = g.arrays["joints_3d_cam"][:, idx]
            sample["occluded"] = g.arrays["occluded"][:, idx]
        if self.spec.kind == "images":
            sample["images"] = np.stack([np.stack([self._image(v, j) for j in idx]) for v in range(len(g.camera_ids))])
        return sample

    def _image(self, view: int, index: int) -> np.ndarray:
        import cv2

        size = self.spec.image_size
        path = self.group.image_paths[view, index] if self.group.image_paths is not None else None
        box = self.group.arrays["crop"][view, index] if self.group.cut else None
        if path is None or (box is not None and not np.isfinite(box).all()):  # no image, or no person found: a black frame
            h, w = (size, size) if size else (self.group.image_hw or (256, 256))
            return np.zeros((h, w, 3), np.uint8)
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"{path}: cannot read image")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if box is not None:  # box: detector: the person crop is cut here, with the detector's box
            from corrupt_bench.data.crop import crop_image

            return crop_image(image, np.asarray(box, np.float64), size or 256)
        if size and image.shape[:2] != (size, size):
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
        return image


def collate(samples: list[dict]) -> dict:
    """Stack numpy samples into a batch (B, ...) without converting to tensors."""
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


def iterate_batches(dataset: WindowDataset, batch_size: int, workers: int):
    """Batches of the dataset through a torch DataLoader (`workers` processes decode images)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_size=max(batch_size, 1),
        shuffle=False,
        num_workers=max(workers, 0) if dataset.spec.kind == "images" else 0,
        collate_fn=collate,
    )
    yield from loader
