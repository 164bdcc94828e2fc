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

from hte_report.data.levels import factorize
from hte_report.design.arms import ArmDesign
from hte_report.design.build import Design
from hte_report.models.fast import BLOCK, one_blas_thread
from hte_report.models.glm import FittedModel

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
    #: residual degrees of freedom for t inference (Gaussian linear models, ``inference="t"``);
    #: None: large-sample z inference.
    df: float | None = None

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
    return contrast_of_means(kind, m1, g1, m0, g0, model)


@dataclass(frozen=True)
class Means:
    """Mean predictions under treatment 1 and 0 for K groups, with their gradients: computed
    once per model and shared by every scale, subgroup set and test."""

    m1: np.ndarray
    g1: np.ndarray
    m0: np.ndarray
    g0: np.ndarray

    @classmethod
    def of_models(cls, models: list[FittedModel], design: Design,
                  groups: RowGroups) -> list[Means]:
        """Means over ``groups`` with everyone treated and everyone untreated, for each model,
        both from blocks of ``X1`` (see :meth:`Design.coefficients_under`: ``X0`` is never
        formed).

        One pass over blocks of rows serves every model, so each block of the design is read
        once; the temporaries are a block of the design and of the weights, not an n x p
        product nor n x K weights (and the products are small: one BLAS thread)."""
        coef = {(i, arm): design.coefficients_under(fm.params, arm == 1)
                for i, fm in enumerate(models) for arm in (1, 0)}
        with one_blas_thread():
            m, g = _mean_sums(models, coef, design, groups)
        out = []
        for i in range(len(models)):
            g[i, 0][:, design.treatment_columns] = 0.0  # X0 is zero there
            out.append(cls(m[i, 1], g[i, 1], m[i, 0], g[i, 0]))
        return out

    def take(self, idx) -> Means:
        return Means(self.m1[idx], self.g1[idx], self.m0[idx], self.g0[idx])

    def contrast(self, kind: str, model: FittedModel) -> Contrast:
        return contrast_of_means(kind, self.m1, self.g1, self.m0, self.g0, model)


def _mean_sums(models, coef: dict, design: Design, groups: RowGroups):
    """Sums of the mean predictions and their gradients over the rows, per (model, arm) of
    ``coef``."""
    k, p = len(groups.totals), design.X.shape[1]
    if isinstance(design.X, ArmDesign):
        return _mean_sums_by_arm(models, coef, design.X, groups)
    m = {key: np.zeros(k) for key in coef}
    g = {key: np.zeros((k, p)) for key in coef}
    for rows in groups.blocks():
        W, Xb = groups.weights(rows), design.treated_rows(rows)
        row_means = None  # identity links (d mu / d eta = 1): one gradient for all
        for (i, arm), b in coef.items():
            mu, dmu = models[i].inverse_link(Xb @ b)
            m[i, arm] += W.T @ mu
            if models[i].link == "identity":
                row_means = W.T @ Xb if row_means is None else row_means
                g[i, arm] += row_means
            else:
                g[i, arm] += (W * dmu[:, None]).T @ Xb
    return m, g


def _mean_sums_by_arm(models, coef: dict, X: ArmDesign, groups: RowGroups):
    """:func:`_mean_sums` on a design held by arm: the rows of ``X1`` are ``z C1``, so each
    block's products are taken with its q distinct products ``Z`` (all models and arms in one
    product with the group masks) and lifted to the design's columns at the end. The blocks
    are those of the fits (:meth:`ArmDesign.blocks`, whose ``Z`` is kept), each taking its
    rows of the stacked masks; the sums are divided by the group sizes at the end."""
    keys = list(coef)
    C = np.column_stack([X.coefficients(coef[key])[1] for key in keys])  # q x (models, arms)
    identity = np.array([models[i].link == "identity" for i, _arm in keys])
    links = np.flatnonzero(~identity)
    q, K = X.q, len(keys)
    masks = np.stack(groups.masks)  # K x n; each block takes its rows (in the ranges' threads)
    freq = X.arranged(groups.freq)
    width = K + q * (1 + len(links))

    def part(blocks):
        total = np.zeros((len(masks), width))
        Mt = Wt = None  # reused by every block of the same size (all but the last)
        for blk in blocks:
            m, n0 = blk.m, blk.n0
            if Mt is None or Mt.shape[1] != m:
                Mt, Wt = np.empty((width, m)), np.empty((len(masks), m))
            # per row: the linear predictors (then the means), Z, then Z times each
            # d mu / d eta (identity links share Z); every row of Mt contiguous
            Zt = Mt[K:K + q]
            Zt[:, :n0] = blk.Z0.T
            Zt[:, n0:] = blk.Z1.T
            np.dot(C.T, Zt, out=Mt[:K])  # one linear predictor per (model, arm)
            for s, j in enumerate(links):
                mu, dmu = models[keys[j][0]].inverse_link(Mt[j])
                Mt[j] = mu
                np.multiply(Zt, dmu, out=Mt[K + q * (s + 1):K + q * (s + 2)])
            rows = blk.rows  # positions (np.take: 4x faster than indexing), or a slice
            np.copyto(Wt, masks[:, rows] if isinstance(rows, slice) else
                      np.take(masks, rows, axis=1))
            if freq is not None:
                Wt *= freq[blk.span]
            total += np.dot(Wt, Mt.T)  # np.dot: it releases the GIL (ranges run in threads)
        return total

    total = None
    for part_total in X.map_blocks(part):  # in range order
        total = part_total if total is None else total + part_total
    with np.errstate(divide="ignore", invalid="ignore"):
        total /= groups.totals[:, None]
    m, g = {}, {}
    slots = iter(range(1, 1 + len(links)))
    for j, key in enumerate(keys):
        m[key] = total[:, j]
        s = 0 if identity[j] else next(slots)
        g[key] = total[:, K + q * s:K + q * (s + 1)][:, X.base]
    return m, g


