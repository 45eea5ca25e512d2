"""CLI commands of corrupt_bench.models: `train` and `models` (registered by corrupt_bench.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from corrupt_bench.cli_utils import user_errors


@user_errors
def train(
    name: str = typer.Argument(..., help="Reference model name (see `corrupt-bench models`)."),
    config: str = typer.Option("tiny", "--config", help="'tiny', 'full' or a YAML config file."),
    data: Path = typer.Option(..., "--data", help="Raw-layout Human3.6M folder (real or synthetic)."),
    out: Path = typer.Option(..., "--out", help="Checkpoint folder (resumed when it holds an unfinished run)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Override the config's number of epochs."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: CUDA when present)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads (default: the available cores; OMP_NUM_THREADS is respected)."),
) -> None:
    """Train a reference model; writes safetensors weights + JSON config and a CSV log."""
    from corrupt_bench.cli_utils import check_device
    from corrupt_bench.executors.process import set_torch_threads
    from corrupt_bench.io import remove_temporaries
    from corrupt_bench.models.checkpoint import config_path, load_config
    from corrupt_bench.models.loading import check_config
    from corrupt_bench.models.registry import get_trainer
    from corrupt_bench.outdir import output_lock

    set_torch_threads(threads)

    trainer = get_trainer(name)
    cfg = load_config(name, config)
    if epochs is not None:
        cfg = {**cfg, "epochs": epochs}
    check_config(name, cfg, config_path(name, config))  # an unknown or wrong-typed key: one line, exit 2
    check_device(device)
    with output_lock(out, "train"):  # a second train run into --out exits naming this one
        remove_temporaries(out)  # of checkpoint writes a killed run left
        result = trainer(cfg, data=data, out=out, device=device)
    typer.echo(f"{name}: loss {result.first_loss:.4g} -> {result.last_loss:.4g}; checkpoint {result.checkpoint}")


def models(
    pattern: str = typer.Argument("*", help="Glob over model names."),
    kind: str | None = typer.Option(None, "--kind", help="Only this kind: predictor, refiner or detector."),
) -> None:
    """List the built-in models (name, kind, whether it trains, what it is)."""
    from corrupt_bench.errors import UserError
    from corrupt_bench.models.registry import BUILTIN

    if kind not in (None, "predictor", "refiner", "detector"):
        raise UserError(f"unknown kind {kind!r}; allowed: predictor, refiner, detector")
    for name in BUILTIN.names(pattern, kind):  # type: ignore[arg-type]
        for entry in BUILTIN.named(name):
            if kind is None or entry.kind == kind:
                trains = "trainable" if entry.trainer else "no training"
                typer.echo(f"{name:16s} {entry.kind:10s} {trains:12s} {entry.description}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command()(train)
    app.command()(user_errors(models))
