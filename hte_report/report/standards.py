"""The report against the reporting standards: the estimands of the analyses (ICH E9(R1)), the
deviation log (the run against the locked plan, CONSORT 2025 item 10) and a cross-reference of
each checklist item to the section that answers it (or why it does not apply).

The checklist is the package's compilation in ``docs/reporting-standards.md`` (CONSORT 2025,
SPIRIT 2025, ICEMAN, Sun et al., NEJM 2007, EMA 2019, ICH E9(R1), FDA 2023, PATH); items whose
wording there was recalled rather than checked against the primary text say so."""

from __future__ import annotations

import pandas as pd

from hte_report.analysis import PlannedAnalysis
from hte_report.presentation.survival import scale_label
from hte_report.report.model import Para, Section, Table
from hte_report.spec.deviations import plan_changes

ROLES = {"design": "heterogeneity expected at design", "key": "key subgroup for consistency",
         "exploratory": "exploratory"}


# ----------------------------------------------------------------------------- estimands
def estimand_section(a: PlannedAnalysis) -> Section:
    """One row per pre-specified modifier: the five attributes of an ICH E9(R1) estimand for
    its subgroup effects, and the modifier's role."""
    plan, res = a.plan, a.result
    tr = plan.raw["treatment"]
    treated = tr.get("treated_label") or f"{plan.treatment} = {tr['treated']}"
    control = tr.get("control_label") or f"{plan.treatment} = {tr['control']}"
    out = plan.outcome
    variable = out.get("label", out["variable"])
    if out.get("time_point"):
        variable += f", {out['time_point']}"
    est = plan.raw.get("estimand") or {}
    ice = "; ".join(x for x in (est.get("strategy") and f"{est['strategy']} strategy",
                                est.get("intercurrent_events")) if x) or (
        "not stated in the plan" + ("; the mixed model estimates the trajectories as if "
                                    "follow-up had continued (missing at random given the "
                                    "measurements), a hypothetical strategy"
                                    if (res.meta or {}).get("repeated") else ""))
    summaries = []
    for axis, (scale, model) in res.primary.items():
        summaries.append(f"{scale_label(res, scale)} ({axis}; {model})")
    summary = "; ".join(summaries)
    rows = [{"Analysis": "Overall (primary analysis)", "Role": "primary",
             "Population": "all analysed patients (see Study population)",
             "Summary measure": summary + "; marginal (standardized over all patients)"}]
    for m in plan.modifiers:
        kind = res.modifier_kinds.get(m.variable)
        subgroups = kind == "categorical" or bool(m.display_cutpoints)
        how = ("marginal within each level (standardized over the level's patients)"
               if subgroups else
               "conditional at stated values, other covariates at the reference profile")
        role = ROLES.get(m.role or "", "not classified in the plan")
        if m.stratification_factor:
            role += "; randomization stratification factor"
        rows.append({"Analysis": (f"Subgroups of {m.label}" if subgroups else
                                  f"Conditional effects by {m.label}"), "Role": role,
                     "Population": (f"patients in each subgroup of {m.label}" if subgroups
                                    else f"patients with a given {m.label} (at its quartiles "
                                         "or stated values)"),
                     "Summary measure": f"{summary}; {how}"})
    tab = pd.DataFrame(rows)
    notes = (f"Treatment: {treated} versus {control}. Variable: {variable}. Intercurrent "
             f"events: {ice}. Role of a subgroup as EMA/CHMP/539146/2013 classifies them (plan "
             "key modifiers[].role). Marginal effects average patient-level contrasts over the "
             "subgroup; conditional effects hold the other covariates fixed.",)
    blocks = [Para("Estimands of the analyses (ICH E9(R1)): the treatment condition and its "
                   "comparator, the population (the subgroup), the variable, the handling of "
                   "intercurrent events and the population-level summary."),
              Table(tab, "Estimands", notes=notes, name="estimands")]
    return Section("Estimands", tuple(blocks), id="estimands")


