"""The report's opening sections: the executive summary (with the plan's lock status), the
study population (arms, exclusions, baseline characteristics) and the overall effect."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from hte_report.analysis import PlannedAnalysis
from hte_report.core.format import fmt_count, fmt_p, p_eq, strategy_text
from hte_report.presentation.analyses import overall_words
from hte_report.presentation.repeated import effect_words
from hte_report.presentation.survival import fmt_effect, scale_label
from hte_report.report.model import Callout, Para, Section, Table
from hte_report.results.result import HTEResult


def _lock_callout(lock: str, plan) -> Callout | None:
    if lock == "modified":
        return Callout("danger", "Plan modified after locking",
                       f"The plan's SHA-256 ({plan.sha256[:16]}…) differs from the locked hash "
                       f"({plan.lock.plan_sha256[:16]}…, locked {plan.lock.locked_at}). The "
                       "analyses below are not confirmatory; report every change as a "
                       "deviation.")
    if lock == "unlocked":
        return Callout("warning", "Plan not locked",
                       "No lock record was found for this plan: nothing shows it was fixed "
                       "before the data were seen. Lock it (hte-report lock PLAN) before "
                       "unblinding.")
    return None


def _axis_phrase(res: HTEResult, axis: str) -> str:
    scale, model = res.primary[axis]
    o = res.overall_effect(axis)
    ci = fmt_effect(o.estimate, o.conf_low, o.conf_high, scale)
    name = scale_label(res, scale)
    return f"{name[0].lower()}{name[1:]} {ci}, {p_eq(o.p_value)} ({model} model)"


def _summary(a: PlannedAnalysis, answers, proposed, lock) -> Section:
    plan, res = a.plan, a.result
    o = res.overall_effect("absolute")
    ctrl = plan.raw["treatment"].get("control_label", str(plan.raw["treatment"]["control"]))
    trt = plan.raw["treatment"].get("treated_label", str(plan.raw["treatment"]["treated"]))
    out = plan.outcome.get("label", plan.outcome["variable"])
    blocks = []
    cal = _lock_callout(lock, plan)
    if cal:
        blocks.append(cal)
    if plan.lock and plan.lock.statement:
        blocks.append(Para(f"Lock statement: {plan.lock.statement.rstrip('.')}. The lock record "
                           "holds the plan's hash and time only, not a hash of the data."))
    if res.family == "binary":
        r1 = o.events_treated / o.n_treated
        r0 = o.events_control / o.n_control
        first = (f"{out}: {fmt_count(o.events_treated, o.n_treated)} ({100 * r1:.1f}%) with "
                 f"{trt} vs {fmt_count(o.events_control, o.n_control)} ({100 * r0:.1f}%) with "
                 f"{ctrl}.")
    elif res.family == "survival":
        first = (f"{out}: {int(o.events_treated)} events in {int(o.n_treated)} patients with "
                 f"{trt} vs {int(o.events_control)} in {int(o.n_control)} with {ctrl}.")
    else:
        first = (f"{out}: {int(o.n_treated)} participants with {trt}, {int(o.n_control)} with "
                 f"{ctrl}.")
    effects = "; ".join(f"{ax} scale: {_axis_phrase(res, ax)}" for ax in res.primary)
    blocks.append(Para(first + f" Overall effect ({overall_words(res)}, standardized) — "
                       + effects + "."))
    if plan.raw["trial"].get("design") == "observational":
        blocks.append(Callout(
            "warning", "Observational data",
            "Treatment was not randomized. The effects above come from the outcome models of "
            "the plan's formula; the estimates that adjust for the named confounders by "
            "g-computation, inverse-probability weighting and augmented (doubly robust) "
            "weighting, with their positivity and balance checks, are in the section "
            "'Observational analysis' (#observational). They are causal only under "
            "consistency, exchangeability given those confounders, and positivity."))
    if res.overall_analysis:
        blocks.append(Para(f"Subgroup analyses, as pre-specified: {strategy_text(res.strategy)}"
                           "; each analysis uses the rows where its own variables are observed "
                           "(see Methods)."))
    excluded = res.n_input - res.n_analysed
    if len(res.analyses) and "n_excluded" in res.analyses:
        excluded = max(excluded, int(res.analyses.n_excluded.max()))
    if excluded > 0.05 * res.n_input:
        blocks.append(Callout("warning", "Missing data",
                              f"Up to {excluded} of {res.n_input} rows "
                              f"({excluded / res.n_input:.0%}) were excluded from an analysis "
                              "for missing values (complete cases per analysis); see the study "
                              "population section for the breakdown by variable and arm and "
                              "Methods for the rows of each analysis. Results assume the "
                              "excluded rows are missing at random given the covariates."))
    pre = [m for m in res.modifiers if m not in res.posthoc]
    alpha = plan.alpha
    confirmed, nominal = [], []
    for ax, (scale, model) in res.primary.items():
        t = res.interaction_p(ax)
        t = t[t.modifier.isin(pre)]
        for r in t.itertuples():
            name = res.labels.get(r.modifier, r.modifier)
            text = (f"{name} on the {scale_label(res, scale).lower()} scale "
                    f"({model}: {p_eq(r.p_value)}, "
                    f"{res.multiplicity}-adjusted {fmt_p(r.p_adjusted)})")
            if np.isfinite(r.p_adjusted) and r.p_adjusted < alpha:
                confirmed.append(text)
            elif np.isfinite(r.p_value) and r.p_value < 0.1:
                nominal.append(text)
    scales = " and ".join(scale_label(res, s).lower() for s, _ in res.primary.values())
    if confirmed:
        blocks.append(Para(f"Effect modification meeting the pre-specified criterion "
                           f"({res.multiplicity}-adjusted p < {alpha}, Wald interaction test of "
                           f"the primary model for each scale): " + "; ".join(confirmed) + "."))
    else:
        blocks.append(Para(f"No pre-specified modifier (of {len(pre)}) met the pre-specified "
                           f"criterion ({res.multiplicity}-adjusted p < {alpha}) on the "
                           f"{scales} scale."))
    if nominal:
        blocks.append(Para("Nominal signals (unadjusted p < 0.10, not significant after "
                           "adjustment; exploratory, not evidence of effect modification): "
                           + "; ".join(nominal) + "." + (
                               " A constant effect on one scale implies variation on the "
                               "other; the scales answer different questions."
                               if len(res.primary) > 1 else "")))
    cred = []
    for r in proposed.itertuples():
        if r.proposed_rating != "not applicable" and r.modifier not in res.posthoc:
            cred.append(f"{res.labels.get(r.modifier, r.modifier)} ({r.scale}): proposed "
                        f"{r.proposed_rating} ({r.reasoning}).")
    blocks.append(Para("Credibility (ICEMAN, assessed only where interaction p < 0.10): "
                       + (" ".join(cred) if cred else "nothing to assess.")
                       + " The analyst's recorded rating, where given, is in the credibility "
                         "section."))
    if a.posthoc:
        names = ", ".join(p.posthoc[0] for p in a.posthoc)
        blocks.append(Callout("warning", "Post hoc analyses",
                              f"Modifiers not in the plan ({names}) are reported separately as "
                              "post hoc — hypothesis-generating, never confirmatory."))
    devs = plan.raw.get("deviations") or []
    blocks.append(Para("Deviations from the plan: " + ("; ".join(devs) if devs else
                       "none recorded") + ("; the plan file differs from its lock."
                                           if lock == "modified" else ".")))
    return Section("Executive summary", tuple(blocks), id="summary")


def _population(a: PlannedAnalysis) -> Section:
    res = a.result
    o = res.overall.iloc[0]
    ctrl, trt = res.treatment_labels
    arms = pd.DataFrame({
        "Arm": [f"{a.plan.raw['treatment'].get('treated_label', trt)} ({res.treatment} = {trt})",
                f"{a.plan.raw['treatment'].get('control_label', ctrl)} ({res.treatment} = {ctrl})",
                "Total"],
        "Participants analysed": [str(int(o.n_treated)), str(int(o.n_control)),
                                  str(res.n_analysed)],
        "Events": ([str(int(o.events_treated)), str(int(o.events_control)),
                    str(int(o.events_treated + o.events_control))]
                   if res.family != "continuous" else ["–", "–", "–"]),
    })
    rm = (res.meta or {}).get("repeated")
    if rm:  # participants are patients; the rows are their visits
        arms.iloc[2, 1] = str(int(o.n_treated + o.n_control))
        arms = arms.drop(columns="Events")
        arms["Visits analysed"] = [str(int(v)) for v in _visits(a, rm)] + [str(res.n_analysed)]
    ex = res.exclusions.copy()
    ex = ex[ex.n_missing > 0]
    blocks = [Para(a.plan.raw["population"])]
    steps = (res.meta or {}).get("analysis_set") or []
    if steps:
        blocks.append(Table(pd.DataFrame({
            "Step": [st["step"] for st in steps], "Rule (plan: analysis_set)":
                [st["rule"] for st in steps],
            "Rows before": [str(st["rows_before"]) for st in steps],
            "Rows kept": [str(st["rows_kept"]) for st in steps],
            "Rows removed": [str(st["rows_before"] - st["rows_kept"]) for st in steps]}),
            "Analysis set: rows selected by the plan", name="analysis-set",
            notes=(f"Rows in the data as given: {res.meta.get('rows_given')}. The data hash "
                   "in this report is of the data as given.",)))
    blocks += [
        Table(arms, "Participants analysed by arm", name="arms"),
        Table(baseline_table(a), "Baseline characteristics of analysed participants by arm",
              notes=("Mean (SD) for continuous variables; n (%) for categorical ones.",),
              name="baseline"),
        Para(f"Rows in the data: {res.n_input}; analysed: {res.n_analysed}; excluded for a "
             f"missing value in a variable the model uses: {res.n_input - res.n_analysed}."),
    ]
    if len(ex):
        ex = ex.rename(columns={"variable": "Variable", "n_missing": "Rows missing"})
        ex["Rows missing"] = ex["Rows missing"].astype(str)
        raw = a.data
        used = [v for v in res.exclusions.variable]
        tr = a.plan.raw["treatment"]
        for arm, code in (("treated", tr["treated"]), ("control", tr["control"])):
            rows = raw[raw[res.treatment] == code]
            ex[f"Missing ({arm} arm)"] = [str(int(rows[v].isna().sum())) for v in ex.Variable]
        no_arm = int(raw[res.treatment].isna().sum())
        if no_arm:
            blocks.append(Para(f"{no_arm} rows have no treatment assignment."))
        del used
        blocks.append(Table(ex, "Exclusions by variable (a row may miss several)",
                            name="exclusions"))
    return Section("Study population", tuple(blocks), id="population")


def _visits(a: PlannedAnalysis, rm: dict) -> list[int]:
    """Analysed visits of the treated and the control arm (primary analysis's rows)."""
    res = a.result
    cols = [c for c in (res.outcome, res.treatment, rm["time"], rm["group"],
                        *res.adjustment) if c in a.data.columns]
    d = a.data.dropna(subset=cols)
    tr = a.plan.raw["treatment"]
    return [int((d[res.treatment] == tr[k]).sum()) for k in ("treated", "control")]


def _term_column(term: str) -> tuple[str, bool]:
    """The data column of an adjustment term: ``strata(site)`` -> (``site``, True), ``C(x)`` ->
    (``x``, False), a plain name -> itself."""
    m = re.fullmatch(r"\s*(strata|C)\(\s*([^(),]+?)\s*\)\s*", term)
    if m:
        return m.group(2), m.group(1) == "strata"
    return term, False


def baseline_table(a: PlannedAnalysis) -> pd.DataFrame:
    """Modifiers and covariates by arm over the analysed rows (complete cases)."""
    res = a.result
    terms = [_term_column(t) for t in res.adjustment]
    adjustment = [c for c, _ in terms]
    strata = {c for c, is_stratum in terms if is_stratum}
    used = [res.outcome, res.treatment, *adjustment]  # the primary analysis's rows
    if not res.overall_analysis:  # one model with every modifier
        used += list(res.modifiers)
    elif res.overall_analysis == "unadjusted":
        used = used[:2]
    used += [c for c in (res.exposure,) if c]
    used = [c for c in used if c in a.data.columns]
    frame = a.data.dropna(subset=used)
    group = ((res.meta or {}).get("repeated") or {}).get("group")
    if group in frame.columns:  # repeated measures: one row per patient (the first visit)
        frame = frame.drop_duplicates(subset=group)
    ctl_code, trt_code = a.plan.raw["treatment"]["control"], a.plan.raw["treatment"]["treated"]
    arms = {"treated": frame[frame[res.treatment] == trt_code],
            "control": frame[frame[res.treatment] == ctl_code]}
    rows = []
    for var in dict.fromkeys([*res.modifiers, *adjustment]):
        if var not in frame.columns:  # a transformed term, e.g. I(age ** 2)
            continue
        label = res.labels.get(var, var)
        if var in strata and var not in res.modifiers:
            label = f"{label} (stratum of the Cox model)"
        kind = res.modifier_kinds.get(var)
        s = frame[var]
        if kind == "continuous" or (kind is None and s.nunique() > 5
                                    and pd.api.types.is_numeric_dtype(s)):
            cells = {k: f"{g[var].mean():.1f} ({g[var].std():.1f})" for k, g in arms.items()}
            rows.append({"Characteristic": label, **cells})
        else:
            rows.append({"Characteristic": label, "treated": "", "control": ""})
            for lv in sorted(s.unique(), key=str):
                cells = {k: f"{int((g[var] == lv).sum())} "
                            f"({100 * (g[var] == lv).mean():.0f}%)" for k, g in arms.items()}
                rows.append({"Characteristic": f"   {res.level_label(var, str(lv))}"
                             if var in res.level_labels else f"   {var} = {lv}", **cells})
    tl = a.plan.raw["treatment"].get("treated_label", "Treated")
    cl = a.plan.raw["treatment"].get("control_label", "Control")
    return pd.DataFrame(rows).rename(columns={
        "treated": f"{tl} (n = {len(arms['treated'])})",
        "control": f"{cl} (n = {len(arms['control'])})"})


def _overall(res: HTEResult) -> Section:
    df = res._comparison(res.overall, None)
    rows = []
    for r in df.itertuples():
        h = getattr(r, "horizon", np.nan)
        rows.append({"Scale": scale_label(res, r.scale, horizon=h if pd.notna(h) else None),
                     "Model": r.model,
                     "Estimate (CI)": fmt_effect(r.estimate, r.conf_low, r.conf_high, r.scale),
                     "P": fmt_p(r.p_value)})
    tab = pd.DataFrame(rows)
    words = (f"The {overall_words(res)}: standardized (g-computation) effects over all "
             "analysed patients from every working model, whatever the subgroup-analysis "
             "strategy. " + ("The same average treatment effect is shown on the absolute "
                             "and the relative scale; " if len(res.primary) > 1 else "")
             + "each row names the model that produced it.")
    if (res.meta or {}).get("repeated"):
        words = (f"The {overall_words(res)}: the treatment {effect_words(res)} averaged over all "
                 "analysed patients, from every working model (the first is primary); each "
                 "row names the model that produced it.")
    if res.family == "survival":
        words = (f"The {overall_words(res)}: the hazard ratio of the Cox model (conditional on "
                 "the adjustment covariates), the survival difference at each horizon "
                 "standardized over all analysed patients from the same Cox model (Breslow "
                 "baseline hazard), and the restricted-mean-survival-time difference from "
                 "Kaplan–Meier curves per arm (unadjusted). A hazard ratio below 1 and a "
                 "survival or RMST difference above 0 favour treatment.")
    return Section("Overall effect", (
        Para(words),
        Table(tab, f"Overall treatment effect ({int(res.conf_level * 100)}% CI)", name="overall"),
    ), id="overall")


