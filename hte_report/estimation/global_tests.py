"""Global interaction tests of a treatment with k >= 3 arms: does the modifier change the effect
of *any* active arm? One model with every arm (treatment as a k-level factor, control first)
crossed with the modifier, plus the adjustment terms; the (k - 1) x (modifier df) interaction
coefficients are tested jointly (Wald with the model's variance; likelihood ratio for likelihood
models with model-based variance), on the rows where that analysis's variables are observed.
The per-comparison rows and tests come from the two-arm analyses; this test is the one number
that does not depend on which arm is looked at (EMA 2019 on multi-arm subgroup findings).

:func:`joint_heterogeneity`: the joint (global) test across *all* modifiers at once, from the
model with every interaction."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from formulaic import model_matrix

from hte_report.core.inference import adjust_pvalues
from hte_report.errors import HTEReportError
from hte_report.estimation.contrasts import lr_test, unit_rows, wald_test
from hte_report.estimation.glm import _native, fit_models, reduced_logliks_of
from hte_report.estimation.setup import setup
from hte_report.models.glm import FitFailure, choose_path, fit_glm, reduced_start
from hte_report.models.survival import fit_cox
from hte_report.spec.formula import formula_text
from hte_report.spec.options import (
    DIFF_SCALE,
    MODELS,
    RATIO_SCALE,
    Cluster,
    check_inference,
    default_variance,
    model_inference,
)


def _arm_factor(treatment: str, arms: list) -> str:
    levels = ", ".join(repr(a.item() if isinstance(a, np.generic) else a) for a in arms)
    return f"C({treatment}, levels=[{levels}])"


def _design(rhs: str, frame: pd.DataFrame, factor: str, target: set[str]):
    """Model matrix and the columns of the arm x modifier interaction terms (terms with the
    arm factor and the target modifier's factor expressions)."""
    mm = model_matrix(rhs, frame, na_action="raise")
    X = np.asarray(mm, dtype=float)
    idx = []
    for term, sl in mm.model_spec.term_slices.items():
        exprs = [f.expr for f in term.factors]
        if len(exprs) > 1 and factor in exprs and set(exprs) - {factor} <= target:
            idx.extend(range(sl.start, sl.stop))
    return X, np.array(sorted(idx), dtype=int), list(mm.columns)


def glm_global_tests(frame: pd.DataFrame, *, outcome: str, treatment: str, arms: list,
                     modifier_terms: list[str], target_terms: list[str], modifier: str,
                     adjustment: list[str],
                     model_names, variance, exposure: str | None, analysis: str,
                     family: str, inference: str | None = None) -> list[dict]:
    """Wald (and LR) tests of every arm x modifier coefficient, per working model (an F test
    on the residual df for a Gaussian linear model under ``inference="t"``)."""
    inference = check_inference(inference, family)
    factor = _arm_factor(treatment, arms)
    body = [factor, *modifier_terms] + [f"{factor}:{t}" for t in modifier_terms] + adjustment
    X, idx, cols = _design(" + ".join(body), frame, factor, _exprs(target_terms))
    y = frame[outcome].to_numpy(float)
    expo = frame[exposure].to_numpy(float) if exposure else None
    rows = []
    for name in model_names:
        var = default_variance(name) if variance is None else variance
        groups = frame[var.column].to_numpy() if isinstance(var, Cluster) else None
        info = MODELS[name]
        base = {"modifier": modifier, "scale": _native_scale(info, family), "model": name,
                "analysis": analysis, "comparison": "global", "method": "global-wald",
                "n": len(frame)}
        try:
            fm = fit_glm(name, X, y, tuple(cols), var, expo, groups)
        except FitFailure as exc:
            rows.append({**base, "test": "wald", "statistic": np.nan, "df": len(idx),
                         "p_value": np.nan, "note": f"not estimable: {exc}"})
            continue
        base["model"] = fm.label
        df_resid = fm.df_resid if model_inference(name, inference) == "t" else None
        stat, df, p = wald_test(fm.params[idx], fm.cov(unit_rows(idx, len(fm.params))),
                                df_resid)
        rows.append({**base, "test": "wald", "statistic": stat, "df": df, "p_value": p,
                     "note": "", "distribution": "chi-square" if df_resid is None else "F",
                     "df_denominator": np.nan if df_resid is None else df_resid})
        if info.likelihood and var == "model":
            try:
                red = fit_glm(name, X, y, tuple(cols), "model", expo, None, drop=tuple(idx))
                stat, df, p = lr_test(fm.loglik, red.loglik, len(idx))
                note = ""
            except FitFailure as exc:
                stat, p, note = np.nan, np.nan, f"reduced model failed: {exc}"
            rows.append({**base, "test": "lr", "method": "global-likelihood-ratio",
                         "statistic": stat, "df": len(idx), "p_value": p, "note": note})
    return rows


def cox_global_tests(frame: pd.DataFrame, *, time: str, event: str, strata: list[str],
                     treatment: str, arms: list, modifier_terms: list[str],
                     target_terms: list[str], modifier: str,
                     adjustment: list[str], ties: str, variance, analysis: str) -> list[dict]:
    """Wald and LR tests of every arm x modifier log-hazard-ratio coefficient."""
    factor = _arm_factor(treatment, arms)
    body = [factor, *modifier_terms] + [f"{factor}:{t}" for t in modifier_terms] + adjustment
    X, idx, cols = _design(" + ".join(body), frame, factor, _exprs(target_terms))
    keep = [j for j, c in enumerate(cols) if c != "Intercept"]
    X = X[:, keep]
    idx = np.array([keep.index(j) for j in idx], dtype=int)
    if strata:
        codes = pd.MultiIndex.from_frame(frame[strata].astype(str)).factorize()[0]
    else:
        codes = np.zeros(len(frame), dtype=int)
    groups = frame[variance.column].to_numpy() if isinstance(variance, Cluster) else None
    t, e = frame[time].to_numpy(float), frame[event].to_numpy(float)
    full = fit_cox(X, t, e, codes, ties, variance, groups)
    base = {"modifier": modifier, "scale": "HR", "model": f"cox-{ties}", "analysis": analysis,
            "comparison": "global", "n": len(frame)}
    stat, df, p = wald_test(full.params[idx], full.vcov[np.ix_(idx, idx)])
    rows = [{**base, "test": "wald", "method": "global-wald", "statistic": stat, "df": df,
             "p_value": p, "note": ""}]
    if not isinstance(variance, Cluster) and variance == "model":
        red = fit_cox(np.delete(X, idx, axis=1), t, e, codes, ties)
        stat, df, p = lr_test(full.loglik, red.loglik, len(idx))
        rows.append({**base, "test": "lr", "method": "global-likelihood-ratio",
                     "statistic": stat, "df": df, "p_value": p, "note": ""})
    return rows


def _exprs(terms: list[str]) -> set[str]:
    """Factor expressions of formula terms, as formulaic spells them."""
    from formulaic import Formula

    return {f.expr for t in Formula(" + ".join(terms)) for f in t.factors}


def _native_scale(info, family: str) -> str:
    return {"difference": DIFF_SCALE[family], "ratio": RATIO_SCALE[family],
            "odds-ratio": "OR"}[info.native]


#: Columns of ``HTEResult.heterogeneity``.
HETEROGENEITY_COLUMNS = ["comparison", "analysis", "modifiers", "scale", "test", "statistic",
                         "df", "df_denominator", "distribution", "p_value", "model", "n",
                         "note"]


def joint_heterogeneity(formula: str, data, *, treatment: str, reference=None,
                        family=None, models=None, variance=None, exposure=None,
                        path: str = "auto", aggregate=None, inference=None,
                        safe_formula: bool = False, comparison: str = "") -> list[dict]:
    """One test that the treatment effect is the same whatever the values of *every*
    modifier: all treatment x modifier coefficients of the joint model (``formula``: the
    treatment crossed with every modifier, plus the adjustment terms) are zero, on the rows
    where every variable is observed. Wald (F on the residual df for a Gaussian linear model
    under ``inference="t"``) per working model, and likelihood ratio for likelihood models
    with model-based variance. Not adjusted for multiplicity: it is one test per model."""
    st = setup(formula, data, treatment=treatment, reference=reference, family=family,
               models=models, variance=variance, exposure=exposure, safe_formula=safe_formula,
               aggregate=aggregate if path in ("auto", "compressed") else False)
    design, y, expo = st.design, st.y, st.expo
    if st.cells is not None:
        path = "cells"
    elif path == "auto":
        path = choose_path(design.X, expo)
    if ("fit_models", path) not in st.memo:  # the joint analysis's fits, if it ran
        st.memo["fit_models", path] = fit_models(st.model_names, design, y, st.var_opt, expo,
                                                 st.groups, path, st.cells)
    fitted = st.memo["fit_models", path][0]
    inference = check_inference(inference, st.family)
    idx = np.unique(np.concatenate(
        [design.interaction_columns(m, st.parsed.treatment) for m in design.modifiers]
        or [np.array([], int)])).astype(int)
    names = ", ".join(m.name for m in design.modifiers)
    rows = []
    for fm in fitted:
        fm = replace(fm, inference=model_inference(fm.name, inference))
        base = {"comparison": comparison, "analysis": "joint", "modifiers": names,
                "scale": _native(fm, st.family)[1], "model": fm.label, "n": fm.n}
        stat, df, p = wald_test(fm.params[idx], fm.cov(unit_rows(idx, len(fm.params))),
                                fm.t_df)
        rows.append({**base, "test": "wald", "statistic": stat, "df": df, "p_value": p,
                     "distribution": "chi-square" if fm.t_df is None else "F",
                     "df_denominator": np.nan if fm.t_df is None else fm.t_df,
                     "note": "" if np.isfinite(stat) else "not estimable: the covariance of "
                     "the interaction coefficients is singular or undefined"})
        if MODELS[fm.name].likelihood and fm.variance == "model":
            try:
                ll = fm.extra.get("reduced", {}).get(tuple(idx.tolist()))  # the joint fit's
                if ll is None:
                    ll = reduced_logliks_of(fm, design, y, expo, [idx], path)[0]
                if ll is None:
                    ll = fit_glm(fm.name, design.X, y, (), "model", expo, None,
                                 reduced_start(fm, idx, design.X, y, expo), path, st.cells,
                                 drop=tuple(idx)).loglik
                stat, df, p = lr_test(fm.loglik, ll, len(idx))
                note = ""
            except FitFailure as exc:
                stat, df, p, note = np.nan, len(idx), np.nan, f"reduced model failed: {exc}"
            rows.append({**base, "test": "lr", "statistic": stat, "df": df, "p_value": p,
                         "distribution": "chi-square", "df_denominator": np.nan,
                         "note": note})
    return rows


# ------------------------------------------------- added to a strategy's combined result
def with_global_tests(res, raw, r, arms, strategy, survival, engine_kw,
                      multiplicity):
    """Add the global (all arms) interaction test of each modifier to ``interactions``
    (``comparison == "global"``; adjusted for multiplicity across modifiers, separately from
    the per-comparison tests)."""
    ctrl = arms[0][2]
    values = [v for v in pd.unique(raw[r.treatment]) if not pd.isna(v)]
    order = [ctrl] + [a for a in sorted(values, key=lambda v: (str(type(v)), v)) if a != ctrl]
    analysis = "joint" if strategy == "joint" else "one-at-a-time"
    adjustment = [formula_text([t]) for t in r.adjustment]
    variance = engine_kw.get("variance")
    extra = [variance.column] if isinstance(variance, Cluster) else []
    if not survival and engine_kw.get("exposure"):
        extra.append(engine_kw["exposure"])
    rows = []
    for m in r.modifiers:
        mods = list(r.modifiers) if strategy == "joint" else [m]
        terms = [t for k in mods for t in r.own_terms(k)]
        used = list(dict.fromkeys([*r.outcome, r.treatment, *r.strata_columns, *extra,
                                   *[c for k in mods for c in r.modifier_columns[k]],
                                   *[c for c in r.adjustment_columns
                                     if not c.startswith("strata(")]]))
        frame = raw[used].dropna().convert_dtypes(convert_string=False,
                                                  convert_integer=False,
                                                  convert_boolean=False,
                                                  convert_floating=False)
        kw = dict(treatment=r.treatment, arms=order, modifier_terms=terms,
                  target_terms=r.own_terms(m), modifier=m, adjustment=adjustment,
                  analysis=analysis)
        try:
            if survival:
                rows += cox_global_tests(frame, time=r.outcome[0], event=r.outcome[1],
                                         strata=list(r.strata_columns),
                                         ties=engine_kw.get("ties", "efron"),
                                         variance=variance or "model", **kw)
            else:
                names = res.models[res.models.analysis == analysis].requested.unique()
                rows += glm_global_tests(frame, outcome=r.outcome[0], model_names=names,
                                         variance=variance, family=res.family,
                                         exposure=engine_kw.get("exposure"),
                                         inference=engine_kw.get("inference"), **kw)
        except (HTEReportError, ValueError, np.linalg.LinAlgError) as exc:
            rows.append({"modifier": m, "scale": "", "test": "wald", "statistic": np.nan,
                         "df": 0, "p_value": np.nan, "model": "", "method": "global-wald",
                         "analysis": analysis, "comparison": "global",
                         "note": f"not estimable: {exc}"})
    if not rows:
        return res
    glob = adjust_pvalues(pd.DataFrame(rows), multiplicity)
    return replace(res, interactions=pd.concat([res.interactions, glob], ignore_index=True))


def with_joint_test(res, data, r, arms, engine_kw, safe_formula, survival=False):
    """The joint heterogeneity test across every modifier (``HTEResult.heterogeneity``), from
    the joint model of each comparison, whatever the strategy. With one modifier the joint
    model is that modifier's model: its Wald and LR tests are the joint test (no refit)."""
    if len(r.modifiers) == 1:
        return replace(res, heterogeneity=_single_modifier(res))
    if survival:
        return replace(res, heterogeneity=_not_estimable_with(
            _cox_joint(data, r, arms, engine_kw), res.interactions))
    kw = {k: v for k, v in engine_kw.items() if k in ("family", "models", "variance",
                                                       "exposure", "path", "aggregate",
                                                       "inference")}
    rows = []
    for comparison, mask, ref in arms:
        sub = data.loc[mask] if mask is not None else data
        try:
            with warnings.catch_warnings():  # exclusions and fit notes: the analyses say them
                warnings.simplefilter("ignore")
                rows += joint_heterogeneity(r.joint_formula(), sub, treatment=r.treatment,
                                            reference=ref, safe_formula=safe_formula,
                                            comparison=comparison or "", **kw)
        except (HTEReportError, FitFailure, ValueError, np.linalg.LinAlgError) as exc:
            rows.append({"comparison": comparison or "", "analysis": "joint",
                         "modifiers": ", ".join(r.modifiers), "test": "wald",
                         "note": f"not estimable: {exc}"})
    return replace(res, heterogeneity=pd.DataFrame(rows, columns=HETEROGENEITY_COLUMNS))


def _not_estimable_with(het: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """The joint test is not estimable where a modifier's own tests are not (a categorical
    modifier with a subgroup without events in an arm): the joint model holds the same
    diverging coefficients, and its statistic is wherever the fit stopped (R's ``coxph``
    stops elsewhere and warns that coefficients may be infinite)."""
    bad = tests[tests.note.astype(str).str.startswith("not estimable")]
    if bad.empty or het.empty:
        return het
    het = het.copy()
    mods = ", ".join(dict.fromkeys(bad.modifier.astype(str)))
    rows = het.modifiers.astype(str).apply(
        lambda m: bool(set(m.split(", ")) & set(bad.modifier.astype(str))))
    het.loc[rows, ["statistic", "p_value"]] = np.nan
    het.loc[rows, "note"] = (f"not estimable: {mods} has a subgroup without events in an arm "
                             "(its coefficients diverge; see its own tests)")
    return het


def _single_modifier(res) -> pd.DataFrame:
    """The modifier's own Wald and LR rows as the joint test (one modifier)."""
    t = res.interactions
    t = t[t.test.isin(["wald", "lr"]) & (t.comparison != "global")
          & (t.analysis != "within-subgroup")].copy()
    models = res.models[res.models.analysis.isin(["one-at-a-time", "joint"])]
    n = dict(zip(zip(models.comparison, models.model), models.n))
    t["n"] = [n.get((c, m), np.nan) for c, m in zip(t.comparison, t.model)]
    t["analysis"] = "joint"
    t["modifiers"] = t.modifier
    for col in ("distribution", "df_denominator"):
        if col not in t:
            t[col] = "chi-square" if col == "distribution" else np.nan
    return t.reindex(columns=HETEROGENEITY_COLUMNS).reset_index(drop=True)


def _cox_joint(raw, r, arms, engine_kw) -> pd.DataFrame:
    """The joint test of a Cox model: every treatment x modifier log-hazard-ratio coefficient
    of the model with all interactions (Wald; LR with model-based variance), per comparison."""
    variance = engine_kw.get("variance") or "model"
    extra = [variance.column] if isinstance(variance, Cluster) else []
    mods = list(r.modifiers)
    terms = [t for k in mods for t in r.own_terms(k)]
    used = list(dict.fromkeys([*r.outcome, r.treatment, *r.strata_columns, *extra,
                               *[c for k in mods for c in r.modifier_columns[k]],
                               *[c for c in r.adjustment_columns
                                 if not c.startswith("strata(")]]))
    rows = []
    for comparison, mask, ref in arms:
        sub = raw.loc[mask] if mask is not None else raw
        frame = sub[used].dropna().convert_dtypes(convert_string=False, convert_integer=False,
                                                  convert_boolean=False,
                                                  convert_floating=False)
        values = sorted((v for v in pd.unique(frame[r.treatment]) if not pd.isna(v)),
                        key=lambda v: (str(type(v)), v))
        control = ref if ref is not None else values[0]
        order = [control] + [v for v in values if v != control]
        base = {"comparison": comparison or "", "analysis": "joint",
                "modifiers": ", ".join(mods), "distribution": "chi-square",
                "df_denominator": np.nan}
        try:
            got = cox_global_tests(frame, time=r.outcome[0], event=r.outcome[1],
                                   strata=list(r.strata_columns),
                                   ties=engine_kw.get("ties", "efron"), variance=variance,
                                   treatment=r.treatment, arms=order, modifier_terms=terms,
                                   target_terms=terms, modifier="", analysis="joint",
                                   adjustment=[formula_text([t]) for t in r.adjustment])
            rows += [{**g, **base} for g in got]
        except (HTEReportError, ValueError, np.linalg.LinAlgError) as exc:
            rows.append({**base, "test": "wald", "note": f"not estimable: {exc}"})
    return pd.DataFrame(rows).reindex(columns=HETEROGENEITY_COLUMNS)
