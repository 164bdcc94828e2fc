"""The treated design ``X1`` (everyone treated) from the observed design ``X`` alone.

The treatment is a 0/1 column, so each column of a term containing it is the treatment times
the rest of the term: zero on untreated rows of ``X``, and in ``X1`` the value the rest of the
term has there. For ``treat * (age + C(sex))`` the rest is a column ``X`` already holds
(``treat:age`` under treatment is ``age``; ``treat`` is one), so ``X1`` needs no storage at
all: its rows are ``X``'s with those columns copied in. A column whose rest is not in the
design (``treat:C(sex)`` without ``C(sex)``; another coding) keeps its values on the untreated
rows. Which column holds which is decided by exact comparison on every untreated row, never
assumed from the names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: :attr:`Treated.source` codes: the column is one under treatment; its values are stored.
ONE, STORED = -1, -2


@dataclass(frozen=True)
class Treated:
    """How the treatment columns of ``X`` read under treatment on its untreated rows."""

    columns: np.ndarray  # the treatment columns of the design
    untreated: np.ndarray  # rows with treatment 0, ascending
    source: np.ndarray  # per treatment column: the column of X with its values, ONE or STORED
    stored: np.ndarray  # len(untreated) x (number of STORED): their values

    @classmethod
    def split(cls, X: np.ndarray, untreated: np.ndarray, columns: np.ndarray,
              rest: dict[int, int]) -> Treated:
        """From ``X`` materialized with treatment 1 for every row, turned into the observed
        design in place (treatment columns zeroed on ``untreated`` rows). ``rest``: for a
        treatment column, the column that may hold its values (checked here), or ONE."""
        source, stored = np.full(len(columns), STORED), []
        for i, j in enumerate(columns):
            values = X[untreated, j]
            k = rest.get(int(j), STORED)
            if k == ONE and np.all(values == 1.0):
                source[i] = ONE
            elif k >= 0 and np.array_equal(values, X[untreated, k]):
                source[i] = k
            else:
                stored.append(values)
            X[untreated, j] = 0.0
        kept = np.column_stack(stored) if stored else np.empty((len(untreated), 0))
        return cls(np.asarray(columns, dtype=int), untreated, source, kept)

    def among(self, rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions within ``X[rows]`` (a slice, a boolean mask or row positions of an
        n-row design) of the untreated rows, and their positions in :attr:`untreated`."""
        if isinstance(rows, slice):
            start, stop, step = rows.indices(n)
            if step == 1:
                lo, hi = np.searchsorted(self.untreated, [start, stop])
                return self.untreated[lo:hi] - start, np.arange(lo, hi)
            rows = np.arange(start, stop, step)
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = np.where(rows < 0, rows + n, rows)
        j = np.searchsorted(self.untreated, rows)
        hit = j < len(self.untreated)
        hit[hit] = self.untreated[j[hit]] == rows[hit]
        return np.flatnonzero(hit), j[hit]

    def fill(self, block: np.ndarray, at: np.ndarray, where: np.ndarray) -> None:
        """Rows ``at`` of ``block`` (untreated rows ``where``) set to their values under
        treatment, in place."""
        if not at.size:
            return
        s = 0
        for j, k in zip(self.columns, self.source):
            if k >= 0:
                block[at, j] = block[at, k]
            elif k == ONE:
                block[at, j] = 1.0
            else:
                block[at, j] = self.stored[where, s]
                s += 1

    def shift(self, X, params: np.ndarray, at: np.ndarray | None = None,
              where: np.ndarray | None = None) -> np.ndarray:
        """``(X1 - X) @ params`` on the untreated rows (in :attr:`untreated` order); or, for a
        block ``X`` of rows, on its untreated rows ``at`` (rows ``where`` of
        :attr:`untreated`, see :meth:`among`)."""
        if at is None:
            at, where = self.untreated, slice(None)
        b = np.asarray(params, dtype=float)[self.columns]
        c = np.zeros(X.shape[1])
        const = 0.0
        for bj, k in zip(b, self.source):
            if k >= 0:
                c[k] += bj
            elif k == ONE:
                const += bj
        out = np.full(len(at), const)
        if np.any(c):
            out += (X @ c)[at]
        if self.stored.shape[1]:
            out += self.stored[where] @ b[self.source == STORED]
        return out


def rest_columns(term_columns: dict, treatment: str) -> dict[int, int]:
    """For each column of a term containing ``treatment``: the column of the same position in
    the term without it (ONE for the treatment's own column), when that term is in the design
    with as many columns. :meth:`Treated.split` checks the values before relying on it."""
    out = {}
    for key, cols in term_columns.items():
        if treatment not in key:
            continue
        rest = key - {treatment}
        if not rest:
            out.update({int(j): ONE for j in cols})
        elif rest in term_columns and len(term_columns[rest]) == len(cols):
            out.update({int(j): int(k) for j, k in zip(cols, term_columns[rest])})
    return out
