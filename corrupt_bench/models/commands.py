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
) -> None:
    """Train a reference model; writes safetensors weights + JSON config and a CSV log."""
    from pydantic import ValidationError

    from corrupt_bench.cli_utils import check_device
    from corrupt_bench.errors import UserError, validation_text
    from corrupt_bench.io import remove_temporaries
    from corrupt_bench.models.checkpoint import load_config
    from corrupt_bench.models.registry import get_trainer
    from corrupt_bench.outdir import output_lock

    trainer = get_trainer(name)
    cfg = load_config(name, config)
    if epochs is not None:
        cfg = {**cfg, "epochs": epochs}
    check_device(device)
    with output_lock(out, "train"):  # a second train run into --out exits naming this one
        remove_temporaries(out)  # of checkpoint writes a killed run left
        try:
            result = trainer(cfg, data=data, out=out, device=device)
        except ValidationError as exc:  # the model's config schema refused a key of --config
            raise UserError(f"invalid model config: {validation_text(exc)}", config) from None
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
