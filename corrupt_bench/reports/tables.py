"""Pure pandas / numpy functions over the long result table of `score` (one row per model, variant,
corruption, severity, subject, action, camera, sequence; `corrupt_bench.harness.scoring.ROW_COLUMNS`).

What every number means:

- **Failures count.** A row's metrics already hold its failed frames with the declared penalty
  (`harness.evaluation.PENALTY_RULE`), so a row is a mean over all its `n_frames`; pooling rows weights
  them by `n_frames`. A failed cell whose labels could be read holds penalty rows (every frame
  failed) and counts like any other; `n_failed_cells`, `n_failed_frames` and `coverage` (frames
  answered / frames) are reported beside every number.
- **Protocol.** VideoPose3D's: frame-weighted within each action, then the plain mean over actions
  (`protocol_average`, `reports.stats.grid_values`).
- **Cells where the corruption changed nothing** (a cell file, i.e. one sequence of a corrupted grid
  point, whose every frame has the clean cell's pixels and label effects: `n_changed_frames == 0`,
  from `Benchmark.changed_frames`) are flagged and left out of every corruption mean, with a count
  (`unchanged_files`). Unknown (no lock digest to compare) counts as changed.
- **Comparable leaderboards** (`leaderboards`). One board per variant and an overall one. A model is
  ranked on a board only when it has every cell of that board's grid (every sequence of every
  (variant, corruption, severity) that any model has there); the others are listed unranked with
  their grid coverage and no numbers, never ahead by omission. So every ranked model on a board is
  measured on the same cells.
- **Robustness scores** against a reference model (named in every output), honouring the metric's
  direction. E is the metric's error: the value for an error (mm), 1 - value for a higher-is-better
  fraction (pck3d, auc). CE = sum_s E(s) / sum_s E_ref(s); mCE its mean over corruptions; relative
  CE = sum_s (E(s) - E_clean) / sum_s (E_ref(s) - E_ref,clean), undefined (NaN, with the reason in
  `relative_ce_undefined`) when the reference's mean degradation is below
  `RELATIVE_CE_MIN_DEGRADATION` of its clean error; relative mCE = mean over the corruptions where it is
  defined (the same corruptions for every model: it depends on the reference only); mean resilience
  rate = mean over corruptions and severities of E_clean / E(s) (v(s) / v_clean for a
  higher-is-better score). In the relative scores and the resilience E_clean is the clean error over
  the frames the model answered (`answered_<metric>`) while E(s) counts failures with the penalty, so a
  failure can only lower them: failing on hard frames cannot buy a better ratio.
- **Uncertainty.** Every number carries `n_sequences`, `n_frames` and a 95 % bootstrap interval over
  sequences (`<name>_lo`, `<name>_hi`; `reports.stats`), computed on the same resampled sequences
  for every statistic and model (paired); none (NaN) when a cell behind the number holds fewer than
  2 sequences (`Scores.support`), since the bootstrap cannot see that cell's spread.

The formulas, written for the chosen metric, are in `formulas(metric)` and in the tables' columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from corrupt_bench.errors import UserError
from corrupt_bench.harness.evaluation import ANSWERED_PREFIX, FRAME_SPLIT_COLUMNS, PENALTY_RULE
from corrupt_bench.harness.inputs import GT_NOTE
from corrupt_bench.harness.metrics import METRICS as METRIC_SPECS
from corrupt_bench.harness.metrics import MetricSpec
from corrupt_bench.harness.timing import PADDING_NOTE, RESAMPLING_NOTE
from corrupt_bench.layout import CLEAN
from corrupt_bench.reports.stats import (
    GridValues,
    Resampler,
    grid_values,
    interval,
    sequence_ids,
    sign_flip_test,
)

METRICS: tuple[str, ...] = tuple(METRIC_SPECS)
GRID = ("model", "variant", "corruption", "severity")
FILE = ("variant", "corruption", "severity", "subject", "sequence")  # one label file of a grid point
RELATIVE_CE_MIN_DEGRADATION = 0.05  # relative CE needs the reference to degrade by >= 5 % of its clean error
OVERALL = "overall"


def metric_spec(metric: str) -> MetricSpec:
    """The registry entry of a metric (UserError naming the known ones)."""
    if metric not in METRIC_SPECS:
        raise UserError(f"unknown metric '{metric}' (one of {', '.join(METRICS)})")
    return METRIC_SPECS[metric]


def formulas(metric: str) -> dict[str, str]:
    """The formula of every robustness score for `metric`, as written in the tables and the summary."""
    spec = metric_spec(metric)
    err = (lambda at: f"(1 - {metric}{at})") if spec.higher_is_better else (lambda at: f"{metric}{at}")
    resilience = f"{metric}(s) / {metric}_clean" if spec.higher_is_better else f"{metric}_clean / {metric}(s)"
    threshold = f"{RELATIVE_CE_MIN_DEGRADATION:.0%}"
    return {
        "ce_formula": f"CE = sum_s {err('(s)')} / sum_s {err('_ref(s)')}",
        "relative_ce_formula": (
            f"relative CE = sum_s [{err('(s)')} - {err('_clean')}] / sum_s [{err('_ref(s)')} - {err('_ref,clean')}], "
            f"undefined when the reference's mean degradation is below {threshold} of its clean error; "
            "_clean over the frames answered, (s) with failures penalised"
        ),
        "mce_formula": f"mCE = mean over corruptions of CE, CE = sum_s {err('(s)')} / sum_s {err('_ref(s)')}",
        "relative_mce_formula": "relative mCE = mean over the corruptions where relative CE is defined",
        "resilience_formula": (
            f"mean resilience rate = mean over corruptions and severities of {resilience} "
            "(_clean over the frames answered, (s) with failures penalised)"
        ),
    }


# --- point estimates (plain pandas, no resampling) -------------------------------------------------------
def _scored(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows that hold a value of `metric` (failed cells with penalty rows included)."""
    v = df[metric].astype(float) if metric in df else pd.Series(np.nan, index=df.index)
    return df[np.isfinite(v) & (df["n_frames"].fillna(0) > 0)]


