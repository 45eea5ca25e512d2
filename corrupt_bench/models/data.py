"""Training data for the reference models, read from a raw-layout folder through `RawH36M`.

Single-view sequences (`PoseSequence`), multi-view sequences (`MultiViewSequence`), person crops
decoded from the videos (`CropSet`), window sampling with edge replication (as VideoPose3D pads the
ends of a sequence), VideoPose3D's normalised screen coordinates and left/right flips.

Randomness only through an explicit `np.random.Generator` argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrupt_bench.data.cameras import CAMERA_IDS, Camera, project
from corrupt_bench.data.crop import crop_image, person_box, square_box, to_crop
from corrupt_bench.data.skeleton import FLIP_PERMUTATION, ROOT
from corrupt_bench.errors import UserError

TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")


@dataclass(frozen=True)
class PoseSequence:
    """One sequence seen by one camera. Arrays are float32; 3D in mm, 2D in full-frame px."""

    subject: str
    sequence: str
    action: str
    camera: Camera
    joints_3d_cam: np.ndarray  # (N, 17, 3) mm, camera frame (absolute, not root-relative)
    joints_2d: np.ndarray  # (N, 17, 2) px, distorted, full frame
    joints_3d_world: np.ndarray  # (N, 17, 3) mm, world frame

    @property
    def n_frames(self) -> int:
        return len(self.joints_3d_cam)


@dataclass(frozen=True)
class MultiViewSequence:
    """One sequence seen by V synchronised cameras (the same V for every sequence of a load)."""

    subject: str
    sequence: str
    action: str
    cameras: list[Camera]
    joints_2d: np.ndarray  # (V, N, 17, 2) px
    joints_3d_cam: np.ndarray  # (V, N, 17, 3) mm, each view's camera frame
    joints_3d_world: np.ndarray  # (N, 17, 3) mm

    @property
    def n_frames(self) -> int:
        return self.joints_3d_world.shape[0]


@dataclass(frozen=True)
class CropSet:
    """Square person crops decoded from the videos, with their labels (M crops)."""

    images: np.ndarray  # (M, size, size, 3) uint8 RGB
    joints_2d: np.ndarray  # (M, 17, 2) float32, crop px
    crops: np.ndarray  # (M, 4) float32, crop box x0, y0, x1, y1 in full-frame px
    cameras: list[Camera]  # one per crop
    subjects: np.ndarray  # (M,) str
    sequences: np.ndarray  # (M,) str
    frames: np.ndarray  # (M,) int32 source frame index

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class WindowBatch:
    """B windows of T frames cut from single-view sequences (edges replicated)."""

    joints_2d: np.ndarray  # (B, T, 17, 2) px
    joints_3d_cam: np.ndarray  # (B, T, 17, 3) mm, absolute camera frame
    cameras: list[Camera]  # (B)
    sequence_index: np.ndarray  # (B,) index into the list sampled from
    centre: np.ndarray  # (B,) frame index of the window centre


def present_subjects(root: str | Path, wanted: Iterable[str]) -> list[str]:
    """The subjects of `wanted` that have a folder in `root` (a synthetic source may hold only some)."""
    root = Path(root)
    return [s for s in wanted if (root / s).is_dir()]


def _reader(root: str | Path, subjects: Sequence[str]):
    from corrupt_bench.data.raw import RawH36M

    if not subjects:
        raise UserError("no subjects to load (none of the requested subjects is in the folder)", root)
    return RawH36M(root, subjects=list(subjects))


def _poses_2d(raw, ref, camera_id: str, camera: Camera, joints_cam: np.ndarray) -> np.ndarray:
    """D2_Positions when the folder has them, else the projection of the mocap (same model)."""
    if raw.d2_path(ref, camera_id).is_file():
        return raw.poses_2d(ref, camera_id)
    return project(joints_cam, camera)


def load_pose_sequences(
    root: str | Path, subjects: Sequence[str], cameras: Sequence[str] | None = None
) -> list[PoseSequence]:
    """Every (sequence, camera) of `subjects` as a PoseSequence; `cameras` restricts the camera ids."""
    raw = _reader(root, subjects)
    out: list[PoseSequence] = []
    for ref in raw.sequences():
        world = raw.poses_world(ref).astype(np.float32)
        for camera_id in ref.cameras:
            if cameras is not None and camera_id not in cameras:
                continue
            camera = raw.camera(ref.subject, camera_id)
            cam3d = raw.poses_cam(ref, camera_id)
            j2d = _poses_2d(raw, ref, camera_id, camera, cam3d)
            out.append(
                PoseSequence(ref.subject, ref.sequence, ref.action, camera, cam3d.astype(np.float32),
                             np.asarray(j2d, dtype=np.float32), world)
            )
    return out


def load_multiview(
    root: str | Path, subjects: Sequence[str], cameras: Sequence[str] = CAMERA_IDS
) -> list[MultiViewSequence]:
    """Sequences of `subjects` seen by all of `cameras` (sequences lacking one of them are left out)."""
    raw = _reader(root, subjects)
    out: list[MultiViewSequence] = []
    for ref in raw.sequences():
        if not all(c in ref.cameras for c in cameras):
            continue
        world = raw.poses_world(ref).astype(np.float32)
        cams, j2d, j3d = [], [], []
        for camera_id in cameras:
            camera = raw.camera(ref.subject, camera_id)
            cam3d = raw.poses_cam(ref, camera_id)
            cams.append(camera)
            j3d.append(cam3d.astype(np.float32))
            j2d.append(np.asarray(_poses_2d(raw, ref, camera_id, camera, cam3d), dtype=np.float32))
        out.append(MultiViewSequence(ref.subject, ref.sequence, ref.action, cams, np.stack(j2d), np.stack(j3d), world))
    return out


def crop_box_for(joints_2d: np.ndarray, margin: float) -> np.ndarray:
    """The square crop box of (..., 17, 2) full-frame joints: `square_box(person_box(joints, margin))`."""
    return square_box(person_box(joints_2d, margin))


def load_crops(
    root: str | Path,
    subjects: Sequence[str],
    size: int,
    step: int = 1,
    margin: float = 0.2,
    cameras: Sequence[str] | None = None,
    max_frames: int | None = None,
) -> CropSet:
    """Person crops of every `step`-th frame of every (sequence, camera), decoded from the videos.

    The crop box is the square around the 2D labels grown by `margin` (`crop_box_for`); labels are in
    crop px (`to_crop`). `max_frames` caps the frames read per (sequence, camera) (for tests).
    """
    raw = _reader(root, subjects)
    images, labels, boxes, cams, subs, seqs, frames = [], [], [], [], [], [], []
    for ref in raw.sequences():
        for camera_id in ref.cameras:
            if cameras is not None and camera_id not in cameras:
                continue
            camera = raw.camera(ref.subject, camera_id)
            j2d = _poses_2d(raw, ref, camera_id, camera, raw.poses_cam(ref, camera_id))
            indices = list(range(0, ref.n_frames, step))
            if max_frames is not None:
                indices = indices[:max_frames]
            with raw.video(ref, camera_id) as video:
                indices = [i for i in indices if i < video.n_frames]
                for index, frame in zip(indices, video.frames(indices), strict=True):
                    box = crop_box_for(j2d[index], margin)
                    images.append(crop_image(frame, box, size))
                    labels.append(to_crop(j2d[index], box, size))
                    boxes.append(box)
                    cams.append(camera)
                    subs.append(ref.subject)
                    seqs.append(ref.sequence)
                    frames.append(index)
    if not images:
        raise UserError(f"no video frames found for subjects {', '.join(subjects)}", root)
    return CropSet(
        np.stack(images), np.asarray(labels, dtype=np.float32), np.asarray(boxes, dtype=np.float32), cams,
        np.asarray(subs), np.asarray(seqs), np.asarray(frames, dtype=np.int32),
    )


def window_indices(centre: int, window: int, n_frames: int) -> np.ndarray:
    """Frame indices of a window of `window` frames centred on `centre` ((window-1)//2 before), edges replicated."""
    start = centre - (window - 1) // 2
    return np.clip(np.arange(start, start + window), 0, n_frames - 1)


def _draw_window_centres(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sequence index (in proportion to length) and a uniform centre frame for each of `batch_size` windows."""
    n = np.asarray(lengths, dtype=np.float64)
    seq_idx = rng.choice(len(n), size=batch_size, p=n / n.sum())
    centres = np.floor(rng.random(batch_size) * n[seq_idx]).astype(np.int64)
    return seq_idx, centres


def sample_windows(
    sequences: Sequence[PoseSequence], window: int, batch_size: int, rng: np.random.Generator
) -> WindowBatch:
    """`batch_size` windows: sequences drawn in proportion to their length, centres uniform over frames."""
    seq_idx, centres = _draw_window_centres([s.n_frames for s in sequences], batch_size, rng)
    j2d, j3d = [], []
    for i, c in zip(seq_idx, centres, strict=True):
        idx = window_indices(int(c), window, sequences[i].n_frames)
        j2d.append(sequences[i].joints_2d[idx])
        j3d.append(sequences[i].joints_3d_cam[idx])
    return WindowBatch(np.stack(j2d), np.stack(j3d), [sequences[i].camera for i in seq_idx], seq_idx, centres)


def sample_multiview_windows(
    sequences: Sequence[MultiViewSequence], window: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Multi-view windows: (joints_2d (B,V,T,17,2), joints_3d_cam (B,V,T,17,3), sequence index (B,), centre (B,))."""
    seq_idx, centres = _draw_window_centres([s.n_frames for s in sequences], batch_size, rng)
    j2d, j3d = [], []
    for i, c in zip(seq_idx, centres, strict=True):
        idx = window_indices(int(c), window, sequences[i].n_frames)
        j2d.append(sequences[i].joints_2d[:, idx])
        j3d.append(sequences[i].joints_3d_cam[:, idx])
    return np.stack(j2d), np.stack(j3d), seq_idx, centres


def normalize_screen(points: np.ndarray, width: float, height: float) -> np.ndarray:
    """VideoPose3D's normalised screen coordinates: x in [-1, 1], y scaled alike (aspect kept)."""
    return np.asarray(points) / width * 2.0 - np.array([1.0, height / width])


def unnormalize_screen(points: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of `normalize_screen`."""
    return (np.asarray(points) + np.array([1.0, height / width])) * width / 2.0


def root_relative(poses: np.ndarray) -> np.ndarray:
    """(..., 17, 3) poses minus their root joint."""
    return poses - poses[..., ROOT : ROOT + 1, :]


def flip_pose(poses: np.ndarray) -> np.ndarray:
    """Mirror (..., 17, D) poses about x = 0 (normalised 2D or camera-frame 3D) and swap left/right joints.

    Works for numpy arrays and torch tensors.
    """
    flipped = poses[..., list(FLIP_PERMUTATION), :] * 1.0
    flipped[..., 0] = -flipped[..., 0]
    return flipped


def mean_pose(sequences: Sequence[PoseSequence]) -> np.ndarray:
    """The training set's mean root-relative camera-frame pose (17, 3) mm: the trivial baseline."""
    total = np.zeros((17, 3))
    count = 0
    for s in sequences:
        total += root_relative(s.joints_3d_cam.astype(np.float64)).sum(axis=0)
        count += s.n_frames
    return total / max(count, 1)
