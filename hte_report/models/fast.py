"""Exact fast path for large n: Fisher scoring in row-block passes.

It returns the same :class:`~hte_report.models.glm.FittedModel` as the statsmodels path, to
the precision of the convergence criterion; statsmodels stays the reference (tests compare
every family and variance option, and the R reference tests run on this path too).

* ``irls``: Fisher scoring (IRLS) with a Cholesky solve of ``X'WX b = X'Wz``. One pass over
  blocks of rows computes, per block, the linear predictor, the weights and their products
  with the block (and, when asked, the log-likelihood and score outer products), so
  temporaries are a block, not the design. Large fits start from a fit on a strided subsample;
  the sandwich meat joins the pass predicted to be the last; reduced models of
  likelihood-ratio tests fix dropped coefficients at zero instead of copying the design.
* Fits on cells of identical design rows (all-categorical designs) are in
  :mod:`hte_report.models.cells_fit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import linalg
from threadpoolctl import ThreadpoolController

from hte_report.design.arms import ArmDesign, accumulate
from hte_report.spec.options import MODELS, Cluster, Variance, variance_label

BLOCK = 1 << 13  # rows per block: a block of the design stays in cache across the pass


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread():
    """Context in which BLAS runs single-threaded. The products of a pass are small
    (BLOCK x p); threaded BLAS gains nothing on them and, when the cores are busy, its spinning
    threads make a pass several times slower (measured: 0.05 s vs 0.3-1 s per pass at 1e6 rows
    on a loaded 2-core machine)."""
    return _controller().limit(limits=1, user_api="blas")


def blas_single_threaded(fn):
    """Decorator: ``fn`` runs inside :func:`one_blas_thread` (the public entry points of the
    estimators: their products are small, and on busy cores threaded BLAS made analyses of
    10,000 rows take 1.4-6 s instead of 0.3-0.4 s, issue 21)."""
    import functools

    @functools.wraps(fn)
    def pinned(*args, **kwargs):
        with one_blas_thread():
            return fn(*args, **kwargs)

    return pinned


def logistic(eta: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-eta))``, in place on one temporary: the formula scipy's ``expit``
    evaluates (equal to within 1 ulp), at 20 instead of 52 microseconds per 8,192 values,
    measured. Overflow of ``exp(-eta)`` gives 0, its limit."""
    with np.errstate(over="ignore"):
        if np.ndim(eta) == 0:
            return 1.0 / (1.0 + np.exp(-float(eta)))
        out = np.negative(eta, dtype=float)
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


@dataclass(frozen=True)
class Family:
    """Inverse link, d mu / d eta, variance function and log-likelihood of a working model."""

    family: str
    link: str

    @property
    def canonical(self) -> bool:
        """Fisher scoring is Newton's method (quadratic convergence) for canonical links."""
        return (self.family, self.link) in (("binomial", "logit"), ("poisson", "log"),
                                            ("gaussian", "identity"))

    @property
    def linear(self) -> bool:
        """Gaussian with identity link: one weighted least-squares step is the exact fit."""
        return self.family == "gaussian" and self.link == "identity"

    def mean_only(self, eta):
        """mu (without d mu / d eta: a product per row fewer)."""
        if self.link == "identity":
            return eta
        return np.exp(eta) if self.link == "log" else logistic(eta)

    def mean(self, eta):
        """(mu, d mu / d eta)."""
        if self.link == "identity":
            return eta, np.ones_like(eta)
        if self.link == "log":
            mu = np.exp(eta)
            return mu, mu
        mu = logistic(eta)
        return mu, mu * (1.0 - mu)

    def variance(self, mu):
        if self.family == "binomial":
            return mu * (1.0 - mu)
        if self.family == "poisson":
            return mu
        return np.ones_like(mu)

    def start_eta(self, y):
        """Linear predictor of the usual IRLS start (as statsmodels/R glm)."""
        if self.link == "identity":
            return np.clip(y, 1e-3, None) if self.family != "gaussian" else y
        if self.link == "log":
            return np.log((y + y.mean()) / 2)
        mu = (y + 0.5) / 2
        return np.log(mu / (1 - mu))

    def loglik_terms(self, y, mu, w, eta=None, binary=False):
        """Sum of w * log-likelihood without the constant (for gaussian: the weighted RSS).
        ``eta``: the linear predictor of ``mu`` (with the offset), the log of a log link's
        mean without a logarithm; ``binary``: every ``y`` is 0 or 1 (one logarithm per row,
        the form of :func:`hte_report.models.reduced._loglik_sums`)."""
        if self.family == "binomial":
            with np.errstate(divide="ignore", invalid="ignore"):
                if binary:
                    terms = np.log(np.where(y > 0, mu, 1.0 - mu))
                else:
                    terms = np.where(y > 0, y * np.log(mu), 0.0) + np.where(
                        y < 1, (1 - y) * np.log1p(-mu), 0.0)
        elif self.family == "poisson":
            terms = y * (np.log(mu) if eta is None or self.link != "log" else eta) - mu
        else:
            terms = (y - mu) ** 2
        return float(terms.sum() if w is None else terms @ w)


