"""Exact fits on cells of identical design rows (all-categorical designs): the cells found
by hashing the rows (:func:`row_cells`), their sufficient statistics (:func:`compress`) and
the fit from them (:func:`fit_cells`), with the model-based and sandwich covariances
(HC0-HC3, cluster) computed exactly from the cell statistics: the meat uses
``sum_i (y_i - mu_c)^2 = S2 - 2 mu_c S1 + n_c mu_c^2`` per cell, not the cell means
(statsmodels' ``freq_weights`` on cell means gets robust variances wrong). The row-block
Fisher scoring they share lives in :mod:`hte_report.models.fast`.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from hte_report.design.arms import rows_times
from hte_report.models.fast import BLOCK, Family, hat_weights, irls
from hte_report.spec.options import MODELS, Cluster, Variance


def _row_hash(X: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """One float per row, equal for identical rows: a projection on a fixed random direction
    (distinct rows collide with probability zero; :func:`row_cells` checks anyway)."""
    r = np.random.default_rng(20261124).uniform(1.0, 2.0, X.shape[1] + 1)
    h = X @ r[:-1]
    return h if extra is None else h + extra * r[-1]


def row_cells(X: np.ndarray, groups: np.ndarray | None = None):
    """Cells of identical rows of X (and cluster): (cell of every row, first row of every cell).

    Rows are hashed and the hashes factorized (linear time; sorting the rows took 0.6 s at
    1e6 x 20), then every row is compared with its cell's first row, so the result is exact; on
    a hash collision the rows are sorted instead."""
    import pandas as pd

    gcodes = None if groups is None else pd.factorize(groups)[0].astype(float)
    codes, uniq = pd.factorize(_row_hash(X, gcodes))
    k = len(uniq)
    first = np.empty(k, np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # first occurrence of every cell
    same = all(np.array_equal(X[first[codes[s:s + BLOCK]]], X[s:s + BLOCK])
               for s in range(0, len(X), BLOCK))
    if same and gcodes is not None:
        same = np.array_equal(gcodes[first[codes]], gcodes)
    if same:
        return codes, first
    key = np.ascontiguousarray(X if gcodes is None else np.column_stack([X, gcodes]))
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first, codes = np.unique(rows, return_index=True, return_inverse=True)
    return codes.ravel(), first


def compress(X, y, exposure=None, groups=None, log_factorial=True):
    """Cells of identical design rows (and cluster): counts, sums of y, y^2 and log y!
    (``log_factorial``: only a Poisson log-likelihood needs it)."""
    codes, first = row_cells(X, groups)
    k = len(first)
    cnt = np.bincount(codes, minlength=k).astype(float)
    s1 = np.bincount(codes, weights=y, minlength=k)
    s2 = np.bincount(codes, weights=y * y, minlength=k)
    if log_factorial:
        from scipy.special import gammaln

        slg = np.bincount(codes, weights=gammaln(y + 1), minlength=k)
    else:
        slg = np.zeros(k)
    g = groups[first] if groups is not None else None
    return X[first], cnt, s1, s2, slg, g


def n_distinct_rows(X, limit: int) -> int:
    """Distinct rows of X (by hash: only chooses the path; :func:`row_cells` is exact), on a
    sample first so that large continuous designs exit early."""
    import pandas as pd

    r = np.random.default_rng(20261124).uniform(1.0, 2.0, X.shape[1] + 1)[:-1]  # _row_hash's
    for m in (2 * limit + 2, 20 * limit):  # continuous designs exit on the first sample
        m = min(len(X), m)
        k = len(pd.unique(rows_times(X, slice(0, m), r)))
        if k > limit or m == len(X):
            return k
    return len(pd.unique(_row_hash(X)))


def fit_compressed(name, X, y, variance: Variance, exposure=None, groups=None, start=None):
    """Exact fit on cells. Returns (params, vcov, loglik, converged, iterations, n_cells,
    undefined)."""
    if exposure is not None:
        raise NotImplementedError("the compressed path does not take an exposure")
    Xc, cnt, s1, s2, slg, g = compress(X, y, None, groups,
                                       log_factorial=MODELS[name].family == "poisson")
    return fit_cells(name, Xc, cnt, s1, s2, slg, variance, g, start)


def fit_cells(name, Xc, cnt, s1, s2, slg, variance: Variance, g=None, start=None):
    """Exact fit from cell sufficient statistics: count, sum of y, sum of y^2 and sum of
    log y! per cell of identical design rows (and cluster ``g``)."""
    info = MODELS[name]
    family, link = info.family, info.link
    n, p = int(cnt.sum()), Xc.shape[1]
    ybar = s1 / cnt
    b, eta, converged, it = irls(Xc, ybar, family, link, weights=cnt, start=start)
    fam = Family(family, link)
    mu, d = fam.mean(eta)
    v = fam.variance(mu)
    w = cnt * d * d / v
    bread = linalg.cho_solve(linalg.cho_factor(Xc.T @ (Xc * w[:, None])), np.eye(p))
    ss = s2 - 2 * mu * s1 + cnt * mu * mu  # sum over the cell of (y_i - mu_c)^2
    if family == "gaussian":
        rss = float(ss.sum())
        sigma2 = rss / (n - p)
        ll = -0.5 * n * (np.log(2 * np.pi * rss / n) + 1)
    else:
        sigma2 = 1.0
        if family == "binomial":
            with np.errstate(divide="ignore", invalid="ignore"):
                ll = float(np.sum(np.where(s1 > 0, s1 * np.log(mu), 0.0)
                                  + np.where(cnt - s1 > 0, (cnt - s1) * np.log1p(-mu), 0.0)))
        else:
            ll = float(np.sum(s1 * np.log(mu) - cnt * mu - slg))
    undefined = None
    if variance == "model":
        vcov = bread * sigma2
    else:
        q = (d / v) ** 2  # per-row score weight squared, constant within a cell
        if variance in ("HC2", "HC3"):
            h = np.einsum("ij,jk,ik->i", Xc, bread, Xc) * (d * d / v)  # of one row of a cell
            wt, bad = hat_weights(h, 0.5 if variance == "HC2" else 1.0)
            q = q * wt**2
            undefined = bread @ Xc[bad].T
        if isinstance(variance, Cluster):
            codes = np.unique(g, return_inverse=True)[1]
            G = int(codes.max()) + 1
            # cluster score sums: sum over cells in the cluster of x_c * d/v * (S1 - n_c mu_c)
            cell_scores = Xc * ((d / v) * (s1 - cnt * mu))[:, None]
            summed = np.zeros((G, p))
            np.add.at(summed, codes, cell_scores)
            meat = summed.T @ summed * G / (G - 1) * (n - 1) / (n - p)
        else:
            meat = Xc.T @ (Xc * (q * ss)[:, None])
            if variance == "HC1":
                meat *= n / (n - p)
        vcov = bread @ meat @ bread
    return b, vcov, ll, converged, it, len(cnt), undefined
