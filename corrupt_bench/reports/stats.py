"""Sample sizes, bootstrap confidence intervals over sequences, and the paired sign-flip test.

The unit of resampling is the source sequence (subject, sequence): every camera, cell and model of
a sequence goes in or out of a bootstrap replicate together, so clean and corrupted cells, and two
models, stay paired. `Resampler` holds one weight matrix for a whole report: row 0 is all ones (the
estimate itself), rows 1..B are multinomial counts (how often each sequence is drawn). Every
statistic is computed once for all rows at the same time; its 95 % interval is the 2.5 and 97.5
percentiles of rows 1..B (percentile bootstrap, `N_BOOTSTRAP` = 1000 replicates; a replicate that
draws none of a cell's sequences leaves that cell, and the numbers built on it, undefined in that
replicate, and the percentiles are taken over the replicates where it is defined). The generator is
keyed by a digest of the sorted sequence ids (as `engine.rng.RngKey` keys corruptions), so the same
data give the same intervals, byte for byte, in any order. A number that rests on a cell of fewer than
two sequences has no interval (NaN): one sequence cannot tell its own spread.

`grid_values` is the one aggregation behind every table: VideoPose3D's protocol (frame-weighted
within each action, then the plain mean over actions) per group of rows, for all replicate rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

N_BOOTSTRAP = 1000
CONFIDENCE = 0.95
MAX_EXACT_FLIPS = 16  # sequences up to which the sign-flip test enumerates every sign pattern
N_RANDOM_FLIPS = 20000
INTERVAL_NOTE = (
    f"[lo, hi]: {CONFIDENCE:.0%} percentile bootstrap interval over sequences ({N_BOOTSTRAP} replicates, each "
    "sequence with all its cameras and cells drawn together; keyed by the data, so the same report gives the same "
    "bytes); none for a number with a cell of fewer than 2 sequences (its spread cannot be resampled)"
)


def keyed_generator(*key: object) -> np.random.Generator:
    """A PCG64 generator seeded from the SHA-256 of the key's canonical JSON (as `RngKey.generator`)."""
    canonical = json.dumps([str(k) for k in key], separators=(",", ":")).encode()
    entropy = int.from_bytes(hashlib.sha256(canonical).digest(), "little")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def sequence_ids(df: pd.DataFrame) -> pd.Series:
    """The resampling unit of each row: 'subject/sequence'."""
    return df["subject"].astype(str) + "/" + df["sequence"].astype(str)


@dataclass(frozen=True)
class Resampler:
    """Bootstrap weights over the sequences of a report (see the module docstring)."""

    sequences: tuple[str, ...]
    weights: np.ndarray  # (1 + B, Q)

    @classmethod
    def of(cls, df: pd.DataFrame, n_boot: int = N_BOOTSTRAP) -> Resampler:
        ids = tuple(sorted(set(sequence_ids(df)))) if len(df) else ()
        q = len(ids)
        if q == 0:
            return cls(ids, np.ones((1, 0)))
        counts = keyed_generator("sequence bootstrap", n_boot, *ids).multinomial(q, np.full(q, 1.0 / q), size=n_boot)
        return cls(ids, np.vstack([np.ones(q), counts]).astype(np.float64))

    def index(self, df: pd.DataFrame) -> np.ndarray:
        lookup = {s: i for i, s in enumerate(self.sequences)}
        return np.array([lookup[s] for s in sequence_ids(df)], dtype=np.int64)


