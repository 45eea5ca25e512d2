"""Source frames -> Clip: a sequence read at the manifest's frames, cropped, as engine clips.

`UnitFrames` opens one sequence of a source for some cameras (mocap, 2D joints, videos) and cuts
the frames into chunks of clean `Clip`s in the output images' pixels: person crops (square box
around the projected joints grown by the margin, resized) or whole frames (views of different
sizes padded to a common shape by edge replication; `ClipChunk.image_sizes` cuts them back). Each
frame is decoded and cropped once, straight into one buffer reused from chunk to chunk, so a
chunk's pixels exist once however many cells read them (a chunk's images are valid until the next
chunk is asked for). A chunk read for a clip-level corruption (subframe_desync) carries overlap
frames on both sides so it sees the neighbours of its edge frames (`overlap_frames`); only
`ClipChunk.keep` is written, and `ClipChunk.narrow(pad)` gives a cell the chunk with its own
overlap, exactly the clip it would have been read as alone. Engine keys depend on absolute frame
indices only, so neither the chunk length nor the overlap changes a pixel. Nothing here corrupts
or writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from corrupt_bench.data.cameras import world_to_camera
from corrupt_bench.data.crop import crop_affine, crop_image, person_box, square_box
from corrupt_bench.engine import Clip, Corruption
from corrupt_bench.errors import UserError
from corrupt_bench.generate.manifest import CropSpec
from corrupt_bench.generate.planner import SequenceInfo

CHUNK_BYTES = 64 * 2**20  # pixels of one chunk held in memory (all views; a cell's corrupted copy is another)
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
    joints_3d_cam: np.ndarray  # (V, T, 17, 3) mm, ground truth in each view's camera frame

    def narrow(self, pad: int) -> ClipChunk:
        """This chunk with at most `pad` frames of overlap on each side (views, no copy): the chunk a
        cell of overlap `pad` would have been cut into had it been read alone."""
        t_n = self.clip.n_times
        before, after = min(pad, self.keep.start), min(pad, t_n - self.keep.stop)
        if before == self.keep.start and after == t_n - self.keep.stop:
            return self
        times = slice(self.keep.start - before, self.keep.stop + after)
        return ClipChunk(
            self.clip.select(times), range(before, before + len(self.keep)), self.boxes_full[:, times],
            self.crops[:, times], self.image_sizes, self.joints_3d_cam[:, times],
        )  # fmt: skip


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
    writer cuts every view back to its own size. (`UnitFrames` fills its buffer the same way in
    place, through `place_padded`.)"""
    h = max(view.shape[1] for view in views)
    w = max(view.shape[2] for view in views)
    out = np.empty((len(views), views[0].shape[0], h, w, 3), dtype=np.uint8)
    for v, view in enumerate(views):
        for t, frame in enumerate(view):
            place_padded(out[v, t], frame)
    return out


def place_padded(slot: np.ndarray, frame: np.ndarray) -> None:
    """Write `frame` into the top-left of the larger `slot` and fill the rest by edge replication
    (the last row down, then the last column right: what np.pad(mode="edge") gives)."""
    h, w = frame.shape[:2]
    slot[:h, :w] = frame
    if h < slot.shape[0]:
        slot[h:, :w] = frame[h - 1]
    if w < slot.shape[1]:
        slot[:, w:] = slot[:, w - 1 : w]


