"""Calibration and evaluation of a CATE estimator from its out-of-sample predictions
(exploratory).

Every function here is a deterministic function of arrays the forest produced -- the outcome
``y``, the 0/1 treatment ``w``, the cross-fitted nuisance predictions ``y_hat`` = m(x) =
E[Y | X] and ``w_hat`` = e(x) = P(W = 1 | X), and the out-of-bag CATE predictions ``tau_hat``
-- so the numbers can be re-computed from the exported arrays in any language
(``tests/reference/explore.R`` does so with R's ``lm`` + ``sandwich::vcovHC(type = "HC3")`` +
``lmtest::coeftest``).

* :func:`dr_scores` -- the doubly robust (AIPW) scores of grf's causal forest:
  ``tau_hat + (w - w_hat) / (w_hat (1 - w_hat)) * (y - y_hat - (w - w_hat) tau_hat)``.
* :func:`test_calibration` -- the best-linear-predictor test of Chernozhukov, Demirer, Duflo &
  Fernandez-Val, as grf's ``test_calibration``: OLS without intercept of ``y - y_hat`` on
  ``mean.forest.prediction = (w - w_hat) mean(tau_hat)`` and
  ``differential.forest.prediction = (w - w_hat)(tau_hat - mean(tau_hat))``, HC3 standard
  errors, t reference distribution on n - 2 df, one-sided p-values (H1: coefficient > 0).
  A differential coefficient near 1 with a small p says the forest's ranking of patients
  carries real heterogeneity; a p above alpha says there is no evidence of heterogeneity beyond
  the average effect. (grf uses ``sandwich::vcovCL(type = "HC3")`` with one cluster per row,
  which multiplies the HC3 covariance by n / (n - 1).)
* :func:`best_linear_projection` -- as grf's ``best_linear_projection``: OLS of the DR scores
  on an intercept and the pre-specified modifiers, HC3 standard errors, two-sided t tests.
* :func:`gates` -- sorted group average treatment effects (Chernozhukov et al.) by quantile
  group of ``tau_hat``: the coefficients of OLS of the DR scores on the group indicators (no
  intercept; i.e. each group's mean DR score) with HC3 standard errors and t intervals, a Wald
  test (HC3, chi-square on K - 1 df) that all group effects are equal, and the
  top-minus-bottom difference. Groups: ``ceil(K * rank / n)`` with ranks 1..n of ``tau_hat``
  (ties broken by row order), as R's ``ceiling(K * rank(x, ties.method = "first") / n)``,
  within each fold when ``folds`` is given (the forest passes cross-fitted priorities: each
  patient's CATE from a forest grown without the patient's fold).
* :func:`rate` -- the rank-weighted average treatment effect (Yadlowsky et al. 2021) of the
  priorities ``tau_hat``: TOC(q) = mean DR score among the top q fraction minus the mean DR
  score; AUTOC = mean over j = 1..n of TOC(j / n); Qini = mean of (j / n) TOC(j / n). Tied
  priorities share the mean of their DR scores (as grf). With ``folds`` (cross-fitted
  priorities), RATE and TOC are computed within each fold and averaged with weights
  n_fold / n. Standard errors by a seeded nonparametric bootstrap of rows (within folds).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["best_linear_projection", "dr_scores", "gates", "ols_hc3", "quantile_groups",
           "rate", "rate_estimates", "test_calibration", "toc_curve"]


def ols_hc3(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """OLS coefficients, their HC3 covariance (MacKinnon & White 1985, as
    ``sandwich::vcovHC(type = "HC3")``) and the residual df ``n - p``."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    q, r = np.linalg.qr(X)
    if np.min(np.abs(np.diag(r))) <= 1e-10 * max(1.0, np.max(np.abs(np.diag(r)))):
        raise np.linalg.LinAlgError("collinear regressors")
    beta = np.linalg.solve(r, q.T @ y)
    resid = y - X @ beta
    h = np.sum(q * q, axis=1)
    if np.any(h >= 1 - 1e-10):
        raise np.linalg.LinAlgError("a row has leverage 1: the HC3 variance is undefined")
    rinv = np.linalg.inv(r)
    bread = rinv @ rinv.T  # (X'X)^-1
    meat = (X * (resid / (1 - h))[:, None] ** 2).T @ X
    cov = bread @ meat @ bread
    return beta, cov, n - p


def _coef_frame(names, beta, cov, df, conf_level, one_sided=False) -> pd.DataFrame:
    se = np.sqrt(np.diag(cov))
    t = beta / se
    if one_sided:
        p = stats.t.sf(t, df)
    else:
        p = 2 * stats.t.sf(np.abs(t), df)
    crit = stats.t.ppf(0.5 + conf_level / 2, df)
    return pd.DataFrame({"term": list(names), "estimate": beta, "std_error": se,
                         "statistic": t, "df": float(df), "p_value": p,
                         "conf_low": beta - crit * se, "conf_high": beta + crit * se})