def contrast_of_means(kind, m1, g1, m0, g0, model: FittedModel) -> Contrast:
    """Difference, ratio or odds ratio of two sets of group means, with the delta method
    (covariance from ``model.cov``: NaN where an HC2/HC3 variance is undefined)."""
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
    if hasattr(model, "cov"):
        cov = model.cov(jac)
    else:
        with np.errstate(all="ignore"):
            cov = jac @ model.vcov @ jac.T
    return Contrast(kind, est, theta, cov, m1, m0, t_df(model))


def t_df(model) -> float | None:
    """Residual degrees of freedom of a model reported with t inference, else None (z)."""
    return getattr(model, "t_df", None)


def critical_value(conf_level: float, df: float | None = None) -> float:
    """Two-sided critical value: normal, or t with ``df`` degrees of freedom."""
    q = 0.5 + conf_level / 2
    return float(stats.norm.ppf(q) if df is None else stats.t.ppf(q, df))


def two_sided_p(stat, df: float | None = None):
    """Two-sided p-value of a z (``df`` None) or t statistic."""
    return 2 * (stats.norm.sf(np.abs(stat)) if df is None else stats.t.sf(np.abs(stat), df))


def interval(c: Contrast, conf_level: float) -> dict[str, np.ndarray]:
    """Wald interval, statistic and two-sided p-value (z, or t with the contrast's residual
    df), back-transformed for ratios."""
    z = critical_value(conf_level, c.df)
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
        "p_value": two_sided_p(stat, c.df),
    }


def unit_rows(idx, p: int) -> np.ndarray:
    """Rows ``idx`` of the p x p identity (coefficient selectors) without forming it: p is
    in the thousands for a many-level adjustment factor."""
    idx = np.asarray(idx, dtype=int).reshape(-1)
    L = np.zeros((len(idx), p))
    L[np.arange(len(idx)), idx] = 1.0
    return L


def wald_test(theta: np.ndarray, cov: np.ndarray,
              df_resid: float | None = None) -> tuple[float, int, float]:
    """Wald test that all of ``theta`` are zero: chi-square, or with ``df_resid`` (t inference
    of a Gaussian linear model) the F test ``W / q`` on (q, df_resid) degrees of freedom, as
    R's ``lmtest::waldtest(test = "F")`` / ``car::linearHypothesis``. Returns (statistic,
    q, p)."""
    theta = np.atleast_1d(theta)
    df = len(theta)
    if not (np.all(np.isfinite(cov)) and np.all(np.isfinite(theta))):
        return np.nan, df, np.nan
    try:
        stat = float(theta @ np.linalg.solve(cov, theta))
    except np.linalg.LinAlgError:  # a singular covariance: the joint test is not defined
        return np.nan, df, np.nan
    if df_resid is not None:
        return stat / df, df, float(stats.f.sf(stat / df, df, df_resid))
    return stat, df, float(stats.chi2.sf(stat, df))


def equality_test(c: Contrast) -> tuple[float, int, float]:
    """Wald test that K contrasts are equal: differences from the first, df = K - 1 (an F
    test with the contrast's residual df under t inference)."""
    k = len(c.theta)
    C = np.hstack([-np.ones((k - 1, 1)), np.eye(k - 1)])
    with np.errstate(all="ignore"):
        return wald_test(C @ c.theta, C @ c.cov @ C.T, c.df)


