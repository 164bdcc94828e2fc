"""Design columns written straight from the data's columns and factorized codes (issue 21).

formulaic defines the design. For a large design whose every column is a product of plain
numeric columns, level indicators and the treatment (treatment-coded ``C()`` factors and their
interactions with the treatment), formulaic's matrix on a few *skeleton* rows that show every
level of every categorical column is matched, column by column and exactly, to such products;
each column is then written into its place in one preallocated array, from the numeric column
and the factorized codes (:class:`~hte_report.data.prepare.Levels`), with no per-block
encoding and no temporary design. A column that no product reproduces (another contrast,
``poly``, a transform) returns ``None`` and the caller materializes through formulaic.

Matching on the skeleton decides for the whole data: each candidate comes from the factor's
own column; level indicators of one column differ on rows that show every level; and a numeric
column equal to a level indicator on those rows takes values 0 and 1 only, so it equals the
indicator on every row.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

from hte_report.data.levels import Levels

_FACTOR = re.compile(r"^(?:C\(\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:,.*)?\)?$", re.S)


def _sources(expr: str, data: pd.DataFrame, levels: dict[str, Levels]) -> list[tuple]:
    """Candidate sources of one factor: ``("one",)``, ``("num", col)``, ``("level", col, k)``."""
    if expr == "1":
        return [("one",)]
    m = _FACTOR.match(expr)
    col = m.group(1) if m else None
    if col is None or col not in data.columns or (expr.startswith("C(") != expr.endswith(")")):
        return []
    out = []
    s = data[col]
    if not expr.startswith("C(") and pd.api.types.is_numeric_dtype(s) \
            and not pd.api.types.is_bool_dtype(s):
        out.append(("num", col))
    if col in levels:
        out += [("level", col, k) for k in range(len(levels[col].values))]
    return out


class _Values:
    """Values of sources on chosen rows (``rows=None``: every row), computed once each."""

    def __init__(self, data, levels, rows=None):
        self.data, self.levels, self.rows, self.cache = data, levels, rows, {}

    def __call__(self, src: tuple) -> np.ndarray:
        if src not in self.cache:
            if src[0] == "one":
                n = len(self.data) if self.rows is None else len(self.rows)
                v = np.ones(n)
            elif src[0] == "num":
                v = self.data[src[1]].to_numpy(dtype=float)
                v = v if self.rows is None else v[self.rows]
            else:
                codes = self.levels[src[1]].codes
                v = (codes if self.rows is None else codes[self.rows]) == src[2]
            self.cache[src] = v
        return self.cache[src]


def plan(spec, skeleton: np.ndarray, data: pd.DataFrame, levels: dict[str, Levels],
         shown: np.ndarray) -> list[tuple] | None:
    """For each design column, the sources whose product it is (matched exactly on the
    skeleton rows ``shown``, whose formulaic matrix is ``skeleton``), or None."""
    values = _Values(data, levels, shown)
    out: list = [None] * skeleton.shape[1]
    for term, sl in spec.term_slices.items():
        cands = [_sources(f.expr, data, levels) for f in term.factors]
        if not all(cands):
            return None
        for j in range(sl.start, sl.stop):
            out[j] = next((combo for combo in itertools.product(*cands)
                           if np.array_equal(_product(values, combo), skeleton[:, j])), None)
            if out[j] is None:
                return None
    return out


def _product(values: _Values, combo: tuple) -> np.ndarray:
    v = np.array(values(combo[0]), dtype=float)
    for src in combo[1:]:
        v *= values(src)
    return v


def write(columns: list[tuple], data: pd.DataFrame, levels: dict[str, Levels]) -> np.ndarray:
    """The design (n x p, column-major) from the sources of each column (see :func:`plan`)."""
    X = np.empty((len(data), len(columns)), order="F")
    values = _Values(data, levels)
    for j, combo in enumerate(columns):
        X[:, j] = values(combo[0])
        for src in combo[1:]:
            X[:, j] *= values(src)
    return X
