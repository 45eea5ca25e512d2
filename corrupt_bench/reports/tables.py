"""Pure pandas functions over the long result table of `score` (one row per model, variant, corruption,
severity, subject, action, camera, sequence; see `corrupt_bench.harness.scoring.ROW_COLUMNS`).

Averaging: a row's metrics are means over its `n_frames - n_nonfinite` finite frames, so pooling rows
weights them by that count (`aggregate`). `protocol_average` follows VideoPose3D: pool within each
action, then take the plain mean over actions. Failed rows (`error` set) and rows without finite
frames are left out and counted (`n_failed`, `n_nonfinite`), never averaged in.
Robustness scores against a reference model (named in a `reference` column of every output), each
honouring the metric's direction (`harness.metrics.METRICS[m].higher_is_better`). E is the metric's
error: the value itself for an error (mm), 1 - value for a higher-is-better fraction (pck3d, auc):

- CE (per corruption) = sum_s E(s) / sum_s E_ref(s) over the severities both models were scored on;
  mCE = mean CE over corruptions. Lower is better for every metric.
- relative CE = sum_s (E(s) - E_clean) / sum_s (E_ref(s) - E_ref,clean); relative mCE its mean.
- mean resilience rate: the share of the clean performance kept, mean over corruptions and
  severities of E_clean / E(s) for an error, of v(s) / v_clean for a higher-is-better score
  (1: unaffected, lower: worse).
- ranking: by mCE, then by the mean corrupted value (ascending for an error, descending for a
  higher-is-better score).
The formulas, written for the chosen metric, are in the `*_formula` columns (`formulas`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from corrupt_bench.errors import UserError
from corrupt_bench.harness.metrics import METRICS as METRIC_SPECS
from corrupt_bench.harness.metrics import MetricSpec
from corrupt_bench.layout import CLEAN

METRICS: tuple[str, ...] = tuple(METRIC_SPECS)
GRID = ("model", "variant", "corruption", "severity")


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
    return {
        "ce_formula": f"CE = sum_s {err('(s)')} / sum_s {err('_ref(s)')}",
        "relative_ce_formula": f"relative CE = sum_s [{err('(s)')} - {err('_clean')}] / sum_s [{err('_ref(s)')} - {err('_ref,clean')}]",
        "mce_formula": f"mCE = mean over corruptions of CE, CE = sum_s {err('(s)')} / sum_s {err('_ref(s)')}",
        "relative_mce_formula": "relative mCE = mean over corruptions of relative CE",
        "resilience_formula": f"mean resilience rate = mean over corruptions and severities of {resilience}",
    }


def _scored(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that did not fail, with `_w` = their finite frames (the weight of their metrics)."""
    ok = df["error"].isna() if "error" in df else pd.Series(True, index=df.index)
    scored = df[ok]
    weight = scored["n_frames"].fillna(0) - scored["n_nonfinite"].fillna(0)
    return scored.assign(_w=weight.clip(lower=0).astype(float))


def _present(df: pd.DataFrame, metrics: Iterable[str] | None) -> list[str]:
    return [m for m in (metrics or METRICS) if m in df.columns]


