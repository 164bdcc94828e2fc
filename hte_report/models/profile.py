"""Profile-likelihood confidence intervals for linear combinations of the coefficients of a
likelihood working model (logit, log-binomial, Poisson with model-based variance): the values
theta of ``c' beta`` with ``2 (l_max - l_profile(theta)) <= chi2_1(conf_level)``, as R's
``confint(glm)`` (MASS ``profile``) for single coefficients; here the bounds are found as exact
roots (Brent's method) rather than interpolated on a grid.

The profile log-likelihood at theta is the maximum over the other parameters: with ``j`` the
largest entry of ``c``, ``beta_j = (theta - c_{-j}' beta_{-j}) / c_j``, so the constrained model
is the GLM with design ``X_{-j} - X_j c_{-j}' / c_j`` and offset ``X_j theta / c_j``.
"""

from __future__ import annotations

import warnings

import numpy as np
import statsmodels.api as sm
from scipy import optimize, stats

from hte_report.models.glm import DEVIANCE_ATOL, DEVIANCE_RTOL, FittedModel, _family
from hte_report.spec.options import MODELS

#: Working models with a likelihood of their own whose profile is meaningful.
PROFILE_LINKS = ("logit", "log")


def profile_applies(fm: FittedModel) -> str:
    """Why a profile interval does not apply to ``fm`` ("" when it does)."""
    info = MODELS[fm.name]
    if not info.likelihood or fm.link not in PROFILE_LINKS:
        return f"{fm.label} has no likelihood of its own on a log/logit link"
    if fm.variance != "model":
        return (f"{fm.label} uses a {fm.variance} variance; a profile-likelihood interval "
                "assumes the model's likelihood (variance='model')")
    return ""


class _Profile:
    """The profile log-likelihood of ``c' beta`` for one model and one ``c``."""

    def __init__(self, fm: FittedModel, X: np.ndarray, y: np.ndarray, c: np.ndarray,
                 exposure: np.ndarray | None = None):
        info = MODELS[fm.name]
        self.family = _family(info.family, info.link)
        c = np.asarray(c, float)
        self.j = int(np.argmax(np.abs(c)))
        rest = np.setdiff1d(np.arange(len(c)), [self.j])
        self.rest = rest
        self.xj = X[:, self.j] / c[self.j]
        self.Z = X[:, rest] - np.outer(X[:, self.j], c[rest] / c[self.j])
        self.base = (np.log(exposure) if exposure is not None and info.link == "log"
                     else np.zeros(len(y)))
        self.y = y
        self.start = fm.params[rest].copy()
        self.theta_hat = float(c @ fm.params)
        self.ll_hat = self.loglik(self.theta_hat)

    def loglik(self, theta: float) -> float:
        offset = self.base + self.xj * theta
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if self.Z.shape[1] == 0:
                mu = self.family.link.inverse(offset)
                return float(self.family.loglike(self.y, mu))
            res = sm.GLM(self.y, self.Z, family=self.family, offset=offset).fit(
                start_params=self.start, maxiter=300, tol_criterion="deviance",
                rtol=DEVIANCE_RTOL, atol=DEVIANCE_ATOL)
        params = np.asarray(res.params)
        if not np.all(np.isfinite(params)) or not getattr(res, "converged", True):
            raise ValueError("the constrained fit did not converge")
        mu = self.family.link.inverse(self.Z @ params + offset)
        binomial = isinstance(self.family, sm.families.Binomial)
        if binomial and (np.any(mu <= 0) or np.any(mu >= 1)):
            raise ValueError("the constrained fit leaves (0, 1)")
        self.start = params
        return float(res.llf)


def profile_interval(fm: FittedModel, X: np.ndarray, y: np.ndarray, c: np.ndarray,
                     conf_level: float, se: float,
                     exposure: np.ndarray | None = None) -> tuple[float, float, str]:
    """Profile-likelihood interval of ``c' beta`` on the linear-predictor scale (log odds
    ratio, log ratio): ``(low, high, note)``; a bound that cannot be found is NaN and the note
    says why. ``se``: the Wald standard error, which sets the initial bracket."""
    why = profile_applies(fm)
    if why:
        return np.nan, np.nan, why
    q = float(stats.chi2.ppf(conf_level, 1))
    try:
        prof = _Profile(fm, X, y, c, exposure)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return np.nan, np.nan, f"profile likelihood not available: {exc}"
    theta, step = prof.theta_hat, (se if np.isfinite(se) and se > 0 else 1.0)

    def excess(t: float) -> float:
        return 2.0 * (prof.ll_hat - prof.loglik(t)) - q

    bounds, notes = [], []
    for sign in (-1.0, 1.0):
        prof.start = fm.params[prof.rest].copy()
        inner, k = theta, 1.0
        try:
            while True:
                outer = theta + sign * k * step * np.sqrt(q)
                if excess(outer) > 0:
                    break
                inner, k = outer, k * 2.0
                if k > 64:
                    raise ValueError("the profile does not cross the critical value (a "
                                     "drifting coefficient: separation?)")
            lo, hi = sorted((inner, outer))
            bounds.append(optimize.brentq(excess, lo, hi, xtol=1e-12, rtol=1e-13))
        except (ValueError, np.linalg.LinAlgError, RuntimeError) as exc:
            bounds.append(np.nan)
            notes.append(f"{'lower' if sign < 0 else 'upper'} profile bound not found: {exc}")
    return float(bounds[0]), float(bounds[1]), "; ".join(notes)
