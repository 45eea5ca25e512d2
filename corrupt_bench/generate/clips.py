"""Source frames -> Clip: a unit's sequence read at the manifest's frames, cropped, as engine clips.

`UnitFrames` opens one sequence of a source for a unit's cameras (mocap, 2D joints, videos) and
cuts the unit's frames into chunks of clean `Clip`s in the output images' pixels: person crops
(square box around the projected joints grown by the margin, resized) or whole frames (views of
different sizes padded to a common shape; `ClipChunk.image_sizes` cuts them back). A chunk of a
clip-level corruption (subframe_desync) carries `overlap_frames` frames on both sides so it sees
the neighbours of its edge frames; only `ClipChunk.keep` is written. Engine keys depend on
absolute frame indices only, so the chunk length never changes a pixel. Nothing here corrupts or
writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from corrupt_bench.data.crop import crop_affine, crop_image, person_box, square_box
from corrupt_bench.engine import Clip, Corruption
from corrupt_bench.generate.manifest import CropSpec
from corrupt_bench.generate.planner import SequenceInfo
from corrupt_bench.layout import H36M_FPS

CHUNK_BYTES = 192 * 2**20  # pixels of one chunk of a unit held in memory (all views)
MAX_CHUNK_FRAMES = 64
# desync offsets reach max_offset + 1 whole frame: interpolation needs the two clip frames around the
# shifted time, so at least 3 frames of overlap (more when a table's offsets reach further)
CLIP_LEVEL_OVERLAP = 3


@dataclass(frozen=True)
class ClipChunk:
    """One chunk of a unit: the clean clip of its frames plus overlap, and what the labels need."""

    clip: Clip  # images (or None) and 2D labels in the output images' px
    keep: range  # clip times that belong to this chunk (the others are overlap)
    boxes_full: np.ndarray  # (V, T, 4) person boxes in full-frame px
    crops: np.ndarray  # (V, T, 4) crop boxes in full-frame px (the whole frame without a crop)
    image_sizes: tuple[tuple[int, int], ...]  # (W, H) of each view's output image


def overlap_frames(corruption: Corruption, severity: int, frame_step: int) -> int:
    """Frames of overlap between chunks: 0 for frame-wise corruptions; for clip-level ones enough to
    hold the two frames around the largest time shift of the row (at least CLIP_LEVEL_OVERLAP)."""
    if severity == 0 or corruption.family.clip_level is None:
        return 0
    reach = corruption.params(severity).reach_frames()
    return max(CLIP_LEVEL_OVERLAP, math.ceil(reach / frame_step) + 2)


def chunk_length(frame_bytes: int) -> int:
    """Frames per chunk so that one chunk's pixels stay under CHUNK_BYTES (at most MAX_CHUNK_FRAMES)."""
    return int(max(1, min(MAX_CHUNK_FRAMES, CHUNK_BYTES // max(frame_bytes, 1))))


def stack_padded(views: list[np.ndarray]) -> np.ndarray:
    """(V, T, H, W, 3) from views of possibly different sizes (Human3.6M full frames are 1000 x 1000
    or 1000 x 1002): smaller views are padded at the bottom/right by edge replication, and the
    writer cuts every view back to its own size."""
    h = max(view.shape[1] for view in views)
    w = max(view.shape[2] for view in views)
    padded = [
        view if view.shape[1:3] == (h, w)
        else np.pad(view, ((0, 0), (0, h - view.shape[1]), (0, w - view.shape[2]), (0, 0)), mode="edge")
        for view in views
    ]  # fmt: skip
    return np.stack(padded)


def _apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(V, T, 2, 3) affines applied to (V, T, K, 2) points."""
    return np.einsum("vtij,vtkj->vtki", affine[..., :2], points) + affine[:, :, None, :, 2]


class UnitFrames:
    """One sequence of a source for a unit's cameras: mocap, 2D joints and (with images) open videos.

    Use as a context manager: the videos stay open until it closes, and chunks are read in order
    (the overlap of the next chunk is kept from the previous one, never decoded twice)."""

    def __init__(self, source, seq: SequenceInfo, cameras: tuple[str, ...], crop: CropSpec, with_images: bool):
        self.seq = seq
        self.crop = crop
        self.cameras = tuple(source.camera(seq.subject, c) for c in cameras)
        self.world = np.asarray(source.poses_world(seq), dtype=np.float64)  # (N, 17, 3) mm
        self.joints_2d = [np.asarray(source.poses_2d(seq, c), dtype=np.float64) for c in cameras]
        self.readers = [source.video(seq, c) for c in cameras] if with_images else []

    def __enter__(self) -> UnitFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        self.readers = []

    def frame_bytes(self) -> int:
        """Bytes of one frame of every view as the clips hold it (1 without images)."""
        size = self.crop.output_size
        if size is not None:
            return len(self.cameras) * size * size * 3
        if self.readers:
            return sum(r.width * r.height * 3 for r in self.readers)
        return 1

    def chunks(self, frames: tuple[int, ...], chunk: int, pad: int) -> Iterator[ClipChunk]:
        """The clean clips of `frames`, `chunk` frames at a time, each with `pad` frames of overlap."""
        cache: list[dict[int, np.ndarray]] = [{} for _ in self.readers]
        for start in range(0, len(frames), chunk):
            lo, hi = max(0, start - pad), min(len(frames), start + chunk + pad)
            keep = range(start - lo, start - lo + min(chunk, len(frames) - start))
            yield self._chunk(frames[lo:hi], keep, cache, pad)

    def _chunk(self, frames: tuple[int, ...], keep: range, cache: list[dict[int, np.ndarray]], pad: int) -> ClipChunk:
        idx = np.asarray(frames, dtype=np.int64)
        v_n, t_n = len(self.cameras), len(frames)
        size = self.crop.output_size
        j2d_full = np.stack([j[idx] for j in self.joints_2d])  # (V, T, 17, 2)
        boxes_full = person_box(j2d_full, self.crop.margin)  # (V, T, 4)
        if self.crop.mode == "person":
            crops = square_box(boxes_full)
            affine = np.stack([[crop_affine(crops[v, t], size) for t in range(t_n)] for v in range(v_n)])
        else:
            shapes = [(r.width, r.height) for r in self.readers] or [(c.width, c.height) for c in self.cameras]
            crops = np.stack([np.tile([0.0, 0.0, w, h], (t_n, 1)) for w, h in shapes])
            affine = None
        images = None
        if self.readers:
            views = [self._read_view(v, frames, crops[v], cache, pad) for v in range(v_n)]
            native = tuple((view.shape[2], view.shape[1]) for view in views)  # (W, H) per view
            images = stack_padded(views)
        if size is not None:
            image_sizes = ((size, size),) * v_n
        elif images is not None:
            image_sizes = native
        else:
            image_sizes = tuple((c.width, c.height) for c in self.cameras)
        if affine is not None:
            j2d_img = _apply_affine(affine, j2d_full)
            boxes_img = _apply_affine(affine, boxes_full.reshape(v_n, t_n, 2, 2)).reshape(v_n, t_n, 4)
        else:
            j2d_img, boxes_img = j2d_full, boxes_full
        clip = Clip(
            subject=self.seq.subject,
            sequence=self.seq.sequence,
            fps=H36M_FPS,
            frame_indices=idx,
            cameras=self.cameras,
            images=images,
            joints_2d=j2d_img,
            joints_3d_world=self.world[idx],
            boxes=boxes_img,
            mocap_world=self.world,
            crop_affine=affine,
            n_frames=self.seq.n_frames,
        )
        return ClipChunk(clip, keep, boxes_full, crops, image_sizes)

    def _read_view(
        self, v: int, frames: tuple[int, ...], crops: np.ndarray, cache: list[dict[int, np.ndarray]], pad: int
    ) -> np.ndarray:
        """(T, H, W, 3) frames of view `v` (cropped), taking the overlap from the previous chunk."""
        size = self.crop.output_size
        images = []
        for t, f in enumerate(frames):
            image = cache[v].get(f)
            if image is None:
                image = self.readers[v].frame(int(f))
                if size is not None:
                    image = crop_image(image, crops[t], size)
            images.append(image)
        # the overlap of the next chunk is taken from here, not decoded again (no seek back)
        cache[v] = dict(zip(frames[-2 * pad :], images[-2 * pad :], strict=True)) if pad else {}
        return np.stack(images)
