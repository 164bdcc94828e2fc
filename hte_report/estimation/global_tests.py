"""Global interaction tests of a treatment with k >= 3 arms: does the modifier change the effect
of *any* active arm? One model with every arm (treatment as a k-level factor, control first)
crossed with the modifier, plus the adjustment terms; the (k - 1) x (modifier df) interaction
coefficients are tested jointly (Wald with the model's variance; likelihood ratio for likelihood
models with model-based variance), on the rows where that analysis's variables are observed.
The per-comparison rows and tests come from the two-arm analyses; this test is the one number
that does not depend on which arm is looked at (EMA 2019 on multi-arm subgroup findings)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from formulaic import model_matrix

from hte_report.estimation.contrasts import lr_test, wald_test
from hte_report.models.glm import FitFailure, fit_glm
from hte_report.models.survival import fit_cox
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
        stat, df, p = wald_test(fm.params[idx], fm.cov(np.eye(len(fm.params))[idx]), df_resid)
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
