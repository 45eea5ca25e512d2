"""Matplotlib figures of a report (Agg backend, PNG): `metric` vs severity per corruption, model x corruption heatmap.

Readable on purpose: severities are integer ticks, a line joins only neighbouring scored severities
(a gap where a severity was not scored), each point carries its 95 % interval; when the largest value
of a figure exceeds `LOG_SPAN` times its median (one model's metre-scale outliers), the axis or colour
scale is logarithmic and says so, so the other models are not flattened (its lower end stays within
a factor LOG_SPAN^2 of the median: a near-zero value does not stretch it). Every axis and colour bar has its
unit; a title names the models fed ground-truth 2D (`harness.inputs.GT_NOTE`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from corrupt_bench.reports.tables import metric_spec

LOG_SPAN = 10.0  # max / median of a figure's positive values beyond which its scale is logarithmic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Write a figure as PNG atomically and free it (no timestamp: the same figure gives the same bytes)."""
    import io

    from corrupt_bench.io import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _wide_span(values: np.ndarray) -> bool:
    """Whether outliers would flatten the other values on a linear scale (max > LOG_SPAN x median)."""
    positive = values[np.isfinite(values) & (values > 0)]
    return positive.size > 1 and positive.max() > LOG_SPAN * np.median(positive)


def _log_floor(values: np.ndarray) -> float:
    """The lower end of a log scale: the smallest positive value, but not below median / LOG_SPAN^2."""
    positive = values[np.isfinite(values) & (values > 0)]
    return float(max(positive.min(), np.median(positive) / LOG_SPAN**2))


def _title(text: str, models: list[str], notes: Mapping[str, str]) -> str:
    """The figure's title, with one line per shown model whose note must travel with its numbers."""
    extra = [f"{m}: {notes[m]}" for m in models if notes.get(m)]
    return "\n".join([text, *extra])


def curve_points(grid: pd.DataFrame, model: str, variant: str, corruption: str, metric: str) -> pd.DataFrame:
    """One model's curve on one corruption: rows for every integer severity 0..max (clean at 0), NaN
    where a severity was not scored, so a line never joins across a gap; columns `metric`, `_lo`, `_hi`."""
    rows = grid[(grid["model"] == model) & (grid["variant"] == variant) & ((grid["corruption"] == corruption) | (grid["severity"] == 0))]
    top = int(grid.loc[(grid["variant"] == variant) & (grid["corruption"] == corruption), "severity"].max())
    columns = [c for c in (metric, f"{metric}_lo", f"{metric}_hi") if c in rows]
    points = rows.drop_duplicates("severity").set_index("severity")[columns].reindex(range(top + 1))
    for c in (f"{metric}_lo", f"{metric}_hi"):
        if c not in points:
            points[c] = np.nan
    return points


def severity_curves(grid: pd.DataFrame, out: Path, metric: str = "mpjpe", notes: Mapping[str, str] | None = None) -> list[Path]:
    """One PNG per (variant, corruption): `metric` vs severity (clean at 0) with 95 % intervals, one
    line per model (from `tables.grid_table`)."""
    plt = _pyplot()
    notes = notes or {}
    out.mkdir(parents=True, exist_ok=True)
    spec = metric_spec(metric)
    paths = []
    clean = grid[grid["severity"] == 0]
    for (variant, corruption), g in grid[grid["severity"] > 0].groupby(["variant", "corruption"], sort=True):
        fig, ax = plt.subplots(figsize=(5.0, 3.6), dpi=100)
        top = int(g["severity"].max())
        values = []
        models = sorted(g["model"].unique())
        both = pd.concat([clean[clean["variant"] == variant], g])
        for model in models:
            points = curve_points(both, model, variant, corruption, metric)
            y = points[metric].to_numpy(float)
            lo, hi = points[f"{metric}_lo"].to_numpy(float), points[f"{metric}_hi"].to_numpy(float)
            err = np.vstack([np.where(np.isfinite(lo), y - lo, 0.0), np.where(np.isfinite(hi), hi - y, 0.0)])
            line = ax.plot(points.index, y, marker="o", label=str(model))[0]  # NaN at unscored severities: a gap
            ax.errorbar(points.index, y, yerr=np.where(np.isfinite(y), err, np.nan), fmt="none", ecolor=line.get_color(), capsize=2, alpha=0.7)
            values.append(y)
        shown = np.concatenate(values) if values else np.zeros(0)
        log = _wide_span(shown)
        if log:
            ax.set_yscale("log")
            ax.set_ylim(bottom=_log_floor(shown) / 1.5)
        ax.set_xticks(range(top + 1))
        ax.set_xlabel("severity level (0 = clean)")
        unit = spec.unit if spec.unit != "fraction" else "fraction, 0..1"
        ax.set_ylabel(f"{metric} ({unit}{', log scale' if log else ''})")
        ax.set_title(_title(f"{variant}: {corruption} (bars: 95 % interval)", models, notes), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"severity_{_slug(variant)}_{_slug(corruption)}.png"
        _save(fig, path)
        paths.append(path)
    return paths


def heatmap(table: pd.DataFrame, out: Path, metric: str = "mpjpe", notes: Mapping[str, str] | None = None) -> list[Path]:
    """One PNG per variant: models x corruptions, mean `metric` over severities (from `corruption_table`)."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    notes = notes or {}
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if table.empty:
        return paths
    for variant, g in table.groupby("variant", sort=True):
        wide = g.pivot_table(index="model", columns="corruption", values="mean", aggfunc="mean")
        if wide.empty:
            continue
        values = wide.to_numpy(dtype=float)
        fig, ax = plt.subplots(figsize=(max(4.8, 2.8 + 0.7 * wide.shape[1]), max(3.0, 1.8 + 0.45 * wide.shape[0])), dpi=100)
        spec = metric_spec(metric)  # the colours run the same way for every metric: yellow is worse
        log = _wide_span(values)
        norm = LogNorm(vmin=_log_floor(values), vmax=np.nanmax(values), clip=True) if log else None
        image = ax.imshow(values, cmap="viridis_r" if spec.higher_is_better else "viridis", aspect="auto", norm=norm)
        ax.set_xticks(range(wide.shape[1]), [str(c) for c in wide.columns], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(wide.shape[0]), [str(i) for i in wide.index], fontsize=8)
        ax.set_xlabel("corruption")
        ax.set_ylabel("model")
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.3f}" if spec.unit == "fraction" else f"{value:.1f}", ha="center", va="center", fontsize=7, color="w")
        unit = spec.unit if spec.unit != "fraction" else "fraction, 0..1"
        fig.colorbar(image, ax=ax, label=f"{metric} ({unit}{', log colour scale' if log else ''})")
        ax.set_title(_title(f"{variant}: {metric}, mean over severities", list(wide.index), notes), fontsize=8)
        fig.tight_layout()
        path = out / f"heatmap_{_slug(variant)}.png"
        _save(fig, path)
        paths.append(path)
    return paths
