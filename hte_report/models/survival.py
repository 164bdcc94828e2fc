"""Cox proportional hazards and Kaplan–Meier building blocks for time-to-event outcomes.

The fit is the numpy Newton–Raphson of :mod:`hte_report.models.cox` (Efron or Breslow ties,
strata; rows sorted once per analysis and shared by the interaction model, the main-effects
model and the likelihood-ratio reduced models, which start from the full fit's estimates).
statsmodels' ``PHReg`` stays the reference (:func:`fit_cox_phreg`, the path before issue 21;
tests agree to rel 1e-8). Everything that R's ``survival`` computes beyond the coefficients
comes from the same risk-set sums, so it can be checked against R term by term:

* robust (sandwich) covariance from the score residuals, with Efron-weighted residuals for Efron
  fits, ``I^-1 (sum_g U_g U_g') I^-1`` as ``coxph(robust = TRUE)`` / ``cluster()``;
* the Breslow baseline cumulative hazard, its derivative in beta and its martingale variance
  ``sum d_k / S0_k^2`` (``survfit(fit, ctype = 1)``);
* the proportional-hazards score test of ``cox.zph(fit, transform = "km")`` (survival >= 3.0):
  a score test of ``beta(t) = beta + theta * g(t)`` at ``theta = 0``, per term and global;
* input checks (times >= 0, events 0/1, horizons within follow-up) and per-arm counts;
* Kaplan–Meier curves and the restricted mean survival time with its Greenwood-type variance
  (``print(survfit(...), rmean = tau)``).

Covariates are centred at their column means before any risk-set sum (R does the same); results
do not depend on it, but ``exp(x'b)`` stays finite for covariates with large values.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hte_report.errors import ConvergenceWarning, DataError, ModelError
from hte_report.models.cox import (
    Evaluation,
    RiskSets,
    evaluate,
    mean_at_deaths,
    newton,
    risk_sets,
    weighted_information,
)
from hte_report.models.cox import score_residuals as score_residuals_sorted
from hte_report.models.fast import one_blas_thread
from hte_report.models.glm import FittedModel
from hte_report.spec.options import Cluster


@dataclass(frozen=True)
class EventBlocks:
    """Risk-set sums at each distinct event time of each stratum (K blocks).

    ``S*`` are sums over the risk set (time >= t_k), ``D*`` over the deaths at t_k; index 0 is
    the sum of ``exp(eta)``, 1 of ``exp(eta) x``, 2 of ``exp(eta) x x'``.
    """

    stratum: np.ndarray  # (K,)
    time: np.ndarray  # (K,)
    deaths: np.ndarray  # (K,) number of deaths
    S0: np.ndarray
    S1: np.ndarray  # (K, p)
    S2: np.ndarray  # (K, p, p)
    D0: np.ndarray
    D1: np.ndarray
    D2: np.ndarray
    xdeath: np.ndarray  # (K, p) sum of x over the deaths


def event_blocks(time, event, X, beta, strata) -> EventBlocks:
    """Risk-set and death sums per (stratum, distinct event time), for right-censored data."""
    p = X.shape[1]
    r_all = np.exp(X @ beta)
    parts = {k: [] for k in EventBlocks.__dataclass_fields__}
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        order = rows[np.argsort(time[rows], kind="stable")]
        t, e, x, r = time[order], event[order], X[order], r_all[order]
        ut = np.unique(t[e == 1])
        if not len(ut):
            continue
        rx = x * r[:, None]
        rxx = x[:, :, None] * rx[:, None, :]
        start = np.searchsorted(t, ut, side="left")  # first row at risk at t_k
        dead = e == 1
        code = np.searchsorted(ut, t[dead])
        parts["stratum"].append(np.full(len(ut), s))
        parts["time"].append(ut)
        parts["deaths"].append(_sum_by(code, np.ones(int(dead.sum())), len(ut)))
        for name, a in (("0", r), ("1", rx), ("2", rxx)):
            parts["S" + name].append(np.cumsum(a[::-1], axis=0)[::-1][start])
            parts["D" + name].append(_sum_by(code, a[dead], len(ut)))
        parts["xdeath"].append(_sum_by(code, x[dead], len(ut)))
    if not parts["time"]:
        raise ModelError("no events: a Cox model needs at least one event.")
    cat = {k: np.concatenate(v) if v else np.zeros((0, p)) for k, v in parts.items()}
    return EventBlocks(**cat)


def _sum_by(code: np.ndarray, a: np.ndarray, k: int) -> np.ndarray:
    """Sums of the rows of ``a`` by ``code`` (0..k-1)."""
    out = np.zeros((k,) + a.shape[1:])
    np.add.at(out, code, a)
    return out


def _fractions(b: EventBlocks, ties: str):
    """Expand each block into one row per death with the Efron fraction j/d (0 for Breslow).

    Returns block index, fraction, denominator, covariate mean and second-moment matrix of the
    risk set with the first j/d of the tied deaths removed."""
    d = b.deaths.astype(int)
    k = np.repeat(np.arange(len(d)), d)
    j = np.arange(len(k)) - np.repeat(np.cumsum(d) - d, d)
    f = j / d[k] if ties == "efron" else np.zeros(len(k))
    denom = b.S0[k] - f * b.D0[k]
    xbar = (b.S1[k] - f[:, None] * b.D1[k]) / denom[:, None]
    m2 = (b.S2[k] - f[:, None, None] * b.D2[k]) / denom[:, None, None]
    return k, f, denom, xbar, m2


def reference_score_residuals(time, event, X, beta, strata, ties) -> np.ndarray:
    """Per-row score residuals from the per-block sums (the reference of
    :func:`hte_report.models.cox.score_residuals`)."""
    b = event_blocks(time, event, X, beta, strata)
    k, f, denom, xbar, _ = _fractions(b, ties)
    K = len(b.time)
    h = 1.0 / denom
    H, XH = _sum_by(k, h, K), _sum_by(k, h[:, None] * xbar, K)
    FH, FXH = _sum_by(k, f * h, K), _sum_by(k, (f * h)[:, None] * xbar, K)
    MX = _sum_by(k, xbar, K) / b.deaths[:, None]
    r = np.exp(X @ beta)
    out = np.zeros_like(X)
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        blk = np.flatnonzero(b.stratum == s)
        if not len(blk):
            out[rows] = np.nan
            continue
        bt = b.time[blk]
        CH, CXH = np.cumsum(H[blk]), np.cumsum(XH[blk], axis=0)
        idx = np.searchsorted(bt, time[rows], side="right") - 1
        has = idx >= 0
        x, rr = X[rows], r[rows]
        risk = np.zeros_like(x)
        risk[has] = x[has] * CH[idx[has], None] - CXH[idx[has]]
        res = -rr[:, None] * risk
        dead = (event[rows] == 1)
        kd = blk[idx[dead]]
        res[dead] += x[dead] - MX[kd]
        res[dead] += rr[dead, None] * (x[dead] * FH[kd, None] - FXH[kd])
        out[rows] = res
    return out


@dataclass(frozen=True)
class CoxFit:
    """A fitted Cox model on a centred design, with everything later steps need."""

    ties: str
    params: np.ndarray
    vcov: np.ndarray  # as requested (model or robust)
    vcov_model: np.ndarray
    loglik: float
    loglik_null: float
    converged: bool
    n: int
    n_events: int
    variance: str  # "model", "robust", "CL(site)"
    center: np.ndarray  # column means subtracted from X
    time: np.ndarray = field(repr=False)
    event: np.ndarray = field(repr=False)
    Xs: np.ndarray = field(repr=False)  # centred design, rows in risk-set order
    strata: np.ndarray = field(repr=False)
    risk: RiskSets = field(repr=False)  # rows sorted by (stratum, time)
    final: Evaluation | None = field(default=None, repr=False)  # risk-set sums at params
    iterations: int = 0
    message: str = ""  # why the fit did not converge

    @property
    def X(self) -> np.ndarray:
        """The centred design in the original row order."""
        out = np.empty_like(self.Xs)
        out[self.risk.order] = self.Xs
        return out

    def evaluation(self) -> tuple[RiskSets, np.ndarray, Evaluation]:
        """Risk sets, sorted design and the risk-set sums at the estimates."""
        ev = self.final
        if ev is None:
            with one_blas_thread():
                ev = evaluate(self.risk, self.Xs, self.params, self.ties)
        return self.risk, self.Xs, ev

    def as_fitted_model(self, name: str, columns: tuple[str, ...]) -> FittedModel:
        """The log-link view used by the contrast engine: exp(x'b) is the relative hazard, so a
        ratio contrast of two design rows is a hazard ratio."""
        return FittedModel(name=name, link="log", variance=self.variance, params=self.params,
                           vcov=self.vcov, loglik=self.loglik, converged=self.converged,
                           n=self.n, columns=columns)


def _inverse(info: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(info)


def _sandwich(vmodel, U, variance, groups, n) -> tuple[np.ndarray, str]:
    """``V (sum_g U_g U_g') V`` over clusters (each row its own for ``"robust"``)."""
    if variance == "model":
        return vmodel, "model"
    U = np.nan_to_num(U)
    if isinstance(variance, Cluster):
        codes = np.unique(groups, return_inverse=True)[1].ravel()
        G = int(codes.max()) + 1
        U = np.column_stack([np.bincount(codes, weights=U[:, j], minlength=G)
                             for j in range(U.shape[1])]) if U.shape[1] else U[:G]
        label = variance.label
    else:
        label = "robust"
    return vmodel @ (U.T @ U) @ vmodel, label


def fit_cox(
    X: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray,
    ties: str,
    variance: object = "model",
    groups: np.ndarray | None = None,
    *,
    init: np.ndarray | None = None,
    risk: RiskSets | None = None,
    names: tuple[str, ...] | None = None,
    order: np.ndarray | None = None,
) -> CoxFit:
    """Fit a Cox model by Newton–Raphson on the column-centred design (numpy kernel of
    :mod:`hte_report.models.cox`; ``risk`` reuses rows already sorted for the same
    time/event/strata, ``order`` reuses their sort order, ``init`` warm-starts the
    iterations).

    A coefficient that drifts towards infinity (monotone likelihood) gives ``converged=False``
    and a :class:`ConvergenceWarning` naming it; a singular information matrix a
    :class:`ModelError`."""
    rs = risk if risk is not None else risk_sets(time, event, strata, order)
    if not len(rs.dead_rows):
        raise ModelError("no events: a Cox model needs at least one event.")
    Xs, center = _sorted_centred(X, rs)
    return _fit_sorted(Xs, center, rs, time, event, strata, ties, variance, groups, init, names)


def fit_cox_columns(base: CoxFit, cols, variance: object = "model", groups=None, *,
                    init: np.ndarray | None = None,
                    names: tuple[str, ...] | None = None) -> CoxFit:
    """The Cox model on some columns of a fitted model's design, same rows (the main-effects
    model, a reduced model): its rows are already sorted and centred, so no new sort and no
    gather of rows."""
    cols = np.asarray(cols, dtype=int)
    return _fit_sorted(base.Xs[:, cols], base.center[cols], base.risk, base.time, base.event,
                       base.strata, base.ties, variance, groups, init, names,
                       loglik_null=base.loglik_null)


def cox_loglik_columns(base: CoxFit, cols, *, init: np.ndarray | None = None) -> float:
    """Maximized partial log-likelihood of the model on some columns of ``base``'s design."""
    cols = np.asarray(cols, dtype=int)
    if not len(cols):
        return base.loglik_null
    try:
        with one_blas_thread():
            return newton(base.risk, base.Xs[:, cols], base.ties, init,
                          need_info=False).ev.loglik
    except np.linalg.LinAlgError as exc:
        raise ModelError(f"the Cox model could not be fitted: {exc}") from None


def _fit_sorted(Xs, center, rs, time, event, strata, ties, variance, groups, init, names,
                loglik_null=None) -> CoxFit:
    try:
        with one_blas_thread():
            nr = newton(rs, Xs, ties, init)
    except np.linalg.LinAlgError as exc:
        raise ModelError(f"the Cox model could not be fitted (singular information matrix: "
                         f"{exc}); check for collinear or constant covariates.") from None
    if len(nr.infinite):
        which = ", ".join(names[j] if names else f"column {j + 1}" for j in nr.infinite)
        warnings.warn(f"Cox model: the log-likelihood converged before {which}; the "
                      "coefficient may be infinite (monotone likelihood).", ConvergenceWarning,
                      stacklevel=2)
    ev = nr.ev
    vmodel = _inverse(ev.info)
    U = score_residuals_sorted(rs, Xs, ev) if variance != "model" else None
    with one_blas_thread():
        vcov, label = _sandwich(vmodel, U, variance, groups, len(time))
    ll_null = (loglik_null if loglik_null is not None else nr.loglik_init if init is None
               else evaluate(rs, Xs[:, :0], np.zeros(0), ties, derivatives=False).loglik)
    return CoxFit(ties=ties, params=nr.beta, vcov=vcov, vcov_model=vmodel, loglik=ev.loglik,
                  loglik_null=ll_null, converged=nr.converged, n=len(time),
                  n_events=int(np.sum(event)), variance=label, center=center, time=time,
                  event=event, Xs=Xs, strata=strata, risk=rs, final=ev,
                  iterations=nr.iterations, message=nr.message)


def _sorted_centred(X, rs: RiskSets) -> tuple[np.ndarray, np.ndarray]:
    """The design's rows in risk-set order, centred at the column means (one copy)."""
    Xs = np.asarray(X, dtype=float)[rs.order]
    center = Xs.mean(axis=0)
    Xs -= center  # a fresh array from the fancy index: never the caller's (pandas) memory
    return Xs, center


def cox_loglik(X, time, event, strata, ties, *, init=None, risk=None) -> float:
    """Maximized partial log-likelihood of a (reduced) Cox model; 0 columns = null model."""
    rs = risk if risk is not None else risk_sets(time, event, strata)
    Xs, _ = _sorted_centred(X, rs)
    if Xs.shape[1] == 0:
        return evaluate(rs, Xs, np.zeros(0), ties, derivatives=False).loglik
    try:
        with one_blas_thread():
            return newton(rs, Xs, ties, init, need_info=False).ev.loglik
    except np.linalg.LinAlgError as exc:
        raise ModelError(f"the Cox model could not be fitted: {exc}") from None


def score_residuals(time, event, X, beta, strata, ties) -> np.ndarray:
    """Per-row score residuals (n x p) as R's ``residuals(coxph, type = "score")``."""
    rs = risk_sets(time, event, strata)
    Xs = np.asarray(X, dtype=float)[rs.order]
    return score_residuals_sorted(rs, Xs, evaluate(rs, Xs, np.asarray(beta, float), ties))


# ----------------------------------------------------------------------------- reference
def fit_cox_phreg(X, time, event, strata, ties, variance="model", groups=None) -> CoxFit:
    """The reference fit: statsmodels ``PHReg`` (Newton, as the package did before issue 21),
    with the robust variance from the per-block reference sums (:func:`event_blocks`)."""
    from statsmodels.duration.hazard_regression import PHReg

    center = X.mean(axis=0)
    Xc = X - center
    model = PHReg(time, Xc, status=event, strata=strata, ties=ties)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = model.fit(method="newton", maxiter=200)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(f"the Cox model could not be fitted: {exc}") from None
    params = np.asarray(res.params, dtype=float)
    vmodel = np.asarray(res.cov_params(), dtype=float)
    converged = bool(np.all(np.isfinite(params))) and not any(
        "converge" in str(w.message).lower() for w in caught)
    U = (reference_score_residuals(time, event, Xc, params, strata, ties)
         if variance != "model" else None)
    vcov, label = _sandwich(vmodel, U, variance, groups, len(time))
    null = PHReg(time, np.zeros((len(time), 1)), status=event, strata=strata, ties=ties)
    rs = risk_sets(time, event, strata)
    return CoxFit(ties=ties, params=params, vcov=vcov, vcov_model=vmodel, loglik=float(res.llf),
                  loglik_null=float(null.loglike(np.zeros(1))), converged=converged, n=len(time),
                  n_events=int(event.sum()), variance=label, center=center, time=time,
                  event=event, Xs=Xc[rs.order], strata=strata, risk=rs)


# ----------------------------------------------------------------------------- baseline hazard
@dataclass(frozen=True)
class BaselineAt:
    """Breslow cumulative baseline hazard per stratum at one time (centred covariates)."""

    cumhaz: np.ndarray  # (S,)
    dcumhaz: np.ndarray  # (S, p): d cumhaz / d beta
    varhaz: np.ndarray  # (S,): martingale variance sum d_k / S0_k^2


def breslow_at(fit: CoxFit, t: float, n_strata: int) -> BaselineAt:
    """Breslow (``ctype = 1``) cumulative baseline hazard at ``t`` with its beta-derivative and
    martingale variance, as used by ``survfit.coxph``."""
    rs, _, ev = fit.evaluation()
    use = rs.time <= t
    s = rs.stratum[use].astype(int)
    h = rs.deaths[use] / ev.S0[use]
    h2 = h / ev.S0[use]
    ch = np.bincount(s, weights=h, minlength=n_strata)
    vh = np.bincount(s, weights=h2, minlength=n_strata)
    S1 = ev.S1[use]
    dch = -np.column_stack([np.bincount(s, weights=h2 * S1[:, j], minlength=n_strata)
                            for j in range(S1.shape[1])]) if S1.shape[1] else np.zeros(
        (n_strata, 0))
    return BaselineAt(ch, dch, vh)


@dataclass(frozen=True)
class SurvivalAtHorizon:
    """A model-like view for the contrast engine: predicted survival at one horizon.

    Parameters are ``(beta, log H_1(t), ..., log H_S(t))`` and design rows ``(x - center,
    stratum indicators)``, so ``S_i(t) = exp(-exp(eta_i))``. Its covariance carries both sources
    of uncertainty: ``Cov(b, log H_s) = V dH_s / H_s`` and ``Var(log H_s) = (dH_s' V dH_s +
    varhaz_s) / H_s^2`` (the martingale part is independent of ``b``, Tsiatis 1981).
    """

    params: np.ndarray
    vcov: np.ndarray
    link: str = "cloglog-survival"

    @staticmethod
    def inverse_link(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.exp(eta)
        s = np.exp(-h)
        return s, -h * s


_NO_HAZARD = -1e4  # log H for a stratum with no event before t: S = 1 with zero derivative


def survival_at(fit: CoxFit, t: float, n_strata: int) -> SurvivalAtHorizon:
    base = breslow_at(fit, t, n_strata)
    V = fit.vcov
    p = len(fit.params)
    pos = base.cumhaz > 0
    logH = np.where(pos, np.log(np.where(pos, base.cumhaz, 1.0)), _NO_HAZARD)
    G = np.zeros((n_strata, p))
    G[pos] = base.dcumhaz[pos] / base.cumhaz[pos, None]
    mart = np.zeros(n_strata)
    mart[pos] = base.varhaz[pos] / base.cumhaz[pos] ** 2
    cov = np.zeros((p + n_strata, p + n_strata))
    cov[:p, :p] = V
    cov[:p, p:] = V @ G.T
    cov[p:, :p] = G @ V
    cov[p:, p:] = G @ V @ G.T + np.diag(mart)
    return SurvivalAtHorizon(np.concatenate([fit.params, logH]), cov)


def survival_design(X: np.ndarray, center: np.ndarray, strata: np.ndarray, n_strata: int,
                    cols: np.ndarray | None = None):
    """Design rows of :class:`SurvivalAtHorizon`: centred covariates (``X[:, cols]``) and
    stratum indicators, written into one new array."""
    p = len(center)
    Z = np.zeros((X.shape[0], p + n_strata))
    Z[:, :p] = X if cols is None else X[:, cols]
    Z[:, :p] -= center
    Z[np.arange(X.shape[0]), p + np.asarray(strata)] = 1.0
    return Z


# ----------------------------------------------------------------------------- cox.zph
def _km_left(time, event) -> np.ndarray:
    """1 - KM(t-) at each row's time, pooled over strata (``cox.zph``'s "km" transform)."""
    ut, surv = kaplan_meier(time, event)[:2]
    idx = np.searchsorted(ut, time, side="left")  # number of curve times < t
    return 1.0 - np.concatenate([[1.0], surv])[idx]


def _km_left_at_events(rs: RiskSets, time, event) -> np.ndarray:
    """``1 - KM(t_k-)`` of all patients pooled at each event block's time, centred at its mean
    over the deaths. One stratum: from the sorted risk sets (no new sort)."""
    if len(rs.bounds) == 2:
        at_risk = rs.n - rs.start
        km_after = np.cumprod(1.0 - rs.deaths / at_risk)
        g = 1.0 - np.concatenate([[1.0], km_after[:-1]])
    else:
        g = _km_left(time, event)[rs.order][rs.start]
    return g - np.sum(rs.deaths * g) / np.sum(rs.deaths)


def zph_test(fit: CoxFit, terms: dict[str, np.ndarray]) -> list[dict]:
    """Score tests of proportional hazards per term and global, as ``cox.zph(fit,
    transform = "km", terms = TRUE)`` in survival >= 3.0.

    ``terms`` maps a term label to its column indices in the Cox design. The score and the
    information blocks come from the fit's sorted risk sets: ``u = sum_k g_k (sum of x over the
    deaths - sum_j xbar_kj)`` and ``sum_kj g_k^m M_kj`` (m = 0, 1, 2) as block-weighted
    information matrices.
    """
    from scipy import stats

    rs, Xs, ev = fit.evaluation()
    g = _km_left_at_events(rs, fit.time, fit.event)  # g is a function of the event time
    p = Xs.shape[1]
    xdeath = np.add.reduceat(Xs[rs.dead_rows], rs.dstart, axis=0)
    u = g @ (xdeath - mean_at_deaths(rs, ev))
    imat = np.zeros((2 * p, 2 * p))
    imat[:p, :p] = ev.info
    with one_blas_thread():
        imat[:p, p:] = weighted_information(rs, Xs, ev, g)
        imat[p:, p:] = weighted_information(rs, Xs, ev, g * g)
    imat[p:, :p] = imat[:p, p:].T
    out = []
    for name, jj in list(terms.items()) + [("GLOBAL", np.arange(p))]:
        kk = np.concatenate([np.arange(p), p + np.asarray(jj)])
        uu = np.concatenate([np.zeros(p), u[jj]])
        try:
            stat = float(uu @ np.linalg.solve(imat[np.ix_(kk, kk)], uu))
        except np.linalg.LinAlgError:  # e.g. every event at one time: no test of PH
            stat = np.nan
        df = len(jj)
        out.append({"term": name, "statistic": stat, "df": df,
                    "p_value": float(stats.chi2.sf(stat, df))})
    return out


# ----------------------------------------------------------------------------- Kaplan–Meier
def kaplan_meier(time, event, presorted: bool = False):
    """Distinct times, survival just after each, numbers at risk and events (all times).
    ``presorted``: the times are already in increasing order (no sort)."""
    if presorted:
        time = np.asarray(time)
        new = np.concatenate([[True], time[1:] != time[:-1]]) if len(time) else time > 0
        ut, inv = time[new], np.cumsum(new) - 1
    else:
        ut, inv = np.unique(time, return_inverse=True)
    d = np.bincount(inv, weights=event, minlength=len(ut))
    c = np.bincount(inv, minlength=len(ut))
    n_risk = len(time) - np.concatenate([[0], np.cumsum(c)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / n_risk)
    return ut, surv, n_risk, d


def rmst(time, event, tau: float, presorted: bool = False) -> tuple[float, float]:
    """Restricted mean survival time up to ``tau`` and its variance,
    ``sum_{t_k <= tau} A_k^2 d_k / (n_k (n_k - d_k))`` with ``A_k`` the area under the KM curve
    from ``t_k`` to ``tau`` (Greenwood-type; as ``print(survfit(...), rmean = tau)``)."""
    ut, surv, n_risk, d = kaplan_meier(time, event, presorted)
    keep = (ut <= tau) & (d > 0)
    t, s, n, dd = ut[keep], surv[keep], n_risk[keep], d[keep]
    edges = np.concatenate([[0.0], t, [tau]])
    heights = np.concatenate([[1.0], s])
    areas = np.diff(edges) * heights  # area of each step
    mean = float(areas.sum())
    tail = np.cumsum(areas[::-1])[::-1][1:]  # A_k: area from t_k to tau
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n - dd > 0, dd / (n * (n - dd)), 0.0)
    return mean, float(np.sum(tail**2 * w))


# ----------------------------------------------------------------------------- data
def check_outcome(frame: pd.DataFrame, time_col: str, event_col: str):
    """Times as floats (>= 0) and events as 0/1 floats, or a :class:`DataError` naming the
    column and the offending values."""
    time = frame[time_col].to_numpy(dtype=float)
    if (time < 0).any():
        raise DataError(f"time column {time_col!r} has {int((time < 0).sum())} negative "
                        f"value(s) (first at analysed row {int(np.flatnonzero(time < 0)[0])}); "
                        "follow-up times must be >= 0.")
    ev = frame[event_col]
    if pd.api.types.is_bool_dtype(ev):
        ev = ev.astype(int)
    v = pd.to_numeric(ev, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        shown = sorted({str(x) for x in frame[event_col][bad]})[:5]
        raise DataError(f"event column {event_col!r} must be 0/1 (1 = event, 0 = censored); "
                        f"{int(bad.sum())} row(s) have other values, e.g. {shown}. Recode "
                        "competing or multi-state outcomes to one event type.")
    return time, v


def check_follow_up(name, values, subs, t, time) -> dict:
    """Every horizon (or tau) must be within the follow-up of both arms of all patients (else
    an error). A subgroup arm followed for less is returned, ``{(name, value): {(modifier,
    level): reason}}``: its absolute effects at that time are marked not estimable (the
    Kaplan-Meier curve ends before it; a Cox prediction there would rest on other patients'
    follow-up only)."""
    out: dict = {}
    cells = [(None, "all patients", np.ones(len(t), dtype=bool))] + [
        ((s.modifier, s.level), f"{s.modifier}={s.level}", s.rows) for s in subs]
    for v in values:
        for key, where, rows in cells:
            for arm, lab in ((1, "treated"), (0, "control")):
                m = rows & (t == arm)
                if not m.any():  # an arm without patients: flagged where its effects are
                    continue
                last = float(time[m].max())
                if v <= last:
                    continue
                why = (f"{name}={v:g} is beyond the follow-up of the {lab} arm of {where} "
                       f"(last observed time {last:g})")
                if key is None:
                    raise DataError(f"{why}; choose {name} within the follow-up of both arms.")
                out.setdefault((name, v), {}).setdefault(key, why)
    return out


def arm_counts(subs, t, time, event) -> dict:
    """n, events and person-time per arm, overall (key None) and per subgroup."""
    out = {}
    masks = [(None, np.ones_like(t, dtype=bool))] + [((s.modifier, s.level), s.rows) for s in subs]
    for key, rows in masks:
        r1, r0 = rows & (t == 1), rows & (t == 0)
        out[key] = {"n": int(rows.sum()), "n_treated": int(r1.sum()),
                    "n_control": int(r0.sum()), "events_treated": float(event[r1].sum()),
                    "events_control": float(event[r0].sum()),
                    "exposure_treated": float(time[r1].sum()),
                    "exposure_control": float(time[r0].sum())}
    return out


def sparse_subgroups(subs, counts) -> dict:
    """Subgroups with no event in an arm: their effects are not estimable."""
    out = {}
    for s in subs:
        c = counts[(s.modifier, s.level)]
        for arm in ("treated", "control"):
            if c[f"events_{arm}"] == 0:
                out[(s.modifier, s.level)] = f"no events in the {arm} arm"
    return out
