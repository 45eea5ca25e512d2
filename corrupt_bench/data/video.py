"""Frame access to an mp4 by index without decoding the whole video each time (OpenCV's FFmpeg backend)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from corrupt_bench.errors import UserError


class VideoReader:
    """Random access to the frames of one mp4 that keeps the decoder open.

    Reading frames in increasing order decodes sequentially; a short jump ahead skips frames by
    decoding them (`grab`), and only a jump backwards or far ahead seeks. Frames are RGB uint8.
    `n_frames` may be lower than the file's frame count (truncation to the mocap length)."""

    MAX_SKIP = 48  # decode through jumps up to this many frames rather than seek

    def __init__(self, path: str | Path, n_frames: int | None = None):
        import cv2

        self.path = Path(path)
        if not self.path.is_file():
            raise UserError("video not found", self.path)
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise UserError("cannot open video (not a readable mp4)", self.path)
        self.frame_count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))  # frames in the file
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        if self.frame_count <= 0 or self.width <= 0 or self.height <= 0:
            self.close()
            raise UserError("video has no frames", self.path)
        if n_frames is not None and n_frames > self.frame_count:
            self.close()
            raise UserError(
                f"video has {self.frame_count} frames, fewer than the {n_frames} asked for", self.path
            )
        self.n_frames = self.frame_count if n_frames is None else int(n_frames)
        self._next = 0  # index of the frame the decoder returns on the next read
        self._last: tuple[int, np.ndarray] | None = None
        self.seeks = 0  # number of seeks done (for tests and benchmarks)

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` as an HxWx3 uint8 RGB array."""
        import cv2

        index = int(index)
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} out of range 0..{self.n_frames - 1} of {self.path}")
        if self._capture is None:
            raise ValueError(f"video reader of {self.path} is closed")
        if self._last is not None and self._last[0] == index:
            return self._last[1].copy()
        if index < self._next or index - self._next > self.MAX_SKIP:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._next = index
            self.seeks += 1
        while self._next < index:
            if not self._capture.grab():
                raise UserError(f"cannot decode frame {self._next}", self.path)
            self._next += 1
        ok, bgr = self._capture.read()
        if not ok:
            raise UserError(f"cannot decode frame {index}", self.path)
        self._next = index + 1
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self._last = (index, rgb)
        return rgb.copy()

    def frames(self, indices: Iterable[int]) -> Iterator[np.ndarray]:
        """The frames at `indices`, in the order given."""
        for index in indices:
            yield self.frame(index)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
