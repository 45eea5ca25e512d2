"""Tiny raw-Human3.6M folders in the real formats (CDF through cdflib, mp4 through OpenCV 'mp4v').

Frames are 50x50 (the public cameras scaled by 1/20, written as `cameras.json` beside the data so
the reader uses them) and sequences a few frames long, so that tests stay fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from corrupt_bench.data.cameras import (
    CAMERA_IDS,
    get_camera,
    load_cameras,
    project_world,
    world_to_camera,
    write_camera_file,
)
from corrupt_bench.data.cdf_io import write_pose_cdf

DIVISOR = 20  # 1000x1002 and 1000x1000 -> 50x50


def write_cameras(root: Path, divisor: int = DIVISOR) -> None:
    """Write the public calibration scaled by 1/divisor as ROOT/cameras.json."""
    scaled = {key: cam.scaled(divisor) for key, cam in load_cameras(None).items()}
    root.mkdir(parents=True, exist_ok=True)
    write_camera_file(scaled, root / "cameras.json")


def world_poses(n_frames: int, seed: int = 0) -> np.ndarray:
    """(N, 32, 3) mm: a person-sized cloud of joints near the capture centre that moves a little."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-250.0, -150.0, 50.0], [250.0, 150.0, 1750.0], size=(32, 3))
    drift = np.linspace(0.0, 1.0, n_frames)[:, None, None] * np.array([200.0, -100.0, 0.0])
    return base[None] + drift + rng.normal(0.0, 5.0, size=(n_frames, 32, 3))


def frame_pattern(index: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A BGR frame that differs visibly from its neighbours: a level set by `index` plus a noise block."""
    width, height = size
    rng = np.random.default_rng([seed, index])
    frame = np.full((height, width, 3), (index * 37) % 200 + 20, dtype=np.uint8)
    frame[: height // 2, : width // 2] = rng.integers(
        0, 256, size=(height // 2, width // 2, 3), dtype=np.uint8
    )
    frame[height // 2 :, width // 2 :] = (0, 0, 255)  # pure red in BGR: checks the RGB conversion
    return frame


def write_video(path: Path, n_frames: int, size: tuple[int, int] = (50, 50), seed: int = 0) -> None:
    """An mp4 ('mp4v', 50 fps) of `n_frames` frames of `frame_pattern`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 50.0, size)
    assert writer.isOpened(), path
    for index in range(n_frames):
        writer.write(frame_pattern(index, size, seed))
    writer.release()


def write_video_h264(path: Path, n_frames: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> None:
    """The same frames as H.264 through PyAV with B-frames and a keyframe every 8 frames (seeks land mid-GOP)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=50)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"g": "8", "keyint_min": "8", "bf": "2", "sc_threshold": "0", "preset": "veryfast"}
        for index in range(n_frames):
            rgb = np.ascontiguousarray(frame_pattern(index, size, seed)[..., ::-1])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


def write_sequence(
    root: Path,
    subject: str,
    stem: str,
    n_frames: int = 5,
    cameras: Iterable[str] = CAMERA_IDS,
    *,
    video_frames: int | None = None,
    videos: bool = True,
    d2: bool = True,
    mono: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Write one sequence (D3, and per camera D2, D3_mono and video) and return its (N, 32, 3) world poses."""
    poses = world_poses(n_frames, seed)
    features = root / subject / "MyPoseFeatures"
    write_pose_cdf(features / "D3_Positions" / f"{stem}.cdf", poses.reshape(n_frames, 96))
    for camera_id in cameras:
        camera = get_camera(subject, camera_id, root)
        if d2:
            pixels = project_world(poses, camera)
            write_pose_cdf(
                features / "D2_Positions" / f"{stem}.{camera_id}.cdf", pixels.reshape(n_frames, 64)
            )
        if mono:
            cam = world_to_camera(poses, camera)
            write_pose_cdf(
                features / "D3_Positions_mono" / f"{stem}.{camera_id}.cdf", cam.reshape(n_frames, 96)
            )
        if videos:
            write_video(
                root / subject / "Videos" / f"{stem}.{camera_id}.mp4",
                n_frames if video_frames is None else video_frames,
                (camera.width, camera.height),
                seed,
            )
    return poses


def write_raw(root: Path, sequences: dict[str, Iterable[str]], n_frames: int = 5, **kwargs) -> Path:
    """A raw folder with cameras.json and the given {subject: [stems]}; each sequence seeded differently."""
    write_cameras(root)
    for s_index, (subject, stems) in enumerate(sequences.items()):
        for q_index, stem in enumerate(stems):
            write_sequence(root, subject, stem, n_frames, seed=100 * s_index + q_index, **kwargs)
    return root
