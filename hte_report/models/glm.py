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

from ..errors import ModelError
from ..options import MODELS, Cluster, Variance, variance_label

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

    @property
    def label(self) -> str:
        """The label printed in every output row: model name plus robust variance type."""
        return self.name if self.variance == "model" else f"{self.name}-{self.variance}"

    def inverse_link(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and its derivative d mu / d eta."""
        if self.link == "identity":
            return eta, np.ones_like(eta)
        if self.link == "log":
            mu = np.exp(eta)
            return mu, mu
        mu = 1.0 / (1.0 + np.exp(-eta))
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


def choose_path(X: np.ndarray, exposure: np.ndarray | None) -> str:
    """'compressed' for all-categorical designs, 'irls' for large n, else 'statsmodels'."""
    from .fast import n_distinct_rows

    n = X.shape[0]
    if n >= 2_000 and exposure is None:
        limit = min(COMPRESS_MAX_CELLS, n // 10)
        if n_distinct_rows(X, limit) <= limit:
            return "compressed"
    return "irls" if n >= IRLS_MIN_ROWS else "statsmodels"


def fit_glm(
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
                    start_params=start, maxiter=300, tol=1e-13
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

    if variance == "model":
        vcov = np.asarray(vcov_model)
    else:
        vcov = sandwich(X, w_score, w_info, variance, groups)
    return FittedModel(
        name=name, link=info.link, variance=variance_label(variance), params=np.asarray(params),
        vcov=vcov, loglik=loglik, converged=converged, n=len(y), columns=tuple(columns),
        iterations=iters, extra={"path": "statsmodels"},
    )


def _fit_fast(name, X, y, columns, variance, exposure, groups, start, path,
              cells=None, drop=()) -> FittedModel:
    from .fast import fit_cells, fit_compressed, fit_irls

    info = MODELS[name]
    if isinstance(variance, Cluster) and groups is None:
        raise ModelError("cluster variance requested but no cluster groups given.")
    if info.robust_only and variance == "model":
        raise ModelError(f"{name} needs a robust variance (Zou 2004); use variance='HC0'.")
    extra = {"path": path}
    with np.errstate(all="ignore"):
        try:
            if path == "cells":
                b, V, ll, conv, it, k = fit_cells(name, X, cells.cnt, cells.s1, cells.s2,
                                                  cells.slg, variance, groups, start)
                extra["cells"] = k
            elif path == "compressed":
                b, V, ll, conv, it, k = fit_compressed(name, X, y, variance, exposure, groups,
                                                       start)
                extra["cells"] = k
            else:
                free = np.setdiff1d(np.arange(X.shape[1]), drop) if drop else None
                b, V, ll, conv, it = fit_irls(name, X, y, None if drop else variance,
                                              exposure, groups, start, free)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise FitFailure(f"{name} failed: {exc}") from None
    Xf = X * exposure[:, None] if (exposure is not None and info.link == "identity") else X
    full_b = b
    if drop and path == "irls":
        full_b = np.zeros(X.shape[1])
        full_b[np.setdiff1d(np.arange(X.shape[1]), drop)] = b
    eta = Xf @ full_b + (np.log(exposure) if (exposure is not None and info.link == "log")
                         else 0.0)
    mu = FittedModel(name, info.link, "", b, V, ll, conv, len(y), ()).inverse_link(eta)[0]
    if not conv or not np.all(np.isfinite(b)) or not (drop or np.all(np.isfinite(V))):
        raise FitFailure(f"{name} did not converge")
    _check_range(name, mu)
    n = len(y) if cells is None else int(round(cells.cnt.sum()))
    return FittedModel(name=name, link=info.link, variance=variance_label(variance), params=b,
                       vcov=V, loglik=ll, converged=True, n=n, columns=tuple(columns),
                       iterations=it, extra=extra)


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
        return bread @ meat @ bread
    if variance in ("HC2", "HC3"):
        h = np.einsum("ij,jk,ik->i", X, bread, X) * w_info
        power = 0.5 if variance == "HC2" else 1.0
        scores = scores / ((1.0 - h) ** power)[:, None]
    meat = scores.T @ scores
    if variance == "HC1":
        meat *= n / (n - k)
    return bread @ meat @ bread
