"""The video reader on the real pose2sim fixture videos: the file's own frame rate and size (60 fps,
H.264 with B-frames and VP9 beside an audio track, 1080 and 1088 px wide), and frame-exact access."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from corrupt_bench.data.video import VideoReader

VIDEOS = Path(__file__).parent / "fixtures" / "pose2sim" / "videos"
EXPECTED = {"cam01": ("h264", 1080), "cam02": ("vp9", 1080), "cam03": ("h264", 1088), "cam04": ("h264", 1088)}


@pytest.mark.parametrize("camera", sorted(EXPECTED))
def test_real_fps_size_and_frames(camera):
    path = VIDEOS / f"{camera}.mp4"
    with av.open(str(path)) as container:  # the container's own description, read by another library
        stream = container.streams.video[0]
        codec, rate = stream.codec_context.name, stream.average_rate
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert (codec, stream.width) == EXPECTED[camera] and rate == 60
    with VideoReader(path) as video:
        assert video.fps == float(rate) == 60.0
        assert (video.width, video.height, video.frame_count, video.n_frames) == (EXPECTED[camera][1], 1920, 13, 13)
        sequential = [video.frame(i) for i in range(13)]
        again = video.frame(3)  # a seek back
    np.testing.assert_array_equal(again, sequential[3])
    assert len(decoded) == 13
    for ours, theirs in zip(sequential, decoded, strict=True):
        # OpenCV and PyAV convert YUV to RGB with their own rounding: the same picture within a few levels
        assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 2.0
