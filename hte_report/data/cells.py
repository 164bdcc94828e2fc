"""Cells of identical patients and their sufficient statistics.

For an all-categorical design every working model's estimates, sandwich variances and
log-likelihood depend on the data only through per-cell counts and sums of y, y^2 and log y!
(:class:`CellStats`), so the analysis can run on cells instead of rows: exactly, with memory
bounded by the number of cells. :func:`aggregate` makes them from a frame in memory;
:mod:`hte_report.data.largedata` makes them inside DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CellStats:
    """Sufficient statistics per cell of identical patients: count, sum of y, sum of y^2 and
    sum of log y! (for the Poisson log-likelihood)."""

    cnt: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    slg: np.ndarray



def aggregate(frame: pd.DataFrame, treatment: str, outcome: str, rhs: list[str],
              cluster: str | None) -> tuple[pd.DataFrame, CellStats]:
    """Cells of identical (treatment, covariates, cluster) with their sufficient statistics;
    the outcome column of the returned frame holds the cell mean."""
    from scipy.special import gammaln

    keys = list(dict.fromkeys([treatment, *rhs, *([cluster] if cluster else [])]))
    y = frame[outcome].to_numpy(float)
    work = frame[keys].copy()
    work["_y"], work["_y2"], work["_lg"] = y, y * y, gammaln(y + 1)
    agg = work.groupby(keys, sort=True, observed=True, dropna=False).agg(
        _n=("_y", "size"), _s1=("_y", "sum"), _s2=("_y2", "sum"), _lg=("_lg", "sum"))
    agg = agg.reset_index()
    for col in keys:  # keep the dtypes (and category sets) of the original columns
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            agg[col] = pd.Categorical(agg[col], categories=frame[col].cat.categories)
    cells = CellStats(agg["_n"].to_numpy(float), agg["_s1"].to_numpy(float),
                      agg["_s2"].to_numpy(float), agg["_lg"].to_numpy(float))
    out = agg[keys].copy()
    out[outcome] = cells.s1 / cells.cnt
    return out, cells