#: A patient with leverage h >= 1 - LEVERAGE_TOL is fitted exactly (its residual is 0): the
#: HC2/HC3 weight 1/(1-h)^a makes its variance contribution 0/0.
LEVERAGE_TOL = 1e-8


def hat_weights(h: np.ndarray, power: float) -> tuple[np.ndarray, np.ndarray]:
    """HC2 (``power`` 0.5) / HC3 (1) score weights ``(1-h)^-power`` and the mask of
    leverage-1 rows, whose weight is set to 0 here: their contribution is undefined, and the
    combinations of coefficients that depend on them are marked (``FittedModel.cov``)."""
    bad = h >= 1.0 - LEVERAGE_TOL
    return np.where(bad, 0.0, (1.0 - np.where(bad, 0.0, h)) ** -power), bad


@dataclass
class _Sums:
    """What one pass over the data accumulates at coefficients ``b``."""

    info: np.ndarray | None = None  # X'WX (expected information, unscaled)
    rhs: np.ndarray | None = None  # X'Wz (IRLS right-hand side)
    loglik: float | None = None  # weighted log-likelihood terms (gaussian: RSS)
    meat: np.ndarray | None = None  # sum of score outer products (or cluster sums, G x p)
    leverage1: list | None = None  # HC2/HC3: design rows with leverage 1
    # with the log-likelihood: the smallest, largest and summed fitted mean
    mu_range: tuple = (np.inf, -np.inf)
    mu_sum: float = 0.0

    def add_loglik(self, fam: Family, y, mu, w, eta=None, binary=False) -> None:
        """A block's log-likelihood terms and fitted means (:meth:`Family.loglik_terms`)."""
        self.loglik += fam.loglik_terms(y, mu, w, eta, binary)
        self.add_means(mu)

    def add_means(self, mu: np.ndarray) -> None:
        lo, hi = self.mu_range
        self.mu_range = (min(lo, float(np.fmin.reduce(mu))), max(hi, float(np.fmax.reduce(mu))))
        self.mu_sum += float(mu.sum())


def _binary(fam: Family, y: np.ndarray) -> bool:
    """A binomial outcome of 0s and 1s only (:meth:`Family.loglik_terms`)."""
    return fam.family == "binomial" and bool(np.all((y == 0) | (y == 1)))


def _scores(fam: Family, y, mu, d, v, w) -> np.ndarray:
    """Per-row score weights ``(y - mu) d / v`` (times the frequency weights ``w``); for a
    canonical link ``d = v``, so ``y - mu``."""
    u = y - mu if fam.canonical else (y - mu) * d / v
    return u if w is None else u * w


def _irls_weights(fam: Family, mu, d) -> tuple[np.ndarray, np.ndarray]:
    """(variance, IRLS weight ``d^2 / v``); for a canonical link both are ``d``."""
    if fam.canonical:
        return d, d
    v = fam.variance(mu)
    return v, d * d / v


def _working(fam: Family, e, y, mu, d, ww) -> np.ndarray:
    """``ww`` times the working response ``e + (y - mu) / d`` (``e``: the linear predictor
    without offset); for a canonical link without frequency weights (``ww`` is ``d``),
    ``d e + (y - mu)``, without the division."""
    if fam.canonical and ww is d:
        return d * e + (y - mu)
    return ww * (e + (y - mu) / d)


