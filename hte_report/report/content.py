"""Build the pre-registered HTE report (a :class:`Report`) from a planned analysis."""

from __future__ import annotations

import os
import platform
from dataclasses import replace
from datetime import datetime, timezone
from importlib import metadata

import numpy as np
import pandas as pd
import yaml

from hte_report._version import __version__
from hte_report.analysis import PlannedAnalysis
from hte_report.core.format import MINUS, SCALE_NAMES, fmt_ci, fmt_count, fmt_p, is_ratio, p_eq
from hte_report.core.inference import familywise_error, qualitative_interaction
from hte_report.errors import HTEReportError
from hte_report.presentation.credibility import (
    analyst_ratings,
    credibility_table,
    iceman,
    propose_rating,
    sun_checklist,
)
from hte_report.presentation.tables import (
    column_labels,
    interaction_table,
    subgroup_frame,
    subgroup_table,
)
from hte_report.report.model import Bullets, Callout, Code, Figure, Para, Report, Section, Table  # noqa: F401
from hte_report.results.result import HTEResult

DEPENDENCIES = ("numpy", "pandas", "scipy", "statsmodels", "formulaic", "great-tables",
                "matplotlib", "typst", "PyYAML")


def versions() -> dict[str, str]:
    out = {"hte-report": __version__, "python": platform.python_version()}
    for dep in DEPENDENCIES:
        try:
            out[dep] = metadata.version(dep)
        except metadata.PackageNotFoundError:
            out[dep] = "not installed"
    return out


def report_date(plan, date: str | None = None) -> tuple[str, datetime | None]:
    """The report's date as shown, and the instant written into the PDF's metadata.

    Never the wall clock, so the same plan, data and version give the same bytes. In order:
    ``date`` (an ISO date or date-time, e.g. ``"2026-01-31"``; anything else is refused),
    the ``SOURCE_DATE_EPOCH`` environment variable (Unix seconds, the reproducible-builds
    convention), the lock record's ``locked_at``; an unlocked plan without
    either is reported as undated.
    """
    if date is not None and str(date).strip():
        text = str(date).strip()
        when = _parse_instant(text)
        if when is None:
            raise HTEReportError(f"date must be an ISO date such as 2026-01-31 (or a date-time "
                                 f"such as 2026-01-31T09:30:00Z), got {text[:40]!r}.")
        return text, when
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            when = datetime.fromtimestamp(int(epoch), timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise HTEReportError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970-01-01 UTC "
                                 f"(e.g. 1767225600), got {epoch[:40]!r}.") from None
        return when.strftime("%Y-%m-%d"), when
    lock = getattr(plan, "lock", None)
    if lock is not None:
        when = _parse_instant(lock.locked_at)
        return (when.strftime("%Y-%m-%d") if when else str(lock.locked_at)), when
    return "undated (plan not locked; set a date or SOURCE_DATE_EPOCH)", None


def _parse_instant(text: str) -> datetime | None:
    """An ISO date or date-time as an aware UTC datetime (a date is taken at 00:00 UTC)."""
    try:
        when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


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


def build_report(analysis: PlannedAnalysis, date: str | None = None,
                 with_png: bool = False) -> Report:
    """The full report: every section listed in the README, in order."""
    plan, res = analysis.plan, analysis.result
    lock = plan.lock_status()
    shown, instant = report_date(plan, date)
    meta = {
        "trial": plan.raw["trial"].get("name") or plan.raw["trial"]["id"],
        "trial-id": plan.raw["trial"]["id"],
        "date": shown,
        "timestamp": instant,  # the PDF's creation date (None: undated)
        "plan-hash": plan.sha256,
        "lock-time": plan.lock.locked_at if plan.lock else "not locked",
        "lock-status": lock,
        "lock-statement": plan.lock.statement if plan.lock else "",
        "data-hash": res.data_sha256,
        "version": __version__,
        "outcome": plan.outcome.get("label", plan.outcome["variable"]),
    }
    answers = iceman(res, plan)
    proposed = propose_rating(answers)
    sections = [
        _summary(analysis, answers, proposed, lock),
        _population(analysis),
        _overall(res),
        _subgroups(analysis, with_png),
        _continuous(analysis, with_png),
        _risk(analysis, with_png),
        _credibility(analysis, answers, proposed),
        _posthoc(analysis, with_png),
        _methods(analysis),
        _appendix(analysis),
    ]
    return Report(title=plan.title, meta=meta, sections=tuple(sections))


