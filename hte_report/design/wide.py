"""Many-level adjustment factors without a dense dummy matrix (issue 21).

A *split* design keeps the dense narrow part ``D`` (intercept, treatment, modifiers,
interactions, continuous covariates) and, for each wide factor, the integer code of every
row's level: ``X = [D | one-hot(codes)]``. :class:`SplitMatrix` multiplies, slices by rows and
forms the weighted cross-product ``X' diag(v) X`` in blocks (:class:`Blocks`): ``D'VD`` (p x p),
``D'VF`` (p x K, by ``bincount``) and ``F'VF`` (diagonal for one wide factor). Systems in the
cross-product are solved through the Schur complement on the diagonal block (a dense Cholesky
when there are several wide factors), so a fit never touches an n x K array.

Which factor is wide: an adjustment-only term ``C(x)`` (or a text column ``x``), not part of any
interaction, with more than :data:`WIDE_MIN_LEVELS` levels, in a formula with an intercept.
Its columns are coded exactly as formulaic codes them in the full formula (treatment coding,
first level the reference): the coding is read off formulaic's own materialization of one row
per level, never assumed.
"""

from __future__ import annotations

import gc
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from hte_report.design.wide_narrow import NarrowColumns
from hte_report.errors import DataError, FormulaError, ModelError, ModelWarning

#: A categorical adjustment-only factor with more levels than this is fitted as a wide factor.
WIDE_MIN_LEVELS = 50
#: Limit on the wide columns of one design (set when the covariance was a dense (p + K)^2
#: matrix). With one wide factor nothing of that size is formed now (``models.wide_cov``);
#: several wide factors have a dense K x K cross-tabulation (72 MB at 3,000), whose Cholesky
#: factor every coefficient's variance goes through.
MAX_WIDE_COLUMNS = 3000
#: A categorical effect modifier with more levels than WARN_MODIFIER_LEVELS gets a warning, with
#: more than MAX_MODIFIER_LEVELS an error (one subgroup effect per level of hundreds is not a
#: sensible heterogeneity analysis, and its interaction columns are dense).
WARN_MODIFIER_LEVELS = 50
MAX_MODIFIER_LEVELS = 200
#: Rows per block of Fisher scoring (:meth:`SplitMatrix.row_blocks`: its length-n vectors are
#: never whole, 64 KiB a block) and of products over the rows that would otherwise make an
#: n x p temporary.
ROW_BLOCK = 8192
#: Rows per block of :meth:`Blocks.inverse_quadratic` (its three p-column temporaries).
QUADRATIC_BLOCK = 2048


@dataclass(frozen=True)
class WideFactor:
    """One wide factor of a split design."""

    expr: str  # the term as written, e.g. "C(site)"
    column: str  # the data column, e.g. "site"
    rows: object  # one data row per level (its column only), from which formulaic codes it
    names: tuple[str, ...]  # design column names, e.g. "C(site)[T.2]"
    start: int  # index of its first column in the full design
    lookup: dict  # level value -> its column + 1 (0: the reference level)

    def one_hot(self, values) -> np.ndarray:
        """Design columns of rows at these levels (a few rows: profiles); a value that is not
        a level goes through formulaic (the spec of :attr:`expr` learned from :attr:`rows`,
        made only then: a spec of a thousand levels holds about 1 MiB), which says what is
        wrong with it."""
        try:
            cols = np.array([self.lookup[v] for v in values], dtype=np.int64)
        except (KeyError, TypeError):
            import pandas as pd
            from formulaic import model_matrix

            spec = model_matrix(self.expr, self.rows, na_action="raise").model_spec
            frame = pd.DataFrame({self.column: list(values)})
            return np.asarray(spec.get_model_matrix(frame), dtype=float)[:, 1:]
        out = np.zeros((len(cols), len(self.names)))
        hit = cols > 0
        out[np.flatnonzero(hit), cols[hit] - 1] = 1.0
        return out