def _present(df: pd.DataFrame, metrics: Iterable[str] | None) -> list[str]:
    return [m for m in (metrics or METRICS) if m in df.columns]


def aggregate(df: pd.DataFrame, by: Iterable[str] = GRID, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Frame-weighted means of the metrics per group `by` (every frame counts, failed ones with their
    penalty), with frame, failed-frame and failed-cell counts."""
    by = list(by)
    metrics = _present(df, metrics)
    parts = []
    for m in metrics:
        rows = _scored(df, m)
        w = rows["n_frames"].astype(float)
        sums = pd.DataFrame({"_vw": rows[m].astype(float) * w, "_w": w}).join(rows[by]).groupby(by, dropna=False).sum()
        parts.append((sums["_vw"] / sums["_w"]).rename(m))
    counts = df.groupby(by, dropna=False).agg(n_frames=("n_frames", "sum"), n_nonfinite=("n_nonfinite", "sum"))
    table = pd.concat([*parts, counts], axis=1).reset_index() if parts else counts.reset_index()
    table = table.merge(_failed_cells(df, by), on=by, how="left")
    table["n_failed"] = table["n_failed"].fillna(0).astype(int)
    table["n_frames"] = table["n_frames"].fillna(0).astype(int)
    table["n_nonfinite"] = table["n_nonfinite"].fillna(0).astype(int)
    return table.sort_values(by).reset_index(drop=True)


def _failed_cells(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Cell files whose scoring raised (`error` set), counted per group."""
    if "error" not in df or not df["error"].notna().any():
        return pd.DataFrame(columns=[*by, "n_failed"])
    failed = df[df["error"].notna()].drop_duplicates([c for c in (*by, *FILE) if c in df.columns])
    return failed.groupby(by, dropna=False).size().rename("n_failed").reset_index()


def protocol_average(df: pd.DataFrame, by: Iterable[str] = GRID, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Action-wise average (VideoPose3D): frame-weighted within each action, then the mean over actions."""
    by = list(by)
    metrics = _present(df, metrics)
    per_action = aggregate(df, [*by, "action"], metrics)
    grouped = per_action.groupby(by, dropna=False, sort=True)
    table = grouped[metrics].mean()
    table["n_actions"] = grouped.size()
    table["n_frames"] = grouped["n_frames"].sum()
    table["n_nonfinite"] = grouped["n_nonfinite"].sum()
    table["n_failed"] = grouped["n_failed"].sum()
    return table.reset_index().sort_values(by).reset_index(drop=True)


# --- unchanged cells ------------------------------------------------------------------------------------
def unchanged_files(df: pd.DataFrame) -> pd.DataFrame:
    """The corrupted cell files (variant, corruption, severity, subject, sequence) in which the
    corruption changed no frame (every row's `n_changed_frames` known and 0)."""
    if "n_changed_frames" not in df or df.empty:
        return pd.DataFrame(columns=list(FILE))
    rows = df[df["severity"] > 0]
    known = rows.groupby(list(FILE), dropna=False)["n_changed_frames"].agg(["count", "max"])
    flagged = known[(known["count"] > 0) & (known["max"] == 0)]
    return flagged.reset_index()[list(FILE)]


def drop_unchanged(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows without the unchanged cell files, the unchanged cell files)."""
    flagged = unchanged_files(df)
    if flagged.empty:
        return df, flagged
    marker = flagged.assign(_unchanged=True)
    merged = df.merge(marker, on=list(FILE), how="left")
    return df[merged["_unchanged"].isna().to_numpy()], flagged


# --- the scores of a report ---------------------------------------------------------------------------------
@dataclass
class Scores:
    """Everything a report's numbers are computed from: the kept rows (unchanged cell files left out),
    the bootstrap weights, and the protocol values of `metric` (penalised), of its answered-only form
    (the clean baseline of relative scores) and of P-MPJPE, per grid point."""

    df: pd.DataFrame
    metric: str
    reference: str
    resampler: Resampler
    left_out: pd.DataFrame
    grid: GridValues
    answered: GridValues
    p_mpjpe: GridValues
    groups: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, df: pd.DataFrame, reference: str, metric: str = "mpjpe", groups: Mapping[str, str] | None = None) -> Scores:
        metric_spec(metric)
        models = list(dict.fromkeys(df["model"]))
        if reference not in models:
            raise UserError(f"reference model '{reference}' is not in the results (models: {', '.join(sorted(models))})")
        kept, left_out = drop_unchanged(df)
        resampler = Resampler.of(df)
        kept = kept.assign(_answered_w=kept["n_frames"].fillna(0) - kept["n_nonfinite"].fillna(0))
        answered = ANSWERED_PREFIX + metric
        grid = grid_values(kept, metric, "n_frames", GRID, resampler)
        base = grid_values(kept, answered, "_answered_w", GRID, resampler) if answered in kept else grid
        p2 = grid_values(kept, "p_mpjpe", "n_frames", GRID, resampler) if "p_mpjpe" in kept else grid
        names = kept.loc[kept["severity"] > 0, "corruption"].unique()
        families = dict(groups) if groups is not None else corruption_groups(names)
        return cls(kept, metric, reference, resampler, left_out, grid, base, p2, families)

    @property
    def spec(self) -> MetricSpec:
        return metric_spec(self.metric)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.df["model"]))

    def value(self, table: GridValues, model: str, point: tuple[str, str, int]) -> np.ndarray | None:
        column = table.column((model, *point))
        return None if column is None else table.values[:, column]

    def support(self, model: str, points: Iterable[tuple[str, str, int]]) -> int:
        """The fewest sequences behind any of `points` for `model` (0 when one is missing): a number
        averaged over those points gets an interval only when every one of them has 2 or more, since
        a bootstrap over sequences cannot see the spread of a cell that holds a single one."""
        counts = []
        for p in points:
            column = self.grid.column((model, *p))
            counts.append(0 if column is None else int(self.grid.table["n_sequences"].iloc[column]))
        return min(counts) if counts else 0

    # -- which cells each model has -------------------------------------------------------------------
    def points(self, variant: str | None = None) -> list[tuple[str, str, int]]:
        """Grid points (variant, corruption, severity) some model has a value at (on `variant`)."""
        t = self.grid.table
        if variant is not None:
            t = t[t["variant"] == variant]
        return sorted({(str(v), str(c), int(s)) for v, c, s in t[["variant", "corruption", "severity"]].itertuples(index=False)})

    def _files(self) -> pd.DataFrame:
        rows = _scored(self.df, self.metric)
        return rows[["model", *FILE]].drop_duplicates()

    def coverage(self, points: list[tuple[str, str, int]]) -> dict[str, int]:
        """Per model, how many of `points` it has completely (every sequence any model has there)."""
        files = self._files()
        files = files.assign(_p=list(zip(files["variant"], files["corruption"], files["severity"].astype(int), strict=True)))
        files = files[files["_p"].isin(set(points))]
        wanted = files.groupby("_p")[["subject", "sequence"]].apply(lambda g: set(zip(g["subject"], g["sequence"], strict=True)))
        out = {}
        for model in self.models:
            mine = files[files["model"] == model]
            have = mine.groupby("_p")[["subject", "sequence"]].apply(lambda g: set(zip(g["subject"], g["sequence"], strict=True)))
            out[model] = sum(1 for p in points if p in have.index and have[p] >= wanted[p])
        return out

    # -- the numbers of one model on one variant --------------------------------------------------------
    def variant_numbers(self, model: str, variant: str) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, int]]:
        """(numbers, notes, support): each number an array (1 + B,) (estimate, replicates) of `model` on
        `variant` over every grid point of the variant; notes say why a score is undefined; support is
        each number's fewest sequences per cell (`support`)."""
        spec = self.spec
        points = self.points(variant)
        clean_points = [p for p in points if p[2] == 0]
        corrupted = [p for p in points if p[2] > 0]
        out: dict[str, np.ndarray] = {}
        notes: dict[str, str] = {}
        ref = self.reference
        support = {f"clean_{self.metric}": self.support(model, clean_points), "clean_p_mpjpe": self.support(model, clean_points),
                   f"corrupted_{self.metric}": self.support(model, corrupted),
                   "mce": min(self.support(model, corrupted), self.support(ref, corrupted)),
                   "relative_mce": min(self.support(model, points), self.support(ref, points)),
                   "mean_resilience_rate": self.support(model, points)}  # fmt: skip
        out[f"clean_{self.metric}"] = _mean([self.value(self.grid, model, p) for p in clean_points])
        if self.metric != "p_mpjpe":
            out["clean_p_mpjpe"] = _mean([self.value(self.p_mpjpe, model, p) for p in clean_points])
        if not corrupted:
            return out, notes, support
        out[f"corrupted_{self.metric}"] = _mean([self.value(self.grid, model, p) for p in corrupted])
        by_corruption: dict[str, list[tuple[str, str, int]]] = {}
        for p in corrupted:
            by_corruption.setdefault(p[1], []).append(p)
        ce = self.ce(model, variant, by_corruption)
        mce = [c["ce"] for c in ce.values()]
        out["mce"] = _mean(mce)
        defined = [c["relative_ce"] for c in ce.values() if not c["undefined"]]
        out["relative_mce"] = _mean(defined)
        undefined = sorted(name for name, c in ce.items() if c["undefined"])
        if undefined:
            notes["relative_mce"] = f"relative CE undefined on {', '.join(undefined)} ({next(c['undefined'] for c in ce.values() if c['undefined'])})"
        if any(c["ce_undefined"] for c in ce.values()):
            notes["mce"] = next(c["ce_undefined"] for c in ce.values() if c["ce_undefined"])
        base = _mean([self.value(self.answered, model, p) for p in clean_points])
        rates = []
        for p in corrupted:
            v = self.value(self.grid, model, p)
            if v is None or base is None:
                rates.append(None)
            elif spec.higher_is_better:
                rates.append(_ratio(v, base))
            else:
                rates.append(_ratio(base, v))
        out["mean_resilience_rate"] = _mean(rates)
        family_points: dict[str, list] = {}
        for p in corrupted:
            family_points.setdefault(self.groups.get(p[1], "other"), []).append(p)
        for family, fam in sorted(family_points.items()):
            out[f"{family}_{self.metric}"] = _mean([self.value(self.grid, model, p) for p in fam])
            support[f"{family}_{self.metric}"] = self.support(model, fam)
        return out, notes, support

    def ce(self, model: str, variant: str, by_corruption: Mapping[str, list[tuple[str, str, int]]] | None = None) -> dict[str, dict]:
        """Per corruption of `variant`: CE and relative CE of `model` against the reference (arrays
        (1 + B,) or None), their undefined reasons and the reference's degradation."""
        spec, ref = self.spec, self.reference
        if by_corruption is None:
            by_corruption = {}
            for p in self.points(variant):
                if p[2] > 0:
                    by_corruption.setdefault(p[1], []).append(p)
        clean_points = [p for p in self.points(variant) if p[2] == 0]
        base = _mean([self.value(self.answered, model, p) for p in clean_points])
        ref_base = _mean([self.value(self.answered, ref, p) for p in clean_points])
        out = {}
        for corruption, points in sorted(by_corruption.items()):
            mine = [self.value(self.grid, model, p) for p in points]
            theirs = [self.value(self.grid, ref, p) for p in points]
            entry = {"ce": None, "relative_ce": None, "undefined": "", "ce_undefined": "", "severities": len(points),
                     "reference_degradation": None, "support": min(self.support(model, [*points, *clean_points]),
                                                                   self.support(ref, [*points, *clean_points]))}  # fmt: skip
            if any(v is None for v in theirs) or ref_base is None:
                entry["undefined"] = entry["ce_undefined"] = f"reference model '{ref}' lacks cells of {variant}/{corruption}"
                out[corruption] = entry
                continue
            if any(v is None for v in mine) or base is None:
                entry["undefined"] = entry["ce_undefined"] = f"'{model}' lacks cells of {variant}/{corruption}"
                out[corruption] = entry
                continue
            e = np.stack([spec.error(v) for v in mine])
            e_ref = np.stack([spec.error(v) for v in theirs])
            ref_sum = e_ref.sum(axis=0)
            entry["ce"] = np.where(ref_sum > 0, e.sum(axis=0) / np.where(ref_sum > 0, ref_sum, 1.0), np.nan)
            if not ref_sum[0] > 0:
                entry["ce_undefined"] = f"the reference's error is 0 on {variant}/{corruption}"
            e_clean, e_ref_clean = spec.error(base), spec.error(ref_base)
            den = (e_ref - e_ref_clean).sum(axis=0)
            floor = RELATIVE_CE_MIN_DEGRADATION * len(points) * e_ref_clean
            ok = den >= floor
            ok &= den > 0
            entry["relative_ce"] = np.where(ok, (e - e_clean).sum(axis=0) / np.where(ok, den, 1.0), np.nan)
            degradation = den[0] / len(points)
            entry["reference_degradation"] = degradation
            if not ok[0]:
                unit = metric_spec(self.metric).unit
                entry["undefined"] = (
                    f"reference '{ref}' degrades by {degradation:.3g} {'(error) ' if spec.higher_is_better else ''}{unit} on average on "
                    f"{corruption}, below {RELATIVE_CE_MIN_DEGRADATION:.0%} of its clean error {e_ref_clean[0]:.3g}"
                )
                entry["relative_ce"] = np.full_like(den, np.nan)
            out[corruption] = entry
        return out


def _mean(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    """Element-wise mean of equal-length arrays; None when any is missing (a number needs every cell)."""
    if not arrays or any(a is None for a in arrays):
        return None
    return np.mean(np.stack(arrays), axis=0)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1.0), np.nan)


def _put(row: dict, name: str, values: np.ndarray | None, n_sequences: int) -> None:
    """`name`, `name_lo`, `name_hi` of a number (estimate and interval) into a table row; no interval
    when `n_sequences` (the fewest sequences of any cell behind the number) is below 2."""
    if values is None:
        row[name] = row[f"{name}_lo"] = row[f"{name}_hi"] = np.nan
        return
    lo, hi = interval(values[1:], n_sequences)
    row[name], row[f"{name}_lo"], row[f"{name}_hi"] = float(values[0]), float(lo), float(hi)


# --- per model notes ------------------------------------------------------------------------------------
def _per_model(df: pd.DataFrame, column: str) -> dict[str, str]:
    """Per model, the distinct values of `column` in its rows, sorted and comma-joined."""
    if column not in df:
        return {}
    return {str(m): ", ".join(sorted({str(v) for v in g.dropna()})) for m, g in df.groupby("model", sort=False)[column]}


def model_inputs(df: pd.DataFrame) -> dict[str, str]:
    """Per model, what it was fed (the distinct `input_2d` values of its rows, sorted)."""
    return _per_model(df, "input_2d")


def model_joints(df: pd.DataFrame) -> dict[str, str]:
    return _per_model(df, "joints")


def model_notes(df: pd.DataFrame, short: bool = False) -> dict[str, str]:
    """Per model, what every table must say about it: ground-truth 2D, a declared joint subset, input
    resampled to the model's frame rate, person crops cut with a detector's box. `short`: the same
    facts without the rates and the resampling method (a plot title; the tables give them whole)."""
    inputs, joints, rates, boxes = model_inputs(df), model_joints(df), _per_model(df, "frame_rate"), _per_model(df, "box")
    notes = {}
    for model in dict.fromkeys(df["model"]):
        parts = []
        if "gt" in inputs.get(model, "").split(", "):
            parts.append(GT_NOTE)
        js = joints.get(model, "")
        if js and not js.startswith("all "):
            parts.append(f"metrics on its declared joints ({js})")
        if "resampled" in rates.get(model, ""):
            parts.append("input resampled to its frame rate" if short else f"input resampled ({rates[model]}; {RESAMPLING_NOTE})")
        if "detector" in boxes.get(model, "").split(", "):
            parts.append("crops cut with the detector's box" if short else "person crops cut with the 2D detector's box on the corrupted frame (box: detector)")
        notes[model] = "; ".join(parts)
    return notes


def failed_frame_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (model, variant, corruption, severity): the frames the base estimator failed on
    (`n_base_failed`), how many a refiner filled (`n_filled`), and the MPJPE over those frames apart
    from the MPJPE over the others (`mpjpe_failed_frames`, `mpjpe_answered_frames`: frame-weighted
    over rows, failed frames penalised as everywhere); padded window frames and the frame rate."""
    by = list(GRID)
    if "n_base_failed" not in df:
        return pd.DataFrame(columns=[*by, *FRAME_SPLIT_COLUMNS])
    d = df.assign(
        _nf=df["n_base_failed"].fillna(0), _na=df["n_frames"].fillna(0) - df["n_base_failed"].fillna(0),
        _ef=df["mpjpe_failed_frames"].fillna(0) * df["n_base_failed"].fillna(0),
        _ea=df["mpjpe_answered_frames"].fillna(0) * (df["n_frames"].fillna(0) - df["n_base_failed"].fillna(0)),
    )  # fmt: skip
    g = d.groupby(by, dropna=False)
    table = g.agg(n_frames=("n_frames", "sum"), n_base_failed=("_nf", "sum"), n_filled=("n_filled", "sum"),
                  _ef=("_ef", "sum"), _ea=("_ea", "sum"), _na=("_na", "sum"),
                  n_padded_frames=("n_padded_frames", "sum")).reset_index()  # fmt: skip
    table["mpjpe_failed_frames"] = table["_ef"] / table["n_base_failed"].where(table["n_base_failed"] > 0)
    table["mpjpe_answered_frames"] = table["_ea"] / table["_na"].where(table["_na"] > 0)
    for column in ("frame_rate", "box"):
        if column in df:
            table = table.merge(g[column].agg(lambda v: ", ".join(sorted({str(x) for x in v.dropna()}))).reset_index(), on=by)
    return table.drop(columns=["_ef", "_ea", "_na"]).sort_values(by).reset_index(drop=True)


# --- leaderboards ---------------------------------------------------------------------------------------
def _board_row(scores: Scores, model: str, variants: list[str], points: list, have: int, notes: dict[str, str]) -> dict:
    rows = scores.df[(scores.df["model"] == model) & scores.df["variant"].isin(variants)]
    return {
        "model": model,
        "input_2d": model_inputs(rows).get(model, ""),
        "joints": model_joints(rows).get(model, ""),
        "grid_cells": f"{have}/{len(points)}",
        "cells_scored": have,
        "cells_in_grid": len(points),
        "coverage": float(1 - rows["n_nonfinite"].sum() / rows["n_frames"].sum()) if rows["n_frames"].sum() else np.nan,
        "n_sequences": int(sequence_ids(rows).nunique()) if len(rows) else 0,
        "n_frames": int(rows["n_frames"].sum()),
        "n_failed_frames": int(rows["n_nonfinite"].sum()),
        "n_failed_cells": int(len(rows[rows["error"].notna()].drop_duplicates(list(FILE)))) if "error" in rows else 0,
        "notes": notes.get(model, ""),
    }


def _rank(board: pd.DataFrame, metric: str, spec: MetricSpec) -> pd.DataFrame:
    """Rank the ranked rows by mCE, then by the mean corrupted value (clean without corruptions) in the
    metric's better direction, then by name; unranked rows keep no rank and go last."""
    ranked = board["unranked"].eq("")
    key_ce = board["mce"].where(board["mce"].notna(), np.inf) if "mce" in board else pd.Series(np.inf, index=board.index)
    value = board.get(f"corrupted_{metric}", pd.Series(np.nan, index=board.index))
    value = value.fillna(board[f"clean_{metric}"])
    key_value = (-value if spec.higher_is_better else value).fillna(np.inf)
    order = pd.DataFrame({"_u": ~ranked, "_k": key_ce, "_e": key_value, "_m": board["model"]}).sort_values(["_u", "_k", "_e", "_m"]).index
    board = board.loc[order].reset_index(drop=True)
    ranks = np.full(len(board), np.nan)
    n = int(board["unranked"].eq("").sum())
    ranks[:n] = np.arange(1, n + 1)
    board.insert(1, "rank", pd.array(ranks, dtype="Int64"))
    return board


def leaderboards(scores: Scores) -> pd.DataFrame:
    """The overall board and one board per variant, one long table (`board` column): see the module
    docstring for who is ranked where. Every number has `_lo` / `_hi` and the row's n."""
    metric, spec = scores.metric, scores.spec
    notes = model_notes(scores.df)
    variants = sorted({p[0] for p in scores.points()})
    text = formulas(metric)
    boards = []
    per_variant: dict[tuple[str, str], tuple[dict, dict]] = {}
    for variant in variants:
        points = scores.points(variant)
        have = scores.coverage(points)
        rows = []
        for model in scores.models:
            row = {"board": variant, **_board_row(scores, model, [variant], points, have[model], notes)}
            if have[model] < len(points):
                row["unranked"] = "not scored on this variant" if have[model] == 0 and row["n_frames"] == 0 else f"lacks {len(points) - have[model]} of {len(points)} cells of this variant"
            else:
                row["unranked"] = ""
                numbers, why, support = scores.variant_numbers(model, variant)
                per_variant[(model, variant)] = (numbers, why, support)
                for name, values in numbers.items():
                    _put(row, name, values, support[name])
                row["undefined"] = "; ".join(f"{k}: {v}" for k, v in why.items())
            rows.append(row)
        boards.append(_rank(_columns(pd.DataFrame(rows), metric), metric, spec))
    all_points = scores.points()
    have = scores.coverage(all_points)
    rows = []
    for model in scores.models:
        row = {"board": OVERALL, **_board_row(scores, model, variants, all_points, have[model], notes)}
        if have[model] < len(all_points):
            lacking = [v for v in variants if (model, v) not in per_variant]
            row["unranked"] = f"lacks {len(all_points) - have[model]} of {len(all_points)} cells (variants: {', '.join(lacking)})"
        else:
            row["unranked"] = ""
            merged: dict[str, list] = {}
            fewest: dict[str, int] = {}
            why_all = []
            for variant in variants:
                numbers, why, support = per_variant[(model, variant)]
                for name, values in numbers.items():
                    merged.setdefault(name, []).append(values)
                    fewest[name] = min(fewest.get(name, support[name]), support[name])
                why_all += [f"{variant} {k}: {v}" for k, v in why.items()]
            for name, values in merged.items():  # the mean over the variants that have the number
                _put(row, name, _mean(values), fewest[name])
            row["undefined"] = "; ".join(why_all)
        rows.append(row)
    boards.insert(0, _rank(_columns(pd.DataFrame(rows), metric), metric, spec))
    board = pd.concat(boards, ignore_index=True)
    return board.assign(reference=scores.reference, metric=metric, mce_formula=text["mce_formula"],
                        relative_mce_formula=text["relative_mce_formula"], resilience_formula=text["resilience_formula"])  # fmt: skip


def _columns(board: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Every board has the same leading columns, whatever its rows hold."""
    lead = ["board", "model", "input_2d", "joints", "grid_cells", "cells_scored", "cells_in_grid", "coverage"]
    numbers = [f"clean_{metric}", "clean_p_mpjpe", f"corrupted_{metric}", "mce", "relative_mce", "mean_resilience_rate"]
    for name in numbers:
        if metric == "p_mpjpe" and name == "clean_p_mpjpe":
            continue
        for suffix in ("", "_lo", "_hi"):
            if name + suffix not in board:
                board[name + suffix] = np.nan
    for name in ("undefined", "unranked", "notes"):
        if name not in board:
            board[name] = ""
    board["undefined"] = board["undefined"].fillna("")
    rest = [c for c in board.columns if c not in lead and c not in ("n_sequences", "n_frames", "n_failed_frames", "n_failed_cells", "undefined", "unranked", "notes")]
    return board[[*lead, *rest, "n_sequences", "n_frames", "n_failed_frames", "n_failed_cells", "unranked", "undefined", "notes"]]


def leaderboard(df: pd.DataFrame, reference: str, metric: str = "mpjpe", groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The overall board of `leaderboards` (one row per model; unranked models last, without numbers)."""
    board = leaderboards(Scores.build(df, reference, metric, groups))
    return board[board["board"] == OVERALL].drop(columns="board").reset_index(drop=True)


# --- tables ---------------------------------------------------------------------------------------------
def grid_table(scores: Scores, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Per (model, variant, corruption, severity): every metric (protocol average) with its interval,
    n_sequences, n_frames, n_actions, failed frames and cells, coverage, the unchanged cell files left
    out, what the model was fed and its joint set."""
    df = scores.df
    metrics = _present(df, metrics)
    table = None
    for m in metrics:
        values = scores.grid if m == scores.metric else grid_values(df, m, "n_frames", GRID, scores.resampler)
        part = values.table.copy()
        lo, hi = interval(values.values[1:], part["n_sequences"].to_numpy())
        part[m], part[f"{m}_lo"], part[f"{m}_hi"] = values.values[0], lo, hi
        if table is None:
            table = part
        else:
            table = table.merge(part.drop(columns=["n_sequences", "n_frames", "n_actions"]), on=list(GRID), how="outer")
    table = table if table is not None else pd.DataFrame(columns=list(GRID))
    book = df.groupby(list(GRID), dropna=False).agg(n_failed_frames=("n_nonfinite", "sum"), _frames=("n_frames", "sum")).reset_index()
    book["coverage"] = 1 - book["n_failed_frames"] / book["_frames"].where(book["_frames"] > 0)
    table = table.merge(book.drop(columns="_frames"), on=list(GRID), how="outer")
    table = table.merge(_failed_cells(df, list(GRID)).rename(columns={"n_failed": "n_failed_cells"}), on=list(GRID), how="left")
    left = scores.left_out
    if not left.empty:
        counts = left.groupby(["variant", "corruption", "severity"]).size().rename("unchanged_files").reset_index()
        pairs = scores.df[["model", "variant"]].drop_duplicates().merge(counts, on="variant")
        table = table.merge(pairs, on=list(GRID), how="outer")
    else:
        table["unchanged_files"] = 0
    table["unchanged_files"] = table["unchanged_files"].fillna(0).astype(int)
    table["n_failed_cells"] = table["n_failed_cells"].fillna(0).astype(int)
    notes, inputs, joints = model_notes(df), model_inputs(df), model_joints(df)
    table["input_2d"] = table["model"].map(inputs)
    table["joints"] = table["model"].map(joints)
    table["notes"] = table["model"].map(notes).fillna("")
    table["protocol"] = "action-wise mean (VideoPose3D); failed frames penalised"
    return table.sort_values(list(GRID)).reset_index(drop=True)


def per_action_table(scores: Scores) -> pd.DataFrame:
    """Per (model, variant, corruption, severity, action): `metric` with its interval and n; the
    action-wise mean of each grid point is `grid_table`'s value."""
    values = grid_values(scores.df, scores.metric, "n_frames", [*GRID, "action"], scores.resampler)
    table = values.table.copy()
    lo, hi = interval(values.values[1:], table["n_sequences"].to_numpy())
    table[scores.metric], table[f"{scores.metric}_lo"], table[f"{scores.metric}_hi"] = values.values[0], lo, hi
    return table.assign(metric=scores.metric, notes=table["model"].map(model_notes(scores.df)).fillna(""))


def corruption_table(scores: Scores) -> pd.DataFrame:
    """Per (model, variant, corruption): the clean value, each severity and their mean, with intervals."""
    rows = []
    for model in scores.models:
        for variant in sorted({p[0] for p in scores.points()}):
            points = scores.points(variant)
            clean = _mean([scores.value(scores.grid, model, p) for p in points if p[2] == 0])
            corruptions = sorted({p[1] for p in points if p[2] > 0})
            for corruption in corruptions:
                mine = [(p[2], scores.value(scores.grid, model, p)) for p in points if p[1] == corruption]
                mine = [(s, v) for s, v in mine if v is not None]
                if not mine:
                    continue
                subset = scores.df[(scores.df["model"] == model) & (scores.df["variant"] == variant)
                                   & scores.df["corruption"].isin([corruption, CLEAN])]  # fmt: skip
                n_seq = int(sequence_ids(subset).nunique())
                row = {"model": model, "variant": variant, "corruption": corruption, "n_sequences": n_seq,
                       "n_frames": int(subset["n_frames"].sum()), "severities": len(mine)}  # fmt: skip
                clean_points = [p for p in points if p[2] == 0]
                mine_points = [p for p in points if p[1] == corruption]
                _put(row, "clean", clean, scores.support(model, clean_points))
                for severity, v in mine:
                    _put(row, f"s{severity}", v, scores.support(model, [(variant, corruption, severity)]))
                _put(row, "mean", _mean([v for _, v in mine]), scores.support(model, mine_points))
                rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=["model", "variant", "corruption", "clean", "mean", "metric"])
    left = scores.left_out
    counts = left.groupby(["variant", "corruption"]).size().rename("unchanged_files_left_out") if not left.empty else None
    table = table.merge(counts.reset_index(), on=["variant", "corruption"], how="left") if counts is not None else table.assign(unchanged_files_left_out=0)
    table["unchanged_files_left_out"] = table["unchanged_files_left_out"].fillna(0).astype(int)
    notes = model_notes(scores.df)
    severity_cols = sorted({c for c in table.columns if c[:1] == "s" and c[1:].split("_")[0].isdigit()}, key=lambda c: (int(c[1:].split("_")[0]), c))
    lead = ["model", "variant", "corruption", "clean", "clean_lo", "clean_hi"]
    tail = ["mean", "mean_lo", "mean_hi", "severities", "n_sequences", "n_frames", "unchanged_files_left_out"]
    table = table[lead + severity_cols + tail]
    return table.assign(metric=scores.metric, notes=table["model"].map(notes).fillna(""))


def ce_table(df_or_scores, reference: str | None = None, metric: str = "mpjpe") -> pd.DataFrame:
    """CE and relative CE per (model, variant, corruption) against the reference, with intervals, the
    reference's mean degradation and the reason where relative CE is undefined."""
    scores = df_or_scores if isinstance(df_or_scores, Scores) else Scores.build(df_or_scores, str(reference), metric)
    text = formulas(scores.metric)
    rows = []
    for model in scores.models:
        for variant in sorted({p[0] for p in scores.points()}):
            n_seq = int(sequence_ids(scores.df[(scores.df["model"] == model) & (scores.df["variant"] == variant)]).nunique())
            if n_seq == 0:
                continue
            for corruption, entry in scores.ce(model, variant).items():
                row = {"model": model, "variant": variant, "corruption": corruption, "severities": entry["severities"], "n_sequences": n_seq}
                _put(row, "ce", entry["ce"], entry["support"])
                _put(row, "relative_ce", entry["relative_ce"], entry["support"])
                row["reference_degradation"] = entry["reference_degradation"]
                row["relative_ce_undefined"] = entry["undefined"]
                row["ce_undefined"] = entry["ce_undefined"]
                rows.append(row)
    columns = ["model", "variant", "corruption", "ce", "ce_lo", "ce_hi", "relative_ce", "relative_ce_lo", "relative_ce_hi",
               "severities", "n_sequences", "reference_degradation", "relative_ce_undefined", "ce_undefined"]  # fmt: skip
    out = pd.DataFrame(rows, columns=columns)
    return out.assign(reference=scores.reference, metric=scores.metric, ce_formula=text["ce_formula"],
                      relative_ce_formula=text["relative_ce_formula"], notes=out["model"].map(model_notes(scores.df)).fillna(""))  # fmt: skip


def mce(df: pd.DataFrame, reference: str, metric: str = "mpjpe") -> pd.DataFrame:
    """mCE, relative mCE and mean resilience rate per (model, variant) against `reference` (the
    numbers of the per-variant leaderboards, for every model that has the variant's whole grid)."""
    board = leaderboards(Scores.build(df, reference, metric))
    board = board[(board["board"] != OVERALL) & board["unranked"].eq("")]
    cols = ["model", "board", "mce", "mce_lo", "mce_hi", "relative_mce", "relative_mce_lo", "relative_mce_hi",
            "mean_resilience_rate", "mean_resilience_rate_lo", "mean_resilience_rate_hi", "undefined", "reference", "metric",
            "mce_formula", "relative_mce_formula", "resilience_formula", "notes"]  # fmt: skip
    return board[cols].rename(columns={"board": "variant"}).reset_index(drop=True)


# --- the paired comparison of two models ------------------------------------------------------------------
def compare(scores: Scores, model_a: str, model_b: str) -> pd.DataFrame:
    """The paired difference A - B of `metric` on the rows both models have (same variant, corruption,
    severity, sequence and camera), per variant and over all shared variants, split into clean and
    corrupted (mean over the shared corrupted grid points): the difference with its bootstrap
    interval (the same resampled sequences for both models) and the p-value of a paired sign-flip
    permutation test over sequences (`stats.sign_flip_test`)."""
    for model in (model_a, model_b):
        if model not in scores.models:
            raise UserError(f"model '{model}' is not in the runs (models: {', '.join(scores.models)})")
    spec, metric = scores.spec, scores.metric
    key = [*FILE, "camera", "action"]
    a = _scored(scores.df[scores.df["model"] == model_a], metric)[[*key, metric, "n_frames"]]
    b = _scored(scores.df[scores.df["model"] == model_b], metric)[[*key, metric, "n_frames"]]
    both = a.merge(b, on=key, suffixes=("_a", "_b"))
    both = both.assign(model="pair", _d=both[f"{metric}_a"] - both[f"{metric}_b"], _w=(both["n_frames_a"] + both["n_frames_b"]) / 2)
    rows = []
    scopes = [(v, [v]) for v in sorted(both["variant"].unique())]
    if len(scopes) > 1:
        scopes.append(("all shared variants", [v for v, _ in scopes]))
    for scope, variants in scopes:
        for part, corrupted in (("clean", False), ("corrupted", True)):
            rows.append(_paired(scores, both, scope, variants, part, corrupted, (model_a, model_b)))
    out = pd.DataFrame(rows)
    direction = "higher is better" if spec.higher_is_better else "lower is better"
    notes = model_notes(scores.df)
    said = "; ".join(f"{m}: {notes[m]}" for m in dict.fromkeys((model_a, model_b)) if notes.get(m))
    return out.assign(metric=metric, direction=direction, test="paired sign-flip permutation test over sequences (two-sided)", notes=said)


def _paired(scores: Scores, both: pd.DataFrame, scope: str, variants: list[str], part: str, corrupted: bool, models: tuple[str, str]) -> dict:
    metric = scores.metric
    rows = both[both["variant"].isin(variants) & ((both["severity"] > 0) if corrupted else (both["severity"] == 0))]
    row = {"scope": scope, "part": part, "model_a": models[0], "model_b": models[1], "points": 0, "n_sequences": 0, "n_frames": 0}
    if rows.empty:
        for name in ("a", "b", "difference"):
            _put(row, name, None, 0)
        row["p_value"] = np.nan
        return row
    values = {name: grid_values(rows, column, "_w", GRID, scores.resampler) for name, column in
              (("a", f"{metric}_a"), ("b", f"{metric}_b"), ("difference", "_d"))}  # fmt: skip
    table = values["difference"].table
    n_seq = int(sequence_ids(rows).nunique())
    row.update(points=len(table), n_sequences=n_seq, n_frames=int(rows["_w"].sum()))
    # each variant's mean over its points, then the mean over variants (one variant: the mean over its points)
    weights = np.zeros(len(table))
    per_variant = table.groupby("variant").size()
    for i, variant in enumerate(table["variant"]):
        weights[i] = 1.0 / (len(per_variant) * per_variant[variant])
    fewest = int(table["n_sequences"].min())
    for name, gv in values.items():
        _put(row, name, gv.values @ weights, fewest)
    row["p_value"] = sign_flip_test(_contributions(rows, table, weights, scores.resampler), (scope, part, *models))
    return row


def _contributions(rows: pd.DataFrame, table: pd.DataFrame, point_weights: np.ndarray, resampler: Resampler) -> np.ndarray:
    """Per sequence, its share of the paired difference (the statistic is their sum and is linear in
    them: within an action the frame-weighted mean, then the means over actions, points and variants)."""
    point = {tuple(r): i for i, r in enumerate(table[list(GRID)].itertuples(index=False, name=None))}
    rows = rows.assign(_p=[point[tuple(r)] for r in rows[list(GRID)].itertuples(index=False, name=None)], action=rows["action"].astype(str))
    action_w = rows.groupby(["_p", "action"])["_w"].transform("sum")
    n_actions = rows.groupby("_p")["action"].transform("nunique")
    share = point_weights[rows["_p"].to_numpy()] / n_actions.to_numpy() * rows["_w"].to_numpy() / action_w.to_numpy() * rows["_d"].to_numpy()
    out = np.zeros(len(resampler.sequences))
    np.add.at(out, resampler.index(rows), share)
    return out


# --- families ------------------------------------------------------------------------------------------
# Families of the built-in corruptions for the per-family means (ImageNet-C style groups); a
# corruption not listed here falls back to the modality of its table (corruptions/<name>.yaml).
FAMILIES: dict[str, str] = {
    "gaussian_noise": "noise", "shot_noise": "noise", "speckle_noise": "noise", "salt_pepper": "noise",
    "defocus_blur": "blur", "motion_blur": "blur",
    "brightness": "digital", "contrast": "digital", "jpeg_compression": "digital", "pixelate": "digital",
    "block_dropout": "occlusion", "random_erase": "occlusion", "voc_occluder": "occlusion",
    "temporal_occlusion": "temporal",
    "view_drop": "multi-view", "subframe_desync": "multi-view",
    "keypoint_jitter": "keypoint", "joint_dropout": "keypoint",
}  # fmt: skip


def corruption_groups(names: Iterable[str]) -> dict[str, str]:
    """Family of each corruption: `FAMILIES`, else the modality in its YAML table, else 'other'."""
    from corrupt_bench.resources import resource_dir
    from corrupt_bench.safe_yaml import load_yaml

    groups: dict[str, str] = {}
    for name in names:
        group = FAMILIES.get(name)
        if group is None:
            group = "other"
            try:
                path = resource_dir("corruptions") / f"{name}.yaml"
                if path.is_file():
                    table = load_yaml(path, "severity table")
                    if isinstance(table, dict) and isinstance(table.get("modality"), str):
                        group = table["modality"]
            except UserError:
                group = "other"
        groups[name] = CLEAN if name == CLEAN else group
    return groups


def notes_text(scores: Scores) -> list[str]:
    """The lines every summary states: protocol, failures, unchanged cells, 2D inputs, joint sets,
    reference and formulas, intervals."""
    from corrupt_bench.reports.stats import INTERVAL_NOTE

    spec, metric = scores.spec, scores.metric
    direction = "higher is better" if spec.higher_is_better else "lower is better"
    text = formulas(metric)
    df = scores.df
    n_files = len(df[["model", *FILE]].drop_duplicates())
    failed_cells = int(_failed_cells(df, ["model"])["n_failed"].sum()) if len(df) else 0
    lines = [
        f"Metric: {metric} ({spec.unit}, {direction}). Protocol: action-wise mean (VideoPose3D): frame-weighted within each "
        "action, then the mean over actions; 'frames' count each camera's frames.",
        f"Failures are counted, never dropped: {PENALTY_RULE}. In all: {int(df['n_nonfinite'].sum())} failed frames of "
        f"{int(df['n_frames'].sum())}, {failed_cells} failed cells (failures.csv); coverage = frames answered / frames.",
        f"Unchanged cells: {len(scores.left_out)} corrupted cell files (one sequence of a variant/corruption/severity) in which "
        "the corruption changed no frame (pixel digests of lock.json and label effects equal to the clean cell's) are left out "
        "of every corruption mean (grid.csv: unchanged_files).",
        f"Reference model: '{scores.reference}'. {text['ce_formula']}; {text['mce_formula']}; {text['relative_ce_formula']}; "
        f"{text['relative_mce_formula']}; {text['resilience_formula']}.",
        "Leaderboards: one per variant and an overall one; a model is ranked on a board only when it has every cell of that "
        "board's grid (grid_cells), so ranked models share their cells; the others are listed unranked, without numbers. "
        f"Ranked by mCE, then by the mean corrupted {metric} ({direction}). Values over several variants are means of the "
        "per-variant values.",
        f"{INTERVAL_NOTE}. {len(scores.resampler.sequences)} sequences, {n_files} scored (model, cell file) pairs.",
    ]
    inputs = model_inputs(df)
    lines.append("2D input per model: " + "; ".join(f"{m}: {v or 'n/a'}" for m, v in inputs.items()) + ".")
    if "n_base_failed" in df and df["n_base_failed"].fillna(0).sum():
        lines.append(
            f"Failed frames apart (failed_frames.csv): {int(df['n_base_failed'].fillna(0).sum())} frames where the base estimator "
            f"gave no pose (non-finite output, or no person in its 2D input or box), {int(df['n_filled'].fillna(0).sum())} of "
            "them filled by a refiner; mpjpe_failed_frames is the MPJPE over those frames, mpjpe_answered_frames over the others."
        )
    rates, boxes = _per_model(df, "frame_rate"), _per_model(df, "box")
    if rates:
        lines.append("Frame rate per model: " + "; ".join(f"{m}: {v or 'n/a'}" for m, v in rates.items()) + f". Padding: {PADDING_NOTE}; "
                     "the padded frames are counted per row (n_padded_frames).")  # fmt: skip
    if boxes:
        lines.append("Person boxes per model: " + "; ".join(f"{m}: {v or 'n/a'}" for m, v in boxes.items()) + " (gt: the "
                     "ground-truth box, the papers' choice; detector: the 2D detector's box on the corrupted frame, no person = a failed frame).")  # fmt: skip
    for model, note in model_notes(df).items():
        if note:
            lines.append(f"{model}: {note}.")
    return lines
