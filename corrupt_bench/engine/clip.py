"""The data a corruption works on and leaves behind: `Clip` (frames of V views at T times, with
their labels) and `CorruptionRecord` (what one corruption at one severity did to a clip).

Data only: the per-frame application is `engine.per_frame`, the entry point `engine.corrupt`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from corrupt_bench.data.cameras import Camera
from corrupt_bench.data.skeleton import N_JOINTS


@dataclass(frozen=True)
class Clip:
    """Frames of one sequence for V views at T absolute frame indices, with their labels."""

    subject: str
    sequence: str
    fps: float
    frame_indices: np.ndarray  # (T,) int absolute source frame indices (index into mocap_world)
    cameras: tuple[Camera, ...]  # (V,)
    images: np.ndarray | None  # (V, T, H, W, 3) uint8 RGB, or None for keypoints-only clips
    joints_2d: np.ndarray  # (V, T, 17, 2) px in the images' coordinates
    joints_3d_world: np.ndarray  # (T, 17, 3) mm
    boxes: np.ndarray  # (V, T, 4) person box x0, y0, x1, y1 px in the images' coordinates
    mocap_world: np.ndarray | None = None  # (N, 17, 3) mm at every source frame (subframe_desync)
    crop_affine: np.ndarray | None = None  # (V, T, 2, 3) full-frame px -> image px (None: full frames)
    n_frames: int | None = None  # frames of the whole sequence (default: len(mocap_world))
    # (V, T, H, W, 3) uint8 with person crops: the frame of clip time t + 1 cut with time t's crop box
    # (the last time: its own frame), so a time shift is cut with its own frame's box (subframe_desync)
    images_next: np.ndarray | None = None

    @property
    def n_views(self) -> int:
        return len(self.cameras)

    @property
    def n_times(self) -> int:
        return len(self.frame_indices)

    @property
    def sequence_length(self) -> int:
        if self.n_frames is not None:
            return int(self.n_frames)
        if self.mocap_world is not None:
            return len(self.mocap_world)
        return int(np.max(self.frame_indices)) + 1

    def validate(self) -> None:
        """Raise ValueError when the arrays do not have the documented shapes."""
        v, t = self.n_views, self.n_times
        if self.images is not None:
            if self.images.dtype != np.uint8 or self.images.ndim != 5 or self.images.shape[:2] != (v, t):
                raise ValueError(f"images must be (V={v}, T={t}, H, W, 3) uint8, got {self.images.shape}")
        if self.joints_2d.shape != (v, t, N_JOINTS, 2):
            raise ValueError(f"joints_2d must be ({v}, {t}, 17, 2), got {self.joints_2d.shape}")
        if self.boxes.shape != (v, t, 4):
            raise ValueError(f"boxes must be ({v}, {t}, 4), got {self.boxes.shape}")
        if self.images_next is not None and (self.images is None or self.images_next.shape != self.images.shape):
            raise ValueError(f"images_next must have the images' shape, got {self.images_next.shape}")
        if self.crop_affine is not None and self.crop_affine.shape != (v, t, 2, 3):
            raise ValueError(f"crop_affine must be ({v}, {t}, 2, 3), got {self.crop_affine.shape}")

    def select(self, times: np.ndarray | list[int] | slice) -> Clip:
        """The clip restricted to clip times `times` (positions in frame_indices), same sequence data.
        A slice gives views of the arrays (no copy), a list or array copies."""
        t = times if isinstance(times, slice) else np.asarray(times, dtype=np.int64)
        return replace(
            self,
            frame_indices=np.asarray(self.frame_indices)[t],
            images=None if self.images is None else self.images[:, t],
            joints_2d=self.joints_2d[:, t],
            joints_3d_world=self.joints_3d_world[t],
            boxes=self.boxes[:, t],
            crop_affine=None if self.crop_affine is None else self.crop_affine[:, t],
            n_frames=self.sequence_length,
            images_next=None if self.images_next is None else self.images_next[:, t],
        )

    def image_shape(self) -> tuple[int, int]:
        if self.images is not None:
            return int(self.images.shape[2]), int(self.images.shape[3])
        return int(self.cameras[0].height), int(self.cameras[0].width)

    def to_image(self, points_full: np.ndarray, view: int, t: int) -> np.ndarray:
        """(..., 2) full-frame px of view `view` at time `t` -> the images' px."""
        if self.crop_affine is None:
            return np.asarray(points_full, dtype=np.float64)
        a = self.crop_affine[view, t]
        return np.asarray(points_full, dtype=np.float64) @ a[:, :2].T + a[:, 2]

    def image_scale(self, view: int, t: int) -> float:
        """Image px per full-frame px (1 without a crop)."""
        if self.crop_affine is None:
            return 1.0
        a = self.crop_affine[view, t]
        return float(np.sqrt(abs(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0])))


@dataclass(frozen=True)
class CorruptionRecord:
    """What a corruption did to a clip; travels with the output (labels columns)."""

    corruption: str
    version: int
    severity: int
    seed: int
    params: list[list[dict]]  # [V][T] JSON-serialisable parameters per view and frame
    occluded: np.ndarray  # (V, T, 17) bool joints hidden by the corruption
    view_valid: np.ndarray  # (V, T) bool
    time_offset: np.ndarray  # (V,) float frames
    confidence: np.ndarray | None  # (V, T, 17) float32 (keypoint corruptions) or None
    joints_2d: np.ndarray  # (V, T, 17, 2) 2D labels after the corruption, images' px

    @classmethod
    def identity(cls, clip: Clip, name: str, version: int, severity: int, seed: int) -> CorruptionRecord:
        """The record of a corruption that changed nothing (severity 0, the clean reference)."""
        v, t = clip.n_views, clip.n_times
        return cls(
            corruption=name,
            version=version,
            severity=severity,
            seed=seed,
            params=[[{} for _ in range(t)] for _ in range(v)],
            occluded=np.zeros((v, t, N_JOINTS), dtype=bool),
            view_valid=np.ones((v, t), dtype=bool),
            time_offset=np.zeros(v, dtype=np.float64),
            confidence=None,
            joints_2d=np.array(clip.joints_2d, dtype=np.float64),
        )
