"""The report's observational section (``trial.design: observational``): the identification
assumptions in plain words, the roles of the variables (confounder, effect modifier, or both),
the propensity-score overlap and positivity verdict in every subgroup, covariate balance before
and after weighting, and the standardized effects of g-computation, IPW and AIPW side by side,
each number labelled with the estimator that produced it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_report.analysis import PlannedAnalysis
from hte_report.core.format import fmt_ci, fmt_p
from hte_report.estimation.observational import ESTIMATOR_LABELS, OVERALL
from hte_report.presentation.overlap import SMD_LIMIT, balance_summary, love_plot, ps_histograms
from hte_report.report.model import Bullets, Callout, Figure, Para, Section, Table

SCALE_WORDS = {"MD": "mean difference", "RD": "risk difference (percentage points)",
               "RR": "risk ratio", "OR": "odds ratio"}


def _level(plan, modifier: str, level) -> str:
    if modifier == OVERALL:
        return OVERALL
    labels = (plan.level_labels or {}).get(modifier, {})
    return str(labels.get(str(level), level))


def _mod(plan, modifier: str) -> str:
    return OVERALL if modifier == OVERALL else plan.labels.get(modifier, modifier)


def observational_section(a: PlannedAnalysis, png: bool = False) -> Section | None:
    """None unless the plan's design is observational."""
    plan = a.plan
    if plan.raw["trial"].get("design") != "observational":
        return None
    res = a.observational
    if res is None:
        return Section("Observational analysis", (Callout(
            "warning", "Observational estimators not produced",
            f"g-computation, IPW and AIPW cover binary and continuous outcomes; this plan's "
            f"outcome family is {plan.outcome['family']}. The effects in this report come from "
            "the plan's outcome models only and are causal only under exchangeability given "
            "their adjustment covariates."),), id="observational")
    m = res.meta
    arms = (plan.raw["treatment"].get("treated_label", "treated"),
            plan.raw["treatment"].get("control_label", "control"))
    conf = ", ".join(m["confounders"])
    blocks: list = [Para(
        "Treatment was not randomized. The effects below are causal only under three "
        "assumptions, which the data cannot confirm:"), Bullets((
            f"Consistency: each patient's observed outcome is the outcome under the treatment "
            f"received ({arms[0]} or {arms[1]}), which is well defined.",
            f"Conditional exchangeability: given the confounders ({conf}), treatment is "
            "independent of the potential outcomes — there is no unmeasured confounding. "
            "Subgroup effects additionally assume it within each subgroup.",
            "Positivity: every patient (and every subgroup) had a chance of receiving either "
            "treatment. The propensity-score checks below test this in the data; a subgroup "
            "where it fails gets no estimate.",
        ))]
    blocks.append(Table(_target_trial(plan, res, arms), (
        "The target trial this analysis emulates (Hernán & Robins 2016), from the plan's "
        "entries; what the plan does not state is marked."), name="observational-target-trial"))
    roles = pd.DataFrame([{"Variable": _mod(plan, k), "Role": v} for k, v in m["roles"].items()])
    blocks.append(Table(roles, "Roles of the variables. A confounder is adjusted for in the "
                        "propensity and outcome models; an effect modifier defines subgroups "
                        "(crossed with the treatment in the outcome model); a variable can be "
                        "both.", name="observational-roles"))
    pos = res.positivity
    bad = pos[pos.verdict != "adequate"]
    if len(bad):
        items = "; ".join(f"{_mod(plan, r.modifier)}: {_level(plan, r.modifier, r.level)} — "
                          f"{r.verdict} ({r.reason})" for r in bad.itertuples())
        kind = "danger" if (bad.verdict == "violated").any() else "warning"
        blocks.append(Callout(kind, "Positivity", items + ". Violated subgroups have no estimate "
                              "(not estimable)."))
    blocks.append(Table(_positivity_frame(plan, res), (
        f"Propensity-score overlap by subgroup. Propensity model (logistic): "
        f"{_first(res, 'ps_formula')}. Share outside: rows with a propensity score outside "
        f"[{m['threshold']:g}, {1 - m['threshold']:g}]; ESS: effective sample size "
        f"(sum w)^2 / sum w^2 of the inverse-probability weights in each arm. Verdict: "
        f"violated if an arm is empty or at least {m['max_outside']:.0%} of rows are outside; "
        "caution if any row is outside or an arm's ESS is under half its size."
        + (f" Trimming (Crump et al. 2009): rows with a propensity score outside "
           f"[{m['trim_alpha']:.3f}, {1 - m['trim_alpha']:.3f}] were removed before every "
           f"model was refitted ({m['n_trimmed']} rows); the estimates apply to the trimmed "
           "population." if m.get("trim") is not None else "")),
        group="Subgroup", name="observational-positivity"))
    mods = m["modifiers"] or [None]

    def titles(mod, lv):
        return f"{_mod(plan, mod)}: {_level(plan, mod, lv)}"

    for mod in mods:
        tag = mod or "overall"
        blocks.append(Figure.from_matplotlib(
            ps_histograms(res, mod, arm_labels=arms, titles=titles),
            "Propensity scores by arm (treated above the axis, control below; share of each arm "
            "per bin), all patients" + (f" and within each level of {_mod(plan, mod)}" if mod
                                         else "") + f"; dashed lines at {m['threshold']:g} and "
            f"{1 - m['threshold']:g}.", f"observational-ps-{tag}", png=png))
        blocks.append(Figure.from_matplotlib(
            love_plot(res, mod, titles=titles),
            "Covariate balance: standardized mean differences of the propensity model's "
            "columns, unweighted (open) and weighted by the stabilized inverse-probability "
            f"weights (filled); dashed lines at ±{SMD_LIMIT:g}"
            + (f"; within each level of {_mod(plan, mod)} the weights come from the same "
               "propensity model" if mod else "") + ".", f"observational-balance-{tag}",
            png=png))
    bs = balance_summary(res)
    bs = pd.DataFrame({
        "Subgroup": [_mod(plan, x) for x in bs.modifier],
        "Level": [_level(plan, x, y) for x, y in zip(bs.modifier, bs.level)],
        "Max |SMD| unweighted": bs.max_abs_smd_unweighted.map(lambda v: f"{v:.3f}"),
        "Max |SMD| weighted": bs.max_abs_smd_weighted.map(lambda v: f"{v:.3f}"),
        f"Columns with |SMD| > {SMD_LIMIT:g} after weighting": bs.n_above_limit_weighted,
    })
    blocks.append(Table(bs, "Balance summary per subgroup.", group="Subgroup",
                        name="observational-balance"))
    for scale in dict.fromkeys(res.effects.scale):
        blocks.append(Table(_effects_frame(plan, res, scale), (
            f"Standardized effects of {arms[0]} vs {arms[1]}, {SCALE_WORDS[scale]}, with "
            f"{100 * m['conf_level']:g}% confidence intervals, by estimator: "
            + "; ".join(f"{ESTIMATOR_LABELS[k]}" for k in m["estimators"]) + "."),
            notes=_notes(res), group="Subgroup", name=f"observational-effects-{scale}"))
    ev_scale = "RR" if m["family"] == "binary" else "MD"
    blocks.append(Table(_evalue_frame(plan, res, ev_scale), (
        "Sensitivity to unmeasured confounding: E-values (VanderWeele & Ding 2017) — the "
        "minimum risk ratio an unmeasured confounder would need with both treatment and "
        "outcome, beyond the measured confounders, to explain away the estimate (and, in "
        "brackets, to move the confidence interval to include no effect; 1 when it already "
        "does)" + ("." if ev_scale == "RR" else ", from the mean difference as RR = "
                   "exp(0.91 MD / SD(outcome)).")),
        group="Subgroup", name="observational-evalues"))
    if len(res.heterogeneity):
        h = res.heterogeneity
        blocks.append(Table(pd.DataFrame({
            "Subgroup": [_mod(plan, x) for x in h.modifier],
            "Scale": h.scale, "Estimator": [ESTIMATOR_LABELS[k] for k in h.estimator],
            "Wald chi-square": h.statistic.map(lambda v: "–" if np.isnan(v) else f"{v:.2f}"),
            "df": h.df, "p": h.p_value.map(fmt_p)}),
            "Heterogeneity: Wald tests of equal standardized effects across the levels of each "
            "subgroup variable, per estimator and scale (joint sandwich covariance; "
            "unadjusted for multiplicity).", group="Subgroup", name="observational-heterogeneity"))
    if len(res.interactions):
        i = res.interactions
        blocks.append(Table(pd.DataFrame({
            "Subgroup": [_mod(plan, x) for x in i.modifier],
            "Comparison": [f"{_level(plan, x, a_)} vs {_level(plan, x, b_)}"
                           for x, a_, b_ in zip(i.modifier, i.level, i.reference)],
            "Scale": [f"{s_} ({c_})" for s_, c_ in zip(i.scale, i.contrast)],
            "Estimator": [ESTIMATOR_LABELS[k] for k in i.estimator],
            "Interaction (CI)": [fmt_ci(r.estimate, r.conf_low, r.conf_high, r.scale)
                                 for r in i.itertuples()],
            "p": i.p_value.map(fmt_p),
            "E-value (CI)": [f"{r.e_value:.2f} ({r.e_value_ci:.2f})" if np.isfinite(r.e_value)
                             else "–" for r in i.itertuples()]}),
            "Interaction effects: each level against the reference level — difference of "
            "risk differences or mean differences, ratio of risk or odds ratios — per "
            "estimator, with the E-value of the ratio of risk ratios.", group="Subgroup",
            name="observational-interactions"))
    if m.get("skipped_modifiers"):
        blocks.append(Para("Continuous modifiers (" + ", ".join(
            _mod(plan, x) for x in m["skipped_modifiers"]) + ") have no observational "
            "subgroup estimates: define categories in the plan to obtain them."))
    return Section("Observational analysis: confounding and positivity", tuple(blocks),
                   id="observational")


