"""User-facing errors: one line that names the file and the fault; the CLI turns them into exit code 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A fault in the user's input (a file, a folder, a manifest, an option), not a bug of ours."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.fault = one_line(message)
        super().__init__(one_line(f"{self.path}: {message}") if self.path is not None else self.fault)


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {0x2028: "\\u2028", 0x2029: "\\u2029"} | {
    0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
MAX_MESSAGE_CHARS = 2000


def one_line(text: str) -> str:
    """`text` as one printable line: control characters escaped (a key or a file name given by the user may
    hold a newline), at most MAX_MESSAGE_CHARS characters."""
    text = str(text).translate(_CONTROL)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


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