def lr_test(ll_full: float, ll_reduced: float, df: int) -> tuple[float, int, float]:
    stat = 2.0 * (ll_full - ll_reduced)
    return stat, df, float(stats.chi2.sf(stat, df))


@dataclass(frozen=True)
class RowGroups:
    """K groups of rows (possibly overlapping) as K boolean row masks, with row frequencies
    when rows are cells of identical patients.

    The masks are the caller's own arrays (not stacked into a K x n copy); row-averaging
    weights are produced a block of rows at a time (:meth:`weights`), so sums over the groups
    never need an n x K float matrix.
    """

    masks: tuple  # K boolean arrays of length n
    freq: np.ndarray | None
    totals: np.ndarray  # K: patients in each group

    @classmethod
    def of(cls, masks: list[np.ndarray], freq: np.ndarray | None = None) -> RowGroups:
        """Groups from K boolean row masks (and row frequencies)."""
        masks = tuple(np.asarray(m, dtype=bool) for m in masks)
        if freq is None:
            totals = np.array([np.count_nonzero(m) for m in masks], dtype=float)
        else:
            totals = np.array([freq[m].sum() for m in masks], dtype=float)
        return cls(masks, freq, totals)

    def blocks(self):
        """Slices of at most :data:`BLOCK` rows covering all rows."""
        n = len(self.masks[0])
        return (slice(i, min(i + BLOCK, n)) for i in range(0, n, BLOCK))

    def block(self, rows: slice = slice(None)) -> np.ndarray:
        """The groups' masks on ``rows``: K x len(rows), boolean."""
        return np.stack([m[rows] for m in self.masks])

    def weights(self, rows: slice = slice(None)) -> np.ndarray:
        """Row-averaging weights of ``rows`` (len(rows) x K); each group's sum to one over all
        rows."""
        W = self.block(rows).T.astype(float)  # column-major: one group per column
        if self.freq is not None:
            W *= self.freq[rows, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            W /= self.totals
        return W

    def sums(self, columns: list, split: np.ndarray) -> tuple[np.ndarray, ...]:
        """Unweighted sums of each of ``columns`` (length-n vectors; None: the number of
        rows) over each group's rows where ``split`` is true, and where it is false: two
        K x len(columns) arrays. One product per block: the masks (as 0/1) times the columns
        inside and outside ``split`` (counts are sums of 0/1, exact below 2^53)."""
        k = len(columns)
        total = np.zeros((len(self.masks), 2 * k))
        V = M = None  # reused by every block of the same size (all but the last)
        with one_blas_thread():  # small products: threads only cost
            for rows in self.blocks():
                s = split[rows]
                if V is None or len(V) != len(s):
                    V, M = np.empty((len(s), 2 * k)), np.empty((len(self.masks), len(s)))
                for j, c in enumerate(columns):
                    if c is None:
                        V[:, j] = s
                    else:
                        np.multiply(c[rows], s, out=V[:, j])
                    np.subtract(1.0 if c is None else c[rows], V[:, j], out=V[:, k + j])
                for g, mask in enumerate(self.masks):
                    M[g] = mask[rows]
                total += M @ V
        return total[:, :k], total[:, k:]


def weights_for(masks: list[np.ndarray], freq: np.ndarray | None = None) -> np.ndarray:
    """Row-averaging weights (n x K) from K boolean row masks (and row frequencies, when rows
    are cells of identical patients). Large data: use :class:`RowGroups` block by block."""
    return np.ascontiguousarray(RowGroups.of(masks, freq).weights())  # row-major, as before


def reference_profile(frame: pd.DataFrame, columns, categorical, freq=None,
                      levels: dict | None = None) -> dict:
    """Covariate profile for conditional effects: mean of continuous columns (over analysed
    rows), mode of categorical ones (ties broken by the smallest level). ``freq`` weights rows
    that stand for several patients; ``levels`` are factorizations of ``frame``'s categorical
    columns already made (:attr:`Design.levels`), reused rather than made again."""
    prof = {}
    w = None if freq is None else np.asarray(freq, float)
    for col in columns:
        if col in categorical:
            lv = levels[col] if levels and col in levels else factorize(frame[col])
            counts = lv.totals(w)
            top = [v for v, c in zip(lv.values, counts) if c == counts.max()]
            prof[col] = sorted(top, key=lambda v: (str(type(v)), v))[0]
        else:
            prof[col] = float(np.average(frame[col].to_numpy(float), weights=w))
    return prof
