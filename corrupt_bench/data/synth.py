"""Synthetic raw-Human3.6M source: CDF pose files and mp4 videos in exactly the raw layout.

```
OUT/
  synth.json                               the settings the folder was written with
  cameras.json                             scaled public calibration (only when divisor != 1)
  S1/MyPoseFeatures/D3_Positions/Walking.cdf             Pose (1, N, 96) world mm, 32 joints
  S1/MyPoseFeatures/D2_Positions/Walking.54138969.cdf    Pose (1, N, 64) distorted px of the video
  S1/MyPoseFeatures/D3_Positions_mono/Walking.54138969.cdf  Pose (1, N, 96) camera frame mm
  S1/Videos/Walking.54138969.mp4           50 fps, camera resolution / divisor, H.264 4:4:4
```

Motions come from `synth_motion` (forward kinematics, per-subject bones and style), frames from
`synth_render` (textured room + shaded capsule person). Every file is a deterministic function of
(subject, action, seconds, divisor, seed): the same bytes whatever `workers` is. Files are written
to a temporary name and renamed, and existing files are skipped, so an interrupted run is resumed
by running the same command again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from corrupt_bench.data.cameras import (
    CAMERA_FILE_NAME,
    CAMERA_IDS,
    Camera,
    get_camera,
    load_cameras,
    project_world,
    world_to_camera,
    write_camera_file,
)
from corrupt_bench.data.synth_motion import (
    ACTION_STEMS,
    ACTIONS,
    DEFAULT_ACTIONS,
    FPS,
    body_shape,
    resolve_action,
    stable_int,
    synthetic_motion,
    synthetic_motion_raw,
)
from corrupt_bench.data.synth_render import (
    Appearance,
    appearance_for,
    render_background,
    render_frame,
    render_frames,
)
from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_path, atomic_write_text, remove_temporaries

__all__ = [
    "ACTIONS",
    "ACTION_STEMS",
    "DEFAULT_ACTIONS",
    "DEFAULT_DIVISOR",
    "DEFAULT_SUBJECTS",
    "Appearance",
    "appearance_for",
    "body_shape",
    "camera_background",
    "default_workers",
    "render_background",
    "render_frame",
    "render_frames",
    "resolve_action",
    "sequence_stem",
    "stable_int",
    "synthetic_motion",
    "synthetic_motion_raw",
    "write_synthetic",
]

DEFAULT_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S9", "S11")
DEFAULT_DIVISOR = 4  # 250 x 250 frames: the default set writes well within a minute on 2 cores
SETTINGS_FILE = "synth.json"
# Bump FORMAT_VERSION whenever motions, bodies, appearance, the room or the encoding change: the same
# arguments then give other files, and a folder written before is refused instead of mixed.
LOCK_FILE = ".synth.lock"
FORMAT_VERSION = 2
VIDEO_CRF = 18
GOP = 25


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def sequence_stem(motion: str) -> str:
    """Raw file stem of a synthetic sequence, a real Human3.6M action name (see ACTION_STEMS)."""
    return ACTION_STEMS[resolve_action(motion)]


@lru_cache(maxsize=8)
def camera_background(subject: str, camera_id: str, divisor: int, seed: int) -> np.ndarray:
    """The static room as seen by one subject's camera at 1/divisor size (cached per process)."""
    bg = render_background(get_camera(subject, camera_id).scaled(divisor), seed)
    bg.setflags(write=False)
    return bg


@dataclass(frozen=True)
class _Unit:
    """The work of one (subject, camera): 2D and camera-frame labels and the video of each sequence."""

    out: str
    subject: str
    camera_id: str
    motions: tuple[str, ...]
    n_frames: int
    divisor: int
    seed: int


def _paths(out: Path, subject: str, stem: str, camera_id: str) -> dict[str, Path]:
    feats = out / subject / "MyPoseFeatures"
    return {
        "d2": feats / "D2_Positions" / f"{stem}.{camera_id}.cdf",
        "mono": feats / "D3_Positions_mono" / f"{stem}.{camera_id}.cdf",
        "video": out / subject / "Videos" / f"{stem}.{camera_id}.mp4",
    }


def _unit_done(unit: _Unit) -> bool:
    out = Path(unit.out)
    return all(
        p.is_file() for m in unit.motions for p in _paths(out, unit.subject, sequence_stem(m), unit.camera_id).values()
    )


