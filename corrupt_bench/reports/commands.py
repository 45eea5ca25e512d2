"""CLI commands of corrupt_bench.reports (registered by corrupt_bench.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from corrupt_bench.cli_utils import user_errors


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""

    @app.command("report")
    @user_errors
    def report_command(
        runs: list[Path] = typer.Argument(..., help="Run folders written by `score`."),
        out: Path = typer.Option(..., "--out", help="Report folder (CSV tables, leaderboard.csv, plots, summary.md/html)."),
        reference: str | None = typer.Option(None, "--reference", help="Reference model of CE / mCE (default: the first run's model)."),
        metric: str = typer.Option("mpjpe", "--metric", help="Metric of the tables and robustness scores."),
        compare: tuple[str, str] | None = typer.Option(None, "--compare", help="Two model names A B: their paired difference A - B with a bootstrap interval and a sign-flip test (compare.csv)."),
    ) -> None:
        """Aggregate score runs into tables, leaderboards, plots and a summary."""
        from corrupt_bench.errors import UserError
        from corrupt_bench.reports.report import write_report

        if out.exists() and not out.is_dir():
            raise UserError("output path exists and is not a folder", out)
        files = write_report(list(runs), out, reference, metric, compare)
        typer.echo(f"reference model: {files.reference}")
        if files.compare is not None:
            typer.echo(f"paired comparison: {files.compare}")
        typer.echo(f"{len(files.tables)} tables, {len(files.plots)} plots; summary: {files.summary_md}, {files.summary_html}")