def block_pass(X, y, fam: Family, b, *, w0=None, off=None, info=True, loglik=False, meat=False,
          codes=None, G=0, bread=None, power=0.0) -> _Sums:
    """One pass over row blocks of X: information, IRLS right-hand side, log-likelihood and
    score outer products at coefficients ``b`` (``None``: the usual IRLS start), each only when
    asked. HC2/HC3 leverages need ``bread`` (the inverse information) and ``power``."""
    if isinstance(X, ArmDesign):
        return _arm_pass(X, y, fam, b, w0=w0, off=off, info=info, loglik=loglik, meat=meat,
                         codes=codes, G=G, bread=bread, power=power)
    n, p = X.shape
    binary = loglik and _binary(fam, y)
    out = _Sums()
    if info:
        out.info, out.rhs = np.zeros((p, p)), np.zeros(p)
    if loglik:
        out.loglik = 0.0
    if meat:
        out.meat = np.zeros((G, p)) if codes is not None else np.zeros((p, p))
    for s in range(0, n, BLOCK):
        Xb, yb = X[s:s + BLOCK], y[s:s + BLOCK]
        ob = 0.0 if off is None else off[s:s + BLOCK]
        wb0 = None if w0 is None else w0[s:s + BLOCK]
        eta = fam.start_eta(yb) if b is None else Xb @ b + ob
        mu, d = fam.mean(eta)
        v, w = _irls_weights(fam, mu, d)
        if info and fam.linear and wb0 is None:  # unit weights: X'X and X'y
            out.info += Xb.T @ Xb
            out.rhs += Xb.T @ (yb - ob)
        elif info:
            ww = w if wb0 is None else w * wb0
            out.info += Xb.T @ (Xb * ww[:, None])
            out.rhs += Xb.T @ _working(fam, eta - ob, yb, mu, d, ww)
        if loglik:
            out.add_loglik(fam, yb, mu, wb0, eta, binary)
        if meat:
            u = _scores(fam, yb, mu, d, v, wb0)
            if bread is not None:
                h = np.einsum("ij,ij->i", Xb @ bread, Xb) * w
                wt, bad = hat_weights(h, power)
                u = u * wt
                if bad.any():
                    out.leverage1 = (out.leverage1 or []) + [Xb[bad]]
            S = Xb * u[:, None]
            if codes is not None:
                np.add.at(out.meat, codes[s:s + BLOCK], S)
            else:
                out.meat += S.T @ S
    return out


