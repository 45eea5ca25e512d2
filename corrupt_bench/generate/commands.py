"""CLI commands of corrupt_bench.generate (registered by corrupt_bench.cli): generate, verify, validate, export."""

from __future__ import annotations

from pathlib import Path

import typer

from corrupt_bench.cli_utils import user_errors


def _read_yaml_first(manifest: str) -> None:
    """Read a manifest file's YAML before pydantic, NumPy and the engine are imported, so a hostile file
    (an alias bomb, 20,000 nested lists) fails in a lean process (built-in names are our own files)."""
    path = Path(manifest)
    if path.is_file():
        from corrupt_bench.safe_yaml import load_yaml

        load_yaml(path, "manifest")


def _mb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


@user_errors
def generate_command(
    manifest: str = typer.Argument(..., help="Manifest YAML, or a built-in name (da-3dpe, demo-h36m-c, ...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder of the benchmark."),
    source: Path | None = typer.Option(
        None, "--source", help="The source folder: raw Human3.6M, VideoPose3D npz, mmpose's processed Human3.6M or a rig "
        "with its rig.yaml, as source.kind says (synthetic manifests: generated into the cache if left out)."
    ),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Worker processes."),
    voc: Path | None = typer.Option(None, "--voc", help="Pascal VOC folder for voc_occluder."),
    executor: str = typer.Option("local", "--executor", help="Executor: local (process pool) or ray (one Ray task per unit)."),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster address (auto, host:6379, ray://host:10001); default: a local Ray runtime."
    ),
    shared_fs: bool = typer.Option(
        True, "--shared-fs/--no-shared-fs", help="Ray: tasks write under --out (shared FS) or return their files to this process."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print counts and an estimated size; write nothing."),
) -> None:
    """Generate a benchmark from a manifest (resumable: rerun the same command after an interruption)."""
    _read_yaml_first(manifest)
    from corrupt_bench.executors import make_executor
    from corrupt_bench.generate.run import estimate_bytes, frame_pixels, generate, prepare
    from corrupt_bench.generate.sources import open_source

    if dry_run:
        spec, config, plan, _ = prepare(manifest, source, voc)
        images = plan.n_rows if spec.output.format != "keypoints" else 0
        typer.echo(f"manifest {spec.name} {spec.version} ({spec.digest()[:19]})  source {config.kind}: {config.path}")
        typer.echo(f"units {len(plan.units)}  frames {plan.n_frames}  images {images}  label rows {plan.n_rows}")
        pixels = frame_pixels(open_source(config), plan)
        typer.echo(f"estimated size {_mb(estimate_bytes(spec, plan, pixels))} (assumes {spec.output.format} output)")
        for line in plan.skipped:
            typer.echo(f"note: {line}")
        return
    ray_options = {"address": address, "shared_fs": shared_fs} if executor == "ray" else {}
    summary = generate(manifest, out, source=source, workers=workers, voc=voc, executor=make_executor(executor, workers, **ray_options))
    for line in summary.skipped_sequences:
        typer.echo(f"note: {line}", err=True)
    typer.echo(
        f"{summary.out}: {summary.units} units ({summary.done_before} already done, {summary.ran} run), "
        f"{summary.images} images in {summary.seconds:.1f} s; lock {summary.lock_digest[:23]}"
    )


@user_errors
def verify_command(
    bench: Path = typer.Argument(..., help="A generated benchmark folder (with lock.json)."),
    show: int = typer.Option(20, "--show", help="How many paths to list per kind of difference."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Worker processes."),
) -> None:
    """Recompute every digest of lock.json (cell files, manifest.yaml, cameras.json); list missing, extra and
    altered files (exit 1 if any) and, when files are altered, the libraries whose versions differ from the lock's."""
    from corrupt_bench.generate.lock import verify

    report = verify(bench, show_progress=True, workers=workers)
    for kind in ("missing", "extra", "altered"):
        paths = getattr(report, kind)
        for rel in paths[:show]:
            typer.echo(f"{kind}: {rel}")
        if len(paths) > show:
            typer.echo(f"{kind}: ... and {len(paths) - show} more")
    for rel in report.temporaries[:show]:
        typer.echo(f"temporary: {rel} (left by an interrupted write; the next generate run into this folder removes it)")
    if len(report.temporaries) > show:
        typer.echo(f"temporary: ... and {len(report.temporaries) - show} more")
    for rel in report.unchecked:
        typer.echo(f"unchecked: {rel} (this lock.json, of an older version, holds no digest of it)")
    for line in report.library_differences:
        typer.echo(f"library: {line}")
    typer.echo(
        f"{bench}: {report.checked} files checked, {len(report.missing)} missing, "
        f"{len(report.extra)} extra, {len(report.altered)} altered"
        f"{f', {len(report.temporaries)} temporary' if report.temporaries else ''}: {'OK' if report.ok else 'DIFFERS'}"
    )
    if not report.ok:
        raise typer.Exit(1)


@user_errors
def validate_command(
    manifest: str = typer.Argument(..., help="Manifest YAML, or a built-in name."),
    source: Path | None = typer.Option(
        None, "--source", help="Also check the subjects and actions against this source folder (read, never written)."
    ),
) -> None:
    """Check a manifest (schema, names, corruption names, severities, overrides) without running anything."""
    _read_yaml_first(manifest)
    from corrupt_bench.generate.manifest import check_against_source, load_manifest

    spec, path = load_manifest(manifest)
    if source is not None:
        from corrupt_bench.generate.sources import open_source, resolve_source

        config = resolve_source(spec, source)
        check_against_source(spec, open_source(config).sequences(), config.path, path)
    n_cells = sum(len(c.severities) for v in spec.variants for c in v.corruptions)
    typer.echo(f"{path}: OK ({spec.name} {spec.version}, {len(spec.variants)} variant(s), {n_cells} cells + clean; {spec.digest()})")


@user_errors
def export_command(
    bench: Path = typer.Argument(..., help="A generated benchmark folder (with lock.json)."),
    fmt: str = typer.Option(
        ..., "--format", help="vp3d: VideoPose3D's data_2d_h36m_<tag>.npz + data_3d_h36m.npz; mmpose: body3d annotation npz + cameras.pkl."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (one subfolder per variant)."),
    from_run: Path | None = typer.Option(
        None, "--from-run", help="A score run: export its detector's 2D on the benchmark's images instead of the labels."
    ),
    detector: str | None = typer.Option(
        None, "--detector", help="With --from-run: the detector key under RUN/detections/ (needed when there are several)."
    ),
) -> None:
    """Write each cell's 2D input (corrupted keypoints, or the labels, or a run's detections) and the 3D
    labels in the files published lifters read (docs/INTERFACES.md, "Export")."""
    from corrupt_bench.generate.export import export

    summary = export(bench, out, fmt, from_run=from_run, detector=detector, show_progress=True)
    for line in summary.notes:
        typer.echo(f"note: {line}", err=True)
    typer.echo(f"{summary.out}: {summary.cells} cells exported as {summary.format} ({len(summary.files)} files)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("generate")(generate_command)
    app.command("verify")(verify_command)
    app.command("validate")(validate_command)
    app.command("export")(export_command)