def _write_video(path: Path, frames, width: int, height: int) -> None:
    """Encode RGB frames as 50 fps H.264 (4:4:4, so odd sizes work; single-threaded, so deterministic)."""
    from fractions import Fraction

    import av

    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(int(FPS), 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        stream.thread_count = 1
        stream.codec_context.gop_size = GOP  # a key frame every half second: cheap seeks
        stream.options = {"crf": str(VIDEO_CRF), "preset": "ultrafast"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, int(FPS))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _run_unit(unit: _Unit) -> str:
    """Write every missing file of one (subject, camera); returns a short description."""
    import cv2

    from corrupt_bench.data.cdf_io import write_pose_cdf

    cv2.setNumThreads(1)
    out = Path(unit.out)
    camera = get_camera(unit.subject, unit.camera_id).scaled(unit.divisor)
    appearance = appearance_for(unit.subject, unit.seed)
    for motion in unit.motions:
        paths = _paths(out, unit.subject, sequence_stem(motion), unit.camera_id)
        if all(p.is_file() for p in paths.values()):
            continue
        raw = synthetic_motion_raw(unit.subject, motion, unit.n_frames, unit.seed)
        # labels from the poses as stored (float32), so the files agree with each other exactly
        raw = raw.astype(np.float32).astype(np.float64)
        if not paths["d2"].is_file():
            write_pose_cdf(paths["d2"], project_world(raw, camera).reshape(unit.n_frames, 64))
        if not paths["mono"].is_file():
            write_pose_cdf(paths["mono"], world_to_camera(raw, camera).reshape(unit.n_frames, 96))
        if not paths["video"].is_file():
            from corrupt_bench.data.skeleton import raw_to_h36m17

            background = camera_background(unit.subject, unit.camera_id, unit.divisor, unit.seed)
            frames = render_frames(raw_to_h36m17(raw), camera, appearance, background)
            _write_video(paths["video"], frames, camera.width, camera.height)
    return f"{unit.subject} {unit.camera_id}"


def _check_settings(out: Path, settings: dict) -> None:
    path = out / SETTINGS_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"unreadable synthetic settings file ({exc})", path) from exc
        keys = ("format", "seconds", "divisor", "seed")
        if any(old.get(k) != settings[k] for k in keys):
            was = ", ".join(f"{k}={old.get(k)}" for k in keys)
            raise UserError(f"folder holds synthetic data written with other settings ({was}); use another --out", path)
        settings = {**settings, "subjects": sorted(set(old.get("subjects", [])) | set(settings["subjects"]))}
        settings["actions"] = sorted(set(old.get("actions", [])) | set(settings["actions"]))
        settings["actions_as"] = {m: ACTION_STEMS[m] for m in settings["actions"] if m in ACTION_STEMS}
    atomic_write_text(path, json.dumps(settings, indent=1, sort_keys=True))


def write_synthetic(
    out: str | Path,
    subjects: Sequence[str] = DEFAULT_SUBJECTS,
    actions: Sequence[str] | None = None,
    seconds: float = 4.0,
    divisor: int = DEFAULT_DIVISOR,
    seed: int = 0,
    workers: int | None = None,
    show_progress: bool = False,
) -> Path:
    """Write a synthetic raw-Human3.6M folder (see the module docstring) and return its path.

    `actions` are motion names (`ACTIONS`) or their Human3.6M names (`ACTION_STEMS` values); None
    gives `DEFAULT_ACTIONS`. `divisor` shrinks the frames (and the intrinsics, written to
    `cameras.json`). `workers` processes share the (subject, camera) units; the output does not
    depend on it.
    """
    out = Path(out)
    if isinstance(subjects, str):
        subjects = (subjects,)
    if isinstance(actions, str):
        actions = (actions,)
    motions = tuple(dict.fromkeys(resolve_action(a) for a in (actions or DEFAULT_ACTIONS)))
    subjects = tuple(dict.fromkeys(subjects))
    if not subjects:
        raise UserError("no subjects given")
    if not np.isfinite(seconds) or seconds <= 0:
        raise UserError(f"--seconds must be positive, got {seconds}")
    if int(divisor) != divisor or divisor < 1:
        raise UserError(f"--divisor must be a positive integer, got {divisor}")
    divisor = int(divisor)
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    for subject in subjects:
        for cam_id in CAMERA_IDS:
            get_camera(subject, cam_id)  # UserError for an unknown subject
    n_frames = int(round(seconds * FPS))
    if n_frames < 2:
        raise UserError(f"--seconds {seconds} gives fewer than 2 frames at {FPS:g} fps")
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a folder", out)
    out.mkdir(parents=True, exist_ok=True)
    with _folder_lock(out):
        _write_locked(out, subjects, motions, seconds, n_frames, divisor, int(seed), workers, show_progress)
    return out


@contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """One writer per folder (an flock, released by the OS even when the process is killed)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no protection against two concurrent runs
        yield
        return
    with open(out / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError("another synth run is writing this folder; wait for it or use another --out", out) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_locked(
    out: Path, subjects: tuple[str, ...], motions: tuple[str, ...], seconds: float, n_frames: int, divisor: int,
    seed: int, workers: int, show_progress: bool,
) -> None:
    _check_settings(
        out,
        {
            "format": FORMAT_VERSION,
            "seconds": float(seconds),
            "divisor": divisor,
            "seed": seed,
            "subjects": sorted(subjects),
            "actions": sorted(motions),
            "fps": FPS,
            "actions_as": {m: ACTION_STEMS[m] for m in motions},
        },
    )
    if divisor != 1:
        scaled = {key: cam.scaled(divisor) for key, cam in load_cameras(None).items()}
        write_camera_file(scaled, out / CAMERA_FILE_NAME)

    from corrupt_bench.data.cdf_io import write_pose_cdf

    for subject in subjects:  # temporaries of an interrupted run (this process holds the folder lock)
        for folder in (out / subject / "MyPoseFeatures" / name for name in ("D3_Positions", "D2_Positions", "D3_Positions_mono")):
            remove_temporaries(folder)
        remove_temporaries(out / subject / "Videos")
    for subject in subjects:
        for motion in motions:
            path = out / subject / "MyPoseFeatures" / "D3_Positions" / f"{sequence_stem(motion)}.cdf"
            if not path.is_file():
                raw = synthetic_motion_raw(subject, motion, n_frames, seed)
                write_pose_cdf(path, raw.reshape(n_frames, 96))

    units = [
        _Unit(str(out), subject, cam_id, motions, n_frames, divisor, seed)
        for subject in subjects
        for cam_id in CAMERA_IDS
    ]
    units = [u for u in units if not _unit_done(u)]
    if units:
        _run_units(units, workers, show_progress)


def _ignore_sigint() -> None:
    """Pool initializer: Ctrl-C is handled by the parent, which lets running units finish; the worker
    ends when the parent dies (no orphans after a kill -9)."""
    import signal

    from corrupt_bench.processes import end_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with_parent()


def _run_units(units: list[_Unit], workers: int, show_progress: bool) -> None:
    if show_progress:
        from corrupt_bench.progress import progress
    else:

        def progress(items, total=None, description=""):
            yield from items

    if workers == 1 or len(units) == 1:
        with closing(progress(units, total=len(units), description="synth")) as bar:
            for unit in bar:
                _run_unit(unit)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    pool = ProcessPoolExecutor(max_workers=min(workers, len(units)), mp_context=context, initializer=_ignore_sigint)
    try:
        futures = [pool.submit(_run_unit, unit) for unit in units]
        # closing(): stop the progress bar before the error is reported, not when the traceback is freed
        with closing(progress(as_completed(futures), total=len(futures), description="synth")) as bar:
            for future in bar:
                future.result()
    except BaseException:  # an error or Ctrl-C: start no more units, let running ones finish; a rerun resumes
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def demo_frame(subject: str = "S1", action: str = "walk", camera_id: str = CAMERA_IDS[0], frame: int = 60,
               divisor: int = DEFAULT_DIVISOR, seed: int = 0) -> np.ndarray:
    """One rendered frame (HxWx3 uint8 RGB) without writing anything: for previews and docs."""
    camera: Camera = get_camera(subject, camera_id).scaled(divisor)
    poses = synthetic_motion(subject, action, frame + 1, seed)
    return render_frame(poses[frame], camera, appearance_for(subject, seed), camera_background(subject, camera_id, divisor, seed))
