"""`report`: read score runs, write CSV tables, leaderboards, plots and a markdown + HTML summary.

Files (all in `out`): `leaderboard.csv` (the overall board and one per variant, `board` column),
`grid.csv` (every metric per model and grid point), `per_action.csv`, `corruption_table_<metric>.csv`,
`ce.csv`, `mce.csv`, `failures.csv`, `unchanged.csv` (the cell files left out of corruption means),
`failed_frames.csv` (frames the base estimator failed on, those a refiner filled, their MPJPE apart),
`compare.csv` (with `compare=(A, B)`), `plots/*.png`, `summary.md` and `summary.html` (self-contained:
the plots are embedded as data URIs, tables scroll inside their own box). Every number carries its n
and a 95 % bootstrap interval; every table says what each model was fed, on which joints, against
which reference, with which formula (`tables.notes_text`).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
    compare: Path | None = None


def load_runs(runs: list[str | Path]) -> pd.DataFrame:
    """Concatenate the result tables of several runs; the same model scored twice on a cell is an error."""
    from corrupt_bench.harness.scoring import load_results

    if not runs:
        raise UserError("give at least one run folder")
    frames = [load_results(r) for r in runs]
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        raise UserError("the runs hold no result rows", Path(runs[0]))
    keys = [k for k in DUPLICATE_KEY if k in df.columns]
    dup = df[df.duplicated(keys, keep=False)]
    if len(dup) and "run_key" in dup and dup["run_key"].nunique() > 1:
        model = dup["model"].iloc[0]
        raise UserError(f"model '{model}' appears in several runs with different keys; score them with distinct --name")
    return df


def _atomic_csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_csv(path, df, float_format="%.4f")


# --- display -------------------------------------------------------------------------------------------
def _digits(name: str, metric: str) -> int:
    """Decimals of a displayed number: 1 for mm, 3 for fractions, 2 for ratios."""
    if name in ("ce", "relative_ce", "mce", "relative_mce", "mean_resilience_rate"):
        return 2
    base = name.removeprefix("clean_").removeprefix("corrupted_")
    unit = tables.metric_spec(base).unit if base in tables.METRICS else tables.metric_spec(metric).unit
    return 3 if unit == "fraction" else 1


def with_interval(value, lo, hi, digits: int) -> str:
    """'v [lo, hi]', 'v' without an interval, '' without a value."""
    if value is None or not np.isfinite(value):
        return ""
    text = f"{value:.{digits}f}"
    if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
        text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def _plain(value) -> str:
    """A cell without an interval: '' when missing, integers without a decimal point."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def display_table(df: pd.DataFrame, metric: str, keep: list[str] | None = None) -> pd.DataFrame:
    """A table for reading: every `x` with `x_lo` / `x_hi` becomes one 'v [lo, hi]' column; `keep`
    chooses and orders the columns (after merging)."""
    out = {}
    for column in df.columns:
        if column.endswith(("_lo", "_hi")) and column[:-3] in df.columns:
            continue
        if f"{column}_lo" in df.columns:
            digits = _digits(column, metric)
            out[column] = [with_interval(v, lo, hi, digits) for v, lo, hi in zip(df[column], df[f"{column}_lo"], df[f"{column}_hi"], strict=True)]
        elif column == "coverage":
            out[column] = ["" if v != v else f"{100 * v:.1f} %" for v in df[column]]
        else:
            out[column] = [_plain(v) for v in df[column]]
    table = pd.DataFrame(out)
    return table[[c for c in keep if c in table.columns]] if keep is not None else table


def board_columns(board: pd.DataFrame, metric: str) -> list[str]:
    """The columns a reader sees of a leaderboard (the CSV has them all, intervals split)."""
    lead = ["rank", "model", "input_2d", "joints", "grid_cells", "coverage", f"clean_{metric}", "clean_p_mpjpe",
            f"corrupted_{metric}", "mce", "relative_mce", "mean_resilience_rate"]  # fmt: skip
    families = [c for c in board.columns if c.endswith(f"_{metric}") and not c.startswith(("clean_", "corrupted_"))
                and not c.endswith(("_lo", "_hi")) and board[c].notna().any()]  # fmt: skip
    return [*lead, *sorted(families), "n_sequences", "n_frames", "n_failed_frames", "unranked", "undefined", "notes"]