# ----------------------------------------------------------------------------- deviation log
def deviation_rows(a: PlannedAnalysis) -> pd.DataFrame:
    """Every departure of the run from the locked plan, with its source."""
    plan, res = a.plan, a.result
    rows = []
    lock = plan.lock
    if lock is None:
        rows.append({"Source": "lock", "Item": "plan", "Locked": "–", "As run": "not locked",
                     "Note": "no locked plan: every analysis is unverified against a "
                             "pre-registration"})
    elif lock.plan is not None:
        for c in plan_changes(lock.plan, plan.as_written):
            rows.append({"Source": "plan edited after locking", "Item": c["key"],
                         "Locked": c["locked"], "As run": c["now"], "Note": c["change"]})
    elif lock.plan_sha256 != plan.sha256:
        rows.append({"Source": "plan edited after locking", "Item": "plan",
                     "Locked": lock.plan_sha256[:16] + "…", "As run": plan.sha256[:16] + "…",
                     "Note": "the lock record (format < 3) keeps only the hash, so the changes "
                             "cannot be listed; re-lock to keep the plan itself"})
    for dev in getattr(plan, "deviations_found", ()):  # run as locked rather than refused
        rows.append({"Source": "locked plan key", "Item": dev["key"], "Locked": dev["locked"],
                     "As run": dev["as_run"], "Note": dev["note"]})
    for post in a.posthoc:
        for m in post.posthoc:
            rows.append({"Source": "post hoc analysis", "Item": f"modifier {m}", "Locked": "–",
                         "As run": "analysed one at a time",
                         "Note": "not in the plan: hypothesis-generating, own multiplicity "
                                 "family"})
    for m in res.posthoc:
        rows.append({"Source": "formula", "Item": f"modifier {m}", "Locked": "–",
                     "As run": "interaction in the formula",
                     "Note": "not a pre-specified modifier: labelled post hoc"})
    models = res.models
    if "fallback_from" in models:
        for r in models[models.fallback_from.astype(str) != ""].itertuples():
            rows.append({"Source": "working model", "Item": str(r.fallback_from), "Locked": str(
                r.fallback_from), "As run": str(r.model),
                "Note": "did not converge; replaced as the plan's fallback rule says"})
    for text in plan.raw.get("deviations") or []:
        rows.append({"Source": "recorded in the plan", "Item": "deviation", "Locked": "–",
                     "As run": "–", "Note": str(text)})
    return pd.DataFrame(rows, columns=["Source", "Item", "Locked", "As run", "Note"])


def deviation_section(a: PlannedAnalysis) -> Section:
    tab = deviation_rows(a)
    text = ("Deviation log (CONSORT 2025 item 10): the analysis as run compared with the locked "
            "plan key by key, the analyses that were not pre-specified, working models "
            "replaced by their fallback, and the deviations the plan itself records (with "
            "their reasons).")
    blocks: list = [Para(text)]
    if len(tab):
        blocks.append(Table(tab, "Deviations from the locked plan", name="deviation-log"))
    else:
        blocks.append(Para("None: the analysis as run matches the locked plan, and no analysis "
                           "outside it was run."))
    return Section("Appendix: deviation log", tuple(blocks), id="deviations")


# ----------------------------------------------------------------------------- cross-reference
#: (ID, requirement in brief, source, section ids that answer it)
CHECKLIST = [
    ("P1", "Where the protocol and analysis plan can be accessed", "SPIRIT 2025 item 5; "
     "CONSORT 2025 item 3", ("appendix",)),
    ("P2", "Version date and identifier of the plan", "SPIRIT 2025 item 2", ("appendix",)),
    ("P3", "Methods for subgroup and sensitivity analyses", "SPIRIT 2025 item 27d",
     ("methods", "appendix")),
    ("P4", "Outcome: variable, metric, aggregation, time point", "SPIRIT 2025 item 16; CONSORT "
     "2025 item 14", ("estimands", "appendix")),
    ("P5", "Randomisation stratification factors (flagged among modifiers)", "SPIRIT 2025 item "
     "21b; CONSORT 2025 item 17b; Sun 2012", ("estimands", "credibility")),
    ("P6", "Who is included in each analysis; missing data", "SPIRIT 2025 items 27b-c; CONSORT "
     "2025 items 21b-c", ("population", "methods")),
    ("P7", "Direction of each hypothesised modification stated a priori", "ICEMAN RCT item 1",
     ("credibility", "appendix")),
    ("P8", "One credibility assessment per outcome, modifier and effect measure",
     "ICEMAN preliminary considerations", ("credibility",)),
    ("P9", "Few modifiers, or multiplicity accounted for", "ICEMAN RCT item 4; Sun 2010/2012",
     ("subgroups",)),
    ("P10", "Continuous modifiers without arbitrary cut points", "ICEMAN RCT item 5; EMA 2019",
     ("continuous",)),
    ("P11", "Estimand of each subgroup analysis", "ICH E9(R1) (2019)", ("estimands",)),
    ("P12", "Subgroups classified (design / key / exploratory)", "EMA/CHMP/539146/2013",
     ("estimands",)),
    ("P13", "Covariates and adjustment model pre-specified; marginal or conditional",
     "FDA covariate-adjustment guidance (2023)", ("methods", "estimands")),
    ("P14", "Demographic subgroups (age group, sex, race, ethnicity)", "FDORA 2022 §3601-3603",
     ()),
    ("P15", "Risk-based (PATH) analysis when the overall result is positive", "PATH statement "
     "(Kent 2020)", ("risk",)),
    ("R1", "Methods distinguish pre-specified from post hoc analyses", "CONSORT 2025 item 21d",
     ("methods",)),
    ("R2", "Other analyses reported, pre-specified vs post hoc", "CONSORT 2025 item 28",
     ("subgroups", "posthoc")),
    ("R3", "Per group n, result, effect and CI; absolute and relative for binary outcomes",
     "CONSORT 2025 item 26", ("subgroups",)),
    ("R4", "Changes to analyses after the trial commenced, with reasons", "CONSORT 2025 item 10",
     ("deviations",)),
    ("R5", "Limitations including multiplicity", "CONSORT 2025 item 30", ("summary",
                                                                            "subgroups")),
    ("R6", "Where data, code and materials can be accessed; reproducibility", "CONSORT 2025 "
     "item 4; SPIRIT 2025 item 6", ("methods",)),
    ("R7", "A test of interaction, not separate within-subgroup p-values", "CONSORT 2010 E&E "
     "12b/18; EMA 2019", ("subgroups",)),
    ("R8", "Numbers of pre-specified and post hoc analyses; forest plot", "NEJM 2007 (Wang et "
     "al.)", ("summary", "subgroups")),
    ("R9", "Interaction p and credibility rating with item-level justification; in duplicate",
     "ICEMAN manual", ("credibility",)),
    ("R10", "ICEMAN only for suggested effect modification", "ICEMAN tool v1.1",
     ("credibility",)),
    ("R11", "Sun criteria beside ICEMAN", "Sun 2010 BMJ; Sun 2012 BMJ", ("credibility",)),
    ("R12", "PATH risk-based reporting", "PATH statement", ("risk",)),
    ("R13", "Forest plots of key subgroups; consistency with the overall effect; scale "
     "dependence", "EMA 2019", ("subgroups",)),
    ("R14", "Effect-measure-specific credibility ratings", "ICEMAN preliminary considerations",
     ("credibility",)),
    ("R15", "Regulatory forest layout (symbol size, reference lines, log axis)", "chevron "
     "FSTG01/02", ("subgroups",)),
]


