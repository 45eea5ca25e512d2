"""User-facing errors: one line that names the file and the fault; the CLI turns them into exit code 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A fault in the user's input (a file, a folder, a manifest, an option), not a bug of ours."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.fault = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)
