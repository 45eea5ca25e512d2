"""Executors: run a pure function over picklable work units, here or on a process pool.

An executor only has to offer `map(fn, items)` yielding results as they complete (any order);
the generator does not care about the order because every unit writes its own files and marker.
A Ray executor (issue 9) plugs in with the same method.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Protocol, TypeVar

from corrupt_bench.errors import UserError

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs `fn` over `items`; yields the results in completion order."""

    workers: int

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...


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

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        if self.workers == 1:
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


def make_executor(kind: str = "local", workers: int = 1, **options) -> Executor:
    """The executor named `kind`: "local" (process pool; no options) or "ray" (`executors_ray.RayExecutor`:
    address, shared_fs, num_gpus, max_retries, ...)."""
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        from corrupt_bench.generate.executors_ray import RayExecutor

        return RayExecutor(workers, **options)
    raise UserError(f"unknown executor {kind!r}; allowed: local, ray")
