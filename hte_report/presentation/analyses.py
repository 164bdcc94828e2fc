"""Which analysis produced the numbers a reader sees: the subgroup-analysis strategy and the
primary analysis in words (footnotes, methods, summary), the reference profile of a modifier's
own model, the analyses table and the interaction effects of the primary models.

Every helper reads the tidy frames only and selects the rows of one comparison (the first of a
k-arm treatment unless ``comparison`` is given), so no row is shown twice.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from hte_report.core.format import MINUS, fmt_p
from hte_report.estimation.interaction_effects import interaction_scale
from hte_report.presentation.repeated import primary_words, repeated_meta
from hte_report.presentation.survival import SURVIVAL_SCALES, fmt_effect, is_survival, scale_label
from hte_report.results.result import HTEResult


def _rows(res: HTEResult, df: pd.DataFrame, comparison: str | None = None) -> pd.DataFrame:
    if df is None or df.empty or "comparison" not in df or not res.comparisons:
        return df
    return df[df.comparison == (comparison or res.comparisons[0])]


def display_levels(effects: dict, mod: str, axes: list[str]) -> list[tuple[str, pd.Series]]:
    """The rows a modifier shows, in order: every level of the first axis, then the levels
    only another axis has (e.g. a continuous modifier with display cutpoints: standardized
    categories on the survival-difference scale, conditional hazard ratios at its quartiles on
    the HR scale), each with the first row that has it (for its counts)."""
    out: dict[str, pd.Series] = {}
    for a in axes:
        e = effects[a]
        for r in e[e.modifier == mod].sort_values("order").itertuples(index=False):
            if r.level not in out:
                out[r.level] = pd.Series(r._asdict())
    return list(out.items())


def adjustment_terms(res: HTEResult) -> tuple[list[str], list[str]]:
    """(adjustment covariates, stratification columns): ``strata(site)`` terms of a Cox
    formula are strata, not covariates."""
    covs, strata = [], []
    for t in res.adjustment:
        m = re.fullmatch(r"\s*strata\(\s*([^()]+?)\s*\)\s*", t)
        if m:
            strata += [c.strip() for c in m.group(1).split(",")]
        else:
            covs.append(t)
    return covs, strata


def adjusted_for(res: HTEResult) -> str:
    """'adjusted for race, paro', 'stratified by site', 'adjusted for age, stratified by
    site', or '' without adjustment terms."""
    covs, strata = adjustment_terms(res)
    parts = ([f"adjusted for {', '.join(covs)}"] if covs else []) + (
        [f"stratified by {', '.join(strata)}"] if strata else [])
    return ", ".join(parts)


def overall_words(res: HTEResult) -> str:
    """'primary analysis adjusted for race, paro' / '... unadjusted (treatment only)'."""
    if repeated_meta(res):
        return f"primary analysis: {primary_words(res)}"
    if res.overall_analysis == "unadjusted" or not res.adjustment:
        return "primary analysis, unadjusted (treatment only)"
    return f"primary analysis {adjusted_for(res)}"


def strategy_words(res: HTEResult) -> str:
    """How the subgroup rows were analysed, in a phrase for footnotes."""
    adj = adjusted_for(res)
    strategy = res.strategy or "joint"
    if strategy == "one-at-a-time":
        return ("one modifier at a time \u2014 each modifier's own model"
                + (f" {adj}" if adj else " (no adjustment covariates)"))
    if strategy == "within-subgroup":
        return ("separate fits within each subgroup" + (f", each {adj}" if adj
                                                        else "")
                + "; interaction tests from one-modifier-at-a-time models")
    return ("one joint model \u2014 each modifier mutually adjusted for the other modifiers"
            + (f" and {adj}" if adj else ""))


def strategy_note(res: HTEResult) -> str:
    """The footnote naming the strategy and the primary analysis of the overall row."""
    if not res.overall_analysis:  # a result fitted without strategies (one model)
        return ""
    return (f"Subgroup effects: {strategy_words(res)}; overall: {overall_words(res)}.")


def profile_of(res: HTEResult, modifier: str, comparison: str | None = None) -> pd.DataFrame:
    """Reference profile (variable, value) of the model whose conditional effects are shown for
    ``modifier``: its own model (one-at-a-time, within-subgroup) or the joint model; without the
    modifier itself and the treatment."""
    prof = _rows(res, res.profile, comparison)
    if prof is None or prof.empty:
        return pd.DataFrame(columns=["variable", "value"])
    if "modifier" in prof:
        own = prof[prof.modifier == modifier]
        prof = own if len(own) else prof[prof.modifier == ""]
    prof = prof[~prof.variable.isin([modifier, res.treatment])]
    return prof[["variable", "value"]].drop_duplicates("variable").reset_index(drop=True)


def _show(v: object) -> str:
    try:
        return f"{float(v):.3g}".replace("-", MINUS)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)


def profile_text(res: HTEResult, modifier: str, comparison: str | None = None) -> str:
    """'race = 1, paro = 1' (or 'no other covariates')."""
    prof = profile_of(res, modifier, comparison)
    return ", ".join(f"{r.variable} = {_show(r.value)}" for r in prof.itertuples()) or \
        "no other covariates"


