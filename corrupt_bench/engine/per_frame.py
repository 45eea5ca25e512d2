"""Per-frame application: every view and frame of a clip sampled from its own key, then applied.

Every frame's parameters come from the key (seed, corruption, version, severity, subject,
sequence, camera, absolute frame index); temporal randomness comes from span keys evaluated at
the frame's absolute time. A frame's output therefore does not depend on which other frames are
in the clip, so a sequence may be processed whole or in pieces. The exception is
`subframe_desync`, whose images interpolate between the clip's neighbouring frames: give it
consecutive frames (frame step 1) and overlap pieces by one frame (see `views.py`). Clip-level
families (`views.py`) build on `apply_per_frame`, `frame_key` and `frame_context`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from corrupt_bench.data.skeleton import N_JOINTS
from corrupt_bench.engine.base import Corruption, FrameContext, params_to_json
from corrupt_bench.engine.clip import Clip, CorruptionRecord
from corrupt_bench.engine.rng import RngKey
from corrupt_bench.errors import UserError


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


def apply_per_frame(
    clip: Clip, corruption: Corruption, severity: int, seed: int, occluder_bank=None
) -> tuple[Clip, CorruptionRecord]:
    """Sample and apply independently for every view and frame (each from its own key)."""
    name = corruption.name
    family = corruption.family
    if family.modality in ("pixel", "temporal") and clip.images is None:
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
            # a deterministic family draws nothing: no generator to derive (a third of a cheap frame's cost)
            params = corruption.sample(key.generator() if family.stochastic else None, severity, ctx)
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
    return replace(clip, images=images, images_next=None), record