def _markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no extra dependency); cells are shown as given."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _html_table(df: pd.DataFrame) -> str:
    """A table inside its own horizontally scrolling box (never wider than the page)."""
    return '<div class="scroll">' + df.to_html(index=False, na_rep="", escape=True, border=0) + "</div>"


def _board_sections(board: pd.DataFrame, metric: str) -> list[tuple[str, pd.DataFrame, str]]:
    """(title, display table, note) per board, the overall one first."""
    out = []
    for name in dict.fromkeys(board["board"]):
        part = board[board["board"] == name].drop(columns="board")
        shown = display_table(part, metric, board_columns(part, metric))
        shown = shown.loc[:, [c for c in shown.columns if c in ("rank", "model") or (shown[c] != "").any()]]
        if name == tables.OVERALL:
            title = "Leaderboard: overall (ranked on the cells every ranked model has)"
        else:
            title = f"Leaderboard: {name}"
        ranked = int(part["rank"].notna().sum())
        note = f"{ranked} ranked of {len(part)}; grid_cells = grid points scored completely / grid points of this board."
        out.append((title, shown, note))
    return out


def _per_action_wide(per_action: pd.DataFrame, grid: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Clean cells: model x action (with intervals) and the action-wise mean, per variant."""
    clean = per_action[per_action["severity"] == 0]
    if clean.empty:
        return pd.DataFrame()
    digits = _digits(metric, metric)
    clean = clean.assign(_text=[with_interval(v, lo, hi, digits) for v, lo, hi in zip(clean[metric], clean[f"{metric}_lo"], clean[f"{metric}_hi"], strict=True)])
    wide = clean.pivot_table(index=["model", "variant"], columns="action", values="_text", aggfunc="first").reset_index()
    means = grid[grid["severity"] == 0]
    means = means.assign(action_mean=[with_interval(v, lo, hi, digits) for v, lo, hi in zip(means[metric], means[f"{metric}_lo"], means[f"{metric}_hi"], strict=True)])
    wide = wide.merge(means[["model", "variant", "action_mean", "n_sequences"]], on=["model", "variant"], how="left")
    wide.columns.name = None
    return wide.fillna("")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


# --- the report ------------------------------------------------------------------------------------------
def write_report(runs: list[str | Path], out: str | Path, reference: str | None = None, metric: str = "mpjpe",
                 compare: tuple[str, str] | None = None) -> ReportFiles:  # fmt: skip
    """Write every table, plot and the summaries of `runs` into `out`; with `compare=(A, B)` also the
    paired difference of the two models (`compare.csv`)."""
    out = Path(out)
    df = load_runs(runs)
    if "error" in df and df["error"].notna().all():
        first = str(df["error"].dropna().iloc[0])[:160]
        raise UserError(f"every result row of these runs failed ({len(df)} rows): nothing to report; first error: {first}", Path(runs[0]))
    tables.metric_spec(metric)
    models = list(dict.fromkeys(df["model"]))
    reference = reference or models[0]
    if reference not in models:
        raise UserError(f"reference model '{reference}' is not in the runs (models: {', '.join(models)})")
    scores = tables.Scores.build(df, reference, metric)
    compared = tables.compare(scores, *compare) if compare is not None else None
    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / "plots"

    grid = tables.grid_table(scores)
    per_action = tables.per_action_table(scores)
    corr = tables.corruption_table(scores)
    ce = tables.ce_table(scores)
    board = tables.leaderboards(scores)
    variant_boards = board[(board["board"] != tables.OVERALL) & board["unranked"].eq("")]
    mce_cols = [c for c in variant_boards.columns if c.startswith(("mce", "relative_mce", "mean_resilience_rate"))]
    mce = variant_boards[["model", "board", *mce_cols, "undefined", "reference", "metric", "mce_formula", "relative_mce_formula",
                          "resilience_formula", "notes"]].rename(columns={"board": "variant"})  # fmt: skip
    failures = df[df["error"].notna()] if "error" in df else df.iloc[:0]
    written = [
        _atomic_csv(board, out / "leaderboard.csv"),
        _atomic_csv(grid, out / "grid.csv"),
        _atomic_csv(per_action, out / "per_action.csv"),
        _atomic_csv(corr, out / f"corruption_table_{metric}.csv"),
        _atomic_csv(ce, out / "ce.csv"),
        _atomic_csv(mce, out / "mce.csv"),
        _atomic_csv(failures, out / "failures.csv"),
        _atomic_csv(scores.left_out, out / "unchanged.csv"),
        _atomic_csv(tables.failed_frame_table(scores.df), out / "failed_frames.csv"),
    ]
    compare_path = None
    if compared is not None:
        compare_path = _atomic_csv(compared, out / "compare.csv")
        written.append(compare_path)
    notes = tables.model_notes(scores.df, short=True)  # titles: the facts, the tables carry the details
    figures = plots.severity_curves(grid, plot_dir, metric, notes) + plots.heatmap(corr, plot_dir, metric, notes)

    title = f"corrupt-bench report ({metric}, reference model: {reference})"
    lines = [f"Runs: {', '.join(str(r) for r in runs)}.", *tables.notes_text(scores)]
    sections: list[tuple[str, pd.DataFrame, str]] = _board_sections(board, metric)
    if compared is not None:
        shown = display_table(compared, metric)
        shown["p_value"] = [f"{p:.3g}" if p == p else "" for p in compared["p_value"]]
        sections.append((f"Paired comparison: {compare[0]} - {compare[1]}", shown,
                         f"difference = {compare[0]} - {compare[1]} on the rows both have; {compared['test'].iloc[0]}."))  # fmt: skip
    if not corr.empty:
        shown = display_table(corr, metric)
        sections.append((f"{metric} per corruption and severity", shown, "mean: over the severities; cells where the corruption changed no frame left out."))
    wide = _per_action_wide(per_action, grid, metric)
    if not wide.empty:
        sections.append((f"{metric} per action on the clean cells (action_mean: the VideoPose3D protocol)", wide, "per_action.csv has every cell."))
    ce_shown = display_table(ce[["model", "variant", "corruption", "ce", "ce_lo", "ce_hi", "relative_ce", "relative_ce_lo",
                                 "relative_ce_hi", "relative_ce_undefined"]], metric)  # fmt: skip
    if not ce_shown.empty:
        sections.append((f"CE and relative CE against {reference}", ce_shown, tables.formulas(metric)["relative_ce_formula"]))

    md = [f"# {title}", "", *[f"- {line}" for line in lines], ""]
    body = [f"<h1>{html.escape(title)}</h1>", "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"]
    for heading, table, note in sections:
        md += [f"## {heading}", "", note, "", _markdown(table), ""]
        body += [f"<h2>{html.escape(heading)}</h2>", f"<p>{html.escape(note)}</p>", _html_table(table)]
    md += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in figures]
    body += ["<h2>Plots</h2>"] + [f'<img src="{_data_uri(p)}" alt="{html.escape(p.stem)}">' for p in figures]
    summary_md = out / "summary.md"
    atomic_write_text(summary_md, "\n".join(md) + "\n")
    style = ("body{font-family:sans-serif;max-width:72rem;margin:auto;padding:0 1rem}"
             ".scroll{overflow-x:auto;max-width:100%;margin-bottom:1rem}table{border-collapse:collapse;font-size:0.85rem}"
             "td,th{border:1px solid #ccc;padding:2px 6px;white-space:nowrap}img{max-width:100%;height:auto}")  # fmt: skip
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>"
    summary_html = out / "summary.html"
    atomic_write_text(summary_html, page + "\n".join(body) + "</body></html>\n")
    return ReportFiles(out, reference, written, figures, summary_md, summary_html, compare_path)