class SplitMatrix:
    """``[dense | one-hot(codes_1) | one-hot(codes_2) ...]`` without forming the one-hot part.

    ``codes[j][i]`` is 0 for the reference level of factor j (no column) and k >= 1 for its
    k-th column. ``dense`` is an array or, for a design of plain columns and ``C()`` factors,
    a :class:`~hte_report.design.wide_narrow.NarrowColumns` that writes its rows on demand
    (:attr:`lazy`: products over all rows then run by blocks of rows; nothing n x p is kept).
    Supports ``X @ b`` (b of length p + K, or (p + K) x m), ``A @ X`` (A m x n), row selection
    ``X[rows]`` (a slice of a lazy design stays lazy; other selections are written) and
    :meth:`crossprod`; ``np.asarray(X)`` is the dense matrix (for small pieces only)."""

    __array_ufunc__ = None  # ndarray @ SplitMatrix defers to __rmatmul__
    ndim = 2
    dtype = np.dtype(float)

    def __init__(self, dense, codes: tuple[np.ndarray, ...], sizes: tuple[int, ...]):
        self.dense = dense
        self.codes = tuple(codes)
        self.sizes = tuple(int(k) for k in sizes)
        self.p = dense.shape[1]
        self.offsets = tuple(self.p + int(s) for s in np.cumsum((0,) + self.sizes[:-1]))
        self.shape = (dense.shape[0], self.p + sum(self.sizes))

    @property
    def lazy(self) -> bool:
        """The dense part is written on demand (:class:`NarrowColumns`), not stored."""
        return isinstance(self.dense, NarrowColumns)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"SplitMatrix(n={self.shape[0]}, dense={self.p}, wide={self.sizes})"

    def _dense_blocks(self):
        """(rows, dense part of those rows) by blocks (one block when it is stored)."""
        if self.lazy:
            yield from self.dense.blocks(ROW_BLOCK)
        else:
            yield slice(0, self.shape[0]), self.dense

    # -- products ------------------------------------------------------------------------
    def _gammas(self, b: np.ndarray):
        for off, k in zip(self.offsets, self.sizes):
            g = np.zeros((k + 1,) + b.shape[1:])
            g[1:] = b[off:off + k]
            yield g

    def __matmul__(self, b):
        b = np.asarray(b, dtype=float)
        if self.lazy:
            out = np.empty((self.shape[0],) + b.shape[1:])
            for rows, D in self._dense_blocks():
                out[rows] = D @ b[:self.p]
        else:
            out = self.dense @ b[:self.p]
        for g, c in zip(self._gammas(b), self.codes):
            out += g[c]
        return out

    def __rmatmul__(self, A):
        A = np.atleast_2d(np.asarray(A, dtype=float))
        dense = None
        for rows, D in self._dense_blocks():
            part = A[:, rows] @ D
            dense = part if dense is None else dense + part
        parts = [dense if dense is not None else np.zeros((len(A), self.p))]
        for c, k in zip(self.codes, self.sizes):
            parts.append(np.stack([np.bincount(c, weights=a, minlength=k + 1)[1:] for a in A]))
        return np.hstack(parts)

    def tdot(self, v: np.ndarray) -> np.ndarray:
        """``X' v`` for a length-n vector."""
        dense = np.zeros(self.p)
        for rows, D in self._dense_blocks():
            dense += D.T @ v[rows]
        parts = [dense]
        parts += [np.bincount(c, weights=v, minlength=k + 1)[1:]
                  for c, k in zip(self.codes, self.sizes)]
        return np.concatenate(parts)

    def dense_sumsq(self) -> np.ndarray:
        """Sum of squares of each dense column (by blocks of rows)."""
        out = np.zeros(self.p)
        for _rows, D in self._dense_blocks():
            out += np.einsum("ij,ij->j", D, D)
        return out

    # -- selection -----------------------------------------------------------------------
    def __getitem__(self, key):
        if isinstance(key, tuple):  # a column selection: a dense copy (small pieces only)
            return self.toarray()[key]
        if self.lazy and isinstance(key, slice) and key.step in (None, 1):
            return SplitMatrix(self.dense.view(key), tuple(c[key] for c in self.codes),
                               self.sizes)
        return SplitMatrix(self.dense[key], tuple(c[key] for c in self.codes), self.sizes)

    def written(self, rows=slice(None)) -> SplitMatrix:
        """Rows ``rows`` with their dense part as an array (a new one for a lazy design)."""
        return SplitMatrix(self.dense[rows], tuple(c[rows] for c in self.codes), self.sizes)

    def under(self, arm: int) -> SplitMatrix:
        """Every row treated (1) or untreated (0): a lazy design only."""
        return SplitMatrix(self.dense.under(arm), self.codes, self.sizes)

    def toarray(self) -> np.ndarray:
        out = np.zeros(self.shape)
        out[:, :self.p] = self.dense if not self.lazy else np.asarray(self.dense)
        rows = np.arange(self.shape[0])
        for c, off in zip(self.codes, self.offsets):
            hit = c > 0
            out[rows[hit], off + c[hit] - 1] = 1.0
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.toarray()
        return out if dtype is None else out.astype(dtype)

    def copy(self) -> SplitMatrix:
        """A copy whose dense part may be changed in place (a lazy one is written)."""
        return SplitMatrix(self.dense[:] if self.lazy else self.dense.copy(), self.codes,
                           self.sizes)

    def with_dense(self, dense) -> SplitMatrix:
        return SplitMatrix(dense, self.codes, self.sizes)

    def scaled(self, scale: np.ndarray) -> SplitMatrix:
        """The design with its dense columns divided by ``scale`` (powers of two: exact)."""
        return self.with_dense(self.dense.scaled(scale) if self.lazy else self.dense / scale)

    def without(self, cols) -> SplitMatrix:
        """The design without dense columns ``cols`` (a reduced model)."""
        cols = np.asarray(cols, dtype=int)
        if cols.size and cols.max() >= self.p:
            raise ValueError("only dense columns can be dropped from a split design")
        if self.lazy:
            return self.with_dense(self.dense.without(cols))
        return self.with_dense(np.delete(self.dense, cols, axis=1))

    def column_index(self) -> list[np.ndarray]:
        """Per wide factor, each row's column in the full design (``shape[1]``: none)."""
        return [np.where(c > 0, off + c.astype(np.int64) - 1, self.shape[1])
                for c, off in zip(self.codes, self.offsets)]

    def row_blocks(self):
        """(rows, ``X[rows]``) for consecutive blocks of :data:`ROW_BLOCK` rows (views, or
        written from a lazy design's sources into one buffer: use each block before taking
        the next); one block with several wide factors, whose dense K x K cross-tabulation a
        block's cross-product would repeat."""
        size = ROW_BLOCK if len(self.sizes) == 1 else max(1, self.shape[0])
        if self.lazy:
            for rows, D in self.dense.blocks(size):
                yield rows, SplitMatrix(D, tuple(c[rows] for c in self.codes), self.sizes)
            return
        for s in range(0, self.shape[0], size):
            rows = slice(s, min(s + size, self.shape[0]))
            yield rows, SplitMatrix(self.dense[rows], tuple(c[rows] for c in self.codes),
                                    self.sizes)

    # -- cross-products ------------------------------------------------------------------
    def crossprod(self, v: np.ndarray | None = None) -> Blocks:
        """``X' diag(v) X`` in blocks (``v`` None: ``X'X``), summed over :meth:`row_blocks`."""
        out = None
        for rows, Xb in self.row_blocks():
            part = Xb._crossprod(np.ones(rows.stop - rows.start) if v is None else v[rows])
            out = part if out is None else out.add(part)
        return out

    def _crossprod(self, v: np.ndarray) -> Blocks:
        D = self.dense
        A = np.zeros((self.p, self.p))
        for s in range(0, D.shape[0], ROW_BLOCK):
            Db = D[s:s + ROW_BLOCK]
            A += Db.T @ (Db * v[s:s + ROW_BLOCK, None])
        Bs, diag = [], []
        for c, k in zip(self.codes, self.sizes):
            Bs.append(np.stack([np.bincount(c, weights=v * D[:, j], minlength=k + 1)[1:]
                                for j in range(self.p)]).reshape(self.p, k))
            diag.append(np.bincount(c, weights=v, minlength=k + 1)[1:])
        B = np.hstack(Bs)
        if len(self.codes) == 1:
            return Blocks(A, B, diag[0])
        C = np.diag(np.concatenate(diag))
        for i in range(len(self.codes)):
            for j in range(i + 1, len(self.codes)):
                ki, kj = self.sizes[i], self.sizes[j]
                key = self.codes[i].astype(np.int64) * (kj + 1) + self.codes[j]
                cross = np.bincount(key, weights=v, minlength=(ki + 1) * (kj + 1))
                cross = cross.reshape(ki + 1, kj + 1)[1:, 1:]
                si, sj = self.offsets[i] - self.p, self.offsets[j] - self.p
                C[si:si + ki, sj:sj + kj] = cross
                C[sj:sj + kj, si:si + ki] = cross.T
        return Blocks(A, B, C)


