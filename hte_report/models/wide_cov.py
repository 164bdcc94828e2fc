"""The coefficient covariance of a split-design fit, as an operator (issue 21).

With ``H`` the information in blocks (:class:`~hte_report.design.wide.Blocks`), the covariance
is ``V = s H^-1`` (model-based) or the sandwich ``V = H^-1 M H^-1``, with the meat ``M`` in
blocks too (HC0-HC3: ``X' diag(q) X``) or as cluster score sums ``S`` (``M = c S'S``, ``S``
sparse in its wide columns). ``V`` itself, (p + K)^2 numbers (8 MiB for K = 1,000), is never
formed: what the delta method asks for, ``L V L'``, is ``a' M a`` with ``a = H^-1 L'`` solved
through the Schur complement at O((p + K) p) per row of ``L``, and the coefficient table's
variances come from the low-rank form of ``H^-1`` at O((p + K) p^2) (with several wide
factors: by blocks of unit vectors).

:class:`WideCovariance` stands where a dense covariance matrix stands in
:class:`~hte_report.models.glm.FittedModel`: ``L @ V`` (and ``V @ R``), ``np.diag(V)`` /
``V.diagonal()``, ``V[rows, cols]`` for a few rows, ``np.isfinite(V)`` (answered for the whole
matrix: a 0-d array, all that ``np.all(np.isfinite(V))`` asks) and, as a last resort,
``np.asarray(V)`` (the dense matrix, by blocks of columns).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from hte_report.design.wide import Blocks, SplitMatrix

#: Unit vectors per block when the diagonal or the dense matrix is taken column block by block.
COLUMN_BLOCK = 32
#: Columns per block of :meth:`WideCovariance.times` (its temporaries: (p + K) x 8 each).
SOLVE_COLUMNS = 8


class ClusterMeat:
    """``c S'S`` for the cluster score sums ``S`` (G x (p + K)): ``S_g = sum_{i in g} u_i x_i``,
    its dense part G x p, its wide part a sparse G x K matrix (at most one entry per row of the
    data), so that ``M a`` costs O(G p + n) per column and nothing of size G x K is formed."""

    def __init__(self, X: SplitMatrix, groups: np.ndarray, u: np.ndarray, factor: float):
        G = int(groups.max()) + 1
        self.dense = _dense_sums(X, groups, u, G)
        # column c of a level's code (0: the reference level, dropped); a group's rows at one
        # level are summed
        self.wide = sparse.hstack([sparse.csr_matrix((u, (groups, c)), shape=(G, k + 1))[:, 1:]
                                   for c, k in zip(X.codes, X.sizes)], format="csr")
        self.factor = factor
        self.p = X.p

    def times(self, a: np.ndarray) -> np.ndarray:
        Sa = self.dense @ a[:self.p] + self.wide @ a[self.p:]
        return self.factor * np.vstack([self.dense.T @ Sa, self.wide.T @ Sa])

    def diagonal(self) -> np.ndarray:
        return self.factor * np.concatenate([np.einsum("ij,ij->j", self.dense, self.dense),
                                             np.asarray(self.wide.multiply(self.wide).sum(0))
                                             .ravel()])

    def all_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.dense)) and np.all(np.isfinite(self.wide.data))
                    and np.isfinite(self.factor))


def _dense_sums(X: SplitMatrix, groups: np.ndarray, u: np.ndarray, G: int) -> np.ndarray:
    """``sum_{i in g} u_i d_i`` per cluster (G x p), over the dense part by blocks of rows."""
    out = np.zeros((G, X.p))
    for rows, Xb in X.row_blocks():
        g, ub = groups[rows], u[rows]
        for j in range(X.p):
            out[:, j] += np.bincount(g, weights=ub * Xb.dense[:, j], minlength=G)
    return out


def blocks_finite(b: Blocks) -> bool:
    return bool(np.all(np.isfinite(b.A)) and np.all(np.isfinite(b.B))
                and np.all(np.isfinite(b.C)))


class WideCovariance:
    """``V = factor H^-1`` (``meat`` None) or ``H^-1 M H^-1`` (``meat``: :class:`Blocks` or
    :class:`ClusterMeat`), on the fitting scale; ``colscale``: the fitting scale of each
    coefficient (the user's covariance is ``V / outer(colscale, colscale)``). ``info`` None:
    no covariance (every entry NaN: a reduced model, a failed fit)."""

    ndim = 2
    dtype = np.dtype(float)

    def __init__(self, info: Blocks | None, P: int, meat=None, factor: float = 1.0,
                 colscale: np.ndarray | None = None):
        self.info, self.meat, self.factor = info, meat, float(factor)
        self.shape = (P, P)
        self.colscale = np.ones(P) if colscale is None else np.asarray(colscale, float)

    @classmethod
    def undefined(cls, P: int) -> WideCovariance:
        return cls(None, P)

    def __repr__(self) -> str:
        kind = ("undefined" if self.info is None else "model" if self.meat is None
                else type(self.meat).__name__)
        return f"WideCovariance({self.shape[0]} x {self.shape[1]}, {kind})"

    def rescaled(self, colscale: np.ndarray) -> WideCovariance:
        """The covariance of the coefficients divided by ``colscale`` (back to the user's
        scale after fitting on rescaled columns)."""
        return WideCovariance(self.info, self.shape[0], self.meat, self.factor,
                              self.colscale * colscale)

    # -- the operator ----------------------------------------------------------------------
    def times(self, R: np.ndarray) -> np.ndarray:
        """``V R`` for a (p + K) x m matrix (NaN columns where ``R`` is not finite), by blocks
        of :data:`SOLVE_COLUMNS` columns: the solves' temporaries are (p + K) x 8 each, not
        (p + K) x m (the delta method of dozens of effects at once)."""
        R = np.asarray(R, dtype=float)
        vec = R.ndim == 1
        R = R[:, None] if vec else R
        out = np.full(R.shape, np.nan)
        ok = np.flatnonzero(np.all(np.isfinite(R), axis=0))
        if self.info is not None:
            for s in range(0, len(ok), SOLVE_COLUMNS):
                cols = ok[s:s + SOLVE_COLUMNS]
                a = self.info.solve(R[:, cols] / self.colscale[:, None])
                if self.meat is None:
                    a *= self.factor
                else:
                    a = self.info.solve(self.meat.times(a))
                a /= self.colscale[:, None]
                out[:, cols] = a
        return out[:, 0] if vec else out

    def __matmul__(self, R):
        return self.times(R)

    def __rmatmul__(self, L):
        L = np.asarray(L, dtype=float)
        return self.times(L.T).T  # V is symmetric: L V = (V L')'

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs:
            return NotImplemented
        if ufunc is np.matmul and len(inputs) == 2:
            return self.times(inputs[1]) if inputs[0] is self else self.__rmatmul__(inputs[0])
        if ufunc is np.isfinite and len(inputs) == 1:
            return np.array(self.all_finite())
        return NotImplemented

    def __array_function__(self, func, types, args, kwargs):
        if func in (np.diag, np.diagonal) and args[0] is self and len(args) == 1 and not kwargs:
            return self.diagonal()
        return NotImplemented

    def all_finite(self) -> bool:
        if self.info is None:
            return False
        meat = self.meat
        return (blocks_finite(self.info) and np.isfinite(self.factor)
                and (meat is None or (blocks_finite(meat) if isinstance(meat, Blocks)
                                      else meat.all_finite())))

    # -- pieces ----------------------------------------------------------------------------
    def _column_blocks(self):
        P = self.shape[0]
        for start in range(0, P, COLUMN_BLOCK):
            cols = np.arange(start, min(P, start + COLUMN_BLOCK))
            E = np.zeros((P, len(cols)))
            E[cols, np.arange(len(cols))] = 1.0
            yield cols, E

    def diagonal(self) -> np.ndarray:
        """Every coefficient's variance. One wide factor: from the low-rank form of the inverse
        information (:meth:`Blocks.lowrank`), O((p + K) p^2); several: ``e_j' V e_j`` by
        blocks of unit vectors, O((p + K)^2 p)."""
        if self.info is None:
            return np.full(self.shape[0], np.nan)
        if self.info.C.ndim == 1:
            return self._lowrank_diagonal() / self.colscale ** 2
        out = np.empty(self.shape[0])
        for cols, E in self._column_blocks():
            out[cols] = self.times(E)[cols, np.arange(len(cols))]
        return out

    def _lowrank_diagonal(self) -> np.ndarray:
        """With ``H^-1 = Delta + U W U'`` the j-th column of ``H^-1`` is ``delta_j e_j + U r_j``
        (``r_j``: row j of ``U W``), so ``V_jj = delta_j^2 M_jj + 2 delta_j (M U r_j)_j +
        r_j' (U' M U) r_j``; the model-based ``V_jj = factor (delta_j + r_j' u_j)``."""
        delta, U, W = self.info.lowrank()
        R = U @ W
        if self.meat is None:
            return self.factor * (delta + np.einsum("ij,ij->i", R, U))
        MU = self.meat.times(U)
        return (delta ** 2 * self.meat.diagonal() + 2 * delta * np.einsum("ij,ij->i", MU, R)
                + np.einsum("ij,ij->i", R @ (U.T @ MU), R))

    def rows(self, idx) -> np.ndarray:
        """``V[idx, :]`` (a few rows)."""
        idx = np.atleast_1d(np.arange(self.shape[0])[idx]).ravel()
        E = np.zeros((self.shape[0], len(idx)))
        E[idx, np.arange(len(idx))] = 1.0
        return self.times(E).T

    def __getitem__(self, key):
        if not isinstance(key, tuple) or len(key) != 2:
            raise TypeError("index a WideCovariance by (rows, columns)")
        r, c = key
        block = self.rows(r)[:, np.atleast_1d(np.arange(self.shape[1])[c]).ravel()]
        if np.ndim(r) == 0 and np.ndim(c) == 0 and not isinstance(r, slice) \
                and not isinstance(c, slice):
            return float(block[0, 0])
        return block

    def toarray(self) -> np.ndarray:
        """The dense (p + K)^2 matrix (small designs, or a caller that needs it whole)."""
        out = np.empty(self.shape)
        for cols, E in self._column_blocks():
            out[:, cols] = self.times(E)
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.toarray()
        return out if dtype is None else out.astype(dtype)
