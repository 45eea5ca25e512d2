"""Helpers shared by the command modules: user-error handling and the OpenCV install check (progress bars
live in `corrupt_bench.progress`)."""

from __future__ import annotations

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


def user_errors(func: F) -> F:
    """Turn a UserError raised by a command into `error: <file>: <fault>` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