def display_notes(res: HTEResult) -> list[str]:
    """Per continuous modifier: how its rows were obtained (conditional at a stated profile, or
    standardized within display categories)."""
    notes = []
    for m in res.modifiers:
        if res.modifier_kinds.get(m) != "continuous":
            continue
        name = res.labels.get(m, m)
        if res.strategy == "within-subgroup":
            where = (f"the categories cut at "
                     f"{', '.join(_show(c) for c in res.display_cutpoints[m])}"
                     if m in (res.display_cutpoints or {}) else "its quarters")
            notes.append(f"{name}: separate fits within {where}; the interaction test treats "
                         f"{m} as continuous ({m}'s own model).")
        elif m in (res.display_cutpoints or {}):
            cuts = ", ".join(_show(c) for c in res.display_cutpoints[m])
            model = "the joint model" if res.strategy == "joint" else f"{m}'s own model"
            if is_survival(res):  # only the absolute scale has a standardized form
                absolute = [scale_label(res, sc) for sc, _ in res.primary.values()
                            if sc in ("SurvDiff", "RMSTDiff")]
                what = absolute[0][:1].lower() + absolute[0][1:] if absolute else "effects"
                notes.append(f"{name}: {what} standardized over the patients of each display "
                             f"category (cut at {cuts}) from {model}, in which {m} is "
                             "continuous (the hazard ratio has no standardized form).")
            else:
                notes.append(f"{name}: standardized within category (cut at {cuts}) from "
                             f"{model}, where {m} is continuous, as in the test.")
        else:
            notes.append(f"{name}: conditional effects at the stated values with "
                         f"{profile_text(res, m)} (reference profile of "
                         f"{'the joint' if res.strategy == 'joint' else m + chr(39) + 's'} "
                         "model).")
    return notes


def analyses_table(res: HTEResult) -> pd.DataFrame:
    """One row per fitted analysis: what it is, its formula, rows analysed and excluded."""
    a = res.analyses
    if a is None or a.empty:
        return pd.DataFrame()
    names = {"overall-adjusted": "Overall (primary, adjusted)",
             "overall-unadjusted": "Overall (primary, unadjusted)",
             "one-at-a-time": "Modifier's own model", "joint": "Joint model",
             "within-subgroup": "Within subgroup"}
    if not res.adjustment:  # nothing to adjust for: the adjusted primary analysis is crude
        names["overall-adjusted"] = "Overall (primary; no adjustment covariates)"
    what = []
    for r in a.itertuples():
        text = names.get(r.analysis, r.analysis)
        if r.modifier and r.analysis == "within-subgroup":
            text += f": {r.modifier} = {r.level}"
        elif r.modifier:
            text += f": {r.modifier}"
        what.append(text)
    out = pd.DataFrame({"Analysis": what, "Formula": a.formula,
                        "N analysed": a.n_analysed.astype(int).astype(str),
                        "N excluded": a.n_excluded.astype(int).astype(str),
                        "Excluded for (rows missing)": [
                            (str(x) if isinstance(x, str) and x else "\u2013")
                            for x in a.excluded_for]})
    if res.comparisons and "comparison" in a:
        out.insert(0, "Comparison", a.comparison.to_numpy())
    return out


def interaction_effects_frame(res: HTEResult, comparison: str | None = None) -> pd.DataFrame:
    """Interaction effects of the primary model of each axis, each level vs the reference (per
    unit for a linear continuous modifier), on that axis's scale."""
    ie = _rows(res, res.interaction_effects, comparison)
    if ie is None or ie.empty:
        return pd.DataFrame()
    order = {m: i for i, m in enumerate(res.modifiers)}
    parts = []
    for axis, (scale, model) in res.primary.items():
        want = interaction_scale(scale)
        rows = ie[(ie.model == model) & (ie.scale == want) & ie.modifier.isin(list(order))]
        h = res._primary_filters(axis).get("horizon")
        if h is not None and "horizon" in rows:  # survival: the primary horizon only
            rows = rows[np.isclose(rows.horizon.astype(float), float(h))]
        if "analysis" in rows and rows.analysis.nunique() > 1:  # never the within fits
            rows = rows[rows.analysis != "within-subgroup"]
        parts.append(rows.assign(axis=axis))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if df.empty:
        return df
    df = df.assign(o=df.modifier.map(order), a=df.axis.map({"absolute": 0, "relative": 1}))
    df = df.sort_values(["o", "a"], kind="stable")
    est = []
    for r in df.itertuples():
        if np.isfinite(r.estimate):
            est.append(fmt_effect(r.estimate, r.conf_low, r.conf_high,
                                  res.primary[r.axis][0]))
        else:
            est.append(r.note if isinstance(r.note, str) and r.note else "not estimable")
    level = [("per unit" if str(r.level) == "per unit" else
              f"{res.level_label(r.modifier, r.level)} vs "
              f"{res.level_label(r.modifier, r.reference)}") for r in df.itertuples()]
    return pd.DataFrame({
        "Modifier": [res.labels.get(m, m) for m in df.modifier], "Contrast": level,
        "Measure": [_measure(res, r.scale, res.primary[r.axis][0]) for r in df.itertuples()],
        "Model": df.model.to_numpy(),
        "Estimate (CI)": est, "P": [fmt_p(p) for p in df.p_value],
    })


def _measure(res: HTEResult, measure: str, scale: str) -> str:
    """'difference of survival differences at 1095 days (percentage points)' for survival
    scales; other measures as recorded."""
    if not is_survival(res) or scale not in SURVIVAL_SCALES:
        return measure
    name = scale_label(res, scale)
    return f"difference of {name[0].lower()}{name[1:].replace('difference', 'differences', 1)}"
