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
    from corrupt_bench.executors.process import set_torch_threads
    from corrupt_bench.models.checkpoint import load_config
    from corrupt_bench.models.registry import get_trainer

    set_torch_threads(threads)

    trainer = get_trainer(name)
    cfg = load_config(name, config)
    if epochs is not None:
        cfg = {**cfg, "epochs": epochs}
    result = trainer(cfg, data=data, out=out, device=device)
    typer.echo(f"{name}: loss {result.first_loss:.4g} -> {result.last_loss:.4g}; checkpoint {result.checkpoint}")


def models(pattern: str = typer.Argument("*", help="Glob over model names.")) -> None:
    """List the built-in models."""
    from corrupt_bench.models.registry import default_registry

    reg = default_registry()
    for name in reg.names(pattern):
        entry = reg.get(name)
        kind = "trainable" if entry.trainer else "no training"
        typer.echo(f"{name:16s} {kind:12s} {entry.description.splitlines()[0] if entry.description else ''}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command()(train)
    app.command()(models)