def aggregate(df: pd.DataFrame, by: Iterable[str] = GRID, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Frame-weighted means of the metrics per group `by`, with frame, non-finite and failure counts."""
    by = list(by)
    metrics = _present(df, metrics)
    usable = _scored(df)
    if usable.empty:
        table = pd.DataFrame(columns=[*by, *metrics, "n_frames", "n_nonfinite"])
    else:
        parts = {"n_frames": usable["n_frames"].astype(float), "n_nonfinite": usable["n_nonfinite"].astype(float)}
        for m in metrics:  # weighted sums over the rows whose metric is finite
            v = usable[m].astype(float)
            keep = np.isfinite(v) & (usable["_w"] > 0)
            parts[f"_vw_{m}"] = (v * usable["_w"]).where(keep, 0.0)
            parts[f"_w_{m}"] = usable["_w"].where(keep, 0.0)
        sums = pd.DataFrame(parts).join(usable[by]).groupby(by, dropna=False, sort=True).sum()
        table = pd.DataFrame({m: sums[f"_vw_{m}"] / sums[f"_w_{m}"].where(sums[f"_w_{m}"] > 0) for m in metrics}, index=sums.index)
        table["n_frames"] = sums["n_frames"].astype(int)
        table["n_nonfinite"] = sums["n_nonfinite"].astype(int)
        table = table.reset_index()
    failed = _failures(df, by)
    table = table.merge(failed, on=by, how="outer") if not failed.empty else table.assign(n_failed=0)
    table["n_failed"] = table["n_failed"].fillna(0).astype(int)
    return table.sort_values(by).reset_index(drop=True)


def _failures(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    if "error" not in df or not df["error"].notna().any():
        return pd.DataFrame(columns=[*by, "n_failed"])
    return df[df["error"].notna()].groupby(by, dropna=False).size().rename("n_failed").reset_index()


def protocol_average(df: pd.DataFrame, by: Iterable[str] = GRID, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Action-wise average (VideoPose3D): frame-weighted within each action, then the mean over actions."""
    by = list(by)
    metrics = _present(df, metrics)
    per_action = aggregate(df, [*by, "action"], metrics)
    per_action = per_action[per_action["n_frames"].fillna(0) > 0] if "n_frames" in per_action else per_action
    if per_action.empty:
        return aggregate(df, by, metrics)
    grouped = per_action.groupby(by, dropna=False, sort=True)
    table = grouped[metrics].mean()
    table["n_actions"] = grouped.size()
    table["n_frames"] = grouped["n_frames"].sum()
    table["n_nonfinite"] = grouped["n_nonfinite"].sum()
    table = table.reset_index()
    failed = _failures(df, by)
    table = table.merge(failed, on=by, how="outer") if not failed.empty else table.assign(n_failed=0)
    table["n_failed"] = table["n_failed"].fillna(0).astype(int)
    return table.sort_values(by).reset_index(drop=True)


def grid_table(df: pd.DataFrame, metric: str = "mpjpe") -> pd.DataFrame:
    """Protocol averages of one metric per (model, variant, corruption, severity)."""
    return protocol_average(df, GRID, [metric])[[*GRID, metric]]


def corruption_table(df: pd.DataFrame, metric: str = "mpjpe") -> pd.DataFrame:
    """Rows (model, variant, corruption) x columns severity, plus `clean` and `mean` (over severities >= 1)."""
    grid = grid_table(df, metric)
    clean = grid[grid["severity"] == 0].groupby(["model", "variant"])[metric].mean().rename("clean")
    corrupted = grid[grid["severity"] > 0]
    if corrupted.empty:
        table = pd.DataFrame(columns=["model", "variant", "corruption", "clean", "mean"])
        return table
    wide = corrupted.pivot_table(index=["model", "variant", "corruption"], columns="severity", values=metric, aggfunc="mean")
    wide.columns = [f"s{int(c)}" for c in wide.columns]
    wide["mean"] = wide.mean(axis=1)
    wide = wide.reset_index().merge(clean.reset_index(), on=["model", "variant"], how="left")
    cols = ["model", "variant", "corruption", "clean", *[c for c in wide.columns if c.startswith("s") and c[1:].isdigit()], "mean"]
    return wide[cols].assign(metric=metric)


def _require_reference(grid: pd.DataFrame, reference: str) -> None:
    models = sorted(grid["model"].unique())
    if reference not in models:
        raise UserError(f"reference model '{reference}' is not in the results (models: {', '.join(models)})")


def ce_table(df: pd.DataFrame, reference: str, metric: str = "mpjpe") -> pd.DataFrame:
    """CE and relative CE per (model, variant, corruption) against `reference` (named in the output)."""
    spec = metric_spec(metric)
    grid = grid_table(df, metric)
    _require_reference(grid, reference)
    grid = grid.assign(**{metric: spec.error(grid[metric])})  # CE is a ratio of errors
    clean = grid[grid["severity"] == 0].groupby(["model", "variant"])[metric].mean().rename("clean").reset_index()
    corrupted = grid[grid["severity"] > 0].merge(clean, on=["model", "variant"], how="left")
    ref = corrupted[corrupted["model"] == reference][["variant", "corruption", "severity", metric, "clean"]]
    ref = ref.rename(columns={metric: "ref", "clean": "ref_clean"})
    joined = corrupted.merge(ref, on=["variant", "corruption", "severity"], how="inner")
    joined = joined[np.isfinite(joined[metric]) & np.isfinite(joined["ref"])]
    rows = []
    for (model, variant, corruption), g in joined.groupby(["model", "variant", "corruption"], sort=True):
        ref_sum = g["ref"].sum()
        rel_den = (g["ref"] - g["ref_clean"]).sum()
        rows.append(
            {
                "model": model,
                "variant": variant,
                "corruption": corruption,
                "ce": g[metric].sum() / ref_sum if ref_sum > 0 else np.nan,
                "relative_ce": (g[metric] - g["clean"]).sum() / rel_den if rel_den != 0 else np.nan,
                "severities": len(g),
            }
        )
    out = pd.DataFrame(rows, columns=["model", "variant", "corruption", "ce", "relative_ce", "severities"])
    text = formulas(metric)
    return out.assign(reference=reference, metric=metric, ce_formula=text["ce_formula"], relative_ce_formula=text["relative_ce_formula"])


def mce(df: pd.DataFrame, reference: str, metric: str = "mpjpe") -> pd.DataFrame:
    """Mean CE over corruptions per (model, variant), against `reference`."""
    ce = ce_table(df, reference, metric)
    out = ce.groupby(["model", "variant"])["ce"].mean().rename("mce").reset_index()
    return out.assign(reference=reference, metric=metric, mce_formula=formulas(metric)["mce_formula"])


def relative_mce(df: pd.DataFrame, reference: str, metric: str = "mpjpe") -> pd.DataFrame:
    """Mean relative CE over corruptions per (model, variant), against `reference`."""
    ce = ce_table(df, reference, metric)
    out = ce.groupby(["model", "variant"])["relative_ce"].mean().rename("relative_mce").reset_index()
    return out.assign(reference=reference, metric=metric, relative_mce_formula=formulas(metric)["relative_mce_formula"])


def mean_resilience_rate(df: pd.DataFrame, metric: str = "mpjpe") -> pd.DataFrame:
    """Mean over corruptions and severities of the share of clean performance kept, per (model, variant):
    E_clean / E(s) for an error, v(s) / v_clean for a higher-is-better score."""
    spec = metric_spec(metric)
    grid = grid_table(df, metric)
    clean = grid[grid["severity"] == 0].groupby(["model", "variant"])[metric].mean().rename("clean").reset_index()
    corrupted = grid[grid["severity"] > 0].merge(clean, on=["model", "variant"], how="inner")
    kept = corrupted[metric] / corrupted["clean"] if spec.higher_is_better else corrupted["clean"] / corrupted[metric]
    corrupted = corrupted.assign(rate=kept)
    out = corrupted.groupby(["model", "variant"])["rate"].mean().rename("mean_resilience_rate").reset_index()
    return out.assign(metric=metric, resilience_formula=formulas(metric)["resilience_formula"])


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


def leaderboard(df: pd.DataFrame, reference: str, metric: str = "mpjpe", groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per model: clean `metric` and P-MPJPE, mean corrupted value, mCE, relative mCE, mean
    resilience rate, per-family means, failures, rank (by mCE, then by the mean corrupted value in the
    metric's better direction). Values over several variants are means of the per-variant values."""
    spec = metric_spec(metric)
    grid = protocol_average(df, GRID, [metric, "p_mpjpe"] if metric != "p_mpjpe" else [metric])
    _require_reference(grid, reference)
    clean = grid[grid["severity"] == 0].groupby("model")[[metric, "p_mpjpe"]].mean()
    corrupted = grid[grid["severity"] > 0]
    board = pd.DataFrame(index=sorted(grid["model"].unique()))
    board.index.name = "model"
    board[f"clean_{metric}"] = clean[metric]
    if metric != "p_mpjpe":
        board["clean_p_mpjpe"] = clean["p_mpjpe"]
    board[f"corrupted_{metric}"] = corrupted.groupby(["model", "variant"])[metric].mean().groupby("model").mean()
    if not corrupted.empty:
        board["mce"] = mce(df, reference, metric).groupby("model")["mce"].mean()
        board["relative_mce"] = relative_mce(df, reference, metric).groupby("model")["relative_mce"].mean()
        board["mean_resilience_rate"] = mean_resilience_rate(df, metric).groupby("model")["mean_resilience_rate"].mean()
        groups = dict(groups) if groups is not None else corruption_groups(corrupted["corruption"].unique())
        fam = corrupted.assign(group=corrupted["corruption"].map(lambda c: groups.get(c, "other")))
        per_group = fam.groupby(["model", "group"])[metric].mean().unstack("group")
        for g in sorted(per_group.columns):
            board[f"{g}_{metric}"] = per_group[g]
    else:
        board["mce"] = board["relative_mce"] = board["mean_resilience_rate"] = np.nan
    failures = df[df["error"].notna()].groupby("model").size() if "error" in df else pd.Series(dtype=int)
    board["n_failed"] = failures.reindex(board.index).fillna(0).astype(int)
    board["n_nonfinite"] = df.groupby("model")["n_nonfinite"].sum().reindex(board.index).fillna(0).astype(int)
    board["_k"] = board["mce"].where(board["mce"].notna(), np.inf)
    value = board[f"corrupted_{metric}"].fillna(board[f"clean_{metric}"])
    board["_e"] = (-value if spec.higher_is_better else value).fillna(np.inf)
    board = board.reset_index().sort_values(["_k", "_e", "model"]).drop(columns=["_k", "_e"])
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    board["reference"] = reference
    board["metric"] = metric
    return board.reset_index(drop=True)
