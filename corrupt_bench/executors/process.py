"""Settings of a process that computes: native thread pools and the memory allocator.

- `one_native_thread()`: one thread for OpenCV, and (unless the user set them) for OpenMP and BLAS
  in the processes this one starts; used wherever several processes share the cores.
- `keep_freed_memory()`: glibc's malloc serves allocations up to 32 MiB (whole frames and their
  float temporaries) from the heap and keeps up to 256 MiB of freed memory instead of returning it
  to the system, so a kernel that allocates a new frame-sized array per call does not page-fault
  it in again on every call (brightness on a 1000 px frame: 12 ms of which 8 ms in the kernel's page
  faults, 3 ms with this). Process-wide, no effect on any value; a no-op elsewhere than glibc.
- `set_torch_threads(threads, processes)`: torch's intra-op threads for `score`, `train` and `demo`.
"""

from __future__ import annotations

import os
import sys

from corrupt_bench.errors import UserError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value
_TRIM_THRESHOLD = 256 * 2**20


def one_native_thread() -> None:
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    import cv2

    cv2.setNumThreads(1)


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as the module docstring says; True when it was applied."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(mallopt(m_mmap_threshold, _MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, _TRIM_THRESHOLD))


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def set_torch_threads(threads: int | None = None, processes: int = 1) -> int:
    """Set torch's intra-op threads in this process and return how many it uses.

    `threads` (a `--threads` option) wins. Otherwise OMP_NUM_THREADS or MKL_NUM_THREADS, when set,
    are respected (torch read them when it was imported: nothing is changed). Otherwise the available
    cores are shared among the `processes` that compute at the same time (this one, its data-loading
    workers, other workers), at least one thread each: one per worker when several run. torch's own
    default, one thread per core in every process, oversubscribes the cores as soon as other processes
    compute, and its OpenMP threads then burn CPU waiting for one another."""
    import torch

    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads must be at least 1 (got {threads})")
        torch.set_num_threads(threads)
        return threads
    if any(os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        return torch.get_num_threads()
    chosen = max(1, available_cores() // max(1, processes))
    torch.set_num_threads(chosen)
    return chosen