def crossref_rows(a: PlannedAnalysis, present: dict[str, str]) -> pd.DataFrame:
    """Each checklist item: the sections that answer it (titles and anchors) or why it does not
    apply. ``present``: section id -> title of the report's sections."""
    plan, res = a.plan, a.result
    planned_path = bool((plan.raw.get("risk_based") or {}).get("planned"))
    reasons = {
        "P14": "the plan pre-specifies no demographic modifiers (demographics: template); "
               "enrolment goals of a Diversity Action Plan are outside this report",
        "P15": "the plan has no risk-based (PATH) analysis",
        "R12": "the plan has no risk-based (PATH) analysis",
    }
    mods = plan.modifiers
    gaps = {  # answered only in part because the plan does not record what the item needs
        "P5": not any(m.stratification_factor is not None for m in mods)
        and "the plan does not say which modifiers were stratification factors "
            "(modifiers[].stratification_factor)",
        "P11": not (plan.raw.get("estimand") or {})
        and "the plan states no intercurrent-event strategy (estimand)",
        "P12": not any(m.role for m in mods)
        and "the plan does not classify its subgroups (modifiers[].role)",
        "R6": "the report gives hashes, versions and seeds; where data and code can be "
              "accessed is for the trial's own documents",
        "R9": not (plan.raw.get("credibility") or [])
        and "no analyst rating is recorded in the plan (credibility)",
    }
    demographic = [m.label for m in mods
                   if any(w in f"{m.variable} {m.label}".lower()
                          for w in ("sex", "gender", "age", "race", "ethnic"))]
    rows = []
    for item, text, source, ids in CHECKLIST:
        where = [i for i in ids if i in present]
        if item in ("P15", "R12") and not planned_path:
            where = []
        if item == "P14" and demographic:
            where = ["subgroups"]
        if item in ("R13", "R15") and len(res.primary) < 2:
            text += " (one scale here)"
        if item == "R3" and res.family != "binary":
            text += " (not binary here: the outcome's own scales)"
        answer = "; ".join(f"{present[i]} (#{i})" for i in where)
        if item == "P14" and demographic:
            answer += " — demographic modifiers: " + ", ".join(demographic) + \
                "; no enrolment-goal tables"
        gap = gaps.get(item)
        if answer and gap:
            answer += f" — gap: {gap}"
        rows.append({"Item": item, "Requirement": text, "Source": source,
                     "Where answered": answer
                     or f"not applicable: {reasons.get(item, 'no section of this report')}",
                     "anchors": " ".join(where)})
    return pd.DataFrame(rows)


def crossref_section(a: PlannedAnalysis, sections) -> Section:
    present = {s.id: s.title for s in sections if s.id}
    present.setdefault("deviations", "Appendix: deviation log")
    present.setdefault("standards", "Appendix: reporting standards")
    tab = crossref_rows(a, present)
    blocks = [Para("Where this report answers each item of the reporting checklist it is read "
                   "against (docs/reporting-standards.md: CONSORT 2025, SPIRIT 2025, ICEMAN, Sun "
                   "et al., NEJM 2007, EMA 2019, ICH E9(R1), FDA 2023, PATH), or why an item "
                   "does not apply. Requirements are paraphrased; several were compiled from "
                   "recall and are marked so in that document."),
              Table(tab.drop(columns="anchors"), "Reporting-standards cross-reference",
                    name="crossref")]
    return Section("Appendix: reporting standards", tuple(blocks), id="standards")
