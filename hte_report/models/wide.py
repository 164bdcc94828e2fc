"""Fisher scoring on a split design (many-level adjustment factors, issue 21).

The design is ``X = [D | one-hot(codes)]`` (:class:`~hte_report.design.wide.SplitMatrix`).
Each pass forms ``X'WX`` in blocks (``D'WD``, ``D'WF`` by ``bincount``, ``F'WF`` diagonal)
and ``X'Wz``, and solves by the Schur complement on the diagonal block, so a pass costs
O(n p + p^2 K), never O(n K). At convergence one more pass at the returned estimate gives the
information, log-likelihood and scores. The covariance is an operator on the information
blocks (:class:`~hte_report.models.wide_cov.WideCovariance`: ``L V L'`` by Schur-complement
solves, never a (p + K)^2 matrix or an n x K array), with exactly the definitions of the dense
paths (:func:`hte_report.models.glm.sandwich`, ``fast.fit_irls``, ``fast.fit_cells``):
model-based (Gaussian: RSS / (n - p)), HC0, HC1 (n / (n - p)), HC2 / HC3 (leverages
``w_i x_i' (X'WX)^-1 x_i`` from the blocks), cluster (``G/(G-1) (n-1)/(n-p)``). Rows may be
cells of identical patients (``cells``: counts, sums of y and y^2), as on the compressed path.
"""

from __future__ import annotations

import numpy as np

from hte_report.design.wide import Blocks, SplitMatrix
from hte_report.models.fast import (
    LOGLIK_TOL,
    WATCH_LOGLIK_AFTER,
    Family,
    _tolerance,
    hat_weights,
    one_blas_thread,
)
from hte_report.models.wide_cov import ClusterMeat, WideCovariance
from hte_report.spec.options import MODELS, Cluster, Variance


def fit_wide(name: str, X: SplitMatrix, y: np.ndarray, variance: Variance | None,
             exposure=None, groups=None, start=None, cells=None, maxiter: int = 300):
    """Fit working model ``name`` on a split design. Returns (params, vcov, loglik, converged,
    passes, undefined, information blocks); ``variance=None``: the log-likelihood only (vcov
    NaN, a reduced model of a likelihood-ratio test)."""
    with one_blas_thread():
        return _fit(name, X, y, variance, exposure, groups, start, cells, maxiter)


def _fit(name, X, y, variance, exposure, groups, start, cells, maxiter):
    info = MODELS[name]
    fam = Family(info.family, info.link)
    scale = exposure if (exposure is not None and fam.link == "identity") else None
    off = np.log(exposure) if (exposure is not None and fam.link == "log") else 0.0
    cnt = None if cells is None else cells.cnt
    s1 = y if cells is None else cells.s1
    ybar = y if cells is None else cells.s1 / cells.cnt
    n = len(y) if cnt is None else float(cnt.sum())
    P = X.shape[1]
    tol = LOGLIK_TOL if (variance is None and fam.canonical) else _tolerance(fam, None)

    def linear_predictor(b):
        eta = X @ b
        return (eta if scale is None else eta * scale) + off

    def weights(eta):
        mu, d = fam.mean(eta)
        w = d * d / fam.variance(mu)
        return mu, d, w

    b = None if start is None else np.asarray(start, float)
    converged, it, ll_prev = False, 0, None
    with np.errstate(all="ignore"):
        for it in range(1, maxiter + 1):
            eta = fam.start_eta(ybar) if b is None else linear_predictor(b)
            mu, d, w = weights(eta)
            wt = w if cnt is None else w * cnt
            z = eta - off + (ybar - mu) / d
            v = wt if scale is None else wt * scale
            blocks = X.crossprod(v if scale is None else v * scale)
            b_new = blocks.solve(X.tdot(v * z))
            if not np.all(np.isfinite(b_new)):
                b = b_new
                break
            if fam.linear:
                b, converged = b_new, True
                break
            if b is not None:
                step = np.max(np.abs(b_new - b)) / (1 + np.max(np.abs(b_new)))
                if step <= tol:
                    b, converged = b_new, True
                    break
            if it > WATCH_LOGLIK_AFTER:  # a drifting coefficient: stop when the
                ll = _loglik_terms(fam, s1, cnt, mu, cells)  # log-likelihood is flat
                if ll_prev is not None and abs(ll - ll_prev) <= 1e-13 * (abs(ll) + 1):
                    b, converged = b_new, True
                    break
                ll_prev = ll
            b = b_new
        if b is None or not np.all(np.isfinite(b)):
            return (np.full(P, np.nan), WideCovariance.undefined(P), np.nan, False, it, None,
                    None)
        eta = linear_predictor(b)
        mu, d, w = weights(eta)
        ll = _loglik(fam, _loglik_terms(fam, s1, cnt, mu, cells), y, cells, n)
        if variance is None:
            return b, WideCovariance.undefined(P), ll, converged, it, None, None
        sw = w if scale is None else w * scale * scale  # one patient's information weight
        blocks = X.crossprod(sw if cnt is None else sw * cnt)
        vcov, undefined = _covariance(fam, X, y, mu, d, sw, scale, blocks, variance, groups,
                                      cells, n)
    return b, vcov, ll, converged, it, undefined, blocks