def _first(res, col: str) -> str:
    e = res.effects
    return str(e[e.modifier == OVERALL][col].iloc[0])


def _notes(res) -> tuple[str, ...]:
    m = res.meta
    e = res.effects
    out_f = "; ".join(dict.fromkeys(e.outcome_formula))
    link = "logistic" if m["family"] == "binary" else "linear"
    return (
        "g-computation: mean over the subgroup's rows of the outcome model's predictions "
        f"with everyone treated and untreated; outcome models ({link}): {out_f}.",
        "IPW: Hájek (weighted-mean) estimator with stabilized weights P(A=a) / P(A=a | X) from "
        "the propensity model.",
        "AIPW: augmented IPW (doubly robust), consistent if either the propensity or the "
        "outcome model is correct.",
        *(("Overlap weights: 1 - e for the treated, e for the controls (Li, Morgan & "
           "Zaslavsky 2018); they estimate a different quantity, the average effect in the "
           "population where either treatment is plausible (ATO), not in all patients.",)
          if "overlap" in m["estimators"] else ()),
        "Standard errors: empirical sandwich of the stacked estimating equations (propensity "
        "model, outcome model and the means), accounting for the estimated nuisance models"
        + (f"; clustered by {m['cluster']}" if m.get("cluster") else "")
        + ". Ratio intervals are computed on the log scale. The Subgroups section's rows come "
        "from the plan's model formula (one-at-a-time, without the other modifiers); the rows "
        "here adjust for every named confounder.",
    )


