"""Helpers shared by the command modules: user-error handling and a rich progress bar."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import typer

from corrupt_bench.errors import UserError

F = TypeVar("F", bound=Callable)
T = TypeVar("T")


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


def progress(items: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Iterate with a rich progress bar (bar, count, elapsed and ETA) on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total if total is not None else (len(items) if hasattr(items, "__len__") else None))
        for item in items:
            yield item
            bar.advance(task)
