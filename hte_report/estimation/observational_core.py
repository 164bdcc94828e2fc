"""Design matrices, nuisance fits and the stacked estimating equations of
:mod:`hte_report.estimation.observational`.

The stacked system for one analysis, with ``theta = (gamma, beta, mu)``:

* propensity score (logistic, ``e = expit(X gamma)``): ``X (A - e)``;
* outcome model (canonical link: logistic for binary, identity for continuous, ``m = h(Z
  beta)``): ``Z (Y - m)``; ``m1, m0`` are its predictions at ``A = 1, 0`` (matrices ``Z1,
  Z0`` from the same formula), ``v = h'(.)``;
* per level ``g`` (indicator ``I``) and arm, one mean per estimator:
  gcomp ``I (m1 - mu1)``; ipw ``I A / e (Y - mu1)``, ``I (1 - A) / (1 - e) (Y - mu0)``;
  overlap ``I A (1 - e) (Y - mu1)``, ``I (1 - A) e (Y - mu0)``;
  aipw ``I (m1 + A / e (Y - m1) - mu1)``, ``I (m0 + (1 - A) / (1 - e) (Y - m0) - mu0)``.

The sandwich is ``J^-1 B J^-T`` with ``J = sum_i d psi_i / d theta`` in closed form and ``B =
sum_i psi_i psi_i'`` (or the sum over clusters of the outer products of the cluster sums).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from formulaic import Formula, model_matrix

from ..errors import DataError, FormulaError, ModelError, ModelWarning, short
from ..spec.formula import quote_name


@dataclass
class Design:
    rows: np.ndarray          # positions (in the input frame) of the analysed rows
    a: np.ndarray
    y: np.ndarray
    groups: np.ndarray        # level of each analysed row (all "All patients" overall)
    levels: list              # every level, in order (also those not estimable)
    counts: dict              # level -> (n, n_treated, n_control) over complete cases
    ps_X: np.ndarray
    ps_names: list
    ps_formula: str
    out_X: np.ndarray
    out_X1: np.ndarray
    out_X0: np.ndarray
    out_names: list
    outcome_formula: str
    cluster: np.ndarray | None
    missing: dict | None = None  # variable -> rows excluded for its missing values


def _required(rhs: str) -> set[str]:
    try:
        return set(Formula(rhs).required_variables)
    except Exception as exc:  # noqa: BLE001 - formulaic's parser errors vary
        raise FormulaError(f"cannot parse formula terms {short(rhs)}: {exc}") from None


def _matrix(rhs: str, data: pd.DataFrame, what: str):
    try:
        mm = model_matrix(rhs, data, na_action="raise")
    except Exception as exc:  # noqa: BLE001
        raise FormulaError(f"cannot build the {what} design from {short(rhs)}: {exc}") from None
    X = np.asarray(mm, dtype=float)
    if np.linalg.matrix_rank(X.T @ X) < X.shape[1]:
        raise ModelError(f"the {what} design {short(rhs)} is collinear on the analysed rows "
                         f"(columns {short(list(mm.columns))}).")
    return mm, X


def build_designs(df: pd.DataFrame, outcome: str, treatment: str, ps_rhs: str, adj: list[str],
                  mod: str | None, cluster: str | None, keep: np.ndarray | None = None) -> Design:
    """The complete-case rows of one analysis (overall when ``mod`` is None) and its designs.
    Rows in a level where an arm is empty are counted but left out of the models."""
    ps_vars = _required(ps_rhs)
    t = quote_name(treatment)
    adj_terms = list(adj)
    if mod is not None:
        qm = quote_name(mod)
        if mod not in ps_vars:
            ps_rhs = f"{ps_rhs} + C({qm})"
        # a confounder that is the modifier itself is absorbed by C(m) in the outcome model
        adj_terms = [x for x in adj_terms if x not in (mod, qm, f"C({qm})", f"C({mod})")]
        out_rhs = f"{t} * C({qm})" + "".join(f" + {x}" for x in adj_terms)
    else:
        out_rhs = t + "".join(f" + {x}" for x in adj_terms)
    needed = {outcome, treatment} | _required(ps_rhs) | _required(out_rhs)
    needed |= {mod} if mod else set()
    needed |= {cluster} if cluster else set()
    missing = sorted(v for v in needed if v not in df.columns)
    if missing:
        raise DataError(f"columns {short(missing)} used by the formulas are not in the data.")
    sub = df[sorted(needed)]
    isna = sub.isna()
    missing = {c: int(n) for c, n in isna.sum().items() if n}
    ok = ~isna.any(axis=1).to_numpy()
    if not ok.any():
        raise DataError(f"every one of the {len(df)} rows misses a value in a variable of the "
                        f"analysis of {mod or 'all patients'} (missing per variable: "
                        f"{short(missing, 200)}); check the coding of missing values.")
    if keep is not None:
        ok = ok & keep       # a new array: pandas 3 hands out read-only views
    pos = np.flatnonzero(ok)
    sub = sub.iloc[pos].reset_index(drop=True)
    a = pd.to_numeric(sub[treatment], errors="coerce").to_numpy(dtype=float)
    if np.isnan(a).any() or not set(np.unique(a)) <= {0.0, 1.0}:
        raise DataError(f"treatment {treatment!r} must be coded 0/1.")
    sub = sub.assign(**{treatment: a})
    y = pd.to_numeric(sub[outcome], errors="coerce").to_numpy(dtype=float)
    if np.isnan(y).any():
        raise DataError(f"outcome {outcome!r} must be numeric.")
    if mod is None:
        groups = np.full(len(sub), "All patients", dtype=object)
    else:
        groups = sub[mod].to_numpy()
    levels = list(pd.unique(groups))
    if mod is not None and len(levels) == 1:
        raise DataError(f"modifier {mod!r} is constant (every analysed row has {mod} = "
                        f"{short(levels[0], 40)}): it cannot modify the treatment effect. "
                        "Remove it from modifiers.")
    try:
        levels = sorted(levels)
    except TypeError:
        pass
    counts = {lv: (int((groups == lv).sum()), int(a[groups == lv].sum()),
                   int((1 - a[groups == lv]).sum())) for lv in levels}
    est = np.array([counts[g][1] > 0 and counts[g][2] > 0 for g in groups], dtype=bool)
    if est.sum() == 0 or len(np.unique(a[est])) < 2:
        raise DataError("no rows with both arms observed in the analysis of "
                        f"{mod or 'all patients'}.")
    sub = sub.loc[est].reset_index(drop=True)
    pos, a, y, groups = pos[est], a[est], y[est], groups[est]
    ps_mm, ps_X = _matrix(ps_rhs, sub, "propensity")
    out_mm, out_X = _matrix(out_rhs, sub, "outcome")
    spec = out_mm.model_spec
    X1 = np.asarray(spec.get_model_matrix(sub.assign(**{treatment: 1.0})), dtype=float)
    X0 = np.asarray(spec.get_model_matrix(sub.assign(**{treatment: 0.0})), dtype=float)
    cl = sub[cluster].to_numpy() if cluster else None
    return Design(rows=pos, a=a, y=y, groups=groups, levels=levels, counts=counts,
                  ps_X=ps_X, ps_names=list(ps_mm.columns), ps_formula=f"{t} ~ {ps_rhs.strip()}",
                  out_X=out_X, out_X1=X1, out_X0=X0, out_names=list(out_mm.columns),
                  outcome_formula=f"{quote_name(outcome)} ~ {out_rhs}", cluster=cl,
                  missing=missing)


def _glm(y, X, fam, what):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            res = sm.GLM(y, X, family=fam).fit(tol=1e-12, maxiter=200)
        except Exception as exc:  # noqa: BLE001 - statsmodels' separation/LinAlg errors
            raise ModelError(f"the {what} model could not be fitted: {exc}") from None
    if not res.converged:
        raise ModelError(f"the {what} model did not converge.")
    return res


def fit_logistic(X: np.ndarray, a: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    res = _glm(a, X, sm.families.Binomial(), what)
    with np.errstate(all="ignore"):
        e = np.asarray(res.fittedvalues, dtype=float)
    if (e < 1e-8).any() or (e > 1 - 1e-8).any():
        raise ModelError(f"the {what} model separates the arms (fitted probabilities of 0 or "
                         "1): positivity is violated; trim, or change the model.")
    return np.asarray(res.params, dtype=float), e


@dataclass
class OutcomeFit:
    beta: np.ndarray
    m: np.ndarray
    m1: np.ndarray
    m0: np.ndarray
    v: np.ndarray
    v1: np.ndarray
    v0: np.ndarray


def fit_outcome(d: Design, family: str) -> OutcomeFit:
    if family == "binary":
        res = _glm(d.y, d.out_X, sm.families.Binomial(), "outcome")
        b = np.asarray(res.params, dtype=float)

        def h(X):
            return 1 / (1 + np.exp(-(X @ b)))

        m, m1, m0 = h(d.out_X), h(d.out_X1), h(d.out_X0)
        edge = (m < 1e-8) | (m > 1 - 1e-8)
        if edge.any():
            warnings.warn(f"the outcome model {d.outcome_formula} has fitted probabilities of "
                          f"0 or 1 for {int(edge.sum())} of {len(m)} rows (usually "
                          "quasi-separation: a cell where every patient had, or none had, the "
                          "event); "
                          "g-computation and AIPW risks there are at the boundary, and ratio "
                          "scales with a counterfactual risk of 0 or 1 are not estimable.",
                          ModelWarning, stacklevel=3)
        return OutcomeFit(b, m, m1, m0, m * (1 - m), m1 * (1 - m1), m0 * (1 - m0))
    b = np.linalg.lstsq(d.out_X, d.y, rcond=None)[0]
    one = np.ones(len(d.y))
    return OutcomeFit(b, d.out_X @ b, d.out_X1 @ b, d.out_X0 @ b, one, one, one)


class Means:
    """Positions of the counterfactual means in theta."""

    def __init__(self, keys: list, offset: int, values: np.ndarray):
        self.keys, self.offset, self.values = keys, offset, values
        self._pos = {k: offset + i for i, k in enumerate(keys)}

    def index(self, key) -> int:
        return self._pos[key]


def stacked_sandwich(d: Design, family: str, gamma: np.ndarray, e: np.ndarray,
                     out: OutcomeFit | None, levels: list, estimators) -> tuple[Means, np.ndarray]:
    """Solve the mean equations and return (means, sandwich covariance of theta)."""
    a, y, X = d.a, d.y, d.ps_X
    n, p = X.shape
    use_out = out is not None and any(k in ("gcomp", "aipw") for k in estimators)
    q = d.out_X.shape[1] if use_out else 0
    keys = [(k, lv, arm) for k in estimators for lv in levels for arm in (1, 0)]
    P = p + q + len(keys)
    psi = np.zeros((n, P))
    J = np.zeros((P, P))
    psi[:, :p] = X * (a - e)[:, None]
    J[:p, :p] = -(X * (e * (1 - e))[:, None]).T @ X
    if use_out:
        Z = d.out_X
        psi[:, p:p + q] = Z * (y - out.m)[:, None]
        J[p:p + q, p:p + q] = -(Z * out.v[:, None]).T @ Z
    inv_e, inv_1e = 1 / e, 1 / (1 - e)
    dinv_e = -(1 - e) / e          # d(1/e)/d(eta) = -(1 - e) / e
    dinv_1e = e / (1 - e)          # d(1/(1 - e))/d(eta) = e / (1 - e)
    mu = np.zeros(len(keys))
    for j, (k, lv, arm) in enumerate(keys):
        r = p + q + j
        ind = (d.groups == lv).astype(float)
        if k == "gcomp":
            mk = out.m1 if arm else out.m0
            mu[j] = mk[ind == 1].mean()
            psi[:, r] = ind * (mk - mu[j])
            J[r, r] = -ind.sum()
            vk, Zk = (out.v1, d.out_X1) if arm else (out.v0, d.out_X0)
            J[r, p:p + q] = (ind * vk) @ Zk
        elif k == "ipw":
            w = a * inv_e if arm else (1 - a) * inv_1e
            mu[j] = (ind * w * y).sum() / (ind * w).sum()
            psi[:, r] = ind * w * (y - mu[j])
            J[r, r] = -(ind * w).sum()
            dw = a * dinv_e if arm else (1 - a) * dinv_1e
            J[r, :p] = (ind * dw * (y - mu[j])) @ X
        elif k == "overlap":  # weights 1 - e (treated), e (control)
            w = a * (1 - e) if arm else (1 - a) * e
            mu[j] = (ind * w * y).sum() / (ind * w).sum()
            psi[:, r] = ind * w * (y - mu[j])
            J[r, r] = -(ind * w).sum()
            dw = -a * e * (1 - e) if arm else (1 - a) * e * (1 - e)
            J[r, :p] = (ind * dw * (y - mu[j])) @ X
        else:  # aipw
            mk, vk, Zk = (out.m1, out.v1, d.out_X1) if arm else (out.m0, out.v0, d.out_X0)
            w = a * inv_e if arm else (1 - a) * inv_1e
            dw = a * dinv_e if arm else (1 - a) * dinv_1e
            u = mk + w * (y - mk)
            mu[j] = u[ind == 1].mean()
            psi[:, r] = ind * (u - mu[j])
            J[r, r] = -ind.sum()
            J[r, :p] = (ind * dw * (y - mk)) @ X
            J[r, p:p + q] = (ind * (1 - w) * vk) @ Zk
    if d.cluster is not None:
        codes = pd.factorize(d.cluster)[0]
        S = np.zeros((codes.max() + 1, P))
        np.add.at(S, codes, psi)
        B = S.T @ S
    else:
        B = psi.T @ psi
    try:
        Jinv = np.linalg.inv(J)
    except np.linalg.LinAlgError:
        raise ModelError("the stacked estimating equations are singular.") from None
    cov = Jinv @ B @ Jinv.T
    theta = np.concatenate([gamma, out.beta if use_out else [], mu])
    return Means(keys, p + q, theta), cov


def crump_alpha(e: np.ndarray) -> float:
    """Crump, Hotz, Imbens & Mitnik (2009) optimal trimming bound: 0 when ``max h <= 2 mean h``
    (``h = 1 / (e (1 - e))``), else ``1/2 - sqrt(1/4 - 1/gamma)`` with ``gamma = 2 E[h | h <=
    gamma]`` (solved over the sorted ``h``)."""
    h = np.sort(1 / (e * (1 - e)))
    if h[-1] <= 2 * h.mean():
        return 0.0
    c = 2 * np.cumsum(h) / np.arange(1, len(h) + 1)
    k = np.flatnonzero((h <= c) & (np.append(h[1:], np.inf) > c))
    gamma = float(c[k[0]]) if len(k) else float(c[-1])
    return float(0.5 - np.sqrt(max(0.25 - 1 / gamma, 0.0)))
