"""Generalized linear working models for continuous, binary and count outcomes.

Point estimates come from statsmodels (OLS, GLM by IRLS); model-based covariances are
statsmodels'. Robust covariances are computed here from the estimating-function contributions
(``sandwich`` in R does the same), because statsmodels' GLM returns HC0 for every ``HC1``-``HC3``
request. The HC types follow MacKinnon & White (1985) as in ``sandwich::vcovHC``; the cluster
type uses ``G/(G-1) * (n-1)/(n-k)`` as ``sandwich::vcovCL(type = "HC1")`` and statsmodels do.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning as SMConvergenceWarning

from hte_report.design.arms import rows_times
from hte_report.design.wide import SplitMatrix
from hte_report.errors import ModelError
from hte_report.models.fast import LEVERAGE_TOL, hat_weights, logistic
from hte_report.spec.options import MODELS, Cluster, Variance, variance_label

_LINKS = {
    "identity": sm.families.links.Identity,
    "log": sm.families.links.Log,
    "logit": sm.families.links.Logit,
}


@dataclass(frozen=True)
class FittedModel:
    """A fitted working model: what was fitted and its coefficient covariance. No statsmodels
    objects leak past this point."""

    name: str  # key of options.MODELS
    link: str
    variance: str  # "model", "HC0".."HC3", "CL(site)"
    params: np.ndarray
    vcov: np.ndarray
    loglik: float
    converged: bool
    n: int
    columns: tuple[str, ...]
    iterations: int = 0
    note: str = ""
    fallback_from: str = ""
    extra: dict = field(default_factory=dict)
    #: HC2/HC3 only: p x m influence directions ``bread @ x_i`` of the m patients with
    #: leverage 1, whose variance contribution is 0/0. A linear combination ``L`` of the
    #: coefficients that loads on one of them has no HC2/HC3 variance (:meth:`cov`).
    undefined: np.ndarray | None = None
    #: "t" (Gaussian linear models under ``inference="t"``: t intervals and p-values, F tests,
    #: with the residual df, as R's ``lm`` / ``lmtest::coeftest``) or "z" (large-sample).
    inference: str = "z"

    @property
    def df_resid(self) -> float:
        """Residual degrees of freedom, n - p (R's ``df.residual``)."""
        return float(self.n - len(self.params))

    @property
    def t_df(self) -> float | None:
        """The residual df when this model's inference is t, else None (z)."""
        return self.df_resid if self.inference == "t" else None

    def cov(self, L: np.ndarray) -> np.ndarray:
        """Covariance ``L V L'`` of the combinations ``L @ params`` (rows of ``L``), with NaN
        rows and columns for combinations whose HC2/HC3 variance is undefined (they depend on
        a patient with leverage 1)."""
        L = np.atleast_2d(L)
        with np.errstate(all="ignore"):  # NaN/inf rows of L (a ratio at a zero mean) stay NaN
            C = L @ self.vcov @ L.T
        bad = self.undefined_rows(L)
        if bad.any():
            C = C.copy()
            C[bad, :] = np.nan
            C[:, bad] = np.nan
        return C

    def undefined_rows(self, L: np.ndarray) -> np.ndarray:
        """Which combinations (rows of ``L``) load on a leverage-1 direction."""
        L = np.atleast_2d(L)
        U = self.undefined
        if U is None or U.size == 0:
            return np.zeros(L.shape[0], dtype=bool)
        with np.errstate(all="ignore"):
            load = np.abs(np.nan_to_num(L) @ U)
            scale = (np.linalg.norm(np.nan_to_num(L), axis=1)[:, None]
                     * np.linalg.norm(U, axis=0)[None, :])
        return np.any(load > LEVERAGE_TOL * scale, axis=1)

    def undefined_coefficients(self) -> np.ndarray:
        """Which coefficients load on a leverage-1 direction: :meth:`undefined_rows` of the
        identity, without forming it."""
        U = self.undefined
        if U is None or U.size == 0:
            return np.zeros(len(self.params), dtype=bool)
        return np.any(np.abs(U) > LEVERAGE_TOL * np.linalg.norm(U, axis=0)[None, :], axis=1)

    @property
    def label(self) -> str:
        """The label printed in every output row: model name plus robust variance type."""
        return self.name if self.variance == "model" else f"{self.name}-{self.variance}"

    def inverse_link(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and its derivative d mu / d eta."""
        if self.link == "identity":
            return eta, np.ones_like(eta)
        if self.link == "log":
            with np.errstate(over="ignore"):  # inf: a prediction far outside the data,
                mu = np.exp(eta)  # which the contrasts then mark as not estimable
            return mu, mu
        mu = logistic(eta)
        return mu, mu * (1.0 - mu)


class FitFailure(Exception):
    """Internal: a model failed in a way a fallback may handle."""


#: A binomial fit with a fitted probability within this distance of 0 or 1 is on the boundary
#: of the parameter space (R's glm reports boundary = TRUE): treated as not converged.
BOUNDARY = 1e-6
BOUNDED = ("log-binomial", "identity-binomial")  # the mean's range constrains the parameters

#: Automatic path choice: compress when the design has at most this many distinct rows
#: (and far fewer than rows); use the blocked IRLS path from this many rows on.
COMPRESS_MAX_CELLS = 20_000
IRLS_MIN_ROWS = 50_000
#: ... and for wide designs (e.g. a many-level adjustment factor), where statsmodels' IRLS
#: (a pseudo-inverse by SVD of the n x p design per iteration) takes minutes.
IRLS_MIN_COLUMNS = 64


def choose_path(X: np.ndarray, exposure: np.ndarray | None) -> str:
    """'compressed' for all-categorical designs, 'irls' for large n or wide designs, else
    'statsmodels'."""
    from hte_report.models.cells_fit import n_distinct_rows

    if isinstance(X, SplitMatrix):  # many-level adjustment factors: models.wide
        return "wide"
    n = X.shape[0]
    if n >= 2_000 and exposure is None:
        limit = min(COMPRESS_MAX_CELLS, n // 10)
        if n_distinct_rows(X, limit) <= limit:
            return "compressed"
    return "irls" if n >= IRLS_MIN_ROWS or X.shape[1] >= IRLS_MIN_COLUMNS else "statsmodels"


#: Columns whose root-mean-square lies outside [2^-SCALE_BITS, 2^SCALE_BITS] are rescaled for
#: fitting (by a power of two: exact in floating point) and the estimates scaled back.
SCALE_BITS = 12


def fit_glm(name: str, X: np.ndarray, y: np.ndarray, columns: tuple[str, ...],
            variance: Variance, exposure: np.ndarray | None = None,
            groups: np.ndarray | None = None, start: np.ndarray | None = None,
            path: str = "statsmodels", cells=None, drop: tuple[int, ...] = ()) -> FittedModel:
    """Fit working model ``name`` on design ``X`` (see :func:`_fit_glm`).

    A covariate on a large or tiny scale (epoch seconds, age x 1e9, a dose in grams / 1e6)
    is fitted on a rescaled column, so that convergence and rank do not depend on its units;
    estimates, covariance and leverage directions are returned on the user's scale.

    Floating-point overflow inside a fit (a drifting coefficient) is not reported as a numpy
    warning: the fit's finiteness, convergence and range are checked and reported instead.

    A split design (:class:`~hte_report.design.wide.SplitMatrix`, many-level adjustment
    factors) is always fitted by :mod:`hte_report.models.wide`, whatever ``path`` says."""
    with np.errstate(all="ignore"):
        if isinstance(X, SplitMatrix):
            return _fit_split(name, X, y, columns, variance, exposure, groups, start, cells,
                              drop)
        return _fit_scaled(name, X, y, columns, variance, exposure, groups, start, path, cells,
                           drop)


def _fit_scaled(name, X, y, columns, variance, exposure, groups, start, path, cells,
                drop) -> FittedModel:
    if X.shape[0] == 0 or X.shape[1] == 0:
        return _fit_glm(name, X, y, columns, variance, exposure, groups, start, path, cells,
                        drop)
    # the order of magnitude of each column, from at most ~4,096 evenly spaced rows (a column
    # zero there but not elsewhere keeps its scale: only large or tiny sizes are rescaled)
    step = max(1, X.shape[0] // 4096)
    Xs = X[::step]
    w = None if cells is None else cells.cnt[::step]
    # on the scale of each column's largest value, so that squares neither overflow nor
    # underflow (a covariate times 1e-300 is rescaled, not judged zero)
    top = np.abs(Xs).max(0, initial=0.0)
    Xs = Xs / np.where(top > 0, top, 1.0)
    ms = (np.einsum("ij,ij->j", Xs, Xs) if w is None else np.einsum("ij,ij,i->j", Xs, Xs, w))
    rms = top * np.sqrt(ms / (Xs.shape[0] if w is None else w.sum()))
    with np.errstate(divide="ignore"):
        bits = np.where(rms > 0, np.round(np.log2(np.where(rms > 0, rms, 1.0))), 0.0)
    if np.all(np.abs(bits) <= SCALE_BITS):
        return _fit_glm(name, X, y, columns, variance, exposure, groups, start, path, cells,
                        drop)
    scale = np.exp2(bits)
    fm = _fit_glm(name, X / scale, y, columns, variance, exposure, groups,
                  None if start is None else start * scale, path, cells, drop)
    keep = np.setdiff1d(np.arange(X.shape[1]), drop) if drop else np.arange(X.shape[1])
    sk = scale[keep] if len(fm.params) == len(keep) else scale
    from dataclasses import replace

    return replace(fm, params=fm.params / sk, vcov=fm.vcov / np.outer(sk, sk),
                   undefined=None if fm.undefined is None else fm.undefined / sk[:, None])


def _fit_glm(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    columns: tuple[str, ...],
    variance: Variance,
    exposure: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    start: np.ndarray | None = None,
    path: str = "statsmodels",
    cells=None,
    drop: tuple[int, ...] = (),
) -> FittedModel:
    """Fit working model ``name`` on design ``X`` and return estimates with covariance.

    ``path``: ``"statsmodels"`` (the reference), ``"irls"`` (blocked IRLS with Cholesky solves),
    ``"compressed"`` (exact fit on cells of identical design rows) or ``"auto"``. All paths
    return the same numbers to the convergence tolerance (tested against each other).

    ``drop``: columns left out (the reduced model of a likelihood-ratio test, of which only
    the log-likelihood is wanted); the irls path fixes their coefficients at zero instead of
    copying the design, and does not compute a covariance (``vcov`` is NaN).

    Raises :class:`FitFailure` when the model does not converge or leaves its parameter space
    (a fitted probability outside (0, 1) or a negative rate); callers decide on a fallback.
    """
    info = MODELS[name]
    if cells is not None:  # rows of X are cells of identical patients
        path = "cells"
    elif path == "auto":
        path = choose_path(X, exposure)
    if drop and path != "irls":
        X = np.delete(X, drop, axis=1)
        start = None if start is None else np.delete(start, drop)
    if path != "statsmodels":
        return _fit_fast(name, X, y, columns, variance, exposure, groups, start, path, cells,
                         drop if path == "irls" else ())
    if isinstance(variance, Cluster) and groups is None:
        raise ModelError("cluster variance requested but no cluster groups given.")
    if info.robust_only and variance == "model":
        raise ModelError(
            f"{name} needs a robust variance (Zou 2004): its model-based variance is wrong for "
            "a binary outcome. Use variance='HC0' (default) or a Cluster."
        )
    Xf = X * exposure[:, None] if (exposure is not None and info.link == "identity") else X
    offset = np.log(exposure) if (exposure is not None and info.link == "log") else None

    if name == "ols":
        res = sm.OLS(y, X).fit()
        params = res.params
        mu = X @ params
        dmu = np.ones_like(mu)
        w_score = y - mu  # score contribution per unit x
        w_info = np.ones_like(mu)
        vcov_model = res.cov_params()
        loglik, converged, iters = float(res.llf), True, 0
    else:
        family = _family(info.family, info.link)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = sm.GLM(y, Xf, family=family, offset=offset).fit(
                    start_params=start, maxiter=300, tol_criterion="deviance",
                    rtol=DEVIANCE_RTOL, atol=DEVIANCE_ATOL,
                )
            except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
                raise FitFailure(f"{name} failed: {exc}") from None
        params = np.asarray(res.params)
        converged = bool(getattr(res, "converged", True))
        iters = int(getattr(res, "fit_history", {}).get("iteration", 0))
        msgs = [str(w.message) for w in caught
                if issubclass(w.category, (SMConvergenceWarning, RuntimeWarning))]
        eta = Xf @ params + (offset if offset is not None else 0.0)
        mu = family.link.inverse(eta)
        if not converged or not np.all(np.isfinite(params)):
            raise FitFailure(f"{name} did not converge" + (f" ({msgs[0]})" if msgs else ""))
        _check_range(name, mu)
        dmu = family.link.inverse_deriv(eta)
        var_mu = family.variance(mu)
        w_score = (y - mu) * dmu / var_mu
        w_info = dmu**2 / var_mu
        vcov_model = np.asarray(res.cov_params())
        loglik = float(res.llf)
        X = Xf

    undefined = None
    if variance == "model":
        vcov = np.asarray(vcov_model)
    else:
        try:
            vcov, undefined = sandwich(X, w_score, w_info, variance, groups)
        except np.linalg.LinAlgError:
            raise FitFailure(f"{name}: the information matrix is singular at the estimate "
                             "(fitted means at 0 or 1)") from None
    return FittedModel(
        name=name, link=info.link, variance=variance_label(variance), params=np.asarray(params),
        vcov=vcov, loglik=loglik, converged=converged, n=len(y), columns=tuple(columns),
        iterations=iters, extra={"path": "statsmodels"}, undefined=undefined,
    )


def _fit_split(name, X, y, columns, variance, exposure, groups, start, cells, drop
               ) -> FittedModel:
    """A split design (many-level adjustment factors): :func:`hte_report.models.wide.fit_split`
    with the checks and the :class:`FittedModel` of the other paths."""
    from hte_report.models.wide import fit_split, separated_levels

    info = MODELS[name]
    if isinstance(variance, Cluster) and groups is None:
        raise ModelError("cluster variance requested but no cluster groups given.")
    if info.robust_only and variance == "model" and not len(drop):
        raise ModelError(f"{name} needs a robust variance (Zou 2004); use variance='HC0'.")
    try:
        b, V, ll, conv, it, U, blocks, eta = fit_split(name, X, y, variance, exposure, groups,
                                                       start, cells, drop)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise FitFailure(f"{name} failed: {exc}") from None
    if not conv or not np.all(np.isfinite(b)) or not (len(drop) or np.all(np.isfinite(V))):
        raise FitFailure(f"{name} did not converge")
    if exposure is not None:
        eta = eta * exposure if info.link == "identity" else eta + np.log(exposure)
    fm = FittedModel(name, info.link, variance_label(variance), b, V, ll, True,
                     len(y) if cells is None else int(round(cells.cnt.sum())), tuple(columns),
                     iterations=it, extra={"path": "wide"}, undefined=U)
    for s in range(0, len(eta), 8192):  # by blocks: no n-long means and derivatives
        _check_range(name, fm.inverse_link(eta[s:s + 8192])[0])
    if blocks is not None:  # the information (a reduced model's one-step start)
        fm.extra["info"] = blocks
        fm.extra["separated"] = separated_levels(name, X, y, cells, columns)
    return fm


def _fit_fast(name, X, y, columns, variance, exposure, groups, start, path,
              cells=None, drop=()) -> FittedModel:
    from hte_report.models.cells_fit import fit_cells, fit_compressed
    from hte_report.models.fast import fit_irls

    info = MODELS[name]
    if isinstance(variance, Cluster) and groups is None:
        raise ModelError("cluster variance requested but no cluster groups given.")
    if info.robust_only and variance == "model":
        raise ModelError(f"{name} needs a robust variance (Zou 2004); use variance='HC0'.")
    extra = {"path": path}
    fitted = None
    with np.errstate(all="ignore"):
        try:
            if path == "cells":
                b, V, ll, conv, it, k, U = fit_cells(name, X, cells.cnt, cells.s1, cells.s2,
                                                     cells.slg, variance, groups, start)
                extra["cells"] = k
            elif path == "compressed":
                b, V, ll, conv, it, k, U = fit_compressed(name, X, y, variance, exposure,
                                                          groups, start)
                extra["cells"] = k
            else:
                free = np.setdiff1d(np.arange(X.shape[1]), drop) if drop else None
                b, V, ll, conv, it, U, fitted = fit_irls(
                    name, X, y, None if drop else variance, exposure, groups, start, free)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise FitFailure(f"{name} failed: {exc}") from None
    full_b = b
    if drop and path == "irls":
        full_b = np.zeros(X.shape[1])
        full_b[np.setdiff1d(np.arange(X.shape[1]), drop)] = b
    if not conv or not np.all(np.isfinite(b)) or not (drop or np.all(np.isfinite(V))):
        raise FitFailure(f"{name} did not converge")
    if fitted is not None:  # from the fit's last pass (at the estimate or one step before)
        extra["fitted_sum"] = fitted["fitted_sum"]
        _check_range(name, fitted["mean_range"])
    else:
        _check_range(name, _mean_range(name, X, full_b, exposure))
    n = len(y) if cells is None else int(round(cells.cnt.sum()))
    return FittedModel(name=name, link=info.link, variance=variance_label(variance), params=b,
                       vcov=V, loglik=ll, converged=True, n=n, columns=tuple(columns),
                       iterations=it, extra=extra, undefined=U)


#: Convergence of statsmodels' IRLS: |dev - dev_old| <= DEVIANCE_ATOL + DEVIANCE_RTOL * |dev|,
#: relative to the deviance as R's glm judges it (|dev - dev_old| / (|dev| + 0.1) < eps), and as
#: tight as the arithmetic allows: an absolute tolerance alone (statsmodels' ``tol``) is missed
#: forever by a deviance of ~10^3 whose last digit moves by one rounding step (2e-13).
DEVIANCE_RTOL = 1e-15
DEVIANCE_ATOL = 1e-13


def _mean_range(name: str, X, b: np.ndarray, exposure: np.ndarray | None) -> np.ndarray:
    """The smallest and largest fitted mean, by blocks of rows (no length-n vector: the fits
    run in threads, whose allocators would keep such vectors' memory)."""
    link = MODELS[name].link
    fm = FittedModel(name, link, "", b, None, np.nan, True, 0, ())
    lo, hi, rows = np.inf, -np.inf, 1 << 16
    for s in range(0, X.shape[0], rows):
        eta = rows_times(X, slice(s, s + rows), b)
        if exposure is not None:
            e = exposure[s:s + rows]
            eta = eta * e if link == "identity" else eta + np.log(e)
        mu = fm.inverse_link(eta)[0]
        lo, hi = np.fmin(lo, np.fmin.reduce(mu)), np.fmax(hi, np.fmax.reduce(mu))  # NaN: ignored
    return np.array([lo, hi])


def _check_range(name: str, mu: np.ndarray) -> None:
    """A fitted mean outside the model's range (or, for log/identity-binomial, on the
    boundary, as R's glm reports): a failure a fallback may handle."""
    info = MODELS[name]
    if info.family == "binomial" and (np.any(mu <= 0) or np.any(mu >= 1)):
        raise FitFailure(f"{name} fitted probabilities outside (0, 1)")
    if name in BOUNDED and (np.any(mu <= BOUNDARY) or np.any(mu >= 1 - BOUNDARY)):
        raise FitFailure(f"{name} fitted probabilities reach the boundary of (0, 1)")
    if info.family == "poisson" and info.link == "identity" and np.any(mu <= 0):
        raise FitFailure(f"{name} fitted non-positive rates")


def _family(family: str, link: str):
    lk = _LINKS[link]()
    if family == "binomial":
        return sm.families.Binomial(link=lk)
    if family == "poisson":
        return sm.families.Poisson(link=lk)
    return sm.families.Gaussian(link=lk)


def sandwich(
    X: np.ndarray,
    w_score: np.ndarray,
    w_info: np.ndarray,
    variance: Variance,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Sandwich covariance ``B M B`` from per-row score weights.

    ``w_score[i] * X[i]`` is row i's estimating-function contribution and
    ``sum w_info[i] X[i] X[i]'`` the expected information (bread inverse).

    Returns the covariance and, for HC2/HC3, the influence directions of leverage-1 rows
    (p x m; ``None`` otherwise): see :attr:`FittedModel.undefined`.
    """
    n, k = X.shape
    bread = np.linalg.inv(X.T @ (X * w_info[:, None]))
    scores = X * w_score[:, None]
    if isinstance(variance, Cluster):
        codes = np.unique(groups, return_inverse=True)[1]
        G = int(codes.max()) + 1
        summed = np.zeros((G, k))
        np.add.at(summed, codes, scores)
        meat = summed.T @ summed
        meat *= G / (G - 1) * (n - 1) / (n - k)
        return bread @ meat @ bread, None
    undefined = None
    if variance in ("HC2", "HC3"):
        h = np.einsum("ij,jk,ik->i", X, bread, X) * w_info
        wt, bad = hat_weights(h, 0.5 if variance == "HC2" else 1.0)
        scores = scores * wt[:, None]
        undefined = bread @ X[bad].T
    meat = scores.T @ scores
    if variance == "HC1":
        meat *= n / (n - k)
    return bread @ meat @ bread, undefined


def start_values(name, X, y, expo):
    """Start values for models whose IRLS needs them: OLS for identity links, the modified
    Poisson fit for log-binomial."""
    if MODELS[name].link == "identity" and name != "ols":
        yy = y if expo is None else y / expo
        if isinstance(X, SplitMatrix):
            return fit_glm("ols", X, yy, (), "model").params
        return np.linalg.lstsq(X, yy, rcond=None)[0]
    if name == "log-binomial":
        return fit_glm("modified-poisson", X, y, (), "HC0").params
    return None


def reduced_start(fm: FittedModel, drop, X, y, expo) -> np.ndarray | None:
    """Start for the reduced model of a likelihood-ratio test (full length, zero at ``drop``).

    Canonical links: the full model's estimate moved to the constraint along its information
    (the one-step approximation of the reduced fit), so that few Fisher-scoring passes remain.
    Other links keep their usual start, which respects the mean's range."""
    keep = np.setdiff1d(np.arange(len(fm.params)), drop)
    b = np.zeros(len(fm.params))
    if isinstance(X, SplitMatrix):
        from hte_report.models.wide import one_step_start

        if fm.name in ("logit", "poisson") and "info" in fm.extra:
            return one_step_start(fm.params, fm.extra["info"], drop, X.p)
        start = start_values(fm.name, X.without(drop), y, expo)
        if start is None:
            return None
        b[keep] = start
        return b
    if fm.name not in ("logit", "poisson"):
        start = start_values(fm.name, X[:, keep], y, expo)
        if start is None:
            return None
        b[keep] = start
        return b
    info = np.linalg.inv(fm.vcov)
    b = fm.params.copy()
    b[keep] += np.linalg.solve(info[np.ix_(keep, keep)],
                               info[np.ix_(keep, drop)] @ fm.params[drop])
    b[drop] = 0.0
    return b
