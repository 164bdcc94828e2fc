"""Exact fast paths for large n: IRLS on the normal equations, and fits on compressed cells.

Both return the same :class:`~hte_report.models.glm.FittedModel` as the statsmodels path, to
the precision of the convergence criterion; statsmodels stays the reference (tests compare
every family and variance option).

* ``irls``: iteratively reweighted least squares with a Cholesky solve of ``X'WX b = X'Wz``,
  accumulated over row blocks so that temporaries stay a fraction of the design's size; robust
  covariances from block sums of score outer products (no n x n and no full n x p copies).
* ``compressed``: when the design has few distinct rows (all-categorical designs), aggregate to
  cells (count, sum of y, sum of y^2 per cell and cluster) and fit there. The model-based and
  sandwich covariances (HC0-HC3, cluster) are computed exactly from the cell sufficient
  statistics: the meat uses ``sum_i (y_i - mu_c)^2 = S2 - 2 mu_c S1 + n_c mu_c^2`` per cell,
  not the cell means (statsmodels' ``freq_weights`` on cell means gets robust variances wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from ..options import MODELS, Cluster, Variance, variance_label

BLOCK = 1 << 16


@dataclass(frozen=True)
class CellStats:
    """Sufficient statistics per cell of identical patients: count, sum of y, sum of y^2 and
    sum of log y! (for the Poisson log-likelihood)."""

    cnt: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    slg: np.ndarray


def _family_funcs(family: str, link: str):
    """(inverse link, d mu/d eta, variance function, deviance contribution)."""
    if link == "identity":
        inv = lambda e: e  # noqa: E731
        dmu = lambda e: np.ones_like(e)  # noqa: E731
    elif link == "log":
        inv = np.exp
        dmu = np.exp
    else:
        inv = lambda e: 1.0 / (1.0 + np.exp(-e))  # noqa: E731
        dmu = lambda e: inv(e) * (1.0 - inv(e))  # noqa: E731
    if family == "binomial":
        var = lambda m: m * (1.0 - m)  # noqa: E731
    elif family == "poisson":
        var = lambda m: m  # noqa: E731
    else:
        var = lambda m: np.ones_like(m)  # noqa: E731
    return inv, dmu, var


def irls(X, y, family, link, weights=None, offset=None, start=None, tol=1e-13, maxiter=300):
    """IRLS with Cholesky solves. ``weights`` are frequency weights (cell counts)."""
    n, p = X.shape
    inv, dmu_f, var_f = _family_funcs(family, link)
    w0 = np.ones(n) if weights is None else weights
    off = np.zeros(n) if offset is None else offset
    if start is None:
        if link == "identity":
            mu = np.clip(y, 1e-3, None) if family != "gaussian" else y
            eta = mu
        elif link == "log":
            mu = (y + y.mean()) / 2
            eta = np.log(mu)
        else:
            mu = (y + 0.5) / 2
            eta = np.log(mu / (1 - mu))
        b = None
    else:
        b = np.asarray(start, float)
        eta = X @ b + off
    dev_old = np.inf
    it = 0
    for it in range(1, maxiter + 1):  # noqa: B007
        mu = inv(eta)
        d = dmu_f(eta)
        v = var_f(mu)
        w = w0 * d * d / v
        z = (eta - off) + (y - mu) / d
        xtwx = np.zeros((p, p))
        xtwz = np.zeros(p)
        for s in range(0, n, BLOCK):
            Xb = X[s:s + BLOCK]
            wb = w[s:s + BLOCK]
            xtwx += Xb.T @ (Xb * wb[:, None])
            xtwz += Xb.T @ (wb * z[s:s + BLOCK])
        c = linalg.cho_factor(xtwx)
        b_new = linalg.cho_solve(c, xtwz)
        eta = X @ b_new + off
        mu = inv(eta)
        dev = float(np.sum(w0 * (y - mu) ** 2 / var_f(mu)))  # Pearson-type criterion
        if b is not None and np.max(np.abs(b_new - b)) <= tol * (1 + np.max(np.abs(b_new))):
            b = b_new
            break
        if abs(dev - dev_old) <= tol * (abs(dev) + 0.1) and b is not None:
            b = b_new
            break
        b, dev_old = b_new, dev
    converged = it < maxiter
    return b, eta, converged, it


def robust_meat(X, score_w, variance: Variance, groups=None, hat=None):
    """sum_i s_i s_i' with s_i = score_w[i] * X[i], in blocks; HC2/HC3 via ``hat``."""
    n, p = X.shape
    sw = score_w
    if variance in ("HC2", "HC3"):
        power = 0.5 if variance == "HC2" else 1.0
        sw = sw / (1.0 - hat) ** power
    if isinstance(variance, Cluster):
        codes = np.unique(groups, return_inverse=True)[1]
        G = int(codes.max()) + 1
        summed = np.zeros((G, p))
        for s in range(0, n, BLOCK):
            np.add.at(summed, codes[s:s + BLOCK], X[s:s + BLOCK] * sw[s:s + BLOCK, None])
        return summed.T @ summed, G
    meat = np.zeros((p, p))
    for s in range(0, n, BLOCK):
        S = X[s:s + BLOCK] * sw[s:s + BLOCK, None]
        meat += S.T @ S
    return meat, None


def hat_values(X, w, bread):
    out = np.empty(X.shape[0])
    for s in range(0, X.shape[0], BLOCK):
        Xb = X[s:s + BLOCK]
        out[s:s + BLOCK] = np.einsum("ij,jk,ik->i", Xb, bread, Xb) * w[s:s + BLOCK]
    return out


