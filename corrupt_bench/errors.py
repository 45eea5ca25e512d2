"""User-facing errors: one line that names the file and the fault; the CLI turns them into exit code 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A fault in the user's input (a file, a folder, a manifest, an option), not a bug of ours."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.fault = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


def validation_text(exc: Exception) -> str:
    """One line for a pydantic ValidationError (its first error: key, message, a bounded input) or any exception."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            key = ".".join(str(p) for p in first.get("loc", ())) or "(top level)"
            shown = f" (got {short_repr(first['input'])})" if "input" in first and first.get("type") != "missing" else ""
            return f"key '{key}': {first.get('msg', 'invalid')}{shown}"
        except (TypeError, IndexError, KeyError, AttributeError):
            pass
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def short_repr(value: object, limit: int = 60) -> str:
    """A bounded repr for error messages: never the whole of a large or deeply nested input."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxdict, shortener.maxlist, shortener.maxtuple, shortener.maxset = 2, 4, 4, 4, 4
    shortener.maxstring = shortener.maxother = shortener.maxlong = limit
    text = shortener.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
