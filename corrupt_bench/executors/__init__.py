"""Executors: run a pure function over picklable work items, here, on a process pool or on Ray.

Shared by `generate` (one item per work unit) and `score` (one item per grid cell). An executor
only offers `map(fn, items, staging=None)`, yielding results in completion order; it knows nothing
of its callers. When the workers may not share the caller's file system (Ray with `shared_fs=False`),
a caller whose items write files hands in a `Staging`: what a worker runs instead of `fn` (write into
a private place and return the bytes) and what the driver does with each payload (land it).
"""

from __future__ import annotations

from typing import Any

from corrupt_bench.errors import UserError
from corrupt_bench.executors.base import Executor, Staging

__all__ = ["EXECUTOR_KINDS", "Executor", "Staging", "make_executor"]

EXECUTOR_KINDS = ("local", "ray")


def make_executor(kind: str = "local", workers: int = 1, **options: Any) -> Executor:
    """The executor named `kind`: "local" (this process or a process pool; no options) or "ray"
    (`corrupt_bench.executors.ray.RayExecutor`: address, shared_fs, num_gpus, max_retries, ...)."""
    if kind == "local":
        if options:
            raise UserError(f"the local executor takes no options (got {', '.join(sorted(options))})")
        from corrupt_bench.executors.local import LocalExecutor

        return LocalExecutor(workers)
    if kind == "ray":
        from corrupt_bench.executors.ray import RayExecutor

        return RayExecutor(workers, **options)
    raise UserError(f"unknown executor {kind!r}; allowed: {', '.join(EXECUTOR_KINDS)}")