def _apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(V, T, 2, 3) affines applied to (V, T, K, 2) points."""
    return np.einsum("vtij,vtkj->vtki", affine[..., :2], points) + affine[:, :, None, :, 2]


class UnitFrames:
    """One sequence of a source for some cameras: mocap, 2D joints and (with images) open videos.

    Use as a context manager: the videos stay open until it closes. `chunks` reads the frames in
    order, each once (the overlap of the next chunk is kept from the previous one, never decoded
    twice)."""

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

    def _image_shape(self) -> tuple[int, int]:
        """(H, W) of the clips' images: the crop size, or the largest view."""
        size = self.crop.output_size
        if size is not None:
            return size, size
        return max(r.height for r in self.readers), max(r.width for r in self.readers)

    def chunks(self, frames: tuple[int, ...], chunk: int, pad: int) -> Iterator[ClipChunk]:
        """The clean clips of `frames`, `chunk` frames at a time, each with `pad` frames of overlap.
        The images of a chunk live in one buffer that the next chunk overwrites."""
        n = len(frames)
        buffer = None
        if self.readers:
            h, w = self._image_shape()
            buffer = np.empty((len(self.readers), min(n, chunk + 2 * pad), h, w, 3), dtype=np.uint8)
        previous = (0, 0)  # [lo, hi) of the previous chunk in `frames`: its pixels are in the buffer
        for start in range(0, n, chunk):
            lo, hi = max(0, start - pad), min(n, start + chunk + pad)
            keep = range(start - lo, start - lo + min(chunk, n - start))
            images = None
            if buffer is not None:
                images = buffer[:, : hi - lo]
                kept = max(0, previous[1] - lo)  # frames shared with the previous chunk: moved, not decoded
                if kept:
                    images[:, :kept] = buffer[:, lo - previous[0] : previous[1] - previous[0]]
            piece = self._chunk(frames[lo:hi], keep, images, kept if images is not None else 0)
            previous = (lo, hi)
            yield piece

    def _chunk(self, frames: tuple[int, ...], keep: range, images: np.ndarray | None, ready: int) -> ClipChunk:
        """The chunk of `frames`; `images` (V, T, H, W, 3) is filled from clip time `ready` on."""
        idx = np.asarray(frames, dtype=np.int64)
        v_n, t_n = len(self.cameras), len(frames)
        size = self.crop.output_size
        j2d_full = np.stack([j[idx] for j in self.joints_2d])  # (V, T, 17, 2)
        # (V, T, 4); a sequence without ground truth (NaN joints) has no box (the engine uses the whole frame)
        boxes_full = person_box(j2d_full, self.crop.margin) if np.isfinite(j2d_full).any() else np.full((v_n, t_n, 4), np.nan)
        if self.crop.mode == "person":
            crops = square_box(boxes_full)
            affine = np.stack([[crop_affine(crops[v, t], size) for t in range(t_n)] for v in range(v_n)])
        else:
            shapes = [(r.width, r.height) for r in self.readers] or [(c.width, c.height) for c in self.cameras]
            crops = np.stack([np.tile([0.0, 0.0, w, h], (t_n, 1)) for w, h in shapes])
            affine = None
        if images is not None:
            for v in range(v_n):
                for t in range(ready, t_n):
                    self._read_into(images[v, t], v, frames[t], crops[v, t])
        if size is not None:
            image_sizes = ((size, size),) * v_n
        elif images is not None:
            image_sizes = tuple((r.width, r.height) for r in self.readers)
        else:
            image_sizes = tuple((c.width, c.height) for c in self.cameras)
        if affine is not None:
            j2d_img = _apply_affine(affine, j2d_full)
            boxes_img = _apply_affine(affine, boxes_full.reshape(v_n, t_n, 2, 2)).reshape(v_n, t_n, 4)
        else:
            j2d_img, boxes_img = j2d_full, boxes_full
        world = self.world[idx]
        cam_3d = np.stack([[world_to_camera(world[t], cam) for t in range(t_n)] for cam in self.cameras])
        clip = Clip(
            subject=self.seq.subject,
            sequence=self.seq.sequence,
            fps=self.seq.fps,
            frame_indices=idx,
            cameras=self.cameras,
            images=images,
            joints_2d=j2d_img,
            joints_3d_world=world,
            boxes=boxes_img,
            mocap_world=self.world,
            crop_affine=affine,
            n_frames=self.seq.n_frames,
        )
        return ClipChunk(clip, keep, boxes_full, crops, image_sizes, cam_3d)

    def _read_into(self, slot: np.ndarray, v: int, frame: int, crop: np.ndarray) -> None:
        """Decode frame `frame` of view `v` and write it (cropped, or padded to the slot) into `slot`."""
        reader = self.readers[v]
        image = reader.frame(int(frame))
        size = self.crop.output_size
        if size is not None:
            slot[...] = crop_image(image, crop, size)
            return
        if image.shape[:2] != (reader.height, reader.width):
            raise UserError(
                f"frame {frame} is {image.shape[1]} x {image.shape[0]} px, the video's header says "
                f"{reader.width} x {reader.height}", reader.path,
            )  # fmt: skip
        place_padded(slot, image)
