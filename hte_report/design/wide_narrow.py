"""The narrow part of a split design written on demand from the data's columns and codes
(issue 21).

A split design is ``X = [D | one-hot(codes)]`` (:mod:`hte_report.design.wide`). For formulas
whose narrow part has plain columns and ``C()`` factors (``treat * (age + C(sex))``), every
column of ``D`` is a product of numeric columns, level indicators and the 0/1 treatment
(:func:`hte_report.design.columns.plan`, matched exactly to formulaic's columns). Then ``D``
(n x p floats, more than the data frame itself for six columns) is never stored:
:class:`NarrowColumns` holds references to the frame's own columns and factorized codes and
writes the rows a pass asks for, a block at a time, with exactly the values
:func:`hte_report.design.columns.write` writes (the same products in the same order; a
treatment column is the rest of its product on treated rows and ``0.0`` on untreated ones, as
:meth:`hte_report.design.counterfactual.Treated.split` leaves it). The counterfactual parts
(everyone treated, no one treated) are the same sources with the arm fixed (:meth:`under`);
rescaled columns (a covariate on an extreme scale) and reduced models (columns dropped) are
views of the same sources too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_report.data.levels import Levels

#: Rows per block written at once where a product over all rows is taken (``X @ b``,
#: ``A @ X``, column norms): 384 KiB for six columns.
BLOCK = 8192


class NarrowColumns:
    """``D`` (n x p) from its sources: per column the sources multiplied in order
    (``("one",)``, ``("num", col)``, ``("level", col, k)``) and whether it contains the
    treatment; ``values`` maps a source's column to the frame's array (numeric values, or the
    level codes); ``t`` is the observed 0/1 treatment. ``arm``: None for the observed design,
    1 (0) for every row treated (untreated). ``cols``: the design columns kept (a reduced
    model), ``scale``: divisors of the kept columns (fitting scale); ``rows``: the range of the
    sources' rows this matrix covers."""

    ndim = 2
    dtype = np.dtype(float)

    def __init__(self, products: tuple, treated: np.ndarray, values: dict, t: np.ndarray,
                 arm: int | None = None, cols: np.ndarray | None = None,
                 scale: np.ndarray | None = None, rows: slice | None = None):
        self.products, self.treated, self.values, self.t = products, treated, values, t
        self.arm = arm
        self.cols = np.arange(len(products)) if cols is None else np.asarray(cols, dtype=int)
        self.scale = scale
        self.rows = slice(0, len(t)) if rows is None else rows
        self.shape = (self.rows.stop - self.rows.start, len(self.cols))

    @classmethod
    def from_sources(cls, sources: list[tuple], frame: pd.DataFrame,
                     levels: dict[str, Levels], treatment: str) -> NarrowColumns | None:
        """From each design column's sources (:func:`hte_report.design.columns.plan` on data
        whose treatment column is 1 for every row); None when a column is not such a product
        (the treatment as a level indicator or twice) or the treatment is not 0/1."""
        tsrc = ("num", treatment)
        products, treated, values = [], [], {}
        for combo in sources:
            if any(len(s) > 1 and s[1] == treatment and s != tsrc for s in combo):
                return None
            k = sum(s == tsrc for s in combo)
            if k > 1:
                return None
            rest = tuple(s for s in combo if s != tsrc)
            if len(rest) > 1:  # 1 x v is v exactly
                rest = tuple(s for s in rest if s != ("one",)) or (("one",),)
            products.append(rest or (("one",),))
            treated.append(bool(k))
            for src in rest:
                if src[0] == "num" and src[1] not in values:
                    v = frame[src[1]].to_numpy()
                    values[src[1]] = v if v.dtype.kind in "iuf" else \
                        frame[src[1]].to_numpy(dtype=float)
                elif src[0] == "level" and (src[1],) not in values:
                    values[(src[1],)] = levels[src[1]].codes
        t = frame[treatment].to_numpy()
        if t.dtype.kind not in "iufb" or not np.all((t == 0) | (t == 1)):
            return None
        return cls(tuple(products), np.array(treated, dtype=bool), values, t)

    def _like(self, **kw) -> NarrowColumns:
        args = dict(arm=self.arm, cols=self.cols, scale=self.scale, rows=self.rows)
        args.update(kw)
        return NarrowColumns(self.products, self.treated, self.values, self.t, **args)

    def under(self, arm: int) -> NarrowColumns:
        """The narrow part with every row treated (1) or untreated (0)."""
        return self._like(arm=arm)

    def scaled(self, scale: np.ndarray) -> NarrowColumns:
        """Its columns divided by ``scale`` (exact powers of two: the fitting scale)."""
        scale = np.asarray(scale, dtype=float)
        return self._like(scale=scale if self.scale is None else self.scale * scale)

    def without(self, cols) -> NarrowColumns:
        """Without columns ``cols`` (positions among its columns)."""
        keep = np.setdiff1d(np.arange(self.shape[1]), cols)
        return self._like(cols=self.cols[keep],
                          scale=None if self.scale is None else self.scale[keep])

    def view(self, rows: slice) -> NarrowColumns:
        """Rows ``rows`` (a slice of step 1) without writing them."""
        start, stop, _ = rows.indices(self.shape[0])
        base = self.rows.start
        return self._like(rows=slice(base + start, base + max(start, stop)))

    # -- writing rows ----------------------------------------------------------------------
    def _positions(self, rows):
        """``rows`` of this matrix as a slice or integer positions of the sources."""
        n, base = self.shape[0], self.rows.start
        if isinstance(rows, slice):
            start, stop, step = rows.indices(n)
            if step == 1:
                return slice(base + start, base + max(start, stop))
            return np.arange(start, stop, step) + base
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (n,):
                raise IndexError("boolean row index of the wrong length")
            rows = np.flatnonzero(rows)
        if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
            raise IndexError("rows must be a slice, a boolean mask or integer positions")
        rows = np.where(rows < 0, rows + n, rows).astype(np.intp)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        return rows + base

    def block(self, rows, buffer: np.ndarray | None = None) -> np.ndarray:
        """Rows ``rows`` (a slice, a boolean mask or integer positions) as a new column-major
        float array (or written into the first rows of ``buffer``, a column-major array of
        at least as many rows). Each distinct product is written once; a treatment column is
        its rest's product times the 0/1 treatment, ``+ 0.0`` (a negative value times 0 is
        -0.0)."""
        at = self._positions(rows)
        m = len(range(*at.indices(len(self.t)))) if isinstance(at, slice) else len(at)
        out = np.empty((m, self.shape[1]), order="F") if buffer is None else buffer[:m]
        done, later = {}, []
        for jj, j in enumerate(self.cols):
            if self.treated[j] and self.arm != 1:
                later.append(jj)
                continue
            rest = self.products[j]
            if rest in done:
                out[:, jj] = out[:, done[rest]]
            else:
                self._product(rest, at, out[:, jj])
                done[rest] = jj
        if later and self.arm == 0:
            out[:, later] = 0.0
        elif later:
            tf = self.t[at].astype(float)
            for jj in later:
                col, rest = out[:, jj], self.products[self.cols[jj]]
                if rest == (("one",),):
                    col[:] = tf
                    continue
                if rest in done:
                    np.multiply(out[:, done[rest]], tf, out=col)
                else:
                    self._product(rest, at, col)
                    col *= tf
                col += 0.0
        if self.scale is not None:
            out /= self.scale
        return out

    def _product(self, rest: tuple, at, col: np.ndarray) -> None:
        """The product of the sources ``rest`` on rows ``at``, into ``col``."""
        first = True
        for src in rest:
            if src[0] == "one":
                col.fill(1.0)
            elif src[0] == "num":
                v = self.values[src[1]][at]
                if first:
                    col[:] = v
                else:
                    col *= v
            elif first:
                np.equal(self.values[(src[1],)][at], src[2], out=col, casting="unsafe")
            else:
                col *= self.values[(src[1],)][at] == src[2]
            first = False

    def blocks(self, size: int = BLOCK):
        """(rows, the rows written) for consecutive blocks of ``size`` rows, all written into
        one buffer: a block is overwritten by the next (use it before taking the next), so
        a pass holds one block, never two."""
        n = self.shape[0]
        buffer = np.empty((min(size, n), self.shape[1]), order="F")
        for s in range(0, n, size):
            rows = slice(s, min(s + size, n))
            yield rows, self.block(rows, buffer)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rows, cols = key
            return self.block(rows)[:, cols]
        return self.block(key)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        """The bytes of the array it stands for (as a dask array's ``nbytes``), not held."""
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    def __array__(self, dtype=None, copy=None):
        out = self.block(slice(None))
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"NarrowColumns(n={self.shape[0]}, p={self.shape[1]}, arm={self.arm})"
