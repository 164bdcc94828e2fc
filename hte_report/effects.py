"""Effects as contrasts of counterfactual predictions, with delta-method uncertainty.

One engine serves every effect: predictions with treatment set to 1 and to 0 are averaged over
a set of rows (a subgroup, the whole sample: *standardized* / g-computation effects) or taken at
one covariate profile (*conditional* effects), then contrasted as a difference, a ratio or an
odds ratio. Coefficient arithmetic is the special case of a one-row profile.

Uncertainty: delta method with the model's coefficient covariance. Standardized effects are
conditional on the observed covariate distribution (sample-average effects); covariate-sampling
variance is not added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .models.glm import FittedModel

CONTRASTS = ("difference", "ratio", "odds-ratio")


@dataclass(frozen=True)
class Contrast:
    """Estimates and joint covariance of K contrasts (difference, or log ratio / log OR)."""

    kind: str
    estimate: np.ndarray  # on the reporting scale (ratio, not log ratio)
    theta: np.ndarray  # on the inference scale (difference, or log ratio)
    cov: np.ndarray  # K x K covariance of theta
    mu1: np.ndarray
    mu0: np.ndarray

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov), 0, None))


def group_means(
    model: FittedModel, X: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Means of predictions over groups and their gradients, in one pass.

    ``weights`` is n x K with columns summing to one (row-averaging weights of each group).
    Returns mean predictions (K,) and gradient d mean / d beta (K x p).
    """
    eta = X @ model.params
    mu, dmu = model.inverse_link(eta)
    return weights.T @ mu, weights.T @ (X * dmu[:, None])


def contrast(
    model: FittedModel, X1: np.ndarray, X0: np.ndarray, weights: np.ndarray, kind: str
) -> Contrast:
    """Contrast of mean predictions under treatment 1 and 0 for each group (column of weights)."""
    m1, g1 = group_means(model, X1, weights)
    m0, g0 = group_means(model, X0, weights)
    return contrast_of_means(kind, m1, g1, m0, g0, model.vcov)


@dataclass(frozen=True)
class Means:
    """Mean predictions under treatment 1 and 0 for K groups, with their gradients: computed
    once per model and shared by every scale, subgroup set and test."""

    m1: np.ndarray
    g1: np.ndarray
    m0: np.ndarray
    g0: np.ndarray

    @classmethod
    def of(cls, model: FittedModel, X1, X0, weights) -> Means:
        return cls(*group_means(model, X1, weights), *group_means(model, X0, weights))

    def take(self, idx) -> Means:
        return Means(self.m1[idx], self.g1[idx], self.m0[idx], self.g0[idx])

    def contrast(self, kind: str, vcov: np.ndarray) -> Contrast:
        return contrast_of_means(kind, self.m1, self.g1, self.m0, self.g0, vcov)


