"""Clip-level application: one corruption at one severity on a multi-view clip, plus its record.

Every frame's parameters come from the key (seed, corruption, version, severity, subject,
sequence, camera, absolute frame index); temporal randomness comes from span keys evaluated at
the frame's absolute time. A frame's output therefore does not depend on which other frames are
in the clip, so a sequence may be processed whole or in pieces. The exception is
`subframe_desync`, whose images interpolate between the clip's neighbouring frames: give it
consecutive frames (frame step 1) and overlap pieces by one frame (see `views.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from corrupt_bench.data.cameras import Camera
from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.engine.base import CLEAN, Corruption, FrameContext, get_corruption, params_to_json
from corrupt_bench.engine.rng import RngKey


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
        if self.crop_affine is not None and self.crop_affine.shape != (v, t, 2, 3):
            raise ValueError(f"crop_affine must be ({v}, {t}, 2, 3), got {self.crop_affine.shape}")

    def select(self, times: np.ndarray | list[int]) -> Clip:
        """The clip restricted to clip times `times` (positions in frame_indices), same sequence data."""
        t = np.asarray(times, dtype=np.int64)
        return replace(
            self,
            frame_indices=np.asarray(self.frame_indices)[t],
            images=None if self.images is None else self.images[:, t],
            joints_2d=self.joints_2d[:, t],
            joints_3d_world=self.joints_3d_world[t],
            boxes=self.boxes[:, t],
            crop_affine=None if self.crop_affine is None else self.crop_affine[:, t],
            n_frames=self.sequence_length,
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


def _identity(clip: Clip, name: str, version: int, severity: int, seed: int) -> tuple[Clip, CorruptionRecord]:
    v, t = clip.n_views, clip.n_times
    record = CorruptionRecord(
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
    return clip, record


def frame_key(clip: Clip, name: str, version: int, severity: int, seed: int, view: int, t: int) -> RngKey:
    """The key of view `view`, clip time `t` (absolute frame index)."""
    return RngKey(
        seed, name, version, severity, clip.subject, clip.sequence, clip.cameras[view].camera_id,
        int(clip.frame_indices[t]),
    )  # fmt: skip


def frame_context(clip: Clip, key: RngKey, view: int, t: int, occluder_bank=None) -> FrameContext:
    cam = clip.cameras[view]
    return FrameContext(
        subject=clip.subject,
        sequence=clip.sequence,
        camera=cam.camera_id,
        frame_index=int(clip.frame_indices[t]),
        n_frames=clip.sequence_length,
        fps=float(clip.fps),
        image_shape=clip.image_shape(),
        person_box=np.asarray(clip.boxes[view, t], dtype=np.float64),
        joints_2d=np.asarray(clip.joints_2d[view, t], dtype=np.float64),
        key=key,
        keypoint_scale=cam.width / 1000.0 * clip.image_scale(view, t),
        occluder_bank=occluder_bank,
    )


def corrupt_clip(
    clip: Clip, name: str, severity: int, seed: int, *, occluder_bank=None, corruption: Corruption | None = None
) -> tuple[Clip, CorruptionRecord]:
    """Apply corruption `name` at `severity` (0 or "clean": identity) to every view and frame of `clip`.

    `occluder_bank` (engine.voc.OccluderBank) feeds voc_occluder; None uses the built-in demo bank
    (the bank's digest is recorded in the params either way). `corruption` replaces the registered
    one (same name), e.g. with a manifest's overridden table. Returns a new clip (input arrays are
    never modified) and the record of what was applied.
    """
    clip.validate()
    if corruption is None:
        corruption = get_corruption(name)
    elif corruption.name != name:
        raise ValueError(f"corruption object is '{corruption.name}', not '{name}'")
    if severity == 0 or name == CLEAN:
        return _identity(clip, name, corruption.version, 0 if name == CLEAN else severity, seed)
    corruption.params(severity)  # range check
    if corruption.family.clip_level is not None:
        return corruption.family.clip_level(clip, corruption, severity, seed, occluder_bank)
    return apply_per_frame(clip, corruption, severity, seed, occluder_bank)


def apply_per_frame(
    clip: Clip, corruption, severity: int, seed: int, occluder_bank=None
) -> tuple[Clip, CorruptionRecord]:
    """Sample and apply independently for every view and frame (each from its own key)."""
    name = corruption.name
    family = corruption.family
    if family.modality in ("pixel", "temporal") and clip.images is None:
        from corrupt_bench.errors import UserError

        raise UserError(f"corruption '{name}' changes pixels but the clip has no images")
    v_n, t_n = clip.n_views, clip.n_times
    images = None if clip.images is None else np.empty_like(clip.images)
    occluded = np.zeros((v_n, t_n, N_JOINTS), dtype=bool)
    view_valid = np.ones((v_n, t_n), dtype=bool)
    joints_out = np.array(clip.joints_2d, dtype=np.float64)
    confidence = np.ones((v_n, t_n, N_JOINTS), dtype=np.float32) if family.keypoints is not None else None
    params_json: list[list[dict]] = []
    for v in range(v_n):
        row = []
        for t in range(t_n):
            key = frame_key(clip, name, corruption.version, severity, seed, v, t)
            ctx = frame_context(clip, key, v, t, occluder_bank)
            params = corruption.sample(key.generator(), severity, ctx)
            if images is not None:
                if family.apply is not None:
                    images[v, t] = family.apply(clip.images[v, t], params)
                else:
                    images[v, t] = clip.images[v, t]
            if family.occlusion is not None:
                occluded[v, t] = family.occlusion(params, ctx)
            if family.view_valid is not None:
                view_valid[v, t] = family.view_valid(params)
            if family.keypoints is not None:
                joints_out[v, t], confidence[v, t] = family.keypoints(joints_out[v, t], params)
            row.append(params_to_json(params))
        params_json.append(row)
    record = CorruptionRecord(
        corruption=name,
        version=corruption.version,
        severity=severity,
        seed=seed,
        params=params_json,
        occluded=occluded,
        view_valid=view_valid,
        time_offset=np.zeros(v_n, dtype=np.float64),
        confidence=confidence,
        joints_2d=joints_out,
    )
    return replace(clip, images=images), record
