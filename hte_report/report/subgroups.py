"""The report's analysis sections: pre-specified subgroup analyses (forest plots, split into
page-sized parts, and tables of effects and heterogeneity tests), continuous modifiers, the
risk-based (PATH) analysis, the credibility of effect modification (ICEMAN, Sun et al.) and
post hoc analyses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from hte_report.analysis import PlannedAnalysis
from hte_report.core.format import MINUS, fmt_ci, fmt_p, is_ratio, p_eq, strategy_text
from hte_report.core.inference import familywise_error, qualitative_interaction
from hte_report.presentation.analyses import (
    display_notes,
    interaction_effects_frame,
    overall_words,
    profile_of,
    strategy_note,
)
from hte_report.presentation.credibility import (
    analyst_ratings,
    credibility_table,
    recorded_rating,
    sun_checklist,
)
from hte_report.presentation.repeated import interaction_words
from hte_report.presentation.survival import scale_label
from hte_report.presentation.tables import column_labels, subgroup_frame, subgroup_table
from hte_report.report.model import Figure, Para, Section, Table
from hte_report.results.result import HTEResult


def _figure(fig, caption: str, name: str, png: bool = False) -> Figure:
    return Figure.from_matplotlib(fig, caption, name, png)


#: Rows (modifier headings and levels) of one forest figure: one page at the default style.
FOREST_ROWS = 40


def _forests(res: HTEResult, caption: str, name: str, png: bool, **kw) -> list[Figure]:
    """The forest plot of ``res``, as several figures of at most :data:`FOREST_ROWS` rows when
    it would not fit on a page (a 200-level factor); a modifier's levels are split only when
    they alone exceed a figure, and its heading is repeated."""
    parts = _forest_parts(res)
    if len(parts) == 1:
        return [_figure(res.forest(**kw), caption, name, png)]
    out, sg = [], res.subgroups
    for i, part in enumerate(parts, 1):
        keep = pd.Series(False, index=sg.index)
        for mod, levels in part:
            keep |= (sg.modifier == mod) & sg.level.isin(levels)
        sub = replace(res, modifiers=tuple(mod for mod, _ in part), subgroups=sg[keep])
        out.append(_figure(sub.forest(**kw), f"{caption.rstrip('.')} (part {i} of "
                           f"{len(parts)}).", name if i == 1 else f"{name}-{i}", png))
    return out


def _forest_parts(res: HTEResult) -> list[list[tuple[str, list]]]:
    """Modifiers and their levels, packed in order into figures of at most FOREST_ROWS rows."""
    if not res.primary:
        return [[]]
    eff = res.effects(next(iter(res.primary)))
    parts: list[list[tuple[str, list]]] = [[]]
    used = 0
    for mod in res.modifiers:
        levels = list(eff[eff.modifier == mod].sort_values("order").level)
        step = FOREST_ROWS - 1
        for chunk in [levels[i:i + step] for i in range(0, len(levels), step)] or [[]]:
            if parts[-1] and used + 1 + len(chunk) > FOREST_ROWS:
                parts.append([])
                used = 0
            parts[-1].append((mod, chunk))
            used += 1 + len(chunk)
    return parts



def arm_labelled(a: PlannedAnalysis) -> HTEResult:
    """The result with the plan's arm labels (``treated_label``/``control_label``) in place of
    the data codes, for display: forest columns and favours labels, table headers."""
    res, tr = a.result, a.plan.raw["treatment"]
    if res.comparisons:
        return res
    ctrl, trt = res.treatment_labels
    return replace(res, treatment_labels=(str(tr.get("control_label") or ctrl),
                                          str(tr.get("treated_label") or trt)))


def _subgroups(a: PlannedAnalysis, png: bool) -> Section:
    res = arm_labelled(a)
    hib = bool(a.plan.outcome.get("higher_is_better", False))
    pre = [m for m in res.modifiers if m not in res.posthoc]
    both = "on both scales" if len(res.primary) > 1 else (
        f"on the {next(iter(res.primary))} scale")
    if res.comparisons:  # a treatment with three or more arms: one forest per comparison
        figs = [f for i, comp in enumerate(res.comparisons) for f in _forests(
            replace(res, modifiers=tuple(pre)), f"{comp}: forest plot of the pre-specified "
            f"modifiers {both}.", "forest" if i == 0 else f"forest-{i + 1}", png,
            higher_is_better=hib, adjusted=True, comparison=comp)]
    else:
        figs = _forests(replace(res, modifiers=tuple(pre)), "Forest plot of the pre-specified "
                        f"modifiers {both}.", "forest", png, higher_is_better=hib,
                        adjusted=True)
    disp = subgroup_frame(res).rename(columns=column_labels(res))
    blocks = [
        Para(f"Subgroup analyses: {strategy_text(res.strategy)}. The overall row is the "
             f"{overall_words(res)}, on every patient with the variables it uses observed. "
             "Categorical modifiers: effects standardized over each subgroup's participants. "
             + _continuous_words(res) +
             f" P for interaction: Wald test of all {interaction_words(res)} terms of the primary "
             f"model for each scale, raw and {res.multiplicity}-adjusted across the {len(pre)} "
             f"pre-specified modifiers (chance of at least one false positive at "
             f"α = {a.plan.alpha} among {len(pre)} independent tests per scale: "
             f"{familywise_error(a.plan.alpha, len(pre)):.0%})."),
        *figs,
        Table(disp, f"Subgroup effects {both}" + (
            " (RD in percentage points)" if res.family == "binary" else
            f" ({scale_label(res, 'SurvDiff')[0].lower()}{scale_label(res, 'SurvDiff')[1:]}; "
            "hazard ratio from the Cox model)" if res.family == "survival"
            and any(s == "SurvDiff" for s, _ in res.primary.values()) else ""),
              group="Modifier",
              gt=subgroup_table(res), name="subgroups", notes=_model_notes(res)),
    ]
    prim = {model for _, model in res.primary.values()}
    order = {m: i for i, m in enumerate(res.modifiers)}
    its = res._comparison(res.interactions, None)
    it = its[its.model.isin(prim) & its.test.isin(["wald", "lr"])]
    if res.family == "survival":  # the Cox model's tests, and equality of survival differences
        keep = pd.Series(False, index=its.index)
        for axis, (scale, model) in res.primary.items():
            h = res._primary_filters(axis).get("horizon")
            on = (its.model == model) & (its.scale == scale) & its.test.isin(
                ["wald", "lr", "equality"])
            if h is not None and "horizon" in its:
                on &= np.isclose(its.horizon.astype(float), float(h))
            keep |= on
        it = its[keep]
    it = it.sort_values(["modifier", "model"], key=lambda c: c.map(order) if c.name ==
                        "modifier" else c, kind="stable")
    tests = it.copy()
    tests["modifier"] = [res.labels.get(m, m) for m in tests.modifier]
    tests = pd.DataFrame({
        "Modifier": tests.modifier, "Model": tests.model, "Scale": tests.scale,
        "Test": tests.test, "Chi-square": [f"{s:.2f}" if np.isfinite(s) else "–"
                                           for s in tests.statistic],
        "df": tests.df.astype(str), "P": [fmt_p(p) for p in tests.p_value],
        "P adjusted": [fmt_p(p) for p in tests.p_adjusted], "Note": tests.note.fillna(""),
    })
    if not tests["Note"].astype(bool).any():
        tests = tests.drop(columns="Note")
    blocks.append(Table(tests, "Tests of heterogeneity, primary models",
                        notes=(("wald / lr: Wald and likelihood-ratio tests of all "
                                "treatment × modifier coefficients of the Cox model (HR); "
                                "equality: Wald test that the standardized survival differences "
                                "are equal across the levels of a categorical modifier. P "
                                "adjusted within each scale. Every test is listed under Methods."
                                if res.family == "survival" else
                                f"wald: all {interaction_words(res)} coefficients; lr: likelihood "
                               "ratio (likelihood-based models only). Every model and test, "
                               "including equality of standardized effects, is listed under "
                               "Methods as sensitivity analyses."),),
                        group="Modifier", name="interactions"))
    ie = interaction_effects_frame(replace(res, modifiers=tuple(pre)))
    if len(ie):
        blocks.append(Table(ie, "Interaction effects (each level vs reference; per unit for "
                            f"continuous) with {int(round(100 * res.conf_level))}% CI",
                            group="Modifier", name="interaction-effects",
                            notes=(_ie_note(res) + "From the primary model of each scale, "
                                   "in the analysis that produced the modifier's subgroup "
                                   "effects (for within-subgroup fits: the modifier's own "
                                   "model). " + ("Differences of RDs in percentage points. "
                                                 if res.family == "binary" else "")
                                   + ("A ratio of ratios of 1 and a difference of 0 mean no "
                                      "effect modification on that scale. "
                                      if len(res.primary) > 1 else
                                      "A difference of 0 means no effect modification. ")
                                   + "Categorical levels: contrasts of standardized subgroup "
                                   "effects; continuous modifiers: the change of the effect "
                                   f"per unit of the modifier ({interaction_words(res)} "
                                   "coefficients).",)))
    gs = qualitative_interaction(res)
    if len(gs):
        g = pd.DataFrame({
            "Modifier": [res.labels.get(m, m) for m in gs.modifier], "Scale": gs.scale,
            "Model": gs.model, "Subgroups": gs.n_subgroups.astype(str),
            "Q−": [f"{v:.2f}" for v in gs.q_minus], "Q+": [f"{v:.2f}" for v in gs.q_plus],
            "P (qualitative)": [fmt_p(p) for p in gs.p_value],
        })
        blocks.append(Table(g, "Gail–Simon test of qualitative (crossover) interaction",
                            notes=("Large-sample p-value from the least-favourable null, a "
                                   "mixture of chi-square distributions (Gail & Simon 1985); a "
                                   "small p suggests the effect changes direction across "
                                   "subgroups; p = 1 when every effect is on one side.",),
                            name="gail-simon"))
    ad = res._comparison(res.additive, None)
    if len(ad) and "analysis" in ad:
        ad = ad[ad.analysis != "within-subgroup"]
    if len(ad):
        add = pd.DataFrame({"Modifier": [res.labels.get(m, m) for m in ad.modifier],
                            "Measure": ad.measure, "Model": ad.model,
                            "Reference": ad.reference,
                            "Estimate (CI)": [fmt_ci(e, lo, hi, "MeanRatio") for e, lo, hi in
                                              zip(ad.estimate, ad.conf_low, ad.conf_high)]})
        add["Estimate (CI)"] = add["Estimate (CI)"].str.replace("-", MINUS)
        blocks.append(Table(add, "Additive interaction for binary modifiers (RERI, AP, SI)",
                            notes=("Joint effects of treatment and the modifier at the reference "
                                   "profile (other covariates at their means/modes), relative to "
                                   "the stated reference stratum; Hosmer–Lemeshow delta-method "
                                   "intervals; the suffix names the ratio the model estimates "
                                   "(OR from logit, RR from log link). When treatment is "
                                   "preventive, RERI is usually interpreted after recoding so "
                                   "that the reference is the lowest-risk stratum (Knol et al. "
                                   "2011); this table does not recode.",), name="additive"))
    return Section("Pre-specified subgroup analyses", tuple(blocks), id="subgroups")


def _model_notes(res: HTEResult) -> tuple[str, ...]:
    if res.family == "survival":
        return _survival_model_notes(res)
    notes = []
    for axis, (scale, model) in res.primary.items():
        row = res.models[res.models.model == model].iloc[0]
        notes.append(f"{scale}: from the {model} model ({row.link} link, {row.variance} "
                     f"variance); the primary model for the {axis} scale.")
    notes.append(f"P interaction: Wald test of all {interaction_words(res)} terms; 'adj': "
                 f"{res.multiplicity}-adjusted across modifiers.")
    strategy = strategy_note(res)
    if strategy:
        notes.append(strategy)
    notes += display_notes(res)
    return tuple(notes)


def _ie_note(res: HTEResult) -> str:
    if res.family != "survival":
        return ""
    return ("Ratio of HRs: the subgroup's hazard ratio divided by the reference level's (per "
            "unit of a continuous modifier); difference of survival differences: in "
            "percentage points at the stated time, from standardized Cox-model survival. ")


def _survival_model_notes(res: HTEResult) -> tuple[str, ...]:
    meta = res.meta or {}
    ties = meta.get("ties", "efron")
    notes = []
    for axis, (scale, _model) in res.primary.items():
        name = scale_label(res, scale)
        if scale == "HR":
            notes.append(f"{name}: Cox model ({ties.capitalize()} ties), within-subgroup "
                         "hazard ratio under a shared baseline hazard, other covariates at the "
                         "reference profile; "
                         f"the primary model for the {axis} scale. HR < 1 favours treatment.")
        elif scale == "SurvDiff":
            notes.append(f"{name}: survival predicted by the same Cox model (Breslow baseline "
                         "hazard) under each arm, standardized over the subgroup's rows; "
                         f"the primary measure for the {axis} scale. > 0 favours treatment.")
        else:
            notes.append(f"{name}: Kaplan–Meier within each arm of each subgroup; the primary "
                         f"measure for the {axis} scale. > 0 favours treatment.")
    tests = []
    for axis, (scale, _model) in res.primary.items():
        t = res.interaction_p(axis)
        kind = t.test.iloc[0] if len(t) else "wald"
        tests.append(f"{scale}: " + ("Wald test of all treatment × modifier terms of the Cox "
                                     "model" if kind != "equality" else
                                     "Wald test that the standardized subgroup effects are "
                                     "equal (categorical modifiers only; continuous modifiers "
                                     "are tested on the HR scale)"))
    notes.append("P interaction — " + "; ".join(tests) + f"; 'adj': {res.multiplicity}-"
                 "adjusted across the modifiers tested on that scale.")
    cut = [m for m in res.modifiers if m in (res.display_cutpoints or {})]
    for m in cut:
        notes.append(f"{res.labels.get(m, m)}: no hazard ratio by display category (–): with "
                     f"{m} continuous in the Cox model the HR changes continuously with it; see "
                     "the interaction effects (ratio of HRs per unit) and the continuous-"
                     "modifier section.")
    strategy = strategy_note(res)
    if strategy:
        notes.append(strategy)
    notes += display_notes(res)
    return tuple(notes)


def _continuous_words(res: HTEResult) -> str:
    cont = [m for m in res.modifiers if res.modifier_kinds.get(m) == "continuous"]
    if not cont:
        return ""
    cut = [res.labels.get(m, m) for m in cont if m in (res.display_cutpoints or {})]
    cond = [res.labels.get(m, m) for m in cont if m not in (res.display_cutpoints or {})]
    out = ["Continuous modifiers are analysed as continuous in every model and test."]
    if cond:
        out.append(f"Rows of {', '.join(cond)} are model-based conditional effects at the "
                   "quartiles (other covariates at the reference profile of the modifier's "
                   "model, stated under the table), not estimates within arbitrary subgroups, "
                   "so no per-arm counts are shown for them.")
    if cut:
        out.append(f"Rows of {', '.join(cut)} are standardized over the patients of each of "
                   "the plan's display categories from the model in which the modifier is "
                   "continuous" + (" (survival differences only: the hazard ratio has no "
                                   "standardized form)." if res.family == "survival" else "."))
    return " ".join(out)


def _continuous(a: PlannedAnalysis, png: bool) -> Section:
    res = arm_labelled(a)
    mods = [m for m in res.modifiers
            if res.modifier_kinds.get(m) == "continuous" and m not in res.posthoc]
    if not mods:
        return Section("Continuous modifiers", (Para("No continuous modifier was pre-specified."),),
                       id="continuous")
    blocks = [Para("Conditional effects across the observed range of each continuous modifier "
                   "(other covariates at the reference profile of the modifier's model, listed "
                   "below), with pointwise confidence bands; the modifier is analysed as "
                   "continuous, without cut points"
                   + ("; curves are on the hazard-ratio scale only, the survival difference "
                      "of a continuous modifier is shown at the values in the subgroup table"
                      if res.family == "survival" else "")
                   + (" (the plan's display categories only summarize the continuous model in "
                      "the subgroup table)." if set(mods) & set(res.display_cutpoints or {})
                      else "."))]
    for m in mods:
        rm = (res.meta or {}).get("repeated") or {}
        data = (a.data.drop_duplicates(subset=rm["group"]) if rm.get("group") in a.data
                else a.data)  # repeated measures: one row per patient, not per visit
        fig = res.effect_curve(m, data=data)
        blocks.append(_figure(fig, f"Effect of treatment by {res.labels.get(m, m)}.",
                              f"curve-{m}", png))
    parts = []
    for m in mods:
        p = profile_of(res, m)
        parts.append(pd.DataFrame({
            "Model": f"{res.labels.get(m, m)}" + (" (joint model)" if res.strategy == "joint"
                                                   else " (its own model)"),
            "Variable": p.variable, "Reference value": [_round_str(v) for v in p.value]}))
    prof = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(prof):
        blocks.append(Table(prof, "Reference profile for conditional effects (mean of "
                            "continuous, mode of categorical covariates) of each modifier's "
                            "model", group="Model", name="profile"))
    return Section("Continuous modifiers", tuple(blocks), id="continuous")


def _round_str(v: str) -> str:
    try:
        return f"{float(v):.4g}"
    except ValueError:
        return v


def _risk(a: PlannedAnalysis, png: bool) -> Section:
    from hte_report.report.path import risk_section

    return Section("Risk-based analysis (PATH)", tuple(risk_section(a, with_png=png)), id="risk")


def _credibility(a: PlannedAnalysis, answers, proposed) -> Section:
    res, plan = a.result, a.plan
    analyst = analyst_ratings(plan)
    order = {m: i for i, m in enumerate(res.modifiers)}
    lab = {m: res.labels.get(m, m) for m in res.modifiers}
    suggested = answers[answers.interaction_p < 0.1]
    skipped = answers[~(answers.interaction_p < 0.1)][["modifier", "scale", "interaction_p"]]
    skipped = skipped.drop_duplicates()
    blocks = [
        Para("ICEMAN (RCT version) assesses a suggested effect modification — one outcome, one "
             "effect measure, one modifier — with interaction p < 0.10; the rating may differ "
             "between the absolute and the relative scale. Each core question is answered with "
             "one of the instrument's four options from the locked plan and the results, with "
             "the reason shown; the rules are listed in docs/plan-schema.md. The overall rating "
             "is the analyst's judgement recorded in the plan; the tool's proposal is a "
             "rule-based suggestion shown with its reasons, never a score or percentage."),
    ]
    if len(suggested):
        sug = suggested.assign(o=suggested.modifier.map(order)).sort_values(
            ["o", "scale", "question"], kind="stable")
        wide = sug.pivot_table(index=["modifier", "scale"], columns="question",
                               values="answer", aggfunc="first").reset_index()
        wide.columns = [f"Q{c}" if isinstance(c, (int, np.integer)) else c
                        for c in wide.columns]
        wide = wide.merge(proposed, on=["modifier", "scale"], how="left")
        wide["Analyst's rating"] = [
            recorded_rating(analyst, m, "relative" if is_ratio(sc) else "absolute")
            for m, sc in zip(wide.modifier, wide.scale)]
        wide = wide.assign(o=wide.modifier.map(order)).sort_values(["o", "scale"])
        wide.insert(0, "Modifier", [lab[m] for m in wide.modifier])
        wide = wide.drop(columns=["o", "modifier", "reasoning"]).rename(
            columns={"scale": "Scale", "proposed_rating": "Proposed (rule-based)"})
        blocks.append(Table(wide, "ICEMAN core questions, proposed and recorded ratings",
                            group="Modifier",
                            gt=credibility_table(sug, proposed, analyst), name="iceman"))
        reasons = sug[["label", "scale", "question", "answer", "reason"]].copy()
        reasons["question"] = "Q" + reasons.question.astype(str)
        reasons.columns = ["Modifier", "Scale", "Item", "Answer", "Reason"]
        blocks.append(Table(reasons, "ICEMAN answers with reasons", group="Modifier",
                            name="iceman-reasons"))
    else:
        blocks.append(Para("No modifier reached interaction p < 0.10 on either scale: ICEMAN "
                           "does not apply."))
    if len(skipped):
        sk = skipped.assign(o=skipped.modifier.map(order)).sort_values(["o", "scale"])
        blocks.append(Para("Not assessed (interaction p ≥ 0.10, no suggestion of effect "
                           "modification): " + "; ".join(
                               f"{lab[r.modifier]} ({r.scale}, {p_eq(r.interaction_p)})"
                               for r in sk.itertuples()) + "."))
    if not len(analyst):
        blocks.append(Para("No analyst rating is recorded in the plan's 'credibility' section."))
    elif analyst.assessor.notna().any() or analyst.reconciled.any():
        rec = analyst.assign(o=analyst.modifier.map(order)).sort_values(
            ["o", "scale", "reconciled"], kind="stable")
        blocks.append(Table(pd.DataFrame({
            "Modifier": [lab.get(m, m) for m in rec.modifier], "Scale": rec.scale,
            "Assessor": ["reconciled" if r else (a if isinstance(a, str) and a else "unnamed")
                         for a, r in zip(rec.assessor, rec.reconciled)],
            "Rating": rec.rating, "Rationale": rec.rationale.fillna("")}),
            "ICEMAN ratings by assessor (assessment in duplicate, ICEMAN manual)",
            group="Modifier", name="iceman-assessors",
            notes=("Each assessor rates independently; the reconciled rating is the one "
                   "agreed after discussion and is the one shown above.",)))
    sun = sun_checklist(res, plan)
    sun = pd.DataFrame({"Modifier": [lab[m] for m in sun.modifier],
                        "Criterion": sun.criterion.astype(str) + ". " + sun.item,
                        "Answer": sun.answer, "Basis": sun.reason})
    blocks.append(Table(sun, "Sun et al. (BMJ 2010) criteria", group="Modifier", name="sun"))
    return Section("Credibility of effect modification", tuple(blocks), id="credibility")


def _posthoc(a: PlannedAnalysis, png: bool) -> Section:
    if not a.posthoc:
        return Section("Post hoc analyses", (Para("None: every modifier analysed was "
                                                   "pre-specified in the plan."),),
                       id="posthoc", posthoc=True)
    hib = bool(a.plan.outcome.get("higher_is_better", False))
    blocks = [Para("These modifiers were not pre-specified. Each was analysed one at a time, in "
                   "its own model (treatment, the modifier, their interaction and the plan's "
                   "adjustment covariates); p-values are adjusted only within the post hoc "
                   "family, and none is confirmatory.")]
    for r in a.posthoc:
        m = r.posthoc[0]
        blocks.extend(_forests(replace(r, modifiers=(m,)), f"Post hoc: treatment effect by {m} "
                               "(hypothesis-generating).", f"posthoc-{m}", png,
                               higher_is_better=hib, adjusted=len(a.posthoc) > 1))
        disp = subgroup_frame(replace(r, modifiers=(m,)), adjusted=len(a.posthoc) > 1)
        disp = disp[disp.group != "Overall"].rename(columns=column_labels(r))
        blocks.append(Table(disp, f"Post hoc subgroup effects: {m}", group="Modifier",
                            name=f"posthoc-{m}"))
    return Section("Post hoc analyses", tuple(blocks), id="posthoc", posthoc=True)