@dataclass
class Blocks:
    """A symmetric matrix ``[[A, B], [B', C]]`` with ``C`` diagonal (a vector: one wide factor)
    or dense (several): the information or meat of a split design."""

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray

    @property
    def size(self) -> int:
        return self.A.shape[0] + self.B.shape[1]

    def add(self, other: Blocks) -> Blocks:
        """``self + other``, in place (sums of cross-products over blocks of rows)."""
        self.A += other.A
        self.B += other.B
        self.C += other.C
        return self

    def _cinv(self, M: np.ndarray) -> np.ndarray:
        """``C^-1 M``."""
        if self.C.ndim == 1:
            return M / (self.C[:, None] if M.ndim == 2 else self.C)
        if not hasattr(self, "_cfac"):
            self._cfac = linalg.cho_factor(self.C)
        return linalg.cho_solve(self._cfac, M)

    def _schur(self):
        if not hasattr(self, "_sfac"):
            if np.any((self.C if self.C.ndim == 1 else np.diag(self.C)) <= 0):
                raise np.linalg.LinAlgError("a level of a wide factor has zero weight")
            self._cib = self._cinv(self.B.T)  # K x p
            S = self.A - self.B @ self._cib
            self._sfac = linalg.cho_factor(S)
        return self._sfac, self._cib

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``M^-1 rhs`` by the Schur complement ``A - B C^-1 B'`` (p x p)."""
        sfac, cib = self._schur()
        p = self.A.shape[0]
        r1, r2 = rhs[:p], rhs[p:]
        x1 = linalg.cho_solve(sfac, r1 - cib.T @ r2)
        x2 = self._cinv(r2) - cib @ x1
        return np.concatenate([x1, x2])

    def lowrank(self):
        """The inverse (one wide factor) as ``Delta + U W U'``: ``Delta = diag(0, 1/C)``,
        ``U = [I; -C^-1 B']`` ((p + K) x p), ``W`` the inverse Schur complement (p x p)."""
        sfac, cib = self._schur()
        p = self.A.shape[0]
        W = linalg.cho_solve(sfac, np.eye(p))
        return np.concatenate([np.zeros(p), 1.0 / self.C]), np.vstack([np.eye(p), -cib]), W

    def diagonal(self) -> np.ndarray:
        return np.concatenate([np.diag(self.A), self.C if self.C.ndim == 1 else np.diag(self.C)])

    def _quadratic_pieces(self):
        """``S^-1``, ``C^-1 B'`` with a zero row K (a reference level) and ``C^-1`` padded the
        same way (made once: :meth:`inverse_quadratic` is called per block of rows)."""
        if not hasattr(self, "_qp"):
            sfac, cib = self._schur()
            p, K = self.A.shape[0], self.B.shape[1]
            cinv = np.zeros((K + 1,) * self.C.ndim)
            cinv[(slice(K),) * self.C.ndim] = (1.0 / self.C if self.C.ndim == 1
                                               else self._cinv(np.eye(K)))
            self._qp = (linalg.cho_solve(sfac, np.eye(p)), np.vstack([cib, np.zeros((1, p))]),
                        cinv)
        return self._qp

    def inverse_quadratic(self, X: SplitMatrix) -> np.ndarray:
        """``x_i' M^-1 x_i`` for every row of ``X`` (M: this matrix; leverages), from the Schur
        form of the inverse, ``z_i' S^-1 z_i + e_i' C^-1 e_i`` with ``z_i = d_i - B C^-1 e_i``
        (``d_i``, ``e_i``: the row's dense and one-hot parts): O(n p^2), by blocks of rows."""
        W, cib, cinv = self._quadratic_pieces()
        p, K = self.A.shape[0], self.B.shape[1]
        h = np.empty(X.shape[0])
        for s in range(0, X.shape[0], QUADRATIC_BLOCK):
            rows = slice(s, s + QUADRATIC_BLOCK)
            idx = [np.where(c[rows] > 0, off - p + c[rows].astype(np.int64) - 1, K)
                   for c, off in zip(X.codes, X.offsets)]
            z = cib[idx[0]]
            for i in idx[1:]:
                z += cib[i]
            np.subtract(X.dense[rows], z, out=z)
            q = np.einsum("ij,ij->i", z @ W, z)
            if self.C.ndim == 1:
                q += cinv[idx[0]]
            else:
                q += sum(cinv[i, j] for i in idx for j in idx)
            h[rows] = q
        return h

    def full(self) -> np.ndarray:
        p, P = self.A.shape[0], self.size
        out = np.empty((P, P))
        out[:p, :p], out[:p, p:], out[p:, :p] = self.A, self.B, self.B.T
        out[p:, p:] = np.diag(self.C) if self.C.ndim == 1 else self.C
        return out

    def times(self, M: np.ndarray) -> np.ndarray:
        """``self @ M`` for a dense (p + K) x m matrix, using the block structure."""
        p = self.A.shape[0]
        out = np.empty((self.size, M.shape[1]))
        out[:p] = self.A @ M[:p] + self.B @ M[p:]
        bottom = out[p:]
        if self.C.ndim == 1:
            np.multiply(self.C[:, None], M[p:], out=bottom)
        else:
            bottom[:] = self.C @ M[p:]
        bottom += self.B.T @ M[:p]
        return out

    def drop_dense(self, cols) -> Blocks:
        keep = np.setdiff1d(np.arange(self.A.shape[0]), cols)
        return Blocks(self.A[np.ix_(keep, keep)], self.B[keep], self.C)

    def schur_rank(self, names) -> list[str]:
        """Dense columns that are linear combinations of the others and the wide factors
        (judged on the Schur complement scaled to unit diagonal): their names, or []."""
        C = self.C if self.C.ndim == 1 else np.diag(self.C)
        if np.any(C <= 0):
            return []
        cib = self._cinv(self.B.T)
        S = self.A - self.B @ cib
        d = np.sqrt(np.clip(np.diag(S), 0, None))
        scale = np.sqrt(np.diag(self.A))
        gone = [names[j] for j in np.flatnonzero(d <= 1e-7 * scale)]
        if gone:
            return gone
        Sn = S / np.outer(d, d)
        ev = np.linalg.eigvalsh(Sn)
        if ev[0] > ev[-1] * 1e-12:
            return []
        _, piv, rank, _ = linalg.lapack.dpstrf(Sn, tol=ev[-1] * 1e-10)
        return [names[j] for j in piv[rank:] - 1]


