"""What every executor offers (`Executor`) and how a caller stages outputs for remote workers (`Staging`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Staging:
    """How an item's output reaches the driver when workers do not share its file system.

    `remote(item)` runs in the worker in place of `fn` and returns a picklable payload; `land(payload)`
    runs in the driver and returns what `fn(item)` would have returned. Both must be picklable
    (`functools.partial` of module-level functions)."""

    remote: Callable[[Any], Any]
    land: Callable[[Any], Any]


class Executor(Protocol):
    """Runs `fn` over `items`; yields the results in completion order."""

    workers: int

    def slots(self) -> int:
        """How many items run at once (callers size their items by it)."""
        ...

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], staging: Staging | None = None, max_parallel: int | None = None
    ) -> Iterator[R]:
        """`max_parallel`: the caller's hint that the work repays at most this many items at once
        (an executor may start fewer workers for it)."""
        ...
