"""`report`: read score runs, write CSV tables, leaderboard, plots and a markdown + HTML summary."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_write_csv, atomic_write_text
from corrupt_bench.reports import plots, tables

DUPLICATE_KEY = ("model", "variant", "corruption", "severity", "subject", "sequence", "camera")


@dataclass(frozen=True)
class ReportFiles:
    out: Path
    reference: str
    tables: list[Path]
    plots: list[Path]
    summary_md: Path
    summary_html: Path


def load_runs(runs: list[str | Path]) -> pd.DataFrame:
    """Concatenate the result tables of several runs; the same model scored twice on a cell is an error."""
    from corrupt_bench.harness.scoring import load_results

    if not runs:
        raise UserError("give at least one run folder")
    frames = [load_results(r) for r in runs]
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        raise UserError("the runs hold no result rows", Path(runs[0]))
    ok = df[df["error"].isna()] if "error" in df else df
    keys = [k for k in DUPLICATE_KEY if k in ok.columns]
    dup = ok[ok.duplicated(keys, keep=False)]
    if "run_key" in dup and dup["run_key"].nunique() > 1:
        model = dup["model"].iloc[0]
        raise UserError(f"model '{model}' appears in several runs with different keys; score them with distinct --name")
    return df


def _atomic_csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_csv(path, df, float_format="%.4f")


def _markdown(df: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub markdown table (no extra dependency)."""

    def cell(v) -> str:
        if isinstance(v, float):
            return "" if v != v else f"{v:.{digits}f}"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def write_report(runs: list[str | Path], out: str | Path, reference: str | None = None, metric: str = "mpjpe") -> ReportFiles:
    """Write every table, plot and the summaries of `runs` into `out`."""
    out = Path(out)
    df = load_runs(runs)
    if "error" in df and df["error"].notna().all():
        first = str(df["error"].dropna().iloc[0])[:160]
        raise UserError(f"every result row of these runs failed ({len(df)} rows): nothing to report; first error: {first}", Path(runs[0]))
    spec = tables.metric_spec(metric)
    models = list(dict.fromkeys(df["model"]))
    reference = reference or models[0]
    if reference not in models:
        raise UserError(f"reference model '{reference}' is not in the runs (models: {', '.join(models)})")
    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / "plots"

    grid = tables.protocol_average(df)
    corr = tables.corruption_table(df, metric)
    ce = tables.ce_table(df, reference, metric)
    board = tables.leaderboard(df, reference, metric)
    written = [
        _atomic_csv(grid.assign(protocol="action-wise mean"), out / "grid.csv"),
        _atomic_csv(corr, out / f"corruption_table_{metric}.csv"),
        _atomic_csv(ce, out / "ce.csv"),
        _atomic_csv(tables.mce(df, reference, metric).merge(tables.relative_mce(df, reference, metric), on=["model", "variant", "reference", "metric"], how="outer")
                    .merge(tables.mean_resilience_rate(df, metric), on=["model", "variant", "metric"], how="outer"), out / "mce.csv"),  # fmt: skip
        _atomic_csv(board, out / "leaderboard.csv"),
    ]
    failures = df[df["error"].notna()] if "error" in df else df.iloc[:0]
    written.append(_atomic_csv(failures, out / "failures.csv"))
    figures = plots.severity_curves(grid, plot_dir, metric) + plots.heatmap(corr, plot_dir, metric)

    title = f"corrupt-bench report ({metric}, reference model: {reference})"
    text = tables.formulas(metric)
    direction = "higher is better" if spec.higher_is_better else "lower is better"
    notes = (
        f"Runs: {', '.join(str(r) for r in runs)}. Metric: {metric} ({spec.unit}, {direction}). Protocol: action-wise "
        f"mean (VideoPose3D), frames with non-finite predictions excluded and counted ({int(df['n_nonfinite'].sum())} "
        f"in all); {len(failures)} failed cells (failures.csv). Reference model: '{reference}'. {text['ce_formula']}; "
        f"{text['mce_formula']}; {text['relative_ce_formula']}; {text['resilience_formula']}. Ranked by mCE, then by "
        f"the mean corrupted {metric} ({direction})."
    )
    md = [f"# {title}", "", notes, "", "## Leaderboard", "", _markdown(board), ""]
    if not corr.empty:
        md += [f"## {metric} per corruption and severity", "", _markdown(corr), ""]
    md += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in figures]
    summary_md = out / "summary.md"
    atomic_write_text(summary_md, "\n".join(md) + "\n")
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(notes)}</p>", "<h2>Leaderboard</h2>",
            board.to_html(index=False, float_format=lambda v: f"{v:.2f}", na_rep="")]  # fmt: skip
    if not corr.empty:
        body += [f"<h2>{html.escape(metric)} per corruption and severity</h2>", corr.to_html(index=False, float_format=lambda v: f"{v:.2f}", na_rep="")]
    body += ["<h2>Plots</h2>"] + [f'<img src="plots/{html.escape(p.name)}" alt="{html.escape(p.stem)}">' for p in figures]
    page = "<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
    page += "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
    summary_html = out / "summary.html"
    atomic_write_text(summary_html, page + "\n".join(body) + "</body></html>\n")
    return ReportFiles(out, reference, written, figures, summary_md, summary_html)