def _arm_pass(X: ArmDesign, y, fam: Family, b, *, w0, off, info, loglik, meat, codes, G, bread,
              power) -> _Sums:
    """:func:`block_pass` on a design held by arm: each block's rows come untreated first,
    its products are taken in the space of its q distinct products ``Z``, one per arm, and
    lifted to the design's columns once at the end (half the columns, a quarter of the
    multiply-adds of the design's own products). The blocks run as the fixed ranges of
    :meth:`ArmDesign.map_blocks`, whose sums are added in range order."""
    c0, c1 = X.coefficients(b) if b is not None else (None, None)
    Q0 = Q1 = None
    if bread is not None:
        Q0, Q1 = X.quadratic_forms(bread)
    ya, oa, wa = X.arranged(y), X.arranged(off), X.arranged(w0)
    binary = loglik and _binary(fam, y)
    # unit weights: X'X is the design's own, from its first pass (the same sums, same order)
    unit = X.unit_gram if info and fam.linear and wa is None else None
    cluster = np.asarray(codes) if meat and codes is not None else None

    def part(blocks) -> dict:
        A0 = A1 = r0 = r1 = M0 = M1 = None
        sums = _Sums(loglik=0.0 if loglik else None)
        if cluster is not None:
            sums.meat = np.zeros((G, X.shape[1]))
        for blk in blocks:
            span = blk.span
            yb = ya[span]
            ob = None if oa is None else oa[span]
            wb0 = None if wa is None else wa[span]
            if b is None:
                e = eta = fam.start_eta(yb)
                if ob is not None:
                    e = eta - ob
            else:  # e: the linear predictor without the offset (no copy without one)
                e = blk.eta(c0, c1)
                eta = e if ob is None else e + ob
            mu, d = fam.mean(eta)
            v, w = _irls_weights(fam, mu, d)
            if info:
                if fam.linear and wb0 is None:  # unit weights: X'X and X'y
                    a0, a1 = (None, None) if unit is not None else blk.gram(None)
                    v0, v1 = blk.cross(yb if ob is None else yb - ob)
                else:
                    ww = w if wb0 is None else w * wb0
                    a0, a1 = blk.gram(ww)
                    v0, v1 = blk.cross(_working(fam, e, yb, mu, d, ww))
                A0, A1 = accumulate(A0, a0), accumulate(A1, a1)
                r0, r1 = accumulate(r0, v0), accumulate(r1, v1)
            if loglik:
                sums.add_loglik(fam, yb, mu, wb0, eta, binary)
            if meat:
                u = _scores(fam, yb, mu, d, v, wb0)
                if bread is not None:
                    wt, bad = hat_weights(blk.quadratic(Q0, Q1) * w, power)
                    u = u * wt
                    if bad.any():
                        sums.leverage1 = (sums.leverage1 or []) + [
                            X.dense(blk.Z[bad], blk.arms()[bad])]
                if cluster is not None:
                    np.add.at(sums.meat, cluster[blk.rows],
                              X.dense(blk.Z, blk.arms()) * u[:, None])
                else:
                    m0, m1 = blk.gram(u * u)
                    M0, M1 = accumulate(M0, m0), accumulate(M1, m1)
        return {"sums": sums, "A": (A0, A1), "r": (r0, r1), "M": (M0, M1)}

    out = _Sums(loglik=0.0 if loglik else None)
    A0 = A1 = r0 = r1 = M0 = M1 = None
    for res in X.map_blocks(part):  # in range order: the same sums on any number of cores
        s = res["sums"]
        if loglik:
            out.loglik += s.loglik
            out.mu_range = (min(out.mu_range[0], s.mu_range[0]),
                            max(out.mu_range[1], s.mu_range[1]))
            out.mu_sum += s.mu_sum
        if s.leverage1:
            out.leverage1 = (out.leverage1 or []) + s.leverage1
        if cluster is not None:
            out.meat = s.meat if out.meat is None else out.meat + s.meat
        A0, A1 = accumulate(A0, res["A"][0]), accumulate(A1, res["A"][1])
        r0, r1 = accumulate(r0, res["r"][0]), accumulate(r1, res["r"][1])
        M0, M1 = accumulate(M0, res["M"][0]), accumulate(M1, res["M"][1])
    if unit is not None:
        A0, A1 = unit
    if info:
        out.info, out.rhs = X.lift(A0, A1), X.lift_vectors(r0, r1)
    if meat and cluster is None:
        out.meat = X.lift(M0, M1)
    return out


def _solve(info, rhs, free):
    if free is None:
        return linalg.cho_solve(linalg.cho_factor(info), rhs)
    b = np.zeros(len(rhs))
    b[free] = linalg.cho_solve(linalg.cho_factor(info[np.ix_(free, free)]), rhs[free])
    return b


def _tolerance(fam: Family, tol):
    """Step size at which the fit is declared converged. The covariance comes from the last
    pass, evaluated one step before the returned estimate, so the step bounds its relative
    error: 1e-9 (a looser 1e-6 left standard errors 1e-6 off R's). Canonical links converge
    quadratically (the estimate's error is then of order step^2); others linearly, so their
    step must be smaller still."""
    if tol is not None:
        return tol
    return 1e-9 if fam.canonical else 1e-11


#: Passes after which the log-likelihood is also watched for convergence (quadratic convergence
#: needs fewer; slower fits are usually drifting towards a separated cell).
WATCH_LOGLIK_AFTER = 8

#: Large fits start from a fit on about SUBSAMPLE_ROWS evenly spaced rows.
SUBSAMPLE_MIN_ROWS = 200_000
SUBSAMPLE_ROWS = 50_000


