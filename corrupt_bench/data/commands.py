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
        ...,
        help="A source folder: raw Human3.6M (S1/, S5/, ... with MyPoseFeatures/ and Videos/), mmpose's processed "
        "Human3.6M (images/, annotation_body3d/) or a multi-view rig (rig.yaml).",
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
    """Subjects, sequences, frames, frame rates and cameras of a source folder, and the problems found.

    Reads every file once: a fault no known quirk explains (unreadable CDF, wrong shape, a video that
    does not open, frame counts that disagree) stops with one line naming the file, exit code 2."""
    from rich.console import Console

    from corrupt_bench.data.mmpose_h36m import ANNOTATION_DIR, MmposeH36M
    from corrupt_bench.data.multiview import MultiViewRig, is_rig
    from corrupt_bench.data.raw import RawH36M

    console = Console()
    wanted = _parse_subjects(subjects)
    if is_rig(data):
        rig = MultiViewRig(data, subjects=wanted)
        _print_source(console, f"multi-view rig: {rig.rig_file}", rig.sequences(), rig.problems(), sequences)
        return
    if (Path(data) / ANNOTATION_DIR).is_dir():
        source = MmposeH36M(data, subjects=wanted, include_damaged=include_damaged, include_corrupt_video=include_corrupt_video)
        _print_source(console, f"mmpose Human3.6M: {source.root} ({source.annotation_dir.name})", source.sequences(),
                      source.problems(), sequences)  # fmt: skip
        return
    from corrupt_bench.progress import progress

    raw = RawH36M(data, subjects=wanted, include_damaged=include_damaged, include_corrupt_video=include_corrupt_video)
    refs = raw.sequences()
    _print_source(console, f"Human3.6M raw data: {raw.root}", refs, raw.problems(progress=progress), sequences)


def _print_source(console, title: str, refs: list, problems: list[str], detail: bool) -> None:
    """The per-subject table, the totals line (frames and their rate), the sequences and the problems."""
    from rich.table import Table

    from corrupt_bench.data.raw import summarize

    table = Table(title=title)
    for column, justify in (("subject", "left"), ("sequences", "right"), ("frames", "right"),
                            ("seconds", "right"), ("cameras", "right"), ("camera ids", "left")):  # fmt: skip
        table.add_column(column, justify=justify)
    summaries = summarize(refs)
    for s in summaries:
        table.add_row(s.subject, str(s.sequences), str(s.frames), f"{s.seconds:.1f}", str(len(s.cameras)), " ".join(s.cameras))
    console.print(table)
    rates = " / ".join(f"{fps:g}" for fps in sorted({ref.fps for ref in refs}))
    frames = sum(len(ref.frame_indices) for ref in refs)
    console.print(f"{len(summaries)} subjects, {len(refs)} sequences, {frames} frames at {rates} fps")
    if detail:
        listing = Table(title="sequences")
        for column in ("subject", "sequence", "action", "subaction", "frames", "fps", "cameras"):
            listing.add_column(column)
        for ref in refs:
            listing.add_row(ref.subject, ref.sequence, ref.action, str(ref.subaction), str(len(ref.frame_indices)),
                            f"{ref.fps:g}", " ".join(ref.cameras))  # fmt: skip
        console.print(listing)
    if problems:
        console.print(f"problems found ({len(problems)}):", highlight=False)
        for line in problems:
            console.print(f"  - {line}", highlight=False, markup=False, soft_wrap=True)
    else:
        console.print("problems found: none")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("info")(info)