# ------------------------------------------------------------------ sections
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
    ci = fmt_ci(o.estimate, o.conf_low, o.conf_high, scale)
    return (f"{SCALE_NAMES.get(scale, scale).lower()} {ci}, {p_eq(o.p_value)} "
            f"({model} model)")


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
    else:
        first = (f"{out}: {int(o.n_treated)} participants with {trt}, {int(o.n_control)} with "
                 f"{ctrl}.")
    effects = "; ".join(f"{ax} scale: {_axis_phrase(res, ax)}" for ax in res.primary)
    blocks.append(Para(first + " Overall standardized effect — " + effects + "."))
    excluded = res.n_input - res.n_analysed
    if excluded > 0.05 * res.n_input:
        blocks.append(Callout("warning", "Missing data",
                              f"{excluded} of {res.n_input} rows ({excluded / res.n_input:.0%}) "
                              "were excluded for missing values (complete-case analysis); see "
                              "the study population section for the breakdown by variable and "
                              "arm. Results assume the excluded rows are missing at random "
                              "given the covariates."))
    pre = [m for m in res.modifiers if m not in res.posthoc]
    alpha = plan.alpha
    confirmed, nominal = [], []
    for ax, (scale, model) in res.primary.items():
        t = res.interaction_p(ax)
        t = t[t.modifier.isin(pre)]
        for r in t.itertuples():
            name = res.labels.get(r.modifier, r.modifier)
            text = (f"{name} on the {SCALE_NAMES.get(scale, scale).lower()} scale "
                    f"({model}: {p_eq(r.p_value)}, "
                    f"{res.multiplicity}-adjusted {fmt_p(r.p_adjusted)})")
            if np.isfinite(r.p_adjusted) and r.p_adjusted < alpha:
                confirmed.append(text)
            elif np.isfinite(r.p_value) and r.p_value < 0.1:
                nominal.append(text)
    scales = " and ".join(SCALE_NAMES.get(s, s).lower() for s, _ in res.primary.values())
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
                           + "; ".join(nominal) + ". A constant effect on one scale implies "
                           "variation on the other; the scales answer different questions."))
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
    ex = res.exclusions.copy()
    ex = ex[ex.n_missing > 0]
    blocks = [
        Para(a.plan.raw["population"]),
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


def baseline_table(a: PlannedAnalysis) -> pd.DataFrame:
    """Modifiers and covariates by arm over the analysed rows (complete cases)."""
    res = a.result
    used = [res.outcome, res.treatment, *res.modifiers, *res.adjustment]
    used += [c for c in (res.exposure,) if c]
    frame = a.data.dropna(subset=used)
    ctl_code, trt_code = a.plan.raw["treatment"]["control"], a.plan.raw["treatment"]["treated"]
    arms = {"treated": frame[frame[res.treatment] == trt_code],
            "control": frame[frame[res.treatment] == ctl_code]}
    rows = []
    for var in [*res.modifiers, *res.adjustment]:
        label = res.labels.get(var, var)
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
    df = res.overall
    rows = []
    for r in df.itertuples():
        rows.append({"Scale": SCALE_NAMES.get(r.scale, r.scale), "Model": r.model,
                     "Estimate (CI)": fmt_ci(r.estimate, r.conf_low, r.conf_high, r.scale),
                     "P": fmt_p(r.p_value)})
    tab = pd.DataFrame(rows)
    return Section("Overall effect", (
        Para("Standardized (g-computation) effects over all analysed patients from every "
             "working model. The same average treatment effect is shown on the absolute and "
             "the relative scale; each row names the model that produced it."),
        Table(tab, f"Overall treatment effect ({int(res.conf_level * 100)}% CI)", name="overall"),
    ), id="overall")


def _subgroups(a: PlannedAnalysis, png: bool) -> Section:
    res = a.result
    hib = bool(a.plan.outcome.get("higher_is_better", False))
    pre = [m for m in res.modifiers if m not in res.posthoc]
    figs = _forests(replace(res, modifiers=tuple(pre)), "Forest plot of the pre-specified "
                    "modifiers on both scales.", "forest", png, higher_is_better=hib,
                    adjusted=True)
    disp = subgroup_frame(res).rename(columns=column_labels(res))
    blocks = [
        Para("Categorical modifiers: effects standardized over each subgroup's participants. "
             "Continuous modifiers are analysed as continuous: their rows are model-based "
             "conditional effects at the quartiles (other covariates at the reference profile), "
             "not estimates within arbitrary subgroups, so no per-arm counts are shown for them. "
             "P for interaction: Wald test of all treatment × modifier terms of the primary "
             f"model for each scale, raw and {res.multiplicity}-adjusted across the {len(pre)} "
             f"pre-specified modifiers (chance of at least one false positive at "
             f"α = {a.plan.alpha} among {len(pre)} independent tests per scale: "
             f"{familywise_error(a.plan.alpha, len(pre)):.0%})."),
        *figs,
        Table(disp, "Subgroup effects on both scales" + (
            " (RD in percentage points)" if res.family == "binary" else ""), group="Modifier",
              gt=subgroup_table(res), name="subgroups", notes=_model_notes(res)),
    ]
    prim = {model for _, model in res.primary.values()}
    order = {m: i for i, m in enumerate(res.modifiers)}
    it = res.interactions[res.interactions.model.isin(prim)
                          & res.interactions.test.isin(["wald", "lr"])]
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
                        notes=("wald: all treatment × modifier coefficients; lr: likelihood "
                               "ratio (likelihood-based models only). Every model and test, "
                               "including equality of standardized effects, is listed under "
                               "Methods as sensitivity analyses.",),
                        group="Modifier", name="interactions"))
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
    if len(res.additive):
        ad = res.additive
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
    notes = []
    for axis, (scale, model) in res.primary.items():
        row = res.models[res.models.model == model].iloc[0]
        notes.append(f"{scale}: from the {model} model ({row.link} link, {row.variance} "
                     f"variance); the primary model for the {axis} scale.")
    notes.append(f"P interaction: Wald test of all treatment × modifier terms; 'adj': "
                 f"{res.multiplicity}-adjusted across modifiers.")
    return tuple(notes)


