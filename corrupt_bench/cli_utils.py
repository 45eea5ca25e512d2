"""Helpers shared by the command modules: user-error handling (progress bars live in `corrupt_bench.progress`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import typer

from corrupt_bench.errors import UserError

F = TypeVar("F", bound=Callable)


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
