"""Matplotlib figures of a report (Agg backend, PNG): error vs severity per corruption, model x corruption heatmap."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from corrupt_bench.reports.tables import metric_spec


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Write a figure as PNG atomically and free it."""
    import io

    from corrupt_bench.io import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def severity_curves(grid: pd.DataFrame, out: Path, metric: str = "mpjpe") -> list[Path]:
    """One PNG per (variant, corruption): `metric` vs severity (clean at 0), one line per model."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    clean = grid[grid["severity"] == 0]
    for (variant, corruption), g in grid[grid["severity"] > 0].groupby(["variant", "corruption"], sort=True):
        fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
        for model, m in g.groupby("model", sort=True):
            base = clean[(clean["model"] == model) & (clean["variant"] == variant)]
            points = pd.concat([base[["severity", metric]], m[["severity", metric]]]).sort_values("severity")
            ax.plot(points["severity"], points[metric], marker="o", label=str(model))
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel(f"{metric} ({metric_spec(metric).unit})")
        ax.set_title(f"{variant}: {corruption}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"severity_{_slug(variant)}_{_slug(corruption)}.png"
        _save(fig, path)
        paths.append(path)
    return paths


def heatmap(table: pd.DataFrame, out: Path, metric: str = "mpjpe") -> list[Path]:
    """One PNG per variant: models x corruptions, mean `metric` over severities (from `corruption_table`)."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for variant, g in table.groupby("variant", sort=True):
        wide = g.pivot_table(index="model", columns="corruption", values="mean", aggfunc="mean")
        if wide.empty:
            continue
        fig, ax = plt.subplots(figsize=(max(4.5, 2.5 + 0.7 * wide.shape[1]), max(2.8, 1.6 + 0.45 * wide.shape[0])), dpi=100)
        spec = metric_spec(metric)  # the colours run the same way for every metric: yellow is worse
        image = ax.imshow(wide.to_numpy(dtype=float), cmap="viridis_r" if spec.higher_is_better else "viridis", aspect="auto")
        ax.set_xticks(range(wide.shape[1]), [str(c) for c in wide.columns], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(wide.shape[0]), [str(i) for i in wide.index], fontsize=8)
        for (i, j), value in np.ndenumerate(wide.to_numpy(dtype=float)):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(image, ax=ax, label=f"{metric} ({spec.unit})")
        ax.set_title(f"{variant}: {metric}, mean over severities", fontsize=9)
        fig.tight_layout()
        path = out / f"heatmap_{_slug(variant)}.png"
        _save(fig, path)
        paths.append(path)
    return paths
