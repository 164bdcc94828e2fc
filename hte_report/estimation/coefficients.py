"""What a statistician reads next to the effects: each working model's coefficient table (as
``broom::tidy(fit, conf.int = TRUE)`` / ``lmtest::coeftest`` + ``coefci`` with the model's
variance), its covariance matrix (``vcov``) and its model-level statistics (``broom::glance``:
n, log-likelihood, deviance, null deviance, AIC, BIC, residual df, convergence).

Coefficients are on the link scale (log ratios for log and logit links), with the variance
the model reports (HC3 for OLS by default, HC0 for Poisson working models, model-based
otherwise); intervals and p-values are z, or t with the residual df for a Gaussian linear model
under ``inference="t"``. Deviances and AIC follow R's ``glm``: Bernoulli and Poisson
log-likelihoods (a Poisson working model of a binary outcome included), and for Gaussian models
the maximum-likelihood log-likelihood with the variance counted as a parameter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_report.design.arms import rows_times
from hte_report.estimation.contrasts import critical_value, two_sided_p
from hte_report.models.glm import FittedModel
from hte_report.spec.options import MODELS

#: Columns of ``HTEResult.coefficients`` (before the analysis columns a strategy adds).
COEFFICIENT_COLUMNS = ["model", "term", "estimate", "std_error", "statistic", "p_value",
                       "conf_low", "conf_high", "df", "inference", "variance"]
#: Columns of ``HTEResult.glance``.
GLANCE_COLUMNS = ["model", "family", "link", "variance", "inference", "n", "n_params",
                  "df_null", "df_residual", "loglik", "deviance", "null_deviance", "aic", "bic",
                  "converged", "iterations", "note"]
#: Covariance matrices wider than this are not stored (``HTEResult.vcov`` says so).
MAX_STORED_COLUMNS = 200


def test_row(modifier, scale, test, stat, df, p, model, method, note, df_resid=None):
    """A test row: chi-square (``df``), or under t inference F on (``df``, ``df_resid``)."""
    if note.startswith("not estimable"):
        stat, p = np.nan, np.nan
    return {"modifier": modifier, "scale": scale, "test": test, "statistic": float(stat),
            "df": int(df), "p_value": float(p), "model": model, "method": method, "note": note,
            "distribution": "chi-square" if df_resid is None else "F",
            "df_denominator": np.nan if df_resid is None else float(df_resid)}


def inference_columns(fm: FittedModel) -> dict:
    """How an effect row's interval and p-value were made: z, or t with the residual df."""
    return {"inference": fm.inference, "df": np.nan if fm.t_df is None else fm.t_df}


def coefficient_rows(fm: FittedModel, conf_level: float) -> list[dict]:
    """:func:`coefficient_table` as a list of rows (dicts)."""
    return coefficient_table(fm, conf_level).to_dict("records")