def _covariance(fam, X, y, mu, d, sw, scale, info: Blocks, variance, groups, cells, n):
    """The covariance (model-based or sandwich) as an operator on the information blocks
    (:class:`~hte_report.models.wide_cov.WideCovariance`): never a (p + K)^2 matrix."""
    P = X.shape[1]
    v = fam.variance(mu)
    sc = d / v if scale is None else d / v * scale  # score per unit residual
    if cells is None:
        resid2 = (y - mu) ** 2
    else:  # sum over each cell of (y_i - mu_c)^2
        resid2 = cells.s2 - 2 * mu * cells.s1 + cells.cnt * mu * mu
    if variance == "model":
        s = float(resid2.sum()) / (n - P) if fam.family == "gaussian" else 1.0
        return WideCovariance(info, P, factor=s), None
    if isinstance(variance, Cluster):
        codes = np.unique(groups, return_inverse=True)[1].ravel()
        G = int(codes.max()) + 1
        u = sc * ((y - mu) if cells is None else (cells.s1 - cells.cnt * mu))
        meat = ClusterMeat(X, codes, u, G / (G - 1) * (n - 1) / (n - P))
        return WideCovariance(info, P, meat), None
    q = sc * sc * resid2
    undefined = None
    if variance in ("HC2", "HC3"):
        h = info.inverse_quadratic(X) * sw
        wt, bad = hat_weights(h, 0.5 if variance == "HC2" else 1.0)
        q = q * wt ** 2
        undefined = info.solve(np.asarray(X[bad]).T) * (1.0 if scale is None else scale[bad])
    meat = X.crossprod(q)
    if variance == "HC1":
        meat = Blocks(meat.A * (n / (n - P)), meat.B * (n / (n - P)), meat.C * (n / (n - P)))
    return WideCovariance(info, P, meat), undefined


def _loglik_terms(fam, s1, cnt, mu, cells) -> float:
    """Log-likelihood terms without constants (Gaussian: the residual sum of squares)."""
    if cells is None:
        return fam.loglik_terms(s1, mu, None)
    if fam.family == "binomial":
        return float(np.sum(np.where(s1 > 0, s1 * np.log(mu), 0.0)
                            + np.where(cnt - s1 > 0, (cnt - s1) * np.log1p(-mu), 0.0)))
    if fam.family == "poisson":
        return float(np.sum(s1 * np.log(mu) - cnt * mu))
    return float(np.sum(cells.s2 - 2 * mu * s1 + cnt * mu * mu))


def _loglik(fam, terms: float, y, cells, n: float) -> float:
    if fam.family == "gaussian":
        return -0.5 * n * (np.log(2 * np.pi * terms / n) + 1)
    if fam.family == "poisson":
        if cells is not None:
            return terms - float(np.sum(cells.slg))
        from scipy.special import gammaln

        return terms - float(np.sum(gammaln(y + 1)))
    return terms


