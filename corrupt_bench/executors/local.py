"""The local executor: items run in this process, helped by a `spawn` process pool when there are several.

`workers == 1` (or a single item): every item runs here, in order. Otherwise this process is one of
the `workers` and a pool of `workers - 1` spawned processes are the others. A spawned worker
starts by importing the package (seconds on a loaded machine); it gets an item only once it is up
(it has answered a probe), except one item per worker taken from the end of the plan and handed over
at once; meanwhile this process works through the items itself from the front, so a pool that is
still starting holds back at most those items, and two items run side by side on `--workers 2`.
Workers still starting when the work is done are stopped.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from corrupt_bench.errors import UserError
from corrupt_bench.executors.base import Staging
from corrupt_bench.executors.process import keep_freed_memory, one_native_thread

T = TypeVar("T")
R = TypeVar("R")


def _init_worker(module: str) -> None:
    """Start of a pool worker: it ends when this process dies (no orphans); one thread for OpenCV (and,
    unless the user set them, for OpenMP/BLAS), freed memory kept for reuse, then the module of the
    function it will run imported, so its first item pays no import."""
    from corrupt_bench.processes import end_with_parent

    end_with_parent()
    one_native_thread()
    keep_freed_memory()
    importlib.import_module(module)


def _worker_died(pool: ProcessPoolExecutor, exc: BrokenProcessPool) -> UserError:
    """One line for a worker killed under the pool (OOM killer, kill -9); finished units are kept."""
    from corrupt_bench.processes import pool_exit_codes, worker_died

    codes = pool_exit_codes(pool)  # before shutdown: it forgets its processes
    pool.shutdown(wait=True, cancel_futures=True)
    return worker_died(exc, exit_codes=codes)


def _probe() -> int:
    """Answered by a worker once it has started (its initializer has run)."""
    return os.getpid()


def _stop(pool: ProcessPoolExecutor, terminate: bool) -> None:
    """Shut the pool down; `terminate`: without waiting for its workers (some are still starting and
    hold no work, or the work failed)."""
    if terminate:
        processes = getattr(pool, "_processes", None) or {}  # no public way before Python 3.14's terminate_workers
        for process in list(processes.values()):
            if process.is_alive():
                process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


class LocalExecutor:
    """Items in this process, or in this process and a `spawn` pool of `workers - 1` processes
    (see the module docstring). At most `workers` items are in flight."""

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise UserError(f"--workers must be at least 1 (got {workers})")
        self.workers = workers

    def slots(self) -> int:
        return self.workers

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], staging: Staging | None = None, max_parallel: int | None = None
    ) -> Iterator[R]:
        """`staging` is not needed here: every worker shares this machine's file system. No pool is
        started for fewer than two items or when `max_parallel` is 1 (work too small to repay one)."""
        import cv2

        workers = self.workers if max_parallel is None else max(1, min(self.workers, max_parallel))
        iterator = iter(items)
        head = [item for _, item in zip(range(2), iterator, strict=False)]
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        keep_freed_memory()
        try:
            if workers == 1 or len(head) < 2:
                for item in [*head, *iterator]:
                    yield fn(item)
            else:
                yield from self._with_pool(fn, [*head, *iterator], workers)
        finally:
            cv2.setNumThreads(threads)

    def _with_pool(self, fn: Callable[[T], R], items: list[T], workers: int) -> Iterator[R]:
        module = getattr(fn, "func", fn).__module__
        pool = ProcessPoolExecutor(
            workers - 1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(module,),
        )  # fmt: skip
        queue = list(reversed(items))  # popped from the end: planned order
        # Each spawned worker gets one item of the end of the plan at once (it runs it as soon as it is
        # up), while this process works from the front: with as many items as workers, the items still
        # run side by side. Workers left without an item answer a probe first.
        early = min(workers - 1, len(queue) - 1)
        running: set[Future] = {pool.submit(fn, queue.pop(0)) for _ in range(early)}
        probes: set[Future] = {pool.submit(_probe) for _ in range(workers - 1 - early)}
        finished = False
        try:
            while queue or running:
                idle = 0
                for future in [f for f in probes | running if f.done()]:
                    idle += 1
                    is_probe = future in probes
                    probes.discard(future)
                    running.discard(future)
                    try:
                        result = future.result()  # a worker that cannot start raises here, from its probe
                    except BrokenProcessPool as exc:
                        raise _worker_died(pool, exc) from None
                    if not is_probe:
                        yield result
                while idle and queue:
                    running.add(pool.submit(fn, queue.pop()))
                    idle -= 1
                if queue:
                    yield fn(queue.pop())  # this process is a worker too
                elif running:
                    wait(running | probes, return_when=FIRST_COMPLETED)
            finished = True
        finally:
            _stop(pool, terminate=not finished or bool(probes))
