"""CLI commands of corrupt_bench.harness (registered by corrupt_bench.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from corrupt_bench.cli_utils import user_errors


def _split(values: list[str] | None) -> list[str] | None:
    """Options given repeatedly or comma-separated -> one list (None when absent)."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""

    @app.command("score")
    @user_errors
    def score_command(
        model: str | None = typer.Option(None, "--model", help="Built-in model name, package.module:factory, or a checkpoint (its JSON names the model)."),
        benchmark: Path = typer.Option(..., "--benchmark", help="Generated benchmark folder, or a raw-layout folder (variant 'source')."),
        out: Path = typer.Option(..., "--out", help="Run folder (created; reruns resume)."),
        checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Checkpoint folder, .safetensors (+ .json) or .pt."),
        config: Path | None = typer.Option(None, "--config", help="YAML model config (overrides the checkpoint's keys)."),
        name: str | None = typer.Option(None, "--name", help="Model name in the results (default: --model)."),
        corruptions: list[str] | None = typer.Option(None, "--corruptions", help="Corruptions to score (repeat or comma-separate); clean is always scored."),
        severities: list[str] | None = typer.Option(None, "--severities", help="Severities to score (repeat or comma-separate)."),
        variants: list[str] | None = typer.Option(None, "--variants", help="Benchmark variants to score."),
        detector: str | None = typer.Option(None, "--detector", help="2D detector for keypoint models on image cells: a built-in detector name, a detector checkpoint or package.module:factory."),
        input_2d: str | None = typer.Option(None, "--input-2d", help="A keypoint model's 2D input: detector (needs --detector), corrupted (the benchmark's keypoints), or gt (ground-truth 2D: image corruptions do not reach the model). Required on image cells without --detector."),
        refine: str | None = typer.Option(None, "--refine", help="Refiner applied to each (sequence, camera) prediction."),
        refine_checkpoint: Path | None = typer.Option(None, "--refine-checkpoint", help="Checkpoint of the refiner."),
        device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:1 ..."),
        batch_size: int = typer.Option(64, "--batch-size", min=1),
        workers: int = typer.Option(2, "--workers", min=0, help="DataLoader workers decoding images."),
        threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads (default: the cores shared with the --workers processes; OMP_NUM_THREADS is respected)."),
        executor: str = typer.Option("local", "--executor", help="local (cells in this process) or ray (one Ray task per cell, a GPU each when the cluster has one)."),
        address: str | None = typer.Option(None, "--address", help="Ray cluster address (auto, host:6379, ray://host:10001); default: a local Ray runtime."),
        force: bool = typer.Option(False, "--force", help="Recompute every cell (and its detections), finished or not."),
        save_predictions: bool = typer.Option(False, "--save-predictions", help="Write each cell's predicted poses (OUT/predictions/<run key>/, parquet)."),
        resample: bool = typer.Option(False, "--resample", help="Feed a temporal model whose declared frame rate differs from the benchmark's input resampled to its rate (stated in every row); without it that is an error naming the remedy."),
        from_predictions: Path | None = typer.Option(None, "--from-predictions", help="Re-score the predictions a run saved (its folder) against --benchmark, without the model."),
    ) -> None:
        """Score a model on every cell of a benchmark; writes OUT/results.parquet (one row per sequence and camera)."""
        from corrupt_bench.cli_utils import check_device
        from corrupt_bench.errors import UserError
        from corrupt_bench.executors.process import set_torch_threads
        from corrupt_bench.harness.scoring import rescore, score
        from corrupt_bench.io import remove_temporaries
        from corrupt_bench.models.loading import load_config_file
        from corrupt_bench.outdir import output_lock

        if from_predictions is not None:
            if model is not None:
                raise UserError("--from-predictions re-scores saved poses: give it without --model")
            with output_lock(out, "score"):
                remove_temporaries(out, recursive=True)
                summary = rescore(from_predictions, benchmark, out)
            typer.echo(f"{summary.n_cells} cells re-scored from saved predictions; results in {summary.results}")
            return
        if model is None:
            raise UserError("give --model (or --from-predictions RUN)")

        set_torch_threads(threads, processes=1 + workers)

        try:
            sev = [int(s) for s in _split(severities) or []] or None
        except ValueError:
            raise UserError(f"--severities must be integers, got {severities}") from None
        if executor not in ("local", "ray"):
            raise UserError(f"unknown executor {executor!r}; allowed: local, ray")
        check_device(device)
        model_config = load_config_file(config)
        runner = None
        if executor == "ray":
            from corrupt_bench.executors import make_executor

            runner = make_executor("ray", address=address, num_gpus=0 if device == "cpu" else "auto")
        with output_lock(out, "score"):  # a second score run into --out exits naming this one
            remove_temporaries(out, recursive=True)  # of writes a killed run left
            summary = score(
                model, benchmark, out, checkpoint=checkpoint, config=model_config, name=name,
                corruptions=_split(corruptions), severities=sev, variants=_split(variants), detector=detector,
                input_2d=input_2d, refine=refine, refine_checkpoint=refine_checkpoint, device=device, batch_size=batch_size,
                workers=workers, force=force, save_predictions=save_predictions, resample=resample, executor=runner,
            )  # fmt: skip
        typer.echo(
            f"{summary.n_cells} cells: {summary.n_computed} computed ({summary.n_failed} failed), "
            f"{summary.n_skipped} already done; results in {summary.results}"
        )
        if summary.input_2d == "gt":
            from corrupt_bench.harness.inputs import GT_NOTE

            typer.echo(f"2D input: {GT_NOTE}", err=True)
        if summary.n_failed:
            typer.echo(
                f"error: {summary.results}: {summary.n_failed} of {summary.n_computed} cells failed (their errors are in "
                "the 'error' column; they score as failed frames); rerun to retry them",
                err=True,
            )
            raise typer.Exit(1)