def coefficient_table(fm: FittedModel, conf_level: float) -> pd.DataFrame:
    """The tidy coefficient table of one working model (one row per design column), built
    from columns: with a thousand site coefficients a dict per row was the largest object of
    a many-level analysis."""
    se = np.sqrt(np.clip(variances(fm), 0, None))
    df = fm.t_df
    crit = critical_value(conf_level, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = fm.params / se
    pval = two_sided_p(stat, df)
    k = len(fm.columns)
    label = fm.label
    return pd.DataFrame({"model": [label] * k, "term": list(fm.columns),
                         "estimate": np.asarray(fm.params, float), "std_error": se,
                         "statistic": stat, "p_value": pval,
                         "conf_low": fm.params - crit * se, "conf_high": fm.params + crit * se,
                         "df": np.full(k, np.nan if df is None else df),
                         "inference": [fm.inference] * k, "variance": [fm.variance] * k})


def variances(fm: FittedModel) -> np.ndarray:
    """The diagonal of ``fm.cov(I)`` without the (p + K)^3 product: each coefficient's
    variance, NaN where it depends on a leverage-1 patient (HC2/HC3)."""
    var = np.array(np.diag(fm.vcov), dtype=float)
    if fm.undefined is not None and fm.undefined.size:
        var[fm.undefined_coefficients()] = np.nan
    return var


def covariance_rows(fm: FittedModel) -> list[dict]:
    """The coefficient covariance of one model in long form (term, term2, value); nothing for
    designs wider than :data:`MAX_STORED_COLUMNS`."""
    p = len(fm.params)
    if p > MAX_STORED_COLUMNS:
        return []
    V = fm.cov(np.eye(p))
    cols = list(fm.columns)
    return [{"model": fm.label, "term": cols[i], "term2": cols[j], "value": float(V[i, j])}
            for i in range(p) for j in range(p)]


def glance_row(fm: FittedModel, X: np.ndarray, y: np.ndarray, expo: np.ndarray | None,
               cells=None) -> dict:
    """Model-level statistics of one working model fitted on design ``X`` (rows may be cells
    of identical patients, ``cells``), as R's ``glm``/``lm`` and ``broom::glance`` give them."""
    info = MODELS[fm.name]
    n, p = float(fm.n), len(fm.params)
    s1 = y if cells is None else cells.s1  # sums of y per row (cell)
    events = float(np.sum(s1))
    total = float(len(y)) if cells is None else float(np.sum(cells.cnt))  # patients
    note = ""
    with np.errstate(divide="ignore", invalid="ignore"):
        fitted = fm.extra.get("fitted_sum") if cells is None else None
        if fitted is None:  # not known from the fit's last pass (models.fast.fit_irls)
            fitted = _fitted_sums(fm, info.family, X, y, expo, cells)
        if info.family == "gaussian":
            s2 = y * y if cells is None else cells.s2
            deviance = fitted
            null_deviance = float(np.sum(s2) - events * (events / total))  # no ** (OverflowError)
            k = p + 1  # the residual variance is a parameter of the likelihood
            loglik = -n / 2 * (np.log(2 * np.pi * deviance / n) + 1)
        elif info.family == "binomial":
            deviance = -2.0 * fitted
            null_deviance = -2.0 * (_xlogy(events, events / total)
                                    + _xlogy(total - events, 1.0 - events / total))
            k, loglik = p, -deviance / 2
        else:  # Poisson: a count, or a binary outcome under a modified Poisson working model
            person_time = total if expo is None else float(np.sum(expo))
            rate = events / person_time
            ylogy = _ylogy(y, s1, cells)
            if ylogy is None:
                deviance = null_deviance = np.nan
                note = ("deviance not available from cells of a count outcome (it needs each "
                        "patient's y log y)")
            else:
                deviance = 2.0 * float(ylogy - fitted)
                log_mu0 = _xlogy(events, rate) + (0.0 if expo is None else
                                                   float(np.dot(s1, np.log(expo))))
                null_deviance = 2.0 * float(ylogy - log_mu0 - (events - rate * person_time))
            k, loglik = p, fm.loglik
    return {"model": fm.label, "family": info.family, "link": fm.link,
            "variance": fm.variance, "inference": fm.inference, "n": int(round(n)),
            "n_params": p, "df_null": n - 1, "df_residual": n - p, "loglik": float(loglik),
            "deviance": float(deviance), "null_deviance": float(null_deviance),
            "aic": float(-2 * loglik + 2 * k), "bic": float(-2 * loglik + np.log(n) * k),
            "converged": bool(fm.converged), "iterations": int(fm.iterations), "note": note}


#: Rows per block of :func:`_fitted_sums` (its temporaries are a few vectors this long).
ROWS = 1 << 13


def _fitted_sums(fm: FittedModel, family: str, X, y, expo, cells) -> float:
    """The part of the deviance that depends on the fitted means, summed by blocks of rows:
    the residual sum of squares (gaussian), the log-likelihood (binomial), or
    sum(y log mu) - sum(y - mu) (Poisson)."""
    total = 0.0
    for s in range(0, len(y), ROWS):
        r = slice(s, s + ROWS)
        eta = rows_times(X, r, fm.params)
        if expo is not None:
            eta = eta * expo[r] if fm.link == "identity" else eta + np.log(expo[r])
        mu = fm.inverse_link(eta)[0]
        w = 1.0 if cells is None else cells.cnt[r]
        s1 = y[r] if cells is None else cells.s1[r]
        if family == "gaussian":
            s2 = s1 * s1 if cells is None else cells.s2[r]
            total += float(np.sum(s2 - 2 * mu * s1 + w * mu * mu))
        elif family == "binomial":
            total += _bernoulli(s1, w, mu)
        else:
            total += float(np.sum(s1 * np.log(mu))) - float(np.sum(s1 - w * mu))
    return total


def _bernoulli(s1, w, mu) -> float:
    """Bernoulli log-likelihood of ``s1`` events among ``w`` patients at probabilities mu
    (0 log 0 = 0): two sums over the rows with events and with non-events."""
    events = s1 > 0
    out = float(np.dot(s1[events], np.log(mu[events])))
    fails = w - s1
    rest = fails > 0
    return out + float(np.dot(fails[rest], np.log1p(-mu[rest])))


def _xlogy(x: float, p: float) -> float:
    return 0.0 if x == 0 else x * float(np.log(p))


def _ylogy(y, s1, cells) -> float | None:
    """Sum of y log y over patients (0 log 0 = 0); from cells only for 0/1 outcomes."""
    if cells is None:
        pos = y[y > 0]
        return float(np.dot(pos, np.log(pos)))
    means = s1 / cells.cnt
    if np.all((means >= 0) & (means <= 1)) and np.allclose(cells.s2, s1):  # y in {0, 1}
        return 0.0
    return None


def coefficient_frames(fitted: list[FittedModel], X, y, expo, cells, conf_level: float
                       ) -> dict[str, pd.DataFrame]:
    """The three frames of a set of working models: ``coefficients``, ``glance`` and
    ``covariance`` (long form; :meth:`HTEResult.vcov` pivots it)."""
    coef, glance, cov = [], [], []
    for fm in fitted:
        coef.append(coefficient_table(fm, conf_level))
        glance.append(glance_row(fm, X, y, expo, cells))
        cov += covariance_rows(fm)
    coefficients = (pd.concat(coef, ignore_index=True)[COEFFICIENT_COLUMNS] if coef
                    else pd.DataFrame(columns=COEFFICIENT_COLUMNS))
    return {"coefficients": coefficients,
            "glance": pd.DataFrame(glance, columns=GLANCE_COLUMNS),
            "covariance": pd.DataFrame(cov, columns=["model", "term", "term2", "value"])}