def fit_irls(name, X, y, variance: Variance, exposure=None, groups=None, start=None):
    """Full-data fast path. Returns (params, vcov, loglik, converged, iterations)."""
    info = MODELS[name]
    family = info.family
    link = info.link
    Xf = X * exposure[:, None] if (exposure is not None and link == "identity") else X
    off = np.log(exposure) if (exposure is not None and link == "log") else None
    b, eta, converged, it = irls(Xf, y, family, link, offset=off, start=start)
    inv, dmu_f, var_f = _family_funcs(family, link)
    mu = inv(eta)
    d = dmu_f(eta)
    v = var_f(mu)
    w = d * d / v
    n, p = Xf.shape
    xtwx = np.zeros((p, p))
    for s in range(0, n, BLOCK):
        Xb = Xf[s:s + BLOCK]
        xtwx += Xb.T @ (Xb * w[s:s + BLOCK, None])
    bread = linalg.cho_solve(linalg.cho_factor(xtwx), np.eye(p))
    resid = y - mu
    if family == "gaussian":
        sigma2 = float(resid @ resid) / (n - p)
        ll = -0.5 * n * (np.log(2 * np.pi * float(resid @ resid) / n) + 1)
    else:
        sigma2 = 1.0
        ll = _glm_loglik(family, y, mu)
    if variance == "model":
        vcov = bread * sigma2
    else:
        hat = hat_values(Xf, w, bread) if variance in ("HC2", "HC3") else None
        meat, G = robust_meat(Xf, resid * d / v, variance, groups, hat)
        if variance == "HC1":
            meat = meat * n / (n - p)
        if G is not None:
            meat = meat * G / (G - 1) * (n - 1) / (n - p)
        vcov = bread @ meat @ bread
    return b, vcov, ll, converged, it


def _glm_loglik(family, y, mu) -> float:
    from scipy.special import gammaln

    if family == "binomial":
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(np.where(y > 0, y * np.log(mu), 0.0)
                                + np.where(y < 1, (1 - y) * np.log1p(-mu), 0.0)))
    return float(np.sum(y * np.log(mu) - mu - gammaln(y + 1)))


def compress(X, y, exposure=None, groups=None):
    """Cells of identical design rows (and cluster): counts, sums of y, y^2 and log y!."""
    parts = [X]
    if groups is not None:
        gcodes = np.unique(groups, return_inverse=True)[1].astype(float)
        parts.append(gcodes[:, None])
    key = np.ascontiguousarray(np.hstack(parts) if len(parts) > 1 else X)
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    k = len(first)
    cnt = np.bincount(inverse, minlength=k).astype(float)
    s1 = np.bincount(inverse, weights=y, minlength=k)
    s2 = np.bincount(inverse, weights=y * y, minlength=k)
    from scipy.special import gammaln

    slg = np.bincount(inverse, weights=gammaln(y + 1), minlength=k)
    g = groups[first] if groups is not None else None
    return X[first], cnt, s1, s2, slg, g


def n_distinct_rows(X, limit: int) -> int:
    """Distinct rows of X, computed on a sample first so large continuous designs exit early."""
    sample = X[: min(len(X), 20 * limit)]
    key = np.ascontiguousarray(sample)
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    k = len(np.unique(rows))
    if k > limit or len(sample) == len(X):
        return k
    key = np.ascontiguousarray(X)
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    return len(np.unique(rows))


def fit_compressed(name, X, y, variance: Variance, exposure=None, groups=None, start=None):
    """Exact fit on cells. Returns (params, vcov, loglik, converged, iterations, n_cells)."""
    if exposure is not None:
        raise NotImplementedError("the compressed path does not take an exposure")
    Xc, cnt, s1, s2, slg, g = compress(X, y, None, groups)
    return fit_cells(name, Xc, cnt, s1, s2, slg, variance, g, start)


def fit_cells(name, Xc, cnt, s1, s2, slg, variance: Variance, g=None, start=None):
    """Exact fit from cell sufficient statistics: count, sum of y, sum of y^2 and sum of
    log y! per cell of identical design rows (and cluster ``g``)."""
    info = MODELS[name]
    family, link = info.family, info.link
    n, p = int(cnt.sum()), Xc.shape[1]
    ybar = s1 / cnt
    b, eta, converged, it = irls(Xc, ybar, family, link, weights=cnt, start=start)
    inv, dmu_f, var_f = _family_funcs(family, link)
    mu = inv(eta)
    d = dmu_f(eta)
    v = var_f(mu)
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
    if variance == "model":
        vcov = bread * sigma2
    else:
        q = (d / v) ** 2  # per-row score weight squared, constant within a cell
        if variance in ("HC2", "HC3"):
            h = np.einsum("ij,jk,ik->i", Xc, bread, Xc) * (d * d / v)
            q = q / (1.0 - h) ** (1.0 if variance == "HC2" else 2.0)
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
    return b, vcov, ll, converged, it, len(cnt)


__all__ = ["fit_irls", "fit_compressed", "n_distinct_rows", "variance_label"]


def fit_irls_weighted(name, X, y, weights, exposure=None, start=None) -> np.ndarray:
    """Coefficients only, with frequency weights (bootstrap replicates), warm-started."""
    info = MODELS[name]
    Xf = X * exposure[:, None] if (exposure is not None and info.link == "identity") else X
    off = np.log(exposure) if (exposure is not None and info.link == "log") else None
    b, _eta, _conv, _it = irls(Xf, y, info.family, info.link, weights=weights, offset=off,
                               start=start, tol=1e-10)
    return b