def dr_scores(y, w, y_hat, w_hat, tau_hat) -> np.ndarray:
    """grf's doubly robust scores of the conditional average treatment effect."""
    y, w, y_hat, w_hat, tau_hat = (np.asarray(a, dtype=float)
                                   for a in (y, w, y_hat, w_hat, tau_hat))
    resid = y - y_hat - (w - w_hat) * tau_hat
    return tau_hat + (w - w_hat) / (w_hat * (1 - w_hat)) * resid


def test_calibration(y, w, y_hat, w_hat, tau_hat, conf_level: float = 0.95) -> pd.DataFrame:
    """grf's ``test_calibration`` with HC3 standard errors and one-sided p-values."""
    y, w, y_hat, w_hat, tau_hat = (np.asarray(a, dtype=float)
                                   for a in (y, w, y_hat, w_hat, tau_hat))
    mean_pred = float(np.mean(tau_hat))
    X = np.column_stack([(w - w_hat) * mean_pred, (w - w_hat) * (tau_hat - mean_pred)])
    beta, cov, df = ols_hc3(X, y - y_hat)
    out = _coef_frame(["mean.forest.prediction", "differential.forest.prediction"], beta, cov,
                      df, conf_level, one_sided=True)
    out["alternative"] = "greater"
    return out


def best_linear_projection(scores, A: pd.DataFrame | None = None,
                           conf_level: float = 0.95) -> pd.DataFrame:
    """OLS of the DR scores on an intercept and the columns of ``A`` (HC3)."""
    scores = np.asarray(scores, dtype=float)
    names = ["(Intercept)"]
    X = np.ones((len(scores), 1))
    if A is not None and A.shape[1]:
        names += [str(c) for c in A.columns]
        X = np.column_stack([X, A.to_numpy(dtype=float)])
    beta, cov, df = ols_hc3(X, scores)
    return _coef_frame(names, beta, cov, df, conf_level)


def _fold_list(n: int, folds) -> list[np.ndarray]:
    if folds is None:
        return [np.arange(n)]
    folds = np.asarray(folds)
    return [np.flatnonzero(folds == f) for f in np.unique(folds)]


def quantile_groups(tau_hat, n_groups: int, folds=None) -> np.ndarray:
    """Groups 1..K of ``tau_hat`` by rank: ``ceil(K * rank / n)`` (ties by row order), within
    each fold when ``folds`` is given."""
    tau_hat = np.asarray(tau_hat, dtype=float)
    out = np.empty(len(tau_hat), dtype=int)
    for idx in _fold_list(len(tau_hat), folds):
        ranks = stats.rankdata(tau_hat[idx], method="ordinal")
        out[idx] = np.ceil(n_groups * ranks / len(idx)).astype(int)
    return out


