"""CLI commands of corrupt_bench.data (registered by corrupt_bench.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from corrupt_bench.cli_utils import user_errors


def _parse_subjects(subjects: str | None) -> list[str] | None:
    if subjects is None:
        return None
    return [s.strip() for s in subjects.split(",") if s.strip()]


@user_errors
def info(
    data: Path = typer.Argument(
        ..., help="Raw Human3.6M folder (S1/, S5/, ... with MyPoseFeatures/ and Videos/)."
    ),
    subjects: str | None = typer.Option(
        None, "--subjects", help="Comma-separated subjects, e.g. S9,S11 (default: all found)."
    ),
    include_damaged: bool = typer.Option(
        False, "--include-damaged", help="Keep the S9 sequences with damaged mocap."
    ),
    include_corrupt_video: bool = typer.Option(
        False, "--include-corrupt-video", help="Keep the corrupt S11 'Directions' video of camera 54138969."
    ),
    sequences: bool = typer.Option(False, "--sequences", help="Also list every sequence."),
) -> None:
    """Subjects, sequences, frames and cameras of a raw Human3.6M folder, and the problems found.

    Reads every file once: a fault no known quirk explains (unreadable CDF, wrong shape, a video that
    does not open, frame counts that disagree) stops with one line naming the file, exit code 2."""
    from rich.console import Console
    from rich.table import Table

    from corrupt_bench.data.raw import RawH36M, summarize
    from corrupt_bench.progress import progress

    raw = RawH36M(
        data,
        subjects=_parse_subjects(subjects),
        include_damaged=include_damaged,
        include_corrupt_video=include_corrupt_video,
    )
    refs = raw.sequences()
    problems = raw.problems(progress=progress)

    console = Console()
    table = Table(title=f"Human3.6M raw data: {raw.root}")
    for column, justify in (("subject", "left"), ("sequences", "right"), ("frames", "right"),
                            ("seconds", "right"), ("cameras", "right"), ("camera ids", "left")):  # fmt: skip
        table.add_column(column, justify=justify)
    summaries = summarize(refs)
    for s in summaries:
        table.add_row(
            s.subject,
            str(s.sequences),
            str(s.frames),
            f"{s.seconds:.1f}",
            str(len(s.cameras)),
            " ".join(s.cameras),
        )
    console.print(table)
    console.print(
        f"{len(summaries)} subjects, {len(refs)} sequences, {sum(s.frames for s in summaries)} frames at 50 fps"
    )
    if sequences:
        detail = Table(title="sequences")
        for column in ("subject", "sequence", "action", "subaction", "frames", "cameras"):
            detail.add_column(column)
        for ref in refs:
            detail.add_row(
                ref.subject,
                ref.sequence,
                ref.action,
                str(ref.subaction),
                str(ref.n_frames),
                " ".join(ref.cameras),
            )
        console.print(detail)
    if problems:
        console.print(f"problems found ({len(problems)}):", highlight=False)
        for line in problems:
            console.print(f"  - {line}", highlight=False, markup=False, soft_wrap=True)
    else:
        console.print("problems found: none")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("info")(info)