def _effects_frame(plan, res, scale: str) -> pd.DataFrame:
    e = res.effects[res.effects.scale == scale]
    rows = []
    for (mod, lv), g in e.groupby(["modifier", "level"], sort=False):
        row = {"Subgroup": _mod(plan, mod), "Level": _level(plan, mod, lv),
               "n (treated / control)": f"{g.n.iloc[0]} ({g.n_treated.iloc[0]} / "
                                        f"{g.n_control.iloc[0]})",
               "Positivity": g.positivity.iloc[0]}
        for r in g.itertuples():
            row[ESTIMATOR_LABELS[r.estimator]] = (
                fmt_ci(r.estimate, r.conf_low, r.conf_high, scale) if np.isfinite(r.estimate)
                else "not estimable")
        rows.append(row)
    return pd.DataFrame(rows)


def _positivity_frame(plan, res) -> pd.DataFrame:
    p = res.positivity

    def rng(lo, hi):
        return "–" if np.isnan(lo) else f"{lo:.3f}–{hi:.3f}"

    return pd.DataFrame({
        "Subgroup": [_mod(plan, x) for x in p.modifier],
        "Level": [_level(plan, x, y) for x, y in zip(p.modifier, p.level)],
        "n (treated / control)": [f"{r.n} ({r.n_treated} / {r.n_control})"
                                  for r in p.itertuples()],
        "PS range, treated": [rng(r.ps_min_treated, r.ps_max_treated) for r in p.itertuples()],
        "PS range, control": [rng(r.ps_min_control, r.ps_max_control) for r in p.itertuples()],
        "Share outside": p.share_outside.map(lambda v: "–" if np.isnan(v) else f"{v:.1%}"),
        "ESS treated / control": [
            "–" if np.isnan(r.ess_treated) else f"{r.ess_treated:.0f} / {r.ess_control:.0f}"
            for r in p.itertuples()],
        "Trimmed": p.n_trimmed,
        "Verdict": p.verdict,
    })


