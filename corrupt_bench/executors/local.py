"""The local executor: items run in this process (`workers == 1`) or on a `spawn` process pool."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TypeVar

from corrupt_bench.errors import UserError
from corrupt_bench.executors.base import Staging

T = TypeVar("T")
R = TypeVar("R")


def _init_worker() -> None:
    # one process per core: keep OpenCV from starting its own thread pool in each worker
    import cv2

    cv2.setNumThreads(1)


class LocalExecutor:
    """`workers == 1`: in this process. Otherwise a `spawn` process pool (no forked locks or threads).

    At most `2 * workers` units are in flight, so a long plan does not pile results up in memory.
    """

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise UserError(f"--workers must be at least 1 (got {workers})")
        self.workers = workers

    def slots(self) -> int:
        return self.workers

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], staging: Staging | None = None, max_parallel: int | None = None
    ) -> Iterator[R]:
        """`staging` is not needed here: every worker shares this machine's file system. `max_parallel`
        1: in this process (work too small to repay a pool)."""
        if self.workers == 1 or max_parallel == 1:
            import cv2

            threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
            try:
                for item in items:
                    yield fn(item)
            finally:
                cv2.setNumThreads(threads)
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker) as pool:
            pending = set()
            iterator = iter(items)
            exhausted = False
            while True:
                while not exhausted and len(pending) < 2 * self.workers:
                    try:
                        pending.add(pool.submit(fn, next(iterator)))
                    except StopIteration:
                        exhausted = True
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
