"""Fisher scoring on a split design (many-level adjustment factors, issue 21).

The design is ``X = [D | one-hot(codes)]`` (:class:`~hte_report.design.wide.SplitMatrix`).
Each pass forms ``X'WX`` in blocks (``D'WD``, ``D'WF`` by ``bincount``, ``F'WF`` diagonal)
and ``X'Wz``, and solves by the Schur complement on the diagonal block, so a pass costs
O(n p + p^2 K), never O(n K). At convergence one more pass at the returned estimate gives the
information, log-likelihood and scores. The covariance is an operator on the information
blocks (:class:`~hte_report.models.wide_cov.WideCovariance`: ``L V L'`` by Schur-complement
solves, never a (p + K)^2 matrix or an n x K array), with exactly the definitions of the dense
paths (:func:`hte_report.models.glm.sandwich`, ``fast.fit_irls``, ``cells_fit.fit_cells``):
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
             exposure=None, groups=None, start=None, cells=None, maxiter: int = 300,
             drop=()):
    """Fit working model ``name`` on a split design. Returns (params, vcov, loglik, converged,
    passes, undefined, information blocks); ``variance=None``: the log-likelihood only (vcov
    NaN, a reduced model of a likelihood-ratio test). ``drop``: dense columns whose
    coefficients are held at zero (a reduced model without a copy of the design)."""
    with one_blas_thread(), np.errstate(all="ignore"):
        fit = _Scoring(name, X, y, exposure, cells, drop)
        tol = LOGLIK_TOL if (variance is None and fit.fam.canonical) else _tolerance(fit.fam,
                                                                                   None)
        b, converged, it = fit.run(start, tol, maxiter)
        P = X.shape[1]
        if b is None or not np.all(np.isfinite(b)):
            return (np.full(P, np.nan), WideCovariance.undefined(P), np.nan, False, it, None,
                    None)
        ll, vcov, undefined, blocks = fit.final(b, variance, groups)
    return b, vcov, ll, converged, it, undefined, blocks


class _Scoring:
    """Fisher scoring on a split design by blocks of rows (:meth:`SplitMatrix.row_blocks`): a
    pass keeps no length-n vector, only the information blocks and the right-hand side."""

    def __init__(self, name, X: SplitMatrix, y, exposure, cells, drop):
        info = MODELS[name]
        self.fam, self.X, self.y, self.cells = Family(info.family, info.link), X, y, cells
        link = self.fam.link
        self.scale = exposure if (exposure is not None and link == "identity") else None
        self.off = np.log(exposure) if (exposure is not None and link == "log") else None
        self.cnt = None if cells is None else cells.cnt
        self.s1 = y if cells is None else cells.s1
        self.ybar = y if cells is None else cells.s1 / cells.cnt
        self.n = len(y) if cells is None else float(cells.cnt.sum())
        self.drop = np.asarray(drop, dtype=int)
        self.keep = np.setdiff1d(np.arange(X.shape[1]), drop) if len(drop) else None

    def rows(self, b):
        """Per block of rows at ``b`` (None: the usual start): (rows, X block, eta, mu,
        d mu / d eta)."""
        eta0 = self.fam.start_eta(self.ybar) if b is None else None
        for rows, Xb in self.X.row_blocks():
            if b is None:
                eta = eta0[rows]
            else:
                eta = Xb @ b
                if self.scale is not None:
                    eta *= self.scale[rows]
                if self.off is not None:
                    eta += self.off[rows]
            mu, d = self.fam.mean(eta)
            yield rows, Xb, eta, mu, d

    def loglik_terms(self, rows, mu) -> float:
        cnt = None if self.cnt is None else self.cnt[rows]
        s2 = None if self.cells is None else self.cells.s2[rows]
        return _loglik_terms(self.fam, self.s1[rows], cnt, mu, s2)

    def solve(self, blocks: Blocks, rhs: np.ndarray) -> np.ndarray:
        if self.keep is None:
            return blocks.solve(rhs)
        out = np.zeros(len(rhs))
        out[self.keep] = blocks.drop_dense(self.drop).solve(rhs[self.keep])
        return out

    def step(self, b, want_loglik: bool):
        """One pass from ``b``: the next estimate and, if asked, the log-likelihood terms at
        ``b``."""
        fam, info, rhs, ll = self.fam, None, 0.0, 0.0
        for rows, Xb, eta, mu, d in self.rows(b):
            if want_loglik:
                ll += self.loglik_terms(rows, mu)
            w = d * d
            w /= fam.variance(mu)
            if self.cnt is not None:
                w *= self.cnt[rows]
            z = self.ybar[rows] - mu  # working response: eta - off + (ybar - mu) / d
            z /= d
            z += eta if self.off is None else eta - self.off[rows]
            if self.scale is not None:
                w *= self.scale[rows]
            z *= w
            part = Xb.crossprod(w if self.scale is None else w * self.scale[rows])
            info = part if info is None else info.add(part)
            rhs = rhs + Xb.tdot(z)
        return self.solve(info, rhs), (ll if want_loglik else None)

    def run(self, start, tol: float, maxiter: int):
        """Passes to convergence: (estimate, converged, passes)."""
        b = None if start is None else np.asarray(start, float)
        if b is not None and self.keep is not None:
            b = b.copy()
            b[self.drop] = 0.0
        ll_prev, it = None, 0
        for it in range(1, maxiter + 1):
            b_new, ll = self.step(b, it > WATCH_LOGLIK_AFTER)
            if not np.all(np.isfinite(b_new)):
                return b_new, False, it
            if self.fam.linear:
                return b_new, True, it
            if b is not None:
                step = np.max(np.abs(b_new - b)) / (1 + np.max(np.abs(b_new)))
                if step <= tol:
                    return b_new, True, it
            if ll is not None:  # a drifting coefficient: stop when the log-likelihood is flat
                if ll_prev is not None and abs(ll - ll_prev) <= 1e-13 * (abs(ll) + 1):
                    return b_new, True, it
                ll_prev = ll
            b = b_new
        return b, False, it

    def scores(self, rows, mu, d):
        """A block's score per unit residual, information weight, residual and squared
        residual (cells: the residual sum and the sum of (y_i - mu_c)^2)."""
        v = self.fam.variance(mu)
        sw = d * d
        sw /= v
        sc = d / v
        if self.scale is not None:  # one patient's information weight
            s = self.scale[rows]
            sw *= s
            sw *= s
            sc *= s
        if self.cells is None:
            resid = self.y[rows] - mu
            return sc, sw, resid, resid ** 2
        c = self.cells
        return (sc, sw, c.s1[rows] - c.cnt[rows] * mu,
                c.s2[rows] - 2 * mu * c.s1[rows] + c.cnt[rows] * mu * mu)

    def final(self, b, variance, groups):
        """At the estimate: (log-likelihood, covariance, leverage-1 directions, information)."""
        terms, info = self.information(b, variance is not None)
        ll = _loglik(self.fam, terms, self.y, self.cells, self.n)
        P = self.X.shape[1]
        if variance is None:
            return ll, WideCovariance.undefined(P), None, None
        if variance == "model":  # Gaussian: the residual variance RSS / (n - p)
            s = terms / (self.n - P) if self.fam.family == "gaussian" else 1.0
            return ll, WideCovariance(info, P, factor=s), None, info
        if isinstance(variance, Cluster):
            return ll, self.cluster(b, info, groups), None, info
        vcov, undefined = self.robust(b, info, variance)
        return ll, vcov, undefined, info

    def information(self, b, want: bool):
        """The log-likelihood terms and (``want``) the information blocks at ``b`` (a method
        of its own: no block of rows outlives the pass)."""
        terms, info = 0.0, None
        for rows, Xb, _eta, mu, d in self.rows(b):
            terms += self.loglik_terms(rows, mu)
            if want:
                sw = self.scores(rows, mu, d)[1]
                part = Xb.crossprod(sw if self.cnt is None else sw * self.cnt[rows])
                info = part if info is None else info.add(part)
        return terms, info

    def cluster(self, b, info: Blocks, groups) -> WideCovariance:
        """Cluster sandwich: ``G/(G-1) (n-1)/(n-p)`` times the cluster score sums' meat."""
        u = self.unit_scores(b)
        codes = _group_codes(np.asarray(groups))
        G, n, P = int(codes.max()) + 1, self.n, self.X.shape[1]
        return WideCovariance(info, P, ClusterMeat(self.X, codes, u,
                                                   G / (G - 1) * (n - 1) / (n - P)))

    def unit_scores(self, b) -> np.ndarray:
        """Each row's score per unit of its design row at ``b`` (no block outlives the pass)."""
        u = np.empty(self.X.shape[0])
        for rows, _Xb, _eta, mu, d in self.rows(b):
            sc, _sw, resid, _r2 = self.scores(rows, mu, d)
            u[rows] = sc * resid
        return u

    def robust(self, b, info: Blocks, variance):
        """HC0-HC3 sandwich (HC2/HC3: leverages ``w_i x_i' H^-1 x_i`` from the Schur form),
        and the directions ``H^-1 x_i`` of leverage-1 rows (HC2/HC3)."""
        meat, bad_rows = None, []
        for rows, Xb, _eta, mu, d in self.rows(b):
            sc, sw, _resid, resid2 = self.scores(rows, mu, d)
            q = sc * sc
            q *= resid2
            if variance in ("HC2", "HC3"):
                h = info.inverse_quadratic(Xb)
                h *= sw
                wt, bad = hat_weights(h, 0.5 if variance == "HC2" else 1.0)
                q *= wt * wt
                bad_rows.append(np.flatnonzero(bad) + rows.start)
            part = Xb.crossprod(q)
            meat = part if meat is None else meat.add(part)
        del Xb  # the pass's block of rows, before the directions below
        n, P = self.n, self.X.shape[1]
        if variance == "HC1":
            meat = Blocks(meat.A * (n / (n - P)), meat.B * (n / (n - P)), meat.C * (n / (n - P)))
        undefined = None
        if bad_rows:
            bad = np.concatenate(bad_rows)
            undefined = info.solve(np.asarray(self.X[bad]).T)
            if self.scale is not None:
                undefined *= self.scale[bad]
        return WideCovariance(info, P, meat), undefined