def _subsample_start(X, y, fam, w0, off, free):
    """Start values from a fit on every k-th row (a view, no copy): the full-data iterations
    then start within sampling error of the solution and need two or three passes."""
    k = max(2, X.shape[0] // SUBSAMPLE_ROWS)
    try:
        with np.errstate(all="ignore"):
            # copied: a strided view of the design makes every pass over it several times
            # slower than over the rows themselves
            Xs = np.asfortranarray(X[::k])
            b, _, conv, it = _iterate(Xs, y[::k], fam, None if w0 is None else w0[::k],
                                      None if off is None else off[::k], None, 1e-4, 50, free)
    except (np.linalg.LinAlgError, ValueError):
        return None
    # a slow subsample fit is drifting (a cell without events in the subsample only): its
    # estimate would be a poor start, so the full data start from scratch instead
    return b if conv and it <= 2 * WATCH_LOGLIK_AFTER and np.all(np.isfinite(b)) else None


def _iterate(X, y, fam, w0, off, start, tol, maxiter, free=None, final=None, warm=False):
    """Fisher scoring. Returns (b, sums of the last pass, converged, passes).

    ``final``: extra :func:`block_pass` keyword arguments (log-likelihood, meat) added to the pass
    predicted to be the last (next step below ``tol``: quadratic convergence for canonical
    links, the observed linear rate otherwise), so that convergence needs no extra pass."""
    p = X.shape[1]
    b = None if start is None else np.asarray(start, float)
    if b is not None and free is not None:
        b = np.where(free_mask(free, p), b, 0.0)
    step = prev = np.inf
    ll_prev = None
    for it in range(1, maxiter + 1):
        if fam.canonical:
            predicted = step * step
        else:
            predicted = step * step / prev if np.isfinite(prev) else np.inf
        # a start given by the caller (a reduced model next to the full one) may already be
        # the solution: its first pass adds the (cheap) log-likelihood, never the meat
        first_warm = bool(final) and it == 1 and warm and not final.get("meat")
        near = final is not None and b is not None and (predicted <= tol or first_warm)
        kw = dict(final) if near else {}
        watch = it > WATCH_LOGLIK_AFTER
        if watch:
            kw["loglik"] = True
        sums = block_pass(X, y, fam, b, w0=w0, off=off, **kw)
        b_new = _solve(sums.info, sums.rhs, free)
        if not np.all(np.isfinite(b_new)):
            return b_new, sums, False, it
        if fam.linear:  # one weighted least-squares step is exact from any start
            return b_new, sums, True, it
        if b is not None:
            prev, step = step, np.max(np.abs(b_new - b)) / (1 + np.max(np.abs(b_new)))
            if step <= tol:
                return b_new, sums, True, it
        if watch:
            # a coefficient drifting off to infinity (a subgroup-arm cell without events)
            # never meets the step criterion; like statsmodels and R, stop when the
            # log-likelihood no longer changes, and let the caller flag that cell
            if ll_prev is not None and abs(sums.loglik - ll_prev) <= 1e-13 * (
                    abs(sums.loglik) + 1):
                return b_new, sums, True, it
            ll_prev = sums.loglik
        b = b_new
    return b, sums, False, maxiter


def free_mask(free, p: int) -> np.ndarray:
    m = np.zeros(p, bool)
    m[free] = True
    return m


def irls(X, y, family, link, weights=None, offset=None, start=None, tol=None, maxiter=300,
         free=None):
    """Fisher scoring (IRLS) with Cholesky solves, over row blocks. ``weights`` are frequency
    weights (cell counts); ``free`` fits only those columns (the others fixed at zero)."""
    fam = Family(family, link)
    tol = _tolerance(fam, tol)
    with one_blas_thread():
        if start is None and X.shape[0] >= SUBSAMPLE_MIN_ROWS and not fam.linear:
            start = _subsample_start(X, y, fam, weights, offset, free)
        b, _sums, converged, it = _iterate(X, y, fam, weights, offset, start, tol, maxiter,
                                           free)
    eta = X @ b + (0.0 if offset is None else offset)
    return b, eta, converged, it


def fit_irls(name, X, y, variance: Variance | None, exposure=None, groups=None, start=None,
             free=None):
    """Full-data fast path. Returns (params, vcov, loglik, converged, passes, undefined,
    fitted); ``variance=None``: the log-likelihood only (vcov is NaN, ``fitted`` None).
    ``undefined``: HC2/HC3 influence directions of leverage-1 rows
    (``FittedModel.undefined``), else None. ``fitted``: from the pass that gave the
    log-likelihood, the range of the fitted means (``"mean_range"``) and the part of the
    deviance that depends on them (``"fitted_sum"``, as
    :func:`hte_report.estimation.coefficients.glance_row` sums it), so that neither needs
    another pass over the data.

    Covariances at convergence come from the last pass (the information and, when the pass was
    expected to be the last, the score outer products); HC2/HC3 need the leverages, hence one
    more pass with the inverse information. ``free``: fit only these columns (the others fixed
    at zero; the reduced model of a likelihood-ratio test) without copying the design."""
    with one_blas_thread():
        return _fit_irls(name, X, y, variance, exposure, groups, start, free)


#: Step tolerance of a fit whose log-likelihood alone is wanted (a likelihood-ratio test's
#: reduced model, canonical link): the estimate's error is then of order 1e-10 and the
#: log-likelihood is evaluated at the estimate returned, so it is exact.
LOGLIK_TOL = 1e-5


def _fit_irls(name, X, y, variance, exposure, groups, start, free):
    info = MODELS[name]
    fam = Family(info.family, info.link)
    Xf = X * exposure[:, None] if (exposure is not None and fam.link == "identity") else X
    off = np.log(exposure) if (exposure is not None and fam.link == "log") else None
    n = Xf.shape[0]
    if variance is None:  # log-likelihood only
        tol = LOGLIK_TOL if fam.canonical else _tolerance(fam, None)
        with np.errstate(all="ignore"):
            b, _sums, converged, it = _iterate(Xf, y, fam, None, off, start, tol, 300, free)
            ll = block_pass(Xf, y, fam, b, off=off, info=False, loglik=True).loglik
        keep = np.arange(Xf.shape[1]) if free is None else np.asarray(free)
        return (b[keep], np.full((len(keep), len(keep)), np.nan),
                _loglik(fam, ll, y, n, len(keep)), converged, it, None, None)
    tol = _tolerance(fam, None)
    hat = variance in ("HC2", "HC3")
    undefined = None
    codes = G = None
    if isinstance(variance, Cluster):
        codes = np.unique(groups, return_inverse=True)[1]
        G = int(codes.max()) + 1
    extras = {"loglik": True, "meat": variance != "model" and not hat, "codes": codes, "G": G}
    warm = start is not None
    if start is None and n >= SUBSAMPLE_MIN_ROWS and not fam.linear:
        start = _subsample_start(Xf, y, fam, None, off, free)
    b, sums, converged, it = _iterate(Xf, y, fam, None, off, start, tol, 300, free, extras,
                                      warm)
    keep = np.arange(Xf.shape[1]) if free is None else np.asarray(free)
    bread = linalg.cho_solve(linalg.cho_factor(sums.info[np.ix_(keep, keep)]), np.eye(len(keep)))
    missing_meat = variance != "model" and (sums.meat is None or hat)
    if sums.loglik is None or missing_meat:
        full = np.zeros((Xf.shape[1], Xf.shape[1]))
        full[np.ix_(keep, keep)] = bread
        last = block_pass(Xf, y, fam, b, off=off, info=False, loglik=True, meat=missing_meat,
                     codes=codes, G=G, bread=full if hat else None,
                     power=0.5 if variance == "HC2" else 1.0)
        sums.loglik, sums.mu_range, sums.mu_sum = last.loglik, last.mu_range, last.mu_sum
        if missing_meat:
            sums.meat = last.meat
        if hat:
            lev = last.leverage1 or [np.zeros((0, Xf.shape[1]))]
            undefined = (full @ np.vstack(lev).T)[keep]
    p = len(keep)
    ll = _loglik(fam, sums.loglik, y, n, p)
    sigma2 = sums.loglik / (n - p) if fam.family == "gaussian" else 1.0
    if variance == "model":
        vcov = bread * sigma2
    else:
        meat = sums.meat
        if codes is not None:
            meat = meat.T @ meat * G / (G - 1) * (n - 1) / (n - p)
        elif variance == "HC1":
            meat = meat * n / (n - p)
        meat = meat[np.ix_(keep, keep)]
        vcov = bread @ meat @ bread
    fitted = {"mean_range": np.array(sums.mu_range), "fitted_sum": sums.loglik}
    if fam.family == "poisson":  # sum(y log mu) - sum(y - mu), from sum(y log mu - mu)
        fitted["fitted_sum"] = sums.loglik + 2 * sums.mu_sum - float(np.sum(y))
    return b[keep], vcov, ll, converged, it, undefined, fitted


def _loglik(fam: Family, terms: float, y, n: int, p: int) -> float:
    """Log-likelihood from the summed terms of a pass (gaussian: the residual sum of squares,
    with the variance at its maximum-likelihood value)."""
    if fam.family == "gaussian":
        return -0.5 * n * (np.log(2 * np.pi * terms / n) + 1)
    if fam.family == "poisson":
        from scipy.special import gammaln

        rest = y[(y != 0) & (y != 1)]  # log y! is 0 for y = 0 and 1 (binary: every row)
        return terms - float(np.sum(gammaln(rest + 1)))
    return terms


__all__ = ["fit_irls", "variance_label"]