def wide_terms(rhs: str, frame, categorical, levels: dict, treatment: str) -> list:
    """The formula's wide-factor terms: (formulaic term, expr, column) for each adjustment-only
    main effect ``C(x)`` / ``x`` of a categorical column with more than
    :data:`WIDE_MIN_LEVELS` levels that appears in no other term; [] when the formula has no
    intercept (the first factor would then be coded in full rank)."""
    import re

    from formulaic import Formula

    try:
        terms = list(Formula(rhs))
    except Exception:  # noqa: BLE001 - an unparsable formula is reported by the builder
        return []
    if not any(str(t) == "1" for t in terms):
        return []
    out = []
    for t in terms:
        if len(t.factors) != 1:
            continue
        expr = t.factors[0].expr
        m = re.fullmatch(r"C\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)", expr)
        col = m.group(1) if m else expr
        if col == treatment or col not in frame.columns or col not in categorical:
            continue
        lv = levels.get(col)
        if lv is None or len(lv.values) <= WIDE_MIN_LEVELS:
            continue
        word = re.compile(rf"(?<![A-Za-z0-9_.]){re.escape(col)}(?![A-Za-z0-9_.])")
        if any(word.search(f.expr) for u in terms if u is not t for f in u.factors):
            continue  # interacts with something: not an adjustment-only main effect
        out.append((t, expr, col))
    return out


