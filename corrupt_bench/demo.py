"""`corrupt-bench demo`: the whole toolkit on the built-in synthetic data."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the demo command to the app."""
