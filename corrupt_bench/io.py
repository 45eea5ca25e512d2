"""The one way corrupt-bench writes a file, and the one way it joins a path below a root.

Atomic writes: every file is written to a temporary name in its own folder and renamed into
place, so a reader (or a resumed run) never sees half a file. Temporary names are unique per
call (`.<name>.<random>.tmp[<suffix>]`), so two processes writing the same file never delete
each other's temporary; the temporary is removed when the write fails. Files get the mode a
plain `open()` would give them (0666 less the umask), not `mkstemp`'s 0600, so a shared
benchmark stays readable by colleagues.

Confinement: `confined(root, *parts)` refuses absolute parts, '..' and any path that resolves
(symlinks followed) outside `root`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corrupt_bench.errors import UserError

TEMP_SUFFIX = ".tmp"
# `.<name>.<token>.tmp` or `.<name>.<token>.tmp.<ext>` (an extension some writers insist on)
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp(\.[A-Za-z0-9]+)?$")


def is_temporary(name: str) -> bool:
    """True for the name of a temporary file left by an interrupted atomic write."""
    return bool(_TEMP_NAME.match(name))


def current_umask() -> int:
    """The process umask (read without changing it where the platform allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    """0666 less the process umask."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside `path` for writers that need a file name (video muxers, CDF, torch.save).

    The caller writes the temporary; on a normal exit it is renamed onto `path`, on an exception it
    is removed. `suffix` is appended to the temporary's name for writers that check the extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        name_the_file(exc, path)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(name, _file_mode())
        os.replace(name, path)
    except BaseException as exc:
        Path(name).unlink(missing_ok=True)
        name_the_file(exc, path)
        raise
    return path


def name_the_file(exc: BaseException, path: str | Path) -> None:
    """An OSError of a write (disk full, quota, file-size limit) often carries no file name: give it the
    file (or, for an anonymous file, the folder) being written, so the one-line error names it."""
    if isinstance(exc, OSError) and exc.filename is None:
        exc.filename = str(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: Any, *, indent: int | None = 1, sort_keys: bool = True) -> Path:
    """JSON with a trailing newline (NaN refused: a JSON file must be read back by anyone)."""
    text = json.dumps(payload, indent=indent, sort_keys=sort_keys, allow_nan=False, default=str)
    return atomic_write_text(path, text + "\n")


def atomic_write_parquet(path: str | Path, table: Any, *, compression: str = "zstd") -> Path:
    """A pyarrow Table (or a pandas DataFrame, index dropped) as parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression)
    return atomic_write_bytes(path, sink.getvalue().to_pybytes())


def atomic_write_csv(path: str | Path, frame: Any, **to_csv: Any) -> Path:
    """A pandas DataFrame as CSV (index dropped unless asked)."""
    to_csv.setdefault("index", False)
    return atomic_write_text(path, frame.to_csv(**to_csv))


def remove_temporaries(folder: str | Path, recursive: bool = False) -> int:
    """Delete the temporaries that interrupted atomic writes left in `folder`; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    found = folder.rglob(".*") if recursive else folder.glob(".*")
    removed = 0
    for path in found:
        if is_temporary(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def confined(root: str | Path, *parts: str) -> Path:
    """`root / parts...`, refusing absolute parts, '..', empty parts and anything that resolves
    (symlinks followed) outside `root`. The result is not resolved (it keeps the caller's spelling)."""
    root = Path(root)
    joined = "/".join(str(p) for p in parts)
    for part in parts:
        p = Path(str(part))
        if not str(part) or p.is_absolute() or ".." in p.parts:
            raise UserError(f"path {joined!r} would leave {root}", root)
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise UserError(f"path {joined!r} would leave {root} (through a symbolic link)", root)
    return path
