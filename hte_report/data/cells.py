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
    """Cells of identical (treatment, covariates, cluster) with their sufficient statistics,
    in sorted order of the keys (a categorical column: its categories' order); the outcome
    column of the returned frame holds the cell mean.

    Each key column is factorized once (sorted); a cell is the mixed-radix number of its
    codes, and the statistics are ``bincount`` sums over it: no grouped copy of the frame."""
    from scipy.special import gammaln

    keys = list(dict.fromkeys([treatment, *rhs, *([cluster] if cluster else [])]))
    factorized = []
    for col in keys:
        c, u = pd.factorize(frame[col], sort=True, use_na_sentinel=False)
        factorized.append((c.astype(np.min_scalar_type(len(u) + 1)), u))
        del c
    sizes = [max(len(u), 1) for _c, u in factorized]
    y = frame[outcome].to_numpy(float)
    combinations = float(np.prod(sizes, dtype=float))
    if combinations <= max(4.0 * len(frame), 2.0 ** 16):  # a table of every combination
        key = np.ravel_multi_index([c for c, _u in factorized], sizes)
        present = np.flatnonzero(np.bincount(key, minlength=int(combinations)))
        table = np.full(int(combinations), -1,
                        dtype=np.int32 if len(present) < 2**31 else np.int64)
        table[present] = np.arange(len(present))
        cell = table[key]
        del key
        first = np.empty(len(present), dtype=np.int64)
        # a row of each cell (all have its keys): assigned from the last row back, so that
        # numpy's in-order assignment leaves the first (np.minimum.at took 7x as long)
        first[cell[::-1]] = np.arange(len(frame) - 1, -1, -1)
    elif combinations < 2.0 ** 62:
        cell = np.ravel_multi_index([c for c, _u in factorized], sizes)
        _, first, cell = np.unique(cell, return_index=True, return_inverse=True)
    else:  # too many combinations for one integer: the distinct rows of the codes
        _, first, cell = np.unique(np.column_stack([c for c, _u in factorized]), axis=0,
                                   return_index=True, return_inverse=True)
    cell = cell.reshape(-1)
    k = int(cell.max()) + 1 if len(cell) else 0
    s1 = np.bincount(cell, y, minlength=k)
    binary = bool(np.all((y == 0.0) | (y == 1.0)))  # then y^2 = y and log y! = 0
    cells = CellStats(np.bincount(cell, minlength=k).astype(float), s1,
                      s1.copy() if binary else np.bincount(cell, y * y, minlength=k),
                      np.zeros(k) if binary else np.bincount(cell, gammaln(y + 1), minlength=k))
    out = frame[keys].iloc[first].reset_index(drop=True)  # each cell's first row: dtypes kept
    out[outcome] = cells.s1 / cells.cnt
    return out, cells
