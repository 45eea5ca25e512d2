"""CLI commands of corrupt_bench.engine (registered by corrupt_bench.cli): `corruptions`, `preview`."""

from __future__ import annotations

from pathlib import Path

import typer

from corrupt_bench.cli_utils import user_errors


def _format_params(row) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.model_dump().items())


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""

    @app.command("corruptions")
    @user_errors
    def corruptions(
        pattern: str = typer.Argument("*", help="Glob over corruption names, e.g. '*noise'."),
    ) -> None:
        """List every corruption with its modality, version and parameters per severity."""
        from rich.console import Console
        from rich.table import Table

        from corrupt_bench.engine import get_corruption, list_corruptions
        from corrupt_bench.errors import UserError

        found = list_corruptions(pattern)
        if not found:
            if not any(ch in pattern for ch in "*?["):
                get_corruption(pattern)  # an unknown name: one line with "did you mean"
            raise UserError(f"no corruption matches {pattern!r}; see `corrupt-bench corruptions`")
        table = Table(title="corruptions (severity 0 = clean)", show_lines=True)
        for column in ("name", "modality", "version", "1", "2", "3", "4", "5"):
            table.add_column(column, overflow="fold")
        for c in found:
            table.add_row(c.name, c.modality, str(c.version), *(_format_params(c.table[s]) for s in range(1, 6)))
        Console(width=200).print(table)

    @app.command("preview")
    @user_errors
    def preview(
        name: str = typer.Argument(..., help="Corruption name (see `corrupt-bench corruptions`)."),
        severity: int = typer.Option(3, "--severity", "-s", min=0, max=5, help="Severity shown large."),
        out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
        seed: int = typer.Option(0, "--seed", help="Benchmark seed of the keys."),
        size: int = typer.Option(160, "--size", min=32, max=1024, help="Tile size in px."),
    ) -> None:
        """Write a PNG strip of one synthetic frame at severities 0..5 (SEVERITY shown large)."""
        import cv2

        from corrupt_bench.engine.preview import render_preview
        from corrupt_bench.errors import UserError

        if out.suffix.lower() != ".png":
            raise UserError("preview writes PNG: give a .png path", out)
        strip = render_preview(name, severity, seed=seed, size=size)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
        if not ok:
            raise UserError("could not encode the preview", out)
        from corrupt_bench.io import atomic_write_bytes

        atomic_write_bytes(out, buf.tobytes())
        typer.echo(f"wrote {out} ({strip.shape[1]}x{strip.shape[0]})")