def _group_codes(groups: np.ndarray) -> np.ndarray:
    """Clusters numbered 0..G-1 in sorted order (``np.unique``'s inverse); integer labels in a
    range of at most a few times n by a table of the range, without ``np.unique``'s sorts."""
    if groups.dtype.kind in "iu" and len(groups):
        lo, hi = int(groups.min()), int(groups.max())
        if hi - lo <= 4 * len(groups):
            g = groups - lo
            number = np.cumsum(np.bincount(g, minlength=hi - lo + 1) > 0) - 1
            g[:] = number[g]
            return g
    return np.unique(groups, return_inverse=True)[1].ravel()


def _loglik_terms(fam, s1, cnt, mu, s2) -> float:
    """Log-likelihood terms without constants (Gaussian: the residual sum of squares); rows
    of patients (``cnt`` None) or cells (counts ``cnt``, sums of y ``s1`` and y^2 ``s2``)."""
    if cnt is None:
        return fam.loglik_terms(s1, mu, None)
    if fam.family == "binomial":
        return float(np.sum(np.where(s1 > 0, s1 * np.log(mu), 0.0)
                            + np.where(cnt - s1 > 0, (cnt - s1) * np.log1p(-mu), 0.0)))
    if fam.family == "poisson":
        return float(np.sum(s1 * np.log(mu) - cnt * mu))
    return float(np.sum(s2 - 2 * mu * s1 + cnt * mu * mu))


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
    log-likelihood only; the coefficients of the other columns are returned). Returns
    (params, vcov, loglik, converged, passes, undefined, information blocks, linear predictor)
    on the user's scale."""
    step = max(1, X.shape[0] // 4096)
    Ds = X.dense[::step]  # a sample of rows (written from the sources of a lazy design)
    w = None if cells is None else cells.cnt[::step]
    ms = np.einsum("ij,ij->j", Ds, Ds) if w is None else np.einsum("ij,ij,i->j", Ds, Ds, w)
    rms = np.sqrt(ms / (Ds.shape[0] if w is None else w.sum()))
    del Ds  # written from the sources of a lazy design: not kept through the fit
    with np.errstate(divide="ignore"):
        bits = np.where(rms > 0, np.round(np.log2(np.where(rms > 0, rms, 1.0))), 0.0)
    scale = np.exp2(np.where(np.abs(bits) > SCALE_BITS, bits, 0.0))
    if np.any(scale != 1):  # rare: the dense part on the fitting scale (a copy if stored)
        X = X.scaled(scale)
    full = np.concatenate([scale, np.ones(X.shape[1] - X.p)])
    if start is not None:
        start = np.asarray(start, float) * full
    b, V, ll, conv, it, U, blocks = fit_wide(name, X, y, None if len(drop) else variance,
                                             exposure, groups, start, cells, drop=drop)
    eta = X @ b
    if np.any(full != 1):  # back to the user's scale
        V = V.rescaled(full)
        U = None if U is None else U / full[:, None]
        if blocks is not None:
            blocks = Blocks(blocks.A * np.outer(scale, scale), blocks.B * scale[:, None],
                            blocks.C)
    b = b / full
    if len(drop):  # a reduced model: the coefficients it has
        keep = np.setdiff1d(np.arange(len(b)), drop)
        b, V = b[keep], WideCovariance.undefined(len(keep))
    return b, V, ll, conv, it, U, blocks, eta


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
