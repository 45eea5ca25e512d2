"""Helpers shared by the command modules: user-error handling (UserError and the OSErrors of the machine),
the --device check and the OpenCV install check (progress bars live in `corrupt_bench.progress`)."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from typing import TypeVar

import typer

from corrupt_bench.errors import UserError

F = TypeVar("F", bound=Callable)

# The distributions that provide the `cv2` module; the project's extras install exactly one of the first two
# (`headless`, `pretrained`).
OPENCV_DISTRIBUTIONS = ("opencv-python-headless", "opencv-contrib-python", "opencv-python", "opencv-contrib-python-headless")
OPENCV_HINT = "install corrupt-bench[headless] or corrupt-bench[pretrained]"


def opencv_problems() -> tuple[str | None, str | None]:
    """(error, warning) about the `cv2` module: an error when it is missing (nothing runs without it), a
    warning when two distributions provide it (they overwrite each other's files; uninstalling one breaks
    the other). Reads package metadata only (a few ms); imports nothing."""
    import importlib.metadata as md
    import importlib.util

    if importlib.util.find_spec("cv2") is None:
        return f"OpenCV (the cv2 module) is not installed: {OPENCV_HINT}", None
    installed = []
    for name in OPENCV_DISTRIBUTIONS:
        try:
            md.distribution(name)
        except md.PackageNotFoundError:
            continue
        installed.append(name)
    if len(installed) > 1:
        return None, (f"{len(installed)} distributions provide the cv2 module ({', '.join(installed)}): keep one "
                      f"(pip uninstall {' '.join(installed)}, then {OPENCV_HINT})")  # fmt: skip
    return None, None


# Faults of the machine rather than of the code: one line naming the file, exit code 2, and what to do.
_SYSTEM_ERRNOS = {
    errno.ENOSPC: "the disk is full: free some space and rerun the same command (finished work is kept)",
    errno.EDQUOT: "the disk quota is exhausted: free some space and rerun the same command (finished work is kept)",
    errno.EFBIG: "the file is larger than this file system or process allows",
    errno.EROFS: "the file system is read-only: choose another --out",
    errno.EACCES: "permission denied: choose a folder you can write (or read the input as its owner)",
    errno.EPERM: "operation not permitted: choose a folder you can write",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "this path is a folder, a file was expected",
    errno.ENAMETOOLONG: "the path is too long",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EIO: "input/output error of the storage",
}


def system_error(exc: OSError) -> UserError | None:
    """A UserError for an OSError of the machine (disk full, read-only, permission denied, ...), else None."""
    advice = _SYSTEM_ERRNOS.get(exc.errno) if isinstance(exc.errno, int) else None
    if advice is None:
        return None
    name = errno.errorcode.get(exc.errno, str(exc.errno))
    return UserError(f"{exc.strerror or name} ({name}): {advice}", exc.filename)


def check_device(device: str | None) -> None:
    """A --device that names CUDA on a machine without it (or a device that does not exist) is a user error."""
    if device in (None, "", "auto", "cpu"):
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"--device {device!r} is not a device; allowed: auto, cpu, cuda, cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: CUDA is not available on this machine; use --device cpu (or auto)")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif parsed.type not in ("cpu", "mps"):
        raise UserError(f"--device {device!r} is not supported; allowed: auto, cpu, cuda, cuda:N")


def user_errors(func: F) -> F:
    """Turn a UserError raised by a command into `error: <file>: <fault>` on stderr and exit code 2; so also an
    OSError of the machine (disk full, read-only file system, permission denied)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            error = system_error(exc)
            if error is None:
                raise
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