def separated_levels(name: str, X: SplitMatrix, y, cells, columns) -> str:
    """Levels of the wide factors without events (or, for a logit or log-binomial model, with
    only events): their coefficients diverge in a log or logit model (the fit stops when the
    log-likelihood no longer changes, as statsmodels and R do) and mean nothing, although the
    effects do not depend on them. A note naming them, or ""."""
    info = MODELS[name]
    if info.link == "identity" or info.family == "gaussian":
        return ""
    s1 = y if cells is None else cells.s1
    cnt = None if cells is None else cells.cnt
    bad = []
    for c, k, off in zip(X.codes, X.sizes, X.offsets):
        events = np.bincount(c, weights=s1, minlength=k + 1)
        total = np.bincount(c, weights=cnt, minlength=k + 1)
        hit = (events <= 0) | ((events >= total) if info.family == "binomial" else False)
        bad += [str(columns[off + j - 1]) if j else f"{str(columns[off]).split('[')[0]} "
                "(reference level)" for j in np.flatnonzero(hit)]
    if not bad:
        return ""
    return (f"{len(bad)} level(s) of a many-level factor ({', '.join(bad[:5])}"
            f"{', ...' if len(bad) > 5 else ''}) have no events or only events: their "
            "coefficients diverge and mean nothing (effects do not depend on them); merge "
            "rare levels for a cleaner model")


#: Dense columns whose root-mean-square lies outside [2^-SCALE_BITS, 2^SCALE_BITS] are
#: rescaled by a power of two for fitting (exact), as ``models.glm`` does for dense designs.
SCALE_BITS = 12


def fit_split(name, X: SplitMatrix, y, variance, exposure=None, groups=None, start=None,
              cells=None, drop=()):
    """:func:`fit_wide` with dense columns on extreme scales rescaled (exact powers of two) and
    ``drop``: dense columns left out (a likelihood-ratio test's reduced model: the
    log-likelihood only). Returns (params, vcov, loglik, converged, passes, undefined,
    information blocks, linear predictor) on the user's scale."""
    D = X.dense
    step = max(1, D.shape[0] // 4096)
    Ds = D[::step]
    w = None if cells is None else cells.cnt[::step]
    ms = np.einsum("ij,ij->j", Ds, Ds) if w is None else np.einsum("ij,ij,i->j", Ds, Ds, w)
    rms = np.sqrt(ms / (Ds.shape[0] if w is None else w.sum()))
    with np.errstate(divide="ignore"):
        bits = np.where(rms > 0, np.round(np.log2(np.where(rms > 0, rms, 1.0))), 0.0)
    scale = np.exp2(np.where(np.abs(bits) > SCALE_BITS, bits, 0.0))
    keep = np.setdiff1d(np.arange(X.p), drop)
    sk = scale[keep]
    if len(drop) or np.any(scale != 1):
        X = X.with_dense(D[:, keep] / sk if np.any(sk != 1) else D[:, keep])
    full = np.concatenate([sk, np.ones(X.shape[1] - X.p)])
    if start is not None:
        start = np.delete(np.asarray(start, float), drop) * full
    b, V, ll, conv, it, U, blocks = fit_wide(name, X, y, None if len(drop) else variance,
                                             exposure, groups, start, cells)
    eta = X @ b
    if np.any(full != 1):  # back to the user's scale
        V = V.rescaled(full)
        U = None if U is None else U / full[:, None]
        if blocks is not None:
            blocks = Blocks(blocks.A * np.outer(sk, sk), blocks.B * sk[:, None], blocks.C)
    return b / full, V, ll, conv, it, U, blocks, eta


def one_step_start(params: np.ndarray, info: Blocks, drop, p: int) -> np.ndarray:
    """Start for a reduced model (dense columns ``drop`` fixed at zero): the full estimate
    moved to the constraint along the information (the one-step approximation), by the Schur
    complement of the information blocks."""
    drop = np.asarray(drop, dtype=int)
    keep = np.setdiff1d(np.arange(len(params)), drop)
    kd = np.setdiff1d(np.arange(p), drop)
    bd = params[drop]
    cross = np.concatenate([info.A[np.ix_(kd, drop)] @ bd, info.B[drop].T @ bd])
    b = params.copy()
    b[keep] += info.drop_dense(drop).solve(cross)
    b[drop] = 0.0
    return b