def coding(expr: str, data, lv) -> tuple[object, tuple[str, ...], np.ndarray] | None:
    """formulaic's coding of the term ``expr`` (``data``: its column) read off one row per
    level: (those rows, its column names, column + 1 of each level's code, 0 for the
    reference level); None when it is not plain treatment coding (the factor then stays
    dense)."""
    codes = np.asarray(lv.codes)
    k = len(lv.values)
    first = np.full(k, -1, dtype=np.int64)  # a row of each level (the first)
    first[codes[::-1]] = np.arange(len(codes), dtype=np.int32 if len(codes) < 2 ** 31
                                   else np.int64)[::-1]
    if np.any(first < 0):
        return None
    key = (expr, str(data.dtypes.iloc[0]), tuple(lv.values))
    rows = data.iloc[first]
    if key not in _CODINGS:
        if len(_CODINGS) > 16:
            _CODINGS.clear()
        _CODINGS[key] = _young_garbage_freed(_read_coding, expr, rows, k)
    if _CODINGS[key] is None:
        return None
    names, column = _CODINGS[key]
    dtype = np.int16 if k < 2 ** 15 else np.int32
    return rows, names, column.astype(dtype)


#: Codings already read (one-at-a-time analyses of one data set share their wide factors).
_CODINGS: dict = {}


