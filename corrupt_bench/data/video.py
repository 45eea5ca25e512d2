"""Frame access by index: to a video without decoding the whole of it each time (OpenCV's FFmpeg
backend), and to a folder of numbered images (mmpose's extracted frames) through the same interface."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
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
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS))  # the container's rate (60 for a 60 fps file)
        if self.frame_count <= 0 or self.width <= 0 or self.height <= 0:
            self.close()
            raise UserError("video has no frames", self.path)
        if not (math.isfinite(self.fps) and self.fps > 0):
            self.close()
            raise UserError(f"video declares no frame rate ({self.fps})", self.path)
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


class ImageSequenceReader:
    """The `VideoReader` interface over numbered image files (JPEG or PNG), one per source frame.

    `path_of(index)` names the file of absolute frame `index`; `available` lists the frames that exist
    (mmpose keeps every 5th). Reading a frame that is not there is a UserError naming the file."""

    def __init__(self, folder: str | Path, path_of: Callable[[int], Path], available: Iterable[int], fps: float):
        self.path = Path(folder)
        self._path_of = path_of
        self.available = tuple(sorted(int(i) for i in available))
        if not self.available:
            raise UserError("no frames", self.path)
        self.n_frames = self.frame_count = self.available[-1] + 1
        self.fps = float(fps)
        first = self._read(self.available[0])
        self.height, self.width = first.shape[:2]
        self._last: tuple[int, np.ndarray] | None = (self.available[0], first)
        self.seeks = 0

    def _read(self, index: int) -> np.ndarray:
        import cv2

        path = self._path_of(index)
        if not path.is_file():
            raise UserError(f"no image of frame {index} (this source holds {len(self.available)} frames)", path)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UserError("cannot decode image", path)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (absolute) as an HxWx3 uint8 RGB array."""
        index = int(index)
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} out of range 0..{self.n_frames - 1} of {self.path}")
        if self._last is None or self._last[0] != index:
            image = self._read(index)
            if image.shape[:2] != (self.height, self.width):
                raise UserError(f"image is {image.shape[1]}x{image.shape[0]}, the others {self.width}x{self.height}", self._path_of(index))
            self._last = (index, image)
        return self._last[1].copy()

    def frames(self, indices: Iterable[int]) -> Iterator[np.ndarray]:
        for index in indices:
            yield self.frame(index)

    def close(self) -> None:
        self._last = None

    def __enter__(self) -> ImageSequenceReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