def _continuous(a: PlannedAnalysis, png: bool) -> Section:
    res = a.result
    mods = [m for m in res.modifiers
            if res.modifier_kinds.get(m) == "continuous" and m not in res.posthoc]
    if not mods:
        return Section("Continuous modifiers", (Para("No continuous modifier was pre-specified."),),
                       id="continuous")
    blocks = [Para("Conditional effects across the observed range of each continuous modifier "
                   "(other covariates at the reference profile), with pointwise confidence "
                   "bands; the modifier is analysed as continuous, without cut points.")]
    for m in mods:
        fig = res.effect_curve(m, data=a.data)
        blocks.append(_figure(fig, f"Effect of treatment by {res.labels.get(m, m)}.",
                              f"curve-{m}", png))
    prof = res.profile.rename(columns={"variable": "Variable", "value": "Reference value"})
    prof["Reference value"] = [_round_str(v) for v in prof["Reference value"]]
    blocks.append(Table(prof, "Reference profile for conditional effects (mean of continuous, "
                        "mode of categorical covariates)", name="profile"))
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
        recorded = {(r.modifier, r.scale): r.rating for r in analyst.itertuples()}
        wide["Analyst's rating"] = [
            recorded.get((m, "relative" if is_ratio(sc) else "absolute"), "not recorded")
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
    blocks = [Para("These modifiers were not pre-specified. Each was added to the primary model "
                   "with its own treatment interaction; p-values are adjusted only within the "
                   "post hoc family, and none is confirmatory.")]
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


def _methods(a: PlannedAnalysis) -> Section:
    res, plan = a.result, a.plan
    models = res.models.copy()
    mt = pd.DataFrame({
        "Model": models.model, "Requested": models.requested, "Family": models.family,
        "Link": models.link, "Variance": models.variance,
        "Converged": models.converged.map({True: "yes", False: "no"}),
        "Note": models.note.fillna(""),
    })
    ver = versions()
    vt = pd.DataFrame({"Software": list(ver), "Version": list(ver.values())})
    seed = plan.seed
    blocks = [
        Para(f"Model formula: {res.formula}. Treatment {res.treatment} "
             f"({res.treatment_labels[1]} vs {res.treatment_labels[0]}). Effect modifiers: "
             f"{', '.join(res.modifiers)}; adjustment covariates: "
             f"{', '.join(res.adjustment) or 'none'}."),
        Para("Absolute-scale effects come from identity-link working models, relative-scale "
             "effects from log-link models (modified Poisson with robust variance, Zou 2004) or "
             "logit models (odds ratios). Subgroup and overall effects are standardized "
             "(g-computation): predictions with treatment set to 1 and 0 averaged over the "
             "subgroup's rows and contrasted; delta-method standard errors treat the covariate "
             "distribution as fixed (sample-average effects). Conditional effects are evaluated "
             "at the reference profile. Inference is large-sample (z, chi-square). "
             "Interaction tests: Wald tests of all treatment × modifier coefficients, likelihood-"
             "ratio tests for likelihood-based models, and Wald tests of equal standardized "
             f"subgroup effects; multiplicity: {res.multiplicity} across pre-specified "
             "modifiers, post hoc modifiers in a separate family."),
        Para("Primary models: " + "; ".join(
            f"{ax} scale — {scale} from {model}" for ax, (scale, model) in res.primary.items())
             + ". Other working models are sensitivity analyses. Variance: HC3 for the linear "
               "(probability) model, whose errors are heteroscedastic by construction for a "
               "binary outcome; HC0 sandwich for Poisson working models of binary outcomes "
               "(Zou 2004), whose model-based variance is wrong; model-based for likelihood "
               "models that are correctly specified for the outcome type (logit)."),
        Table(mt, "Working models", name="models"),
        Table(_all_tests(res), "All heterogeneity tests (every model, scale and test; "
              "sensitivity analyses)", group="Modifier", gt=interaction_table(res),
              notes=("equality: Wald test that the standardized subgroup effects are equal, on "
                     "the scale named; the RD and RR rows of one model test different nulls "
                     "and can differ. Logit-model tests are on the odds-ratio scale.",),
              name="all-tests"),
        Para(f"Seed recorded in the plan: {seed if seed is not None else 'none'}. " + (
            f"It seeds the {plan.raw['risk_based']['crossfit_folds']}-fold cross-fitting of the "
            "risk model; nothing else in this report is random."
            if (plan.raw.get("risk_based") or {}).get("planned")
            and (plan.raw.get("risk_based") or {}).get("crossfit_folds")
            else "No analysis in this report is random, so results do not depend on it.")
             + f" Confidence level {plan.conf_level}."),
        Table(vt, "Software and versions", name="versions"),
    ]
    return Section("Methods", tuple(blocks), id="methods")


def _all_tests(res: HTEResult) -> pd.DataFrame:
    order = {m: i for i, m in enumerate(res.modifiers)}
    t = res.interactions.assign(o=res.interactions.modifier.map(order))
    t = t.sort_values(["o", "model"], kind="stable")
    out = pd.DataFrame({
        "Modifier": [res.labels.get(m, m) for m in t.modifier], "Model": t.model,
        "Scale": t.scale, "Test": t.test,
        "Chi-square": [f"{v:.2f}" if np.isfinite(v) else "–" for v in t.statistic],
        "df": t.df.astype(str), "P": [fmt_p(p) for p in t.p_value],
        "P adjusted": [fmt_p(p) for p in t.p_adjusted], "Note": t.note.fillna(""),
    })
    return out if out["Note"].astype(bool).any() else out.drop(columns="Note")


def _appendix(a: PlannedAnalysis) -> Section:
    plan = a.plan
    text = yaml.safe_dump(plan.raw, sort_keys=False, allow_unicode=True, width=90)
    devs = plan.raw.get("deviations") or []
    lock = plan.lock_status()
    if lock == "modified":
        devs = ["The plan file differs from its locked version (hash mismatch)."] + list(devs)
    blocks = [
        Para(f"Plan SHA-256: {plan.sha256}. Lock status: {lock}"
             + (f"; locked {plan.lock.locked_at}; lock hash {plan.lock.plan_sha256}"
                + (f"; statement: {plan.lock.statement}" if plan.lock.statement else "")
                if plan.lock else "") + "."),
        Code(text, "yaml"),
        Para("Deviations from the plan:" if devs else "Deviations from the plan: none recorded."),
    ]
    if devs:
        blocks.append(Bullets(tuple(devs)))
    return Section("Appendix: the analysis plan", tuple(blocks), id="appendix")
