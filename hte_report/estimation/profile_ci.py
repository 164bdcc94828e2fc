"""``ci_method="profile"``: profile-likelihood intervals in place of Wald intervals for what
is a linear combination of one likelihood model's coefficients (logit, log-binomial, Poisson
with model-based variance): the coefficient table (R's ``confint(glm)``), conditional effects
at the reference profile (ORs / RRs at each level of a categorical modifier or each evaluation
point of a continuous one) and the per-unit interaction effect of a linear continuous
modifier. Standardized (g-computation) effects, curves and other models keep Wald intervals;
column ``ci_method`` says which interval each row has. p-values stay Wald p-values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_report.design.build import Design
from hte_report.models.glm import FittedModel
from hte_report.models.profile import profile_applies, profile_interval

CI_METHODS = ("wald", "profile")


def apply_profile(frames: dict[str, pd.DataFrame], fitted: list[FittedModel], design: Design,
                  treatment: str, y: np.ndarray, expo, cells, conf_level: float,
                  cond_designs: dict, native: dict[str, str]) -> dict[str, pd.DataFrame]:
    """``frames`` (coefficients, subgroups, interaction_effects) with profile intervals where
    they apply and a ``ci_method`` column on each. ``native``: each model's native scale (its
    conditional effects there are a linear combination of its coefficients)."""
    with np.errstate(over="ignore", invalid="ignore"):  # an unbounded profile: an infinite bound
        return _apply(frames, fitted, design, treatment, y, expo, cells, conf_level,
                      cond_designs, native)


def _apply(frames, fitted, design, treatment, y, expo, cells, conf_level, cond_designs,
           native) -> dict[str, pd.DataFrame]:
    out = {}
    for key, df in frames.items():
        df = df.copy()
        df["ci_method"] = "wald"
        if key == "subgroups" and len(df):
            df["profile_note"] = ""
        out[key] = df
    X = None
    for fm in fitted:
        why = profile_applies(fm) or ("profile-likelihood intervals need patient rows, not "
                                      "cells of identical patients" if cells is not None
                                      else "")
        if why:
            continue
        ratio = True  # every profiled model is on a log or logit link
        if X is None:  # a design held by arm (design.arms) is written out once
            X = np.asarray(design.X)

        def bound(c, se, _fm=fm, _X=X):
            return profile_interval(_fm, _X, y, c, conf_level, se, expo)

        coef = out["coefficients"]
        for j, term in enumerate(fm.columns):
            rows = coef.index[(coef.model == fm.label) & (coef.term == term)]
            if len(rows) != 1:
                continue
            c = np.eye(len(fm.params))[j]
            lo, hi, _ = bound(c, float(coef.at[rows[0], "std_error"]))
            coef.loc[rows, ["conf_low", "conf_high", "ci_method"]] = [lo, hi, "profile"]
        sub = out["subgroups"]
        for m in design.modifiers:
            if m.name not in cond_designs:
                continue
            _, X1, X0, _ = cond_designs[m.name]
            for i in range(X1.shape[0]):
                rows = sub.index[(sub.model == fm.label) & (sub.method == "conditional")
                                 & (sub.modifier == m.name) & (sub.order == i)
                                 & (sub.scale == native[fm.label])]
                if len(rows) != 1 or not np.isfinite(sub.at[rows[0], "estimate"]):
                    continue
                lo, hi, note = bound(X1[i] - X0[i], float(sub.at[rows[0], "std_error"]))
                if ratio:
                    lo, hi = np.exp(lo), np.exp(hi)
                sub.loc[rows, ["conf_low", "conf_high", "ci_method", "profile_note"]] = [
                    lo, hi, "profile", note]
        ie = out["interaction_effects"]
        for m in design.modifiers:
            idx = design.interaction_columns(m, treatment)
            rows = ie.index[(ie.model == fm.label) & (ie.modifier == m.name)
                            & (ie.level == "per unit")]
            if len(rows) != 1 or len(idx) != 1 or not np.isfinite(ie.at[rows[0], "estimate"]):
                continue
            lo, hi, _ = bound(np.eye(len(fm.params))[idx[0]], float(ie.at[rows[0],
                                                                          "std_error"]))
            ie.loc[rows, ["conf_low", "conf_high", "ci_method"]] = [np.exp(lo), np.exp(hi),
                                                                     "profile"]
    return out