def gates(scores, tau_hat, n_groups: int = 5, conf_level: float = 0.95,
          folds=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sorted group average treatment effects by quantile group of ``tau_hat``.

    Returns the per-group frame (``group, n, cate_low, cate_high, mean_cate, estimate,
    std_error, statistic, df, p_value, conf_low, conf_high``) and the tests frame (``test,
    estimate, std_error, statistic, df, p_value``): ``equal GATES`` (Wald chi-square, K - 1 df)
    and ``top - bottom``."""
    scores = np.asarray(scores, dtype=float)
    tau_hat = np.asarray(tau_hat, dtype=float)
    g = quantile_groups(tau_hat, n_groups, folds)
    X = (g[:, None] == np.arange(1, n_groups + 1)[None, :]).astype(float)
    beta, cov, df = ols_hc3(X, scores)
    out = _coef_frame([f"G{k}" for k in range(1, n_groups + 1)], beta, cov, df, conf_level)
    out.insert(0, "group", np.arange(1, n_groups + 1))
    out.insert(1, "n", X.sum(axis=0).astype(int))
    out.insert(2, "cate_low", [tau_hat[g == k].min() for k in range(1, n_groups + 1)])
    out.insert(3, "cate_high", [tau_hat[g == k].max() for k in range(1, n_groups + 1)])
    out.insert(4, "mean_cate", [tau_hat[g == k].mean() for k in range(1, n_groups + 1)])
    out = out.drop(columns="term")
    L = np.zeros((n_groups - 1, n_groups))
    L[:, 0] = -1
    L[np.arange(n_groups - 1), np.arange(1, n_groups)] = 1
    d = L @ beta
    chi2 = float(d @ np.linalg.solve(L @ cov @ L.T, d))
    diff = float(beta[-1] - beta[0])
    se_diff = float(math.sqrt(cov[-1, -1] + cov[0, 0] - 2 * cov[0, -1]))
    tests = pd.DataFrame({
        "test": ["equal GATES", "top - bottom"],
        "estimate": [np.nan, diff],
        "std_error": [np.nan, se_diff],
        "statistic": [chi2, diff / se_diff],
        "df": [float(n_groups - 1), float(df)],
        "p_value": [float(stats.chi2.sf(chi2, n_groups - 1)),
                    float(2 * stats.t.sf(abs(diff / se_diff), df))],
        "distribution": ["chi-square (Wald, HC3)", "t (HC3)"],
    })
    return out, tests


def _sorted_tied(scores: np.ndarray, priorities: np.ndarray) -> np.ndarray:
    """Scores sorted by decreasing priority, tied priorities sharing their mean score."""
    order = np.argsort(-priorities, kind="stable")
    p = priorities[order]
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    if len(starts) == len(p):
        return s
    sums = np.add.reduceat(s, starts)
    counts = np.diff(np.r_[starts, len(p)])
    return np.repeat(sums / counts, counts)


def _rate_one(scores: np.ndarray, priorities: np.ndarray) -> tuple[float, float]:
    n = len(scores)
    s = _sorted_tied(scores, priorities)
    j = np.arange(1, n + 1)
    toc = np.cumsum(s) / j - s.mean()
    return float(np.mean(toc)), float(np.mean(j / n * toc))


def rate_estimates(scores, priorities, folds=None) -> tuple[float, float]:
    """(AUTOC, Qini) of ``priorities`` from the DR ``scores``; with ``folds``, the
    size-weighted mean of the folds' values (each fold ranked by its own priorities)."""
    scores = np.asarray(scores, dtype=float)
    priorities = np.asarray(priorities, dtype=float)
    parts = _fold_list(len(scores), folds)
    vals = np.array([_rate_one(scores[i], priorities[i]) for i in parts])
    w = np.array([len(i) for i in parts]) / len(scores)
    return float(w @ vals[:, 0]), float(w @ vals[:, 1])


def _bootstrap_index(n: int, n_bootstrap: int, seed: int, folds=None) -> np.ndarray:
    """Bootstrap rows, resampled within each fold (so each fold keeps its size)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 18]))
    parts = _fold_list(n, folds)
    return np.concatenate([idx[rng.integers(0, len(idx), size=(n_bootstrap, len(idx)))]
                           for idx in parts], axis=1)


def _boot_folds(folds, n: int):
    """The fold labels of a bootstrap sample (its rows are in fold order)."""
    if folds is None:
        return None
    folds = np.asarray(folds)
    return np.concatenate([np.full((folds == f).sum(), f) for f in np.unique(folds)])


def rate(scores, priorities, n_bootstrap: int = 200, seed: int = 0,
         conf_level: float = 0.95, folds=None) -> pd.DataFrame:
    """AUTOC and Qini with bootstrap standard errors, normal intervals and two-sided
    p-values (H0: RATE = 0, i.e. the priorities do not rank patients by benefit)."""
    scores = np.asarray(scores, dtype=float)
    priorities = np.asarray(priorities, dtype=float)
    est = rate_estimates(scores, priorities, folds)
    idx = _bootstrap_index(len(scores), n_bootstrap, seed, folds)
    bf = _boot_folds(folds, len(scores))
    boot = np.array([rate_estimates(scores[i], priorities[i], bf) for i in idx])
    se = boot.std(axis=0, ddof=1) if n_bootstrap > 1 else np.full(2, np.nan)
    z = stats.norm.ppf(0.5 + conf_level / 2)
    est = np.asarray(est)
    return pd.DataFrame({"metric": ["AUTOC", "Qini"], "estimate": est, "std_error": se,
                         "conf_low": est - z * se, "conf_high": est + z * se,
                         "statistic": est / se, "p_value": 2 * stats.norm.sf(np.abs(est / se)),
                         "n_bootstrap": n_bootstrap})


def toc_curve(scores, priorities, grid=None, n_bootstrap: int = 200, seed: int = 0,
              conf_level: float = 0.95, folds=None) -> pd.DataFrame:
    """The targeting operator characteristic TOC(q) at fractions ``q`` (default 0.05, 0.10,
    ..., 1): the mean DR score of the top ``ceil(q n)`` minus the mean DR score (with
    ``folds``: per fold, size-weighted mean), with bootstrap standard errors and normal
    pointwise intervals."""
    scores = np.asarray(scores, dtype=float)
    priorities = np.asarray(priorities, dtype=float)
    n = len(scores)
    q = np.round(np.arange(1, 21) / 20, 10) if grid is None else np.asarray(grid, dtype=float)

    def one(s, p):
        k = np.maximum(1, np.ceil(q * len(s) - 1e-9).astype(int))
        st = _sorted_tied(s, p)
        return np.cumsum(st)[k - 1] / k - st.mean()

    def curve(s, p, f):
        parts = _fold_list(len(s), f)
        return sum(len(i) / len(s) * one(s[i], p[i]) for i in parts)

    est = curve(scores, priorities, folds)
    idx = _bootstrap_index(n, n_bootstrap, seed + 1, folds)
    bf = _boot_folds(folds, n)
    boot = np.array([curve(scores[i], priorities[i], bf) for i in idx])
    se = boot.std(axis=0, ddof=1) if n_bootstrap > 1 else np.full(len(q), np.nan)
    z = stats.norm.ppf(0.5 + conf_level / 2)
    return pd.DataFrame({"q": q, "estimate": est, "std_error": se,
                         "conf_low": est - z * se, "conf_high": est + z * se})
