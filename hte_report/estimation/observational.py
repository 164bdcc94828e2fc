"""Standardized (marginal) treatment effects from observational data, overall and per subgroup.

Three estimators of the counterfactual means ``mu1 = E[Y(1) | G = g]`` and ``mu0 = E[Y(0) | G =
g]`` within each level ``g`` of a subgroup variable, under consistency, conditional exchangeability
given the named confounders, and positivity:

* ``gcomp`` — outcome regression (g-computation): the mean over the level's rows of the outcome
  model's predictions with everyone treated / untreated. The outcome model is the package's
  one-at-a-time model ``y ~ treat * C(m) + confounders`` (``y ~ treat + confounders`` overall);
  logistic for a binary outcome, linear for a continuous one.
* ``ipw`` — inverse probability weighting, Hájek (ratio) form, stabilized weights
  ``P(A=a) / P(A=a | X)``. Within a level the Hájek mean with stabilized weights equals the one
  with unstabilized weights (the stabilizing constant cancels), so only the reported weights
  (and their effective sample size) change.
* ``aipw`` — augmented IPW (doubly robust): ``mean_g[m1(X) + A (Y - m1(X)) / e(X)]`` and
  ``mean_g[m0(X) + (1 - A) (Y - m0(X)) / (1 - e(X))]``; consistent if either the propensity
  model or the outcome model is correct.

The propensity score ``e(X)`` is a logistic model ``treat ~ confounders`` (plus ``C(m)`` in a
subgroup analysis), or a given formula. Standard errors come from one stacked system of
estimating equations per analysis — the propensity score's score equations, the outcome model's
score equations and the two means per level and estimator — with the empirical sandwich
``A^-1 B A^-T`` (closed-form Jacobian ``A``, no small-sample factor), so they account for the
estimated propensity score and outcome model; with ``cluster=`` the meat ``B`` sums the
estimating functions within clusters first. RD, RR, OR (binary) and MD (continuous) follow by
the delta method (ratio scales on the log scale).

Positivity is checked in every level (:func:`positivity_table`): a level where an arm is empty,
or where at least ``max_outside`` of the rows have a propensity score outside ``[threshold, 1 -
threshold]``, is *violated* and none of its estimates is reported (they are NaN with a note).
Optional trimming (``trim="crump"``, Crump et al. 2009, or a number ``alpha``) keeps the rows
with ``alpha <= e <= 1 - alpha`` and refits every model on them; the trimmed rows are counted
per level. The trimming step itself is treated as fixed in the standard errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import (
    DataError,
    DataWarning,
    FormulaError,
    MissingDataWarning,
    ModelError,
    short,
)
from ..models.fast import blas_single_threaded
from ..spec.formula import check_formula_safety, quote_name
from ..spec.options import check_conf_level, checked_arguments
from .evalues import add_e_values, e_value, e_value_ci
from .observational_core import (
    Design,
    build_designs,
    crump_alpha,
    fit_logistic,
    fit_outcome,
    stacked_sandwich,
)

ESTIMATORS = ("gcomp", "ipw", "aipw")
ALLOWED = ESTIMATORS + ("overlap",)
ESTIMATOR_LABELS = {
    "overlap": "overlap weights (ATO)",
    "gcomp": "g-computation (outcome regression)",
    "ipw": "IPW (Hájek, stabilized weights)",
    "aipw": "AIPW (doubly robust)",
}
OVERALL = "All patients"


@dataclass(frozen=True)
class ObservationalResult:
    """Estimates, positivity diagnostics and balance of an observational analysis.

    ``effects``: one row per estimator x modifier x level x scale (``estimator, modifier, level,
    scale, estimate, std_error, conf_low, conf_high, statistic, p_value, mu1, mu0, n,
    n_treated, n_control, n_trimmed, positivity, note, ps_formula, outcome_formula, e_value,
    e_value_ci``); ratio-scale ``std_error`` is that of the log ratio; E-values as
    :mod:`~hte_report.estimation.evalues`. ``heterogeneity``: Wald tests of equal
    effects across a modifier's levels per estimator and scale. ``positivity``: one row per
    modifier x level. ``balance``: standardized mean differences of each propensity-model
    column before and after weighting. ``scores``: the propensity score of every analysed row
    per analysis (for the overlap figures). ``interactions``: each level against the first
    estimable level, per estimator and scale — difference of RDs / MDs, ratio of RRs / ORs —
    with the E-value of the ratio of RRs.
    """

    effects: pd.DataFrame
    heterogeneity: pd.DataFrame
    positivity: pd.DataFrame
    balance: pd.DataFrame
    scores: pd.DataFrame
    interactions: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict = field(default_factory=dict)


def _as_frame(data: object) -> pd.DataFrame:
    """A pandas frame from a pandas or polars frame (or a data file), with unique column
    names."""
    from hte_report.data.prepare import read_data

    return read_data(data)


def _check_values(df: pd.DataFrame, columns: list[str], terms: list[str]) -> None:
    """Columns a model cannot use (dates, infinite numbers) and constant modifiers, named
    before any model is built."""
    from hte_report.data.prepare import _check_usable

    used = list(dict.fromkeys(c for c in columns if c in df.columns))
    used += [t.strip("`") for t in terms if t.strip("`") in df.columns and t.strip("`") not in used]
    _check_usable(df, used)
    for c in used:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            bad = np.isinf(s.to_numpy(dtype=float, na_value=np.nan))
            if bad.any():
                raise DataError(f"column {c!r} has {int(bad.sum())} infinite value(s) (first at "
                                f"row {int(np.flatnonzero(bad)[0])}); recode them as missing or "
                                "fix them.")


def _check_terms(terms: Sequence[str], role: str, columns: Sequence[str]) -> list[str]:
    if terms is None:
        return []
    if isinstance(terms, str):
        terms = [terms]
    if not isinstance(terms, (list, tuple)):
        raise FormulaError(f"{role} must be a list of column names or formula terms, got "
                           f"{short(terms)}.")
    out = []
    for t in terms:
        if not isinstance(t, str) or not t.strip():
            raise FormulaError(f"{role} must be column names or formula terms, got {short(t)}.")
        t = t.strip()
        out.append(quote_name(t) if t in columns else t)
    return out


@checked_arguments
@blas_single_threaded
def fit_observational(
    data: object,
    *,
    outcome: str,
    treatment: str,
    confounders: Sequence[str],
    modifiers: Sequence[str] = (),
    family: str | None = None,
    estimators: Sequence[str] = ESTIMATORS,
    ps_formula: str | None = None,
    outcome_terms: Sequence[str] | None = None,
    cluster: str | None = None,
    trim: float | str | None = None,
    threshold: float = 0.05,
    max_outside: float = 0.10,
    conf_level: float = 0.95,
) -> ObservationalResult:
    """Standardized effects of a 0/1 ``treatment`` overall and in each level of every modifier.

    Parameters
    ----------
    data
        DataFrame with the outcome, treatment, confounders, modifiers (and cluster).
    outcome
        0/1 outcome (binary: RD, RR, OR) or numeric outcome (continuous: MD).
    treatment
        0/1 treatment column.
    confounders
        Columns or formula terms (``"C(education)"``, ``"I(age**2)"``) adjusted for in the
        propensity and outcome models. An effect modifier may also be a confounder.
    modifiers
        Categorical subgroup variables; each is analysed one at a time.
    family
        ``"binary"`` or ``"continuous"``; inferred (0/1 outcome is binary).
    estimators
        Any of ``"gcomp"``, ``"ipw"``, ``"aipw"``, and ``"overlap"`` (overlap weights, Li,
        Morgan & Zaslavsky 2018: weights ``1 - e`` for the treated and ``e`` for the controls,
        Hájek means; a different estimand, the average effect in the overlap population where
        either treatment is plausible, ATO).
    ps_formula
        Right-hand side of the propensity model (default: the confounders); ``C(m)`` is added
        in the analysis of modifier ``m`` unless the formula already uses ``m``.
    outcome_terms
        Adjustment terms of the outcome model (default: the confounders).
    cluster
        Column of cluster identifiers: cluster-robust sandwich.
    trim
        ``"crump"`` (Crump et al. 2009 optimal alpha) or a number ``alpha`` in ``(0, 0.5)``:
        keep rows with ``alpha <= e <= 1 - alpha`` (estimated on the overall propensity
        model) and refit everything on them.
    threshold, max_outside
        Positivity verdicts: a level is violated if an arm is empty or if a share of at least
        ``max_outside`` of its rows has a propensity score outside ``[threshold, 1 -
        threshold]``; it needs caution if any row does or if an arm's effective sample size is
        under half its size.
    """
    df = _as_frame(data)
    if len(df) == 0:
        raise DataError("the data have no rows.")
    cols = list(df.columns)
    for name, role in ((outcome, "outcome"), (treatment, "treatment")):
        if not isinstance(name, str) or name not in cols:
            raise DataError(f"{role} column {short(name)} is not in the data.")
    if outcome == treatment:
        raise DataError(f"outcome and treatment are the same column {outcome!r}; name the "
                        "outcome and the treatment columns.")
    est = (estimators,) if isinstance(estimators, str) else tuple(estimators)
    bad = [e for e in est if e not in ALLOWED]
    if bad or not est:
        raise DataError(f"estimators must be among {ALLOWED}, got {short(est)}.")
    if not confounders and ps_formula is None:
        raise DataError("an observational analysis needs confounders (or a propensity formula).")
    conf = _check_terms(confounders, "confounders", cols)
    adj = (conf if outcome_terms is None
           else _check_terms(outcome_terms, "outcome_terms", cols))
    mods = [modifiers] if isinstance(modifiers, str) else list(modifiers)
    for m in mods:
        if not isinstance(m, str) or m not in cols:
            raise DataError(f"modifier {short(m)} is not in the data.")
        if m in (outcome, treatment):
            raise DataError(f"modifier {m!r} is the {'outcome' if m == outcome else 'treatment'}"
                            "; an effect modifier is a baseline covariate.")
    for t in conf + adj:
        if t.strip("`") in (outcome, treatment):
            raise DataError(f"confounder {t!r} is the "
                            f"{'outcome' if t.strip('`') == outcome else 'treatment'}; "
                            "confounders are baseline covariates.")
    if cluster is not None and cluster not in cols:
        raise DataError(f"cluster column {short(cluster)} is not in the data.")
    for name, value, lo, hi in (("threshold", threshold, 0, 0.5),
                                ("max_outside", max_outside, 0, 1)):
        if (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
                or not lo < value < hi + (name == "max_outside") * 1e-12):
            raise DataError(f"{name} must be a number in ({lo}, {hi}), got {short(value)}.")
    check_conf_level(conf_level)
    _check_values(df, [outcome, treatment, *mods, *([cluster] if cluster else [])],
                  [*conf, *adj])
    ps_rhs = ps_formula if ps_formula is not None else " + ".join(conf)
    if ps_rhs.count("~"):
        ps_rhs = ps_rhs.split("~", 1)[1]
    for text in (f"{quote_name(treatment)} ~ {ps_rhs}",
                 f"{quote_name(outcome)} ~ " + " + ".join(adj or ["1"])):
        check_formula_safety(text)

    y_all = pd.to_numeric(df[outcome], errors="coerce")
    obs = y_all.dropna().to_numpy(dtype=float)
    if family is None:
        family = "binary" if len(obs) and set(np.unique(obs)) <= {0.0, 1.0} else "continuous"
    if family not in ("binary", "continuous"):
        raise DataError(f"family must be 'binary' or 'continuous', got {short(family)}.")
    if family == "binary" and not set(np.unique(obs)) <= {0.0, 1.0}:
        raise DataError(f"binary outcome {outcome!r} must be coded 0/1.")

    # trimming: on the overall propensity model, complete cases of everything used
    trimmed = np.zeros(len(df), dtype=bool)
    alpha = None
    if trim is not None:
        d0 = build_designs(df, outcome, treatment, ps_rhs, adj, None, cluster)
        e0 = fit_logistic(d0.ps_X, d0.a, "propensity")[1]
        if trim == "crump":
            alpha = crump_alpha(e0)
        elif isinstance(trim, (int, float)) and not isinstance(trim, bool) and 0 < trim < 0.5:
            alpha = float(trim)
        else:
            raise DataError(f"trim must be 'crump' or a number in (0, 0.5), got {short(trim)}.")
        out = (e0 < alpha) | (e0 > 1 - alpha)
        trimmed[d0.rows[out]] = True
    keep = ~trimmed

    z = stats.norm.ppf(0.5 + conf_level / 2)
    eff, het, pos, bal, sc, inter = [], [], [], [], [], []
    sds: dict = {}
    analyses = [(None, OVERALL)] + [(m, m) for m in mods]
    excluded: dict = {}
    for mod, label in analyses:
        d = build_designs(df, outcome, treatment, ps_rhs, adj, mod, cluster, keep=keep)
        if d.missing:
            detail = ", ".join(f"{v}: {n}" for v, n in d.missing.items())
            excluded[label] = dict(d.missing)
            warnings.warn(f"analysis of {label}: rows with missing values excluded ({detail}"
                          f"; {len(d.y)} of {len(df)} rows analysed).", MissingDataWarning,
                          stacklevel=2)
        levels_trimmed = _trimmed_counts(df, mod, trimmed)
        sds[mod or OVERALL] = float(np.std(d.y, ddof=1)) if len(d.y) > 1 else np.nan
        _analyse(d, mod, label, family, est, z, threshold, max_outside, levels_trimmed,
                 eff, het, pos, bal, sc, inter)
    bad = [r for r in pos if r["verdict"] == "violated"]
    if bad:
        warnings.warn("positivity violated (no estimate): " + "; ".join(
            f"{r['modifier']} = {r['level']}: {r['reason']}" for r in bad), DataWarning,
            stacklevel=2)
    meta = {
        "outcome": outcome, "treatment": treatment, "confounders": conf, "outcome_terms": adj,
        "modifiers": mods, "family": family, "estimators": est, "ps_formula": ps_rhs.strip(),
        "cluster": cluster, "trim": trim, "trim_alpha": alpha, "n_trimmed": int(trimmed.sum()),
        "threshold": threshold, "max_outside": max_outside, "conf_level": conf_level,
        "roles": _roles(conf, mods),
        "n_input": len(df), "excluded_missing": excluded,
    }
    return ObservationalResult(
        effects=add_e_values(pd.DataFrame(eff), sds), heterogeneity=pd.DataFrame(het),
        positivity=pd.DataFrame(pos), balance=pd.DataFrame(bal),
        scores=pd.concat(sc, ignore_index=True) if sc else pd.DataFrame(),
        interactions=pd.DataFrame(inter), meta=meta)


def _roles(conf: list[str], mods: list[str]) -> dict[str, str]:
    """Confounders are adjusted for; modifiers are crossed with treatment; some are both."""
    import re

    words = {w for t in conf for w in re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", t)}
    roles = {}
    for m in mods:
        roles[m] = "modifier and confounder" if m in words else "modifier"
    for t in conf:
        roles.setdefault(t, "confounder")
    return roles


def _trimmed_counts(df: pd.DataFrame, mod: str | None, trimmed: np.ndarray) -> dict:
    if mod is None:
        return {OVERALL: int(trimmed.sum())}
    g = df[mod].to_numpy()
    return {lv: int(trimmed[g == lv].sum()) for lv in pd.unique(g[trimmed])}


def positivity_row(e: np.ndarray, a: np.ndarray, threshold: float, max_outside: float) -> dict:
    """Overlap diagnostics of one set of rows: PS range by arm, share outside the threshold,
    effective sample sizes of the (stabilized) weights per arm, and the verdict."""
    t, c = a == 1, a == 0
    n1, n0 = int(t.sum()), int(c.sum())
    out = (e < threshold) | (e > 1 - threshold)
    share = float(out.mean()) if len(e) else np.nan
    w = np.where(a == 1, 1 / e, 1 / (1 - e))

    def ess(mask):
        return float(w[mask].sum() ** 2 / (w[mask] ** 2).sum()) if mask.any() else 0.0

    e1, e0 = ess(t), ess(c)
    if n1 == 0 or n0 == 0:
        verdict, why = "violated", "an arm is empty"
    elif share >= max_outside:
        verdict, why = "violated", (f"{share:.0%} of rows have a propensity score outside "
                                    f"[{threshold:g}, {1 - threshold:g}]")
    elif share > 0 or e1 < n1 / 2 or e0 < n0 / 2:
        verdict = "caution"
        why = (f"{int(out.sum())} rows outside [{threshold:g}, {1 - threshold:g}]" if share > 0
               else "an arm's effective sample size is under half its size")
    else:
        verdict, why = "adequate", ""
    return {
        "n": len(e), "n_treated": n1, "n_control": n0,
        "ps_min_treated": float(e[t].min()) if n1 else np.nan,
        "ps_max_treated": float(e[t].max()) if n1 else np.nan,
        "ps_min_control": float(e[c].min()) if n0 else np.nan,
        "ps_max_control": float(e[c].max()) if n0 else np.nan,
        "share_outside": share, "n_outside": int(out.sum()),
        "ess_treated": e1, "ess_control": e0, "verdict": verdict, "reason": why,
    }


def smd_rows(X: np.ndarray, names: list[str], a: np.ndarray, e: np.ndarray) -> list[dict]:
    """Standardized mean differences of each column, unweighted and with the (stabilized)
    IPW weights; both divide by the unweighted pooled SD sqrt((s1^2 + s0^2) / 2)."""
    t, c = a == 1, a == 0
    w = np.where(t, a.mean() / e, (1 - a.mean()) / (1 - e))
    rows = []
    for j, name in enumerate(names):
        x = X[:, j]
        if not t.any() or not c.any():
            continue
        s = (np.sqrt((x[t].var(ddof=1) + x[c].var(ddof=1)) / 2)
             if t.sum() > 1 and c.sum() > 1 else 0.0)
        if not s > 0:  # constant within these rows (e.g. the level's own indicator)
            continue
        d_un = x[t].mean() - x[c].mean()
        d_w = np.average(x[t], weights=w[t]) - np.average(x[c], weights=w[c])
        rows.append({"term": name, "smd_unweighted": d_un / s, "smd_weighted": d_w / s})
    return rows


def _analyse(d: Design, mod, label, family, est, z, threshold, max_outside, levels_trimmed,
             eff, het, pos, bal, sc, inter) -> None:
    a = d.a
    gvals = d.groups
    levels = list(d.levels)
    ok = [lv for lv in levels if (gvals == lv).any()]
    gamma, e = fit_logistic(d.ps_X, a, "propensity")
    out = fit_outcome(d, family) if any(k in ("gcomp", "aipw") for k in est) else None
    sc.append(pd.DataFrame({"analysis": label, "modifier": mod or OVERALL,
                            "level": gvals if mod else OVERALL, "treated": a, "ps": e}))
    verdicts = {}
    for lv in levels:
        mask = gvals == lv
        if lv in ok:
            r = positivity_row(e[mask], a[mask], threshold, max_outside)
        else:  # an arm is empty: the level is left out of the models
            n, n1, n0 = d.counts[lv]
            r = positivity_row(np.full(n, 0.5), np.r_[np.ones(n1), np.zeros(n0)], threshold,
                               max_outside)
            r.update(ps_min_treated=np.nan, ps_max_treated=np.nan, ps_min_control=np.nan,
                     ps_max_control=np.nan, share_outside=np.nan, n_outside=0,
                     ess_treated=np.nan, ess_control=np.nan)
        verdicts[lv] = r
        pos.append({"modifier": mod or OVERALL, "level": _lv(lv, mod),
                    "n_trimmed": levels_trimmed.get(lv if mod else OVERALL, 0), **r})
        if lv not in ok:
            continue
        for b in smd_rows(d.ps_X[mask], d.ps_names, a[mask], e[mask]):
            if b["term"] == "Intercept" or (mod is not None and b["term"].startswith("C(")
                                            and mod in b["term"].split("[")[0]):
                continue
            bal.append({"modifier": mod or OVERALL, "level": _lv(lv, mod), **b})

    mu, cov = stacked_sandwich(d, family, gamma, e, out, ok, est)
    scales = ("RD", "RR", "OR") if family == "binary" else ("MD",)
    for k in est:
        per_scale = {s: [] for s in scales}
        for lv in levels:
            r = verdicts[lv]
            base = {"estimator": k, "modifier": mod or OVERALL, "level": _lv(lv, mod),
                    "n": r["n"], "n_treated": r["n_treated"], "n_control": r["n_control"],
                    "n_trimmed": levels_trimmed.get(lv if mod else OVERALL, 0),
                    "positivity": r["verdict"], "ps_formula": d.ps_formula,
                    "outcome_formula": d.outcome_formula}
            estimable = lv in ok and r["verdict"] != "violated"
            note = "" if estimable else f"not estimable: positivity violated ({r['reason']})"
            for s in scales:
                row = dict(base, scale=s, note=note)
                estimable_s = estimable
                if estimable:
                    i1, i0 = mu.index((k, lv, 1)), mu.index((k, lv, 0))
                    th = np.array([mu.values[i1], mu.values[i0]])
                    V = cov[np.ix_([i1, i0], [i1, i0])]
                    try:
                        val, grad = _scale(s, th)
                    except ModelError as exc:
                        row.update(note=f"not estimable: {exc}")
                        estimable_s = False
                if estimable_s:
                    se = float(np.sqrt(grad @ V @ grad))
                    ratio = s in ("RR", "OR")
                    stat = val / se if se > 0 else np.nan
                    lo, hi = val - z * se, val + z * se
                    row.update(mu1=th[0], mu0=th[1], estimate=np.exp(val) if ratio else val,
                               std_error=se, conf_low=np.exp(lo) if ratio else lo,
                               conf_high=np.exp(hi) if ratio else hi, statistic=stat,
                               p_value=float(2 * stats.norm.sf(abs(stat))))
                    per_scale[s].append((val, grad, (i1, i0), lv))
                else:
                    row.update(mu1=np.nan, mu0=np.nan, estimate=np.nan, std_error=np.nan,
                               conf_low=np.nan, conf_high=np.nan, statistic=np.nan,
                               p_value=np.nan)
                eff.append(row)
        if mod is None:
            continue
        for s in scales:
            items = per_scale[s]
            if len(items) < 2:
                het.append({"estimator": k, "modifier": mod, "scale": s, "statistic": np.nan,
                            "df": len(items) - 1, "p_value": np.nan,
                            "levels": len(items)})
                continue
            vals = np.array([v for v, _, _, _ in items])
            J = np.zeros((len(items), cov.shape[0]))
            for r_, (_, grad, (i1, i0), _) in enumerate(items):
                J[r_, i1], J[r_, i0] = grad
            C = np.hstack([-np.ones((len(items) - 1, 1)), np.eye(len(items) - 1)])
            diff = C @ vals
            W = C @ J @ cov @ J.T @ C.T
            stat = float(diff @ np.linalg.solve(W, diff))
            het.append({"estimator": k, "modifier": mod, "scale": s, "statistic": stat,
                        "df": len(items) - 1, "p_value": float(stats.chi2.sf(stat, len(items) - 1)),
                        "levels": len(items)})
            ratio = s in ("RR", "OR")
            for j, (_, _, _, lv) in enumerate(items[1:]):
                se = float(np.sqrt(W[j, j]))
                lo, hi = diff[j] - z * se, diff[j] + z * se
                zs = diff[j] / se if se > 0 else np.nan
                f = np.exp if ratio else float
                rr = (np.exp(diff[j]), np.exp(lo), np.exp(hi)) if s == "RR" else None
                inter.append({
                    "estimator": k, "modifier": mod, "level": lv, "reference": items[0][3],
                    "scale": s, "contrast": "ratio" if ratio else "difference",
                    "estimate": f(diff[j]), "std_error": se, "conf_low": f(lo),
                    "conf_high": f(hi), "p_value": float(2 * stats.norm.sf(abs(zs))),
                    "e_value": e_value(rr[0]) if rr else np.nan,
                    "e_value_ci": e_value_ci(*rr) if rr else np.nan})


def _lv(lv, mod):
    return OVERALL if mod is None else lv


#: Counterfactual risks this close to 0 or 1 are taken as 0 or 1: they come from an outcome
#: model with quasi-separation (a cell whose patients all had, or all escaped, the event), whose
#: fitted probability drifts to the boundary by an amount set by the optimizer's stopping rule
#: (a g-computation OR of 1e13 with a finite standard error otherwise).
BOUNDARY = 1e-8


def _scale(s: str, th: np.ndarray) -> tuple[float, np.ndarray]:
    m1, m0 = th
    if s in ("RD", "MD"):
        return m1 - m0, np.array([1.0, -1.0])
    if (m1 <= BOUNDARY or m0 <= BOUNDARY
            or (s == "OR" and (m1 >= 1 - BOUNDARY or m0 >= 1 - BOUNDARY))):
        raise ModelError(f"{s} is undefined: counterfactual risks {m1:.3g}, {m0:.3g}.")
    if s == "RR":
        return float(np.log(m1 / m0)), np.array([1 / m1, -1 / m0])
    return (float(np.log(m1 / (1 - m1)) - np.log(m0 / (1 - m0))),
            np.array([1 / (m1 * (1 - m1)), -1 / (m0 * (1 - m0))]))


def fit_observational_plan(plan, frame: pd.DataFrame) -> ObservationalResult | None:
    """The observational estimators of a plan with ``trial.design: observational`` (None for
    other designs and for outcome families other than binary and continuous). The treatment's
    ``treated``/``control`` codes become 1/0 (other rows are left out); categorical and binary
    modifiers are the subgroup variables (continuous ones are listed in
    ``meta["skipped_modifiers"]``); ``propensity`` gives the model, trimming and threshold."""
    raw = plan.raw
    if raw["trial"].get("design") != "observational":
        return None
    family = plan.outcome["family"]
    if family not in ("binary", "continuous"):
        return None
    t = plan.treatment
    codes = {raw["treatment"]["treated"]: 1.0, raw["treatment"]["control"]: 0.0}
    col = frame[t]
    a = pd.Series(np.nan, index=frame.index)
    for code, v in codes.items():
        a = a.mask((col == code) | (col.astype(str) == str(code)), v)
    data = frame.assign(**{t: a}).loc[a.notna()]
    mods = [m.variable for m in plan.modifiers if m.analysis == "categorical"]
    skipped = [m.variable for m in plan.modifiers if m.analysis != "categorical"]
    ps = raw.get("propensity") or {}
    res = fit_observational(
        data, outcome=plan.outcome["variable"], treatment=t,
        confounders=[str(c) for c in raw["confounders"]], modifiers=mods, family=family,
        ps_formula=ps.get("formula"), cluster=raw["model"].get("cluster"),
        trim=ps.get("trim"), threshold=ps.get("threshold", 0.05), conf_level=plan.conf_level)
    res.meta["skipped_modifiers"] = skipped
    res.meta["labels"] = dict(plan.labels)
    return res