def _young_garbage_freed(fn, *args):
    """``fn(*args)``, the reference cycles it leaves freed at once: formulaic's sparse
    coding of a thousand levels leaves about 1 MiB in cycles, which would otherwise live
    through the analysis. The collector is paused during the call so that its objects stay
    in the youngest generation, whose collection afterwards costs little."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return fn(*args)
    finally:
        if enabled:
            gc.enable()
        gc.collect(0)


def _read_coding(expr: str, rows, k: int):
    from formulaic import model_matrix

    mm = model_matrix(expr, rows, na_action="raise", output="sparse")
    names = tuple(mm.model_spec.column_names)
    if not names or names[0] != "Intercept":
        return None
    M = mm.tocsr()[:, 1:]
    if M.shape != (k, k - 1) or not np.all(M.data == 1):
        return None
    per_row, per_col = np.diff(M.indptr), np.bincount(M.indices, minlength=k - 1)
    if np.any(per_row > 1) or (per_row == 0).sum() != 1 or np.any(per_col != 1):
        return None
    column = np.zeros(k, dtype=np.int64)
    column[per_row == 1] = M.indices + 1
    return names[1:], column


def narrow_rhs(rhs: str, wterms) -> str:
    """The right-hand side without the wide terms (materialized densely)."""
    from formulaic import Formula

    wide = {str(w[0]) for w in wterms}
    return " + ".join(str(t) for t in Formula(rhs) if str(t) not in wide)


def wide_factors(wterms, data, levels: dict, p: int) -> list:
    """(WideFactor, its codes as design columns + 1, the level codes) of each wide term whose
    coding is plain treatment coding, its columns numbered from ``p``; bad levels refused."""
    out, start = [], p
    for _term, expr, col in wterms:
        lv = levels[col]
        if np.any(np.asarray(lv.codes) < 0):
            raise DataError(f"adjustment factor {col!r} has missing values among the analysed "
                            "rows; exclude them or code them as a level of their own.")
        coded = coding(expr, data[[col]], lv)
        if coded is None:
            raise FormulaError(f"{expr} with {len(lv.values)} levels must be coded with "
                               f"treatment contrasts (write C({col}), without contrasts or "
                               "levels=) to be fitted without dense dummy columns.")
        rows, names, column = coded
        lookup = dict(zip(lv.values, column.tolist()))
        out.append((WideFactor(expr, col, rows, names, start, lookup), None, column))
        start += len(names)
    if start - p > MAX_WIDE_COLUMNS:
        sizes = ", ".join(f"{e} ({len(levels[c].values)} levels)" for _t, e, c in wterms)
        raise ModelError(
            f"{sizes}: {start - p} coefficients for many-level adjustment factors, more than "
            f"the {MAX_WIDE_COLUMNS} this package fits. Merge rare levels (e.g. sites with few "
            "patients into 'other'), adjust for a coarser grouping (region) or stratify on the "
            "factor, or fit a mixed model with a random intercept per level.")
    return [(w, np.asarray(levels[w.column].codes), col) for (w, _, col) in out]


def warn_dense(wterms, levels: dict) -> None:
    """A wide factor in a family that fits dense designs (Cox, mixed models)."""
    for _t, expr, col in wterms:
        k = len(levels[col].values)
        warnings.warn(
            f"adjustment factor {expr} has {k} levels and is fitted as {k - 1} dense design "
            f"columns, which is slow. In a Cox model write strata({col}) instead of {expr} "
            f"(a baseline hazard per level, no coefficients); otherwise merge rare levels.",
            ModelWarning, stacklevel=4)


def check_rank(X: SplitMatrix, columns, wide, n_patients: int | None = None) -> None:
    """Estimability of a split design from its blocked cross-product: every wide level has
    at least two analysed rows, and no dense column lies in the span of the others and the
    wide factors (e.g. a treatment constant within every site)."""
    n = X.shape[0] if n_patients is None else n_patients
    if n <= X.shape[1]:
        raise ModelError(f"{n} analysed rows for {X.shape[1]} model coefficients: the model "
                         "cannot be estimated. Merge rare levels of "
                         f"{', '.join(w.expr for w in wide)} or use fewer covariates.")
    norms = np.sqrt(X.dense_sumsq())
    zero = [columns[j] for j in np.flatnonzero(norms == 0)]
    if zero:
        raise ModelError(f"design column(s) {zero[:10]} are zero for every analysed row (a "
                         "level or combination no analysed patient has). Remove the term or "
                         "merge levels.")
    if n_patients is None:
        for w, c, k in zip(wide, X.codes, X.sizes):
            counts = np.bincount(c, minlength=k + 1)
            lonely = np.flatnonzero(counts < 2)
            if lonely.size:
                names = [w.names[j - 1] if j else f"{w.column} (reference level)"
                         for j in lonely[:5]]
                raise DataError(
                    f"{lonely.size} level(s) of the adjustment factor {w.column!r} have a "
                    f"single analysed patient ({', '.join(names)}): each such level's "
                    "coefficient fits its patient exactly. Merge rare levels (e.g. into "
                    "'other') before the analysis.")
    try:
        gone = X.crossprod().schur_rank(columns[:X.p])
    except np.linalg.LinAlgError:
        raise ModelError(
            f"collinear design: the levels of {' and '.join(w.expr for w in wide)} are linear "
            "combinations of each other (one factor nested in the other, e.g. sites within "
            "regions). Adjust for the finer factor only.") from None
    if gone:
        raise ModelError(
            f"collinear design: column(s) {gone} are linear combinations of other columns and "
            f"the levels of {', '.join(w.expr for w in wide)} (e.g. a treatment or covariate "
            "constant within each level, as in a cluster-randomized trial). Remove the "
            "factor, or the covariate it determines, and use variance=hr.Cluster(...) for "
            "clustering.")