def interval(replicates: np.ndarray, n_sequences: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of the 95 % percentile interval of `replicates` (B, ...) over axis 0; NaN where the
    number rests on fewer than 2 sequences or no replicate is finite."""
    import warnings

    replicates = np.asarray(replicates, np.float64)
    alpha = (1.0 - CONFIDENCE) / 2
    if replicates.size == 0:
        nan = np.full(replicates.shape[1:], np.nan)
        return nan, nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN slice gives NaN, as wanted
        lo, hi = np.nanpercentile(replicates, [100 * alpha, 100 * (1 - alpha)], axis=0)
    few = np.asarray(n_sequences) < 2
    return np.where(few, np.nan, lo), np.where(few, np.nan, hi)


@dataclass(frozen=True)
class GridValues:
    """Protocol values of groups of rows: `table` (one row per group: the `by` columns, n_sequences,
    n_frames, n_actions) and `values` (1 + B, G): row 0 the estimate, rows 1.. the replicates."""

    table: pd.DataFrame
    values: np.ndarray
    by: tuple[str, ...]

    def column(self, key: tuple) -> int | None:
        """The column of the group with `by` values `key` (None when absent)."""
        return self._lookup.get(tuple(key))

    @cached_property
    def _lookup(self) -> dict[tuple, int]:
        return {tuple(r): i for i, r in enumerate(self.table[list(self.by)].itertuples(index=False, name=None))}


def grid_values(df: pd.DataFrame, value: str, weight: str, by: Sequence[str], resampler: Resampler) -> GridValues:
    """VideoPose3D's protocol over the rows of each group `by`: within each action the mean of `value`
    weighted by `weight` (frames), then the plain mean over the group's actions; for the estimate and
    every bootstrap replicate at once. Rows whose value is not finite or whose weight is 0 are left
    out (counted by the callers)."""
    by = list(by)
    v = df[value].to_numpy(np.float64) if len(df) else np.zeros(0)
    w = df[weight].to_numpy(np.float64) if len(df) else np.zeros(0)
    keep = np.isfinite(v) & np.isfinite(w) & (w > 0)
    d = df.loc[keep, list(dict.fromkeys([*by, "action", "subject", "sequence"]))].copy()
    n_rep = resampler.weights.shape[0]
    if d.empty:
        return GridValues(pd.DataFrame(columns=[*by, "n_sequences", "n_frames", "n_actions"]), np.zeros((n_rep, 0)), tuple(by))
    d["action"] = d["action"].astype(str)
    d["_v"], d["_w"], d["_q"] = v[keep], w[keep], resampler.index(d)
    cells = d.groupby(by, sort=True, dropna=False).ngroup().to_numpy()
    pairs = d.assign(_c=cells).groupby(["_c", "action"], sort=True).ngroup().to_numpy()
    n_cells, n_pairs, q = int(cells.max()) + 1, int(pairs.max()) + 1, len(resampler.sequences)
    x = np.zeros((n_pairs, q))
    y = np.zeros((n_pairs, q))
    np.add.at(x, (pairs, d["_q"].to_numpy()), d["_v"].to_numpy() * d["_w"].to_numpy())
    np.add.at(y, (pairs, d["_q"].to_numpy()), d["_w"].to_numpy())
    num, den = resampler.weights @ x.T, resampler.weights @ y.T  # (R, pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_action = num / den
    cell_of_pair = np.zeros(n_pairs, np.int64)
    cell_of_pair[pairs] = cells
    starts = np.searchsorted(cell_of_pair, np.arange(n_cells))  # pairs are numbered cell by cell
    finite = np.isfinite(per_action)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.add.reduceat(np.where(finite, per_action, 0.0), starts, axis=1) / np.add.reduceat(finite.astype(np.float64), starts, axis=1)
    seq_frames = np.add.reduceat(y, starts, axis=0)  # (cells, Q)
    table = d.groupby(by, sort=True, dropna=False).size().reset_index()[by]
    table["n_sequences"] = (seq_frames > 0).sum(axis=1).astype(int)
    table["n_frames"] = seq_frames.sum(axis=1).astype(int)
    table["n_actions"] = np.diff(np.append(starts, n_pairs)).astype(int)
    return GridValues(table, values, tuple(by))


def sign_flip_test(contributions: np.ndarray, key: Sequence[object]) -> float:
    """Two-sided p-value of a paired sign-flip permutation test: the statistic is the sum of the
    per-sequence `contributions`; under the null hypothesis (the two models are exchangeable within
    each sequence) every sign pattern is equally likely. Exact enumeration up to `MAX_EXACT_FLIPS`
    sequences, else `N_RANDOM_FLIPS` keyed random patterns (p = (1 + hits) / (1 + draws))."""
    c = np.asarray(contributions, np.float64)
    c = c[np.abs(c) > 0]
    if c.size == 0:
        return 1.0
    observed = abs(c.sum())
    tolerance = 1e-9 * max(1.0, float(np.abs(c).sum()))
    if c.size <= MAX_EXACT_FLIPS:
        patterns = 1 - 2 * ((np.arange(2 ** c.size)[:, None] >> np.arange(c.size)) & 1)
        return float(np.mean(np.abs(patterns @ c) >= observed - tolerance))
    signs = keyed_generator("sign flip", *key).choice(np.array([-1.0, 1.0]), size=(N_RANDOM_FLIPS, c.size))
    hits = int((np.abs(signs @ c) >= observed - tolerance).sum())
    return (1 + hits) / (1 + N_RANDOM_FLIPS)
