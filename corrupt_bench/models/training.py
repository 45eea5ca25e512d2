"""One training loop for every reference model: epochs with a progress bar, a checkpoint each epoch,
resume after interruption, a CSV log, CUDA with bfloat16 autocast when present.

Output folder layout:
    OUT/model.safetensors, OUT/model.json   the latest weights + config (a loadable checkpoint)
    OUT/train_state.pt                      optimizer/scheduler state and epoch (weights_only-loadable)
    OUT/train_log.csv                       one row per epoch
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_path
from corrupt_bench.models.checkpoint import META, WEIGHTS, config_digest, load_checkpoint, save_checkpoint

LossFn = Callable[[torch.nn.Module, Any], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass(frozen=True)
class FitResult:
    checkpoint: Path
    epochs_run: int
    first_loss: float
    last_loss: float


def pick_device(device: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fit(
    *,
    model_name: str,
    model: torch.nn.Module,
    config: dict,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: LossFn,
    epochs: int,
    out: str | Path,
    device: torch.device,
    scheduler: Any = None,
    extra_meta: dict | None = None,
    grad_clip: float | None = 1.0,
    steps_per_epoch: int | None = None,
) -> FitResult:
    """Train `model` for `epochs`, resuming from `out` if a run with the same config stopped early.

    `batches(epoch)` yields that epoch's batches (already on `device` or moved inside `loss_fn`);
    `loss_fn(model, batch)` returns (loss, scalars to log). `steps_per_epoch` gives the progress bar
    its total (None: no total). `config` is recorded as given (its digest guards resumption).
    """
    from corrupt_bench.progress import progress

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digest = config_digest(config)
    state_path = out / "train_state.pt"
    log_path = out / "train_log.csv"
    start_epoch = 0
    if state_path.is_file() and (out / WEIGHTS).is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("config_digest") != digest:
            raise UserError("folder holds a training run of another config; use a new --out", out)
        weights, _ = load_checkpoint(out / WEIGHTS)
        model.load_state_dict(weights)
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and "scheduler" in state:
            scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"]) + 1
    model.to(device)
    _optimizer_to(optimizer, device)
    use_amp = device.type == "cuda"
    losses: list[float] = []
    for epoch in range(start_epoch, epochs):
        model.train()
        t0 = time.perf_counter()
        total, count, scalars_sum = 0.0, 0, {}
        for batch in progress(batches(epoch), total=steps_per_epoch, description=f"{model_name} epoch {epoch + 1}/{epochs}"):
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, scalars = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise RuntimeError(f"{model_name}: non-finite loss at epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total += float(loss.detach())
            count += 1
            for k, v in scalars.items():
                scalars_sum[k] = scalars_sum.get(k, 0.0) + float(v)
        if scheduler is not None:
            scheduler.step()
        mean_loss = total / max(count, 1)
        losses.append(mean_loss)
        row = {"epoch": epoch + 1, "steps": count, "loss": mean_loss, "seconds": time.perf_counter() - t0,
               "lr": optimizer.param_groups[0]["lr"]}
        row.update({k: v / max(count, 1) for k, v in scalars_sum.items()})
        _append_csv(log_path, row)
        save_checkpoint(out, model_name, config, model.state_dict(), epoch=epoch + 1, epochs=epochs,
                        config_digest=digest, **(extra_meta or {}))
        state = {"epoch": epoch, "config_digest": digest, "optimizer": optimizer.state_dict()}
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        with atomic_path(state_path) as tmp:
            torch.save(state, tmp)
    first = losses[0] if losses else float("nan")
    last = losses[-1] if losses else float("nan")
    return FitResult(out / WEIGHTS, epochs - start_epoch, first, last)


def _optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)


def _append_csv(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


__all__ = ["FitResult", "fit", "pick_device", "META", "WEIGHTS"]
