"""CLI commands of corrupt_bench.data.synth (registered by corrupt_bench.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
