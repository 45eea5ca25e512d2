"""Worker processes that end with their parent, and one line for a worker that died.

`end_with_parent()` runs first in every pool worker (the local executor, `verify --workers`, the
synthetic writer). A `kill -9` of the parent leaves no orphan that keeps writing or sleeps forever:

- on Linux, `prctl(PR_SET_PDEATHSIG, SIGKILL)` asks the kernel to kill the worker when the parent
  (the thread that started it: pools start their workers from the caller's thread) dies;
- everywhere, a daemon thread waits on the parent's sentinel (`multiprocessing.parent_process()`, a
  pipe that becomes readable when the parent is gone) and ends the worker with `os._exit`; where
  there is no sentinel it polls the parent pid every half second.

Both are checked against the parent seen at start, so a parent that died while the worker was still
importing is noticed at once.

`worker_died(exc, out)` turns a `BrokenProcessPool` (a worker killed by the OOM killer or a signal)
into one `UserError` line that says the run can be resumed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from corrupt_bench.errors import UserError

PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_SECONDS = 0.5


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no libc symbol: the watchdog thread still ends the worker
        pass


def _watch(parent_pid: int, sentinel: int | None) -> None:
    if sentinel is not None:
        from multiprocessing.connection import wait

        try:
            wait([sentinel])
        except OSError:
            pass
        os._exit(1)
    import time

    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)


def end_with_parent() -> None:
    """Make this (worker) process end when its parent dies; see the module docstring."""
    import multiprocessing

    _set_parent_death_signal()
    parent = multiprocessing.parent_process()
    parent_pid = parent.pid if parent is not None and parent.pid is not None else os.getppid()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    sentinel = getattr(parent, "sentinel", None) if parent is not None else None
    threading.Thread(target=_watch, args=(parent_pid, sentinel), name="end-with-parent", daemon=True).start()


def worker_died(exc: BaseException, where: object = None, exit_codes: list[int] | None = None) -> UserError:
    """One line for a pool whose worker died abruptly (OOM killer, kill -9): nothing finished is lost."""
    codes = sorted({c for c in exit_codes or [] if c not in (None, 0)})
    if len(codes) > 1 and -signal.SIGTERM in codes:  # the pool terminates the others once one died
        codes.remove(-signal.SIGTERM)
    how = ""
    if codes:
        names = []
        for code in codes:
            if code < 0:
                try:
                    names.append(f"signal {signal.Signals(-code).name}")
                except ValueError:
                    names.append(f"signal {-code}")
            else:
                names.append(f"exit code {code}")
        how = f" ({', '.join(names)}{'; SIGKILL is what the OOM killer sends' if -signal.SIGKILL in codes else ''})"
    return UserError(
        f"a worker process died{how}; work already finished is kept: rerun the same command to resume "
        "(with fewer --workers if memory ran short)",
        None if where is None else str(where),
    )


def pool_exit_codes(pool: object) -> list[int]:
    """Exit codes of a ProcessPoolExecutor's worker processes (negative: killed by that signal)."""
    processes = getattr(pool, "_processes", None) or {}
    codes = []
    for process in list(processes.values()):
        code = getattr(process, "exitcode", None)
        if code is not None:
            codes.append(code)
    return codes
