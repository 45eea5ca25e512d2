"""Output folders: one writer at a time, created only when the first output is written.

`output_lock(out, command)` is entered by `generate`, `score` and `train` right before their first
write (every check that needs no output has run by then, so a fault found earlier leaves no folder):

- `out` is created (with its missing parents) unless it exists; a path that is a file, or whose
  parent is a file, is a one-line error;
- an exclusive `flock` on `out/.corrupt-bench.lock` is taken without waiting: a second process
  gets a one-line error that names the holder (its pid and command line, which the holder writes
  into the lock file). The OS releases an flock when its holder dies, even by `kill -9`, so a
  killed run never blocks the next one; the stale pid left in the file is simply overwritten;
- on exit the lock file is removed, and so is a folder this call created that holds nothing else
  (a fault found before the first output leaves nothing behind).

Where `fcntl` does not exist (Windows) there is no lock: two concurrent runs are not detected.

`wait_lock(path)` is the blocking variant for shared caches (a synthetic source being built by one
run is waited for by the others), its lock file kept.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from corrupt_bench.errors import UserError
from corrupt_bench.layout import OUTPUT_LOCK_NAME

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

MAX_COMMAND_CHARS = 300


def _command_line(command: str) -> str:
    argv = [os.path.basename(sys.argv[0])] + sys.argv[1:] if sys.argv and sys.argv[0] else [command]
    text = " ".join(argv)
    return text if len(text) <= MAX_COMMAND_CHARS else text[: MAX_COMMAND_CHARS - 3] + "..."


def _make_folder(out: Path) -> list[Path]:
    """Create `out` and its missing parents; return the folders created, deepest first."""
    missing: list[Path] = []
    probe = out
    while not probe.exists():
        if probe.is_symlink():  # a dangling symbolic link
            raise UserError("output path is a broken symbolic link", probe)
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError("output path exists and is not a folder" if probe == out else "a parent of the output path is a file", probe)
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:  # made meanwhile by another process: not ours to remove
            if not folder.is_dir():
                raise UserError("output path exists and is not a folder", folder) from None
        else:
            created.append(folder)
    return created[::-1]


def _holder(path: Path, wait: float = 1.0) -> str:
    """'pid N (command)' of the process that holds the lock, as it wrote it (a holder that has just taken
    the lock may not have written yet: read again for up to `wait` seconds)."""
    import time

    deadline = time.monotonic() + wait
    while True:
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            return f"pid {int(info['pid'])} ({str(info['command'])[:MAX_COMMAND_CHARS]})"
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return "a process that has not written its name"
            time.sleep(0.02)


def _remove_created(out: Path, created: list[Path], lock_file: Path) -> None:
    """Remove the lock file and the folders this call created, if they hold nothing else."""
    with contextlib.suppress(OSError):
        lock_file.unlink()
    for folder in created:  # deepest first
        try:
            folder.rmdir()
        except OSError:  # not empty: output was written, keep it (a rerun resumes)
            break


@contextlib.contextmanager
def output_lock(out: str | Path, command: str) -> Iterator[Path]:
    """Hold `out` (created if missing) exclusively for this process; see the module docstring."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a folder", out)
    created = _make_folder(out)
    lock_file = out / OUTPUT_LOCK_NAME
    if fcntl is None:
        yield out
        return
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        _remove_created(out, created, lock_file)
        if exc.errno == errno.ELOOP:
            raise UserError(f"{OUTPUT_LOCK_NAME} is a symbolic link; refused", out) from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise UserError(
                f"another {command} run is writing this folder: {_holder(lock_file)}; wait for it to finish or use another --out",
                out,
            ) from None
        raise
    try:
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps({"pid": os.getpid(), "command": _command_line(command)}) + "\n").encode())
    except OSError:
        os.close(fd)
        _remove_created(out, created, lock_file)
        raise
    try:
        yield out
    except BaseException:
        _remove_created(out, created, lock_file)  # only what holds nothing but the lock goes
        os.close(fd)
        raise
    _remove_created(out, created, lock_file)  # unlinked while still held: a run that opened it fails, never shares it
    os.close(fd)


@contextlib.contextmanager
def wait_lock(path: str | Path) -> Iterator[None]:
    """An exclusive flock on the file `path` (created), waiting for the holder; the file is kept."""
    path = Path(path)
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