def contrast_of_means(kind, m1, g1, m0, g0, vcov) -> Contrast:
    """Difference, ratio or odds ratio of two sets of group means, with the delta method."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "difference":
            theta = m1 - m0
            jac = g1 - g0
            est = theta
        elif kind == "ratio":
            theta = np.log(m1) - np.log(m0)
            jac = g1 / m1[:, None] - g0 / m0[:, None]
            est = np.exp(theta)
        elif kind == "odds-ratio":
            theta = np.log(m1 / (1 - m1)) - np.log(m0 / (1 - m0))
            jac = g1 / (m1 * (1 - m1))[:, None] - g0 / (m0 * (1 - m0))[:, None]
            est = np.exp(theta)
        else:  # pragma: no cover - internal
            raise ValueError(kind)
    cov = jac @ vcov @ jac.T
    return Contrast(kind, est, theta, cov, m1, m0)


def interval(c: Contrast, conf_level: float) -> dict[str, np.ndarray]:
    """Wald interval, statistic and two-sided p-value (z), back-transformed for ratios."""
    z = stats.norm.ppf(0.5 + conf_level / 2)
    se = c.std_error
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = c.theta - z * se, c.theta + z * se
        stat = c.theta / se
    if c.kind != "difference":
        with np.errstate(over="ignore"):
            lo, hi = np.exp(lo), np.exp(hi)
    return {
        "estimate": c.estimate,
        "std_error": se,
        "conf_low": lo,
        "conf_high": hi,
        "statistic": stat,
        "p_value": 2 * stats.norm.sf(np.abs(stat)),
    }


def wald_test(theta: np.ndarray, cov: np.ndarray) -> tuple[float, int, float]:
    """Chi-square Wald test that all of ``theta`` are zero."""
    theta = np.atleast_1d(theta)
    df = len(theta)
    stat = float(theta @ np.linalg.solve(cov, theta))
    return stat, df, float(stats.chi2.sf(stat, df))


def equality_test(c: Contrast) -> tuple[float, int, float]:
    """Wald test that K contrasts are equal: differences from the first, df = K - 1."""
    k = len(c.theta)
    C = np.hstack([-np.ones((k - 1, 1)), np.eye(k - 1)])
    return wald_test(C @ c.theta, C @ c.cov @ C.T)


def lr_test(ll_full: float, ll_reduced: float, df: int) -> tuple[float, int, float]:
    stat = 2.0 * (ll_full - ll_reduced)
    return stat, df, float(stats.chi2.sf(stat, df))


def weights_for(masks: list[np.ndarray], freq: np.ndarray | None = None) -> np.ndarray:
    """Row-averaging weights (n x K) from K boolean row masks (and row frequencies, when rows
    are cells of identical patients)."""
    W = np.column_stack([m.astype(float) for m in masks])
    if freq is not None:
        W = W * freq[:, None]
    counts = W.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return W / counts


def reference_profile(frame: pd.DataFrame, columns, categorical, freq=None) -> dict:
    """Covariate profile for conditional effects: mean of continuous columns (over analysed
    rows), mode of categorical ones (ties broken by the smallest level). ``freq`` weights rows
    that stand for several patients."""
    prof = {}
    w = np.ones(len(frame)) if freq is None else np.asarray(freq, float)
    for col in columns:
        s = frame[col]
        if col in categorical:
            counts = pd.Series(w, index=s.to_numpy()).groupby(level=0).sum()
            top = counts[counts == counts.max()].index
            prof[col] = sorted(top, key=lambda v: (str(type(v)), v))[0]
        else:
            prof[col] = float(np.average(s.to_numpy(float), weights=w))
    return prof


def additive_interaction(
    b: np.ndarray, V: np.ndarray, conf_level: float, label: str
) -> pd.DataFrame:
    """RERI, AP and SI from log-scale coefficients (b_t, b_m, b_tm) with delta-method CIs
    (Hosmer & Lemeshow 1992), as epiR::epi.interaction(param = "product")."""
    z = stats.norm.ppf(0.5 + conf_level / 2)
    bt, bm, btm = b
    r10, r01, r11 = np.exp(bt), np.exp(bm), np.exp(bt + bm + btm)
    reri = r11 - r10 - r01 + 1
    g_reri = np.array([r11 - r10, r11 - r01, r11])
    ap = reri / r11
    g_ap = np.array([(r11 - r10) / r11 - ap, (r11 - r01) / r11 - ap, 1 - ap])
    # SI on the log scale
    den = r10 + r01 - 2
    g_lsi = np.array([r11 / (r11 - 1) - r10 / den, r11 / (r11 - 1) - r01 / den, r11 / (r11 - 1)])
    si = (r11 - 1) / den
    rows = []
    for name, est, g, log in (("RERI", reri, g_reri, False), ("AP", ap, g_ap, False),
                              ("SI", si, g_lsi, True)):
        se = float(np.sqrt(g @ V @ g))
        if log:
            lo, hi = np.exp(np.log(est) - z * se), np.exp(np.log(est) + z * se)
        else:
            lo, hi = est - z * se, est + z * se
        rows.append({"measure": f"{name}_{label}", "estimate": float(est), "std_error": se,
                     "conf_low": float(lo), "conf_high": float(hi)})
    return pd.DataFrame(rows)
