"""Working models for repeated measures: linear mixed models and GEE.

Both return a :class:`~hte_report.models.glm.FittedModel` with an identity link, so the contrast
engine treats them like any other linear working model.

* ``lmm``: statsmodels ``MixedLM`` (REML by default, or ML) with a random intercept or a random
  intercept and slope in time per group. The fixed-effect covariance is the GLS covariance
  ``(sum_i X_i' V_i^-1 X_i)^-1`` at the estimated variance components, as R's
  ``vcov(lmer(...))`` and ``nlme``; statsmodels' own ``bse_fe`` inverts the joint information of
  fixed effects and variance parameters and differs from lme4 at the third significant digit.
* ``gee``: statsmodels ``GEE`` (Gaussian, exchangeable or independence working correlation)
  with its robust (sandwich) covariance. Scale and correlation are estimated without
  degrees-of-freedom corrections (``ddof_scale = 0``), as R's ``geepack::geeglm``.
"""

from __future__ import annotations

import warnings

import numpy as np
import statsmodels.api as sm

from hte_report.errors import ModelError
from hte_report.models.glm import FittedModel


def fit_lmm(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    Z: np.ndarray,
    columns: tuple[str, ...],
    reml: bool = True,
) -> FittedModel:
    """Linear mixed model with random effects design ``Z`` (intercept, or intercept and time)."""
    model = sm.MixedLM(y, X, groups=groups, exog_re=Z)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = model.fit(reml=reml, method=["bfgs", "lbfgs", "powell"], gtol=1e-12,
                            maxiter=5000)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(f"the mixed model could not be fitted: {exc}") from None
    converged = bool(res.converged)
    cov_re = np.atleast_2d(np.asarray(res.cov_re, dtype=float))
    scale = float(res.scale)
    info = np.zeros((X.shape[1], X.shape[1]))
    for rows in _group_rows(groups):
        Zi = Z[rows]
        Vi = scale * np.eye(len(rows)) + Zi @ cov_re @ Zi.T
        info += X[rows].T @ np.linalg.solve(Vi, X[rows])
    vcov = np.linalg.inv(info)
    boundary = np.any(np.linalg.eigvalsh(cov_re) <= 1e-10 * max(scale, 1e-300))
    notes = []
    if boundary:
        notes.append("random-effects covariance on the boundary (singular fit)")
    msgs = [str(w.message) for w in caught if "converge" in str(w.message).lower()]
    if msgs and not converged:
        notes.append(msgs[0])
    names = ["Intercept"] if Z.shape[1] == 1 else ["Intercept", "time"]
    extra = {"cov_re": cov_re.tolist(), "scale": scale, "re_names": names}
    return FittedModel(name="lmm-reml" if reml else "lmm-ml", link="identity",
                       variance="model", params=np.asarray(res.fe_params, dtype=float),
                       vcov=vcov, loglik=float(res.llf), converged=converged, n=len(y),
                       columns=tuple(columns), note="; ".join(notes), extra=extra)


def fit_gee(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, columns: tuple[str, ...],
    correlation: str = "exchangeable",
) -> FittedModel:
    """Gaussian GEE with an exchangeable (or independence) working correlation and robust
    covariance."""
    struct = (sm.cov_struct.Exchangeable() if correlation == "exchangeable"
              else sm.cov_struct.Independence())
    model = sm.GEE(y, X, groups=groups, family=sm.families.Gaussian(), cov_struct=struct)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = model.fit(maxiter=200, ctol=1e-10, ddof_scale=0)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(f"the GEE could not be fitted: {exc}") from None
    converged = not any("iteration limit" in str(w.message).lower() for w in caught)
    alpha = (float(np.asarray(res.cov_struct.dep_params)) if correlation == "exchangeable"
             else float("nan"))
    return FittedModel(name=f"gee-{correlation}", link="identity", variance="robust",
                       params=np.asarray(res.params, dtype=float),
                       vcov=np.asarray(res.cov_robust, dtype=float), loglik=np.nan,
                       converged=converged, n=len(y), columns=tuple(columns),
                       extra={"alpha": alpha, "scale": float(res.scale),
                              "correlation": correlation})


def _group_rows(groups: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(groups, kind="stable")
    _, start = np.unique(groups[order], return_index=True)
    return np.split(order, start[1:])
