"""CLI commands of corrupt_bench.data.synth (registered by corrupt_bench.cli)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from corrupt_bench.cli_utils import user_errors


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t for t in re.split(r"[,\s]+", text) if t]
    return items or None


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""

    @app.command("synth")
    @user_errors
    def synth(
        out: Path = typer.Option(..., "--out", help="Folder to write the synthetic raw-Human3.6M data into."),
        subjects: str = typer.Option("S1,S5,S9,S11", "--subjects", help="Comma-separated subjects (S1 S5 S6 S7 S8 S9 S11)."),
        actions: str = typer.Option(
            None,
            "--actions",
            help="Comma-separated motions: walk (Walking), wave (Greeting), sit (SittingDown), squat (Purchases), "
            "bend (TakingPhoto), jump (Posing). Default: walk,wave,sit.",
        ),
        seconds: float = typer.Option(4.0, "--seconds", help="Length of every sequence in seconds (50 fps)."),
        divisor: int = typer.Option(None, "--divisor", help="Render at camera resolution / divisor (default 4: 250x250)."),
        seed: int = typer.Option(0, "--seed", help="Seed of bodies, motions, clothes and the room."),
        workers: int = typer.Option(None, "--workers", help="Worker processes (default: the CPU cores)."),
    ) -> None:
        """Write a synthetic Human3.6M download (CDF poses + mp4 videos, real cameras) to OUT."""
        import time

        from corrupt_bench.data.synth import DEFAULT_DIVISOR, write_synthetic

        subject_list = _split(subjects) or []
        start = time.perf_counter()
        try:
            path = write_synthetic(
                out,
                subjects=subject_list,
                actions=_split(actions),
                seconds=seconds,
                divisor=DEFAULT_DIVISOR if divisor is None else divisor,
                seed=seed,
                workers=workers,
                show_progress=True,
            )
        except KeyboardInterrupt:
            typer.echo(f"interrupted: finished files are kept; rerun the same command to complete {out}", err=True)
            raise typer.Exit(130) from None
        typer.echo(f"wrote {path} ({len(subject_list)} subjects) in {time.perf_counter() - start:.1f} s")