def _evalue_frame(plan, res, scale: str) -> pd.DataFrame:
    e = res.effects[res.effects.scale == scale]
    rows = []
    for (mod, lv), g in e.groupby(["modifier", "level"], sort=False):
        row = {"Subgroup": _mod(plan, mod), "Level": _level(plan, mod, lv)}
        for r in g.itertuples():
            row[ESTIMATOR_LABELS[r.estimator]] = (
                f"{r.e_value:.2f} ({r.e_value_ci:.2f})" if np.isfinite(r.e_value)
                else "not estimable")
        rows.append(row)
    return pd.DataFrame(rows)


def _target_trial(plan, res, arms) -> pd.DataFrame:
    raw = plan.raw
    out = plan.outcome
    m = res.meta
    outcome = out.get("label", out["variable"]) + (f", {out['time_point']}"
                                                   if out.get("time_point") else "")
    scales = "risk difference, risk ratio and odds ratio" if m["family"] == "binary" else \
        "mean difference"
    trimmed = (" in the population with overlapping propensity scores (Crump trimming)"
               if m.get("trim") is not None else "")
    rows = [
        ("Eligibility", " ".join(str(raw.get("population", "")).split()) or "not stated"),
        ("Treatment strategies", f"{arms[0]} vs {arms[1]} ({plan.treatment} = "
         f"{raw['treatment']['treated']} vs {raw['treatment']['control']})"),
        ("Assignment", "not randomized: emulated by adjustment for the confounders ("
         + ", ".join(m["confounders"]) + ")"),
        ("Time zero", "not stated in the plan: the confounders must be measured before "
         "the treatment decision, and follow-up must start at it"),
        ("Outcome", outcome),
        ("Causal contrast", f"average treatment effect (standardized over each subgroup's "
         f"patients{trimmed}) on the {scales}, for the treatment as recorded (no "
         "adjustment for later deviations from it)"),
        ("Analysis", "; ".join(ESTIMATOR_LABELS[k] for k in m["estimators"])),
    ]
    return pd.DataFrame(rows, columns=["Component", "This analysis"])
