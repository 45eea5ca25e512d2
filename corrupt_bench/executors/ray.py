"""The Ray executor: one Ray task per item (a generate work unit, a score grid cell), on a local
Ray runtime or on a cluster (`--executor ray --address ADDR`).

Same `map(fn, items)` as the local pool, so the outputs (and lock.json) are the same: every unit is
a pure function of its key. Ray is an optional extra, imported only here and only when used.

How outputs reach the output root:

- shared file system (default): tasks write directly under the output root, as the local pool's
  workers do (atomic temp + rename, then the unit's done-marker);
- `shared_fs=False` (`--no-shared-fs`): the caller's `Staging` runs in the task instead of `fn`
  (generate: the unit runs into a temporary folder on its node and returns its files' bytes) and its
  `land` runs on the driver (the bytes are written under the output root atomically, marker last).
  A caller without a `Staging` (scoring) already returns its output: its tasks are sent as they are.

Either way the inputs (raw source, VOC folder, benchmark to score) must be readable at the same
path on every node, and every node needs the same corrupt-bench environment.

Retries: a task whose worker process dies (crash, OOM kill, lost node) is rerun up to
`max_retries` times by Ray; an exception raised by the unit itself is not retried (it is
deterministic) and is re-raised on the driver.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from corrupt_bench.errors import UserError
from corrupt_bench.executors.base import Staging

T = TypeVar("T")
R = TypeVar("R")

MISSING_RAY = "the Ray executor needs ray: pip install 'corrupt-bench[ray]'"
DEFAULT_MAX_RETRIES = 3


def import_ray():
    """`ray`, or a one-line UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(MISSING_RAY) from None
    return ray


def _run_task(fn: Callable[[Any], Any], item: Any, fault_file: str | None) -> Any:
    """Body of every Ray task: one thread for OpenCV (Ray gives the task one CPU), freed memory kept for
    reuse (`executors.process.keep_freed_memory`), then `fn(item)`.

    `fault_file` (tests only): the first task to create that file kills its own worker process
    before doing anything, as a crash or an OOM kill would; Ray then retries it elsewhere."""
    if fault_file is not None:
        try:
            os.close(os.open(fault_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os._exit(1)
    import cv2

    from corrupt_bench.executors.process import keep_freed_memory

    cv2.setNumThreads(1)
    keep_freed_memory()
    return fn(item)


# --- the executor ----------------------------------------------------------------------------------------
class RayExecutor:
    """Runs `fn` over `items` as Ray tasks; yields the results in completion order.

    `address`: a running cluster ("auto", "ray://host:10001", "host:6379"); None starts a local
    runtime (with `workers` CPUs when `workers` > 1), unless Ray is already initialised in this
    process or RAY_ADDRESS is set. `num_gpus`: per task, or "auto" (1 when the cluster has a GPU).
    At most `max_in_flight` tasks are submitted at once (default: twice the cluster's CPUs), so a
    long plan does not pile results up on the driver.
    """

    def __init__(
        self,
        workers: int = 1,
        address: str | None = None,
        *,
        shared_fs: bool = True,
        num_cpus: float = 1,
        num_gpus: float | str = 0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_in_flight: int | None = None,
        fault_file: str | Path | None = None,
    ):
        if workers < 1:
            raise UserError(f"--workers must be at least 1 (got {workers})")
        if max_retries < 0:
            raise UserError(f"max_retries must be at least 0 (got {max_retries})")
        if num_gpus != "auto" and float(num_gpus) < 0:
            raise UserError(f"num_gpus must be 'auto' or at least 0 (got {num_gpus})")
        import_ray()  # fail early, before any work, when ray is missing
        self.workers = workers
        self.address = address
        self.shared_fs = shared_fs
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries
        self.max_in_flight = max_in_flight
        self.fault_file = None if fault_file is None else str(fault_file)
        self._started = False  # this executor started the Ray runtime it uses (and stops it)

    def _connect(self, ray) -> bool:
        """Initialise Ray unless it already is; True when this call started it (and must stop it)."""
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {"include_dashboard": False}
        if self.address is not None:
            options["address"] = self.address
        elif not os.environ.get("RAY_ADDRESS") and self.workers > 1:
            options["num_cpus"] = self.workers
        try:
            ray.init(**options)
        except ConnectionError as exc:
            raise UserError(f"cannot connect to the Ray cluster at {self.address!r}: {exc}".splitlines()[0]) from None
        return True

    def slots(self) -> int:
        """Tasks that run at once: the cluster's CPUs over the CPUs of a task (connects to Ray; a runtime
        started here is stopped at the end of the next `map`)."""
        ray = import_ray()
        self._started = self._connect(ray) or self._started
        return max(1, int(ray.cluster_resources().get("CPU", 1) // max(self.num_cpus, 1e-9)))

    def task_gpus(self, ray) -> float:
        """GPUs requested per task: `num_gpus`, with "auto" = 1 when the cluster has one, else 0."""
        if self.num_gpus == "auto":
            return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        return float(self.num_gpus)

    def remote_task(self, ray, gpus: float):
        """The Ray remote function of this executor's tasks (`_run_task` with its resources)."""
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": gpus, "max_retries": self.max_retries,
                                   "retry_exceptions": False}  # fmt: skip
        if gpus > 0:
            options["max_calls"] = 0  # Ray's default for GPU tasks is 1: reuse the worker (and its loaded model)
        return ray.remote(**options)(_run_task)

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], staging: Staging | None = None, max_parallel: int | None = None
    ) -> Iterator[R]:
        """`max_parallel` is not used: a cluster's workers are already running."""
        ray = import_ray()
        started = self._connect(ray) or self._started
        self._started = False
        pending: dict[Any, T] = {}
        try:
            if self.shared_fs or staging is None:
                send, land = fn, _as_is
            else:
                send, land = staging.remote, staging.land
            task = self.remote_task(ray, self.task_gpus(ray))
            limit = self.max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
            fn_ref = ray.put(send)  # shipped once, not once per task
            iterator = iter(items)
            exhausted = False
            while True:
                while not exhausted and len(pending) < limit:
                    try:
                        item = next(iterator)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[task.remote(fn_ref, item, self.fault_file)] = item
                if not pending:
                    break
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    item = pending.pop(ref)
                    yield land(_get(ray, ref, item, self.max_retries))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


def _as_is(result: Any) -> Any:
    return result


def _get(ray, ref, item, retries: int):
    """The task's result; its own exception re-raised as such; a worker lost too often named."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(getattr(exc, "cause", None), UserError):
            raise exc.cause from None  # a fault in the user's input: the same one line as locally
        raise exc.as_instanceof_cause() from None  # still an instance of the unit's own exception type
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
        raise RuntimeError(
            f"the Ray task of {_name(item)} lost its worker {retries + 1} time(s) (retries exhausted): "
            f"{type(exc).__name__}"
        ) from None


def _name(item: Any) -> str:
    return str(getattr(item, "key", item))
