"""The report's time-to-event sections: Kaplan–Meier curves by arm (overall and within each
pre-specified categorical subgroup), proportional-hazards diagnostics, and the methods text
of the Cox model, the standardized survival differences and the RMST."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_report.analysis import PlannedAnalysis
from hte_report.core.format import clean_label
from hte_report.presentation.survival import (
    event_indicator,
    fmt_median,
    km_curve,
    km_panels,
    ph_subgroup_frame,
    ph_terms_frame,
    time_unit,
)
from hte_report.report.model import Figure, Para, Section, Table


def _arms(a: PlannedAnalysis) -> tuple[dict, dict]:
    tr = a.plan.raw["treatment"]
    codes = {"treated": tr["treated"], "control": tr["control"]}
    labels = {"treated": tr.get("treated_label") or f"{a.plan.treatment} = {tr['treated']}",
              "control": tr.get("control_label") or f"{a.plan.treatment} = {tr['control']}"}
    return codes, labels


def _analysed(a: PlannedAnalysis, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows with time, event, treatment (and ``extra``) observed, in the two compared arms."""
    res = a.result
    codes, _ = _arms(a)
    cols = [res.meta["time"], res.meta["event"], res.treatment, *extra]
    d = a.data.dropna(subset=[c for c in cols if c in a.data.columns])
    return d[d[res.treatment].isin(list(codes.values()))]


def _panel_groups(a: PlannedAnalysis) -> list[tuple[list, int, str]]:
    """The panels of the Kaplan–Meier and PH figures: [(groups, ncols, key)], first all
    analysed patients (key "overall"), then one entry per pre-specified categorical modifier
    with a (title, rows) group per level (key: the modifier)."""
    res = a.result
    out = [([("All patients", _analysed(a))], 1, "overall")]
    mods = [m for m in res.modifiers if m not in res.posthoc
            and res.modifier_kinds.get(m) != "continuous" and m in a.data.columns]
    for m in mods:
        d = _analysed(a, (m,))
        levels = list(res.effects("relative").query("modifier == @m").sort_values("order").level)
        have = [lv for lv in levels if (d[m].astype(str) == str(lv)).any()]
        extra = sorted({str(v) for v in d[m].unique()} - set(map(str, have)), key=str)
        groups = [(f"{res.labels.get(m, m)}: {res.level_label(m, str(lv))}",
                   d[d[m].astype(str) == str(lv)]) for lv in [*have, *extra]]
        out.append((groups, 3, m))
    return out


def _marks(res) -> dict:
    meta, unit = res.meta or {}, time_unit(res)
    marks = {f"{h:g} {unit}": float(h) for h in (meta.get("horizons") or [])[:1]}
    if meta.get("rmst_tau") is not None:
        marks.setdefault(f"{meta['rmst_tau']:g} {unit}", float(meta["rmst_tau"]))
    return marks


def km_section(a: PlannedAnalysis, png: bool = False) -> Section:
    """Kaplan–Meier curves by arm: the overall population, then one small-multiples figure per
    pre-specified categorical modifier (one panel per level), numbers at risk under each
    panel, events/n and the median per arm in the legend."""
    res = a.result
    unit = time_unit(res)
    codes, labels = _arms(a)
    out_label = a.plan.outcome.get("label", "Event-free survival")
    marks = _marks(res)
    mark_text = (" Dotted vertical lines: " + " and ".join(marks) + " (" + (
        "horizon of the survival difference" + (" and RMST truncation time τ"
                                                if len(marks) > 1 else "")
        if (res.meta or {}).get("horizons") else "RMST truncation time τ") + ")."
                 if marks else "")
    common = (" Crude Kaplan–Meier estimates (not adjusted for covariates); tick marks: "
              "censored observations; the legend gives events/patients and the median per arm "
              f"('not reached' when the curve stays above 50%). Time in {unit}.")
    blocks: list = [Para(
        f"{out_label}: Kaplan–Meier curves by arm for all analysed patients and within each "
        "level of the pre-specified categorical modifiers, with the numbers at risk below each "
        "panel. They show the data behind the model-based effects: crossing or converging "
        "curves question the proportional-hazards assumption (see the diagnostics below), and "
        "the distance between the curves at the horizon is the survival difference.")]
    specs = [(groups, ncols, f"{out_label} by arm, all analysed patients (n = "
              f"{len(groups[0][1])})." if key == "overall" else f"{out_label} by arm within "
              f"each level of {res.labels.get(key, key)}.", f"km-{key}")
             for groups, ncols, key in _panel_groups(a)]
    # Infrequent events: curves going up (cumulative incidence) on an axis that shows them,
    # rather than survival squeezed under 100% or a truncated survival axis (Pocock, Clayton
    # & Altman 2002). One axis for every figure, so the panels compare.
    low = 1.0
    for groups, *_ in specs:
        for _title, g in groups:
            for code in codes.values():
                t, e = event_indicator(res, g[g[res.treatment] == code])
                ok = np.isfinite(t) & np.isfinite(e)
                if ok.any():
                    low = min(low, float(km_curve(t[ok], e[ok])["s"].min()))
    cumulative = low >= 0.6
    ytop = min(1.0, np.ceil((1 - low + 0.02) * 10) / 10) if cumulative else 1.0
    named = any(w in out_label.lower() for w in ("survival", "free"))
    if cumulative:
        ylabel = (f"{out_label} (%)" if not named and len(out_label) <= 34
                  else "Cumulative incidence (%)")
        what = (" Cumulative incidence (1 − Kaplan–Meier) going up, as advised when events "
                f"are infrequent; the vertical axis ends at {100 * ytop:.0f}%.")
    else:
        ylabel = (f"{out_label} (%)" if named and len(out_label) <= 28
                  else "Event-free survival (%)")
        what = ""
    tables = []
    for groups, ncols, head, name in specs:
        fig, summ = km_panels(groups, res, codes, labels, ncols=ncols, marks=marks,
                              ylabel=ylabel, cumulative=cumulative, ytop=ytop)
        tables.append(summ)
        blocks.append(Figure.from_matplotlib(fig, head + common + what + mark_text, name,
                                             png))
    tab = pd.concat(tables, ignore_index=True)
    show = pd.DataFrame({
        "Group": [clean_label(p) for p in tab.panel], "Arm": tab.arm,
        "Events/n": [f"{int(e)}/{int(n)}" for e, n in zip(tab.events, tab.n, strict=True)],
        f"Median ({unit})": [fmt_median(v, "").strip() for v in tab["median"]],
        **{f"KM survival at {k}": [("–" if not np.isfinite(v) else f"{100 * v:.1f}%")
                                   for v in tab[k]] for k in marks if k in tab},
    })
    blocks.append(Table(show, "Kaplan–Meier summaries by arm (crude)", group="Group",
                        name="km-summary",
                        notes=("Median: first time the Kaplan–Meier curve is at or below 50%; "
                               "KM survival: the curve's value at that time (– when the arm's "
                               "follow-up ends earlier). Crude, unadjusted: the model-based "
                               "effects are in the subgroup section.",)))
    return Section("Kaplan–Meier curves", tuple(blocks), id="km")


def ph_section(a: PlannedAnalysis, png: bool = True) -> Section:
    """cox.zph p of the treatment per subgroup and per term of the primary Cox model, then the
    diagnostic figures (:func:`ph_figures`). ``png``: PNG copies of the figures too, on by
    default: the report's builder calls this without ``with_png``, and Quarto's Typst needs
    PNG for byte-identical PDFs (report.quarto._figure)."""
    res = a.result
    _, labels = _arms(a)
    sub = ph_subgroup_frame(res, (labels["control"], labels["treated"]))
    terms = ph_terms_frame(res)
    blocks: list = [Para(
        "Proportional hazards: score tests of a time-varying coefficient (Grambsch & Therneau "
        "1994, as R's cox.zph with the Kaplan–Meier time transform). The hazard ratios assume "
        "the treatment's hazard ratio is constant over follow-up; a small p suggests it "
        "changes, in which case the HR is an average over follow-up and the survival and "
        "RMST differences at the stated times are the more direct summaries. Many tests are "
        "shown, none adjusted for multiplicity: read them as diagnostics, not as findings.")]
    if len(sub):
        blocks.append(Table(sub, "Proportional hazards of the treatment within each subgroup "
                            "(cox.zph)", group="Modifier", name="ph-subgroups",
                            notes=("P: test of the treatment term in a Cox model fitted within "
                                   "the subgroup. Continuous modifiers have no subgroups; their "
                                   "model's terms are tested below.",)))
    if len(terms):
        blocks.append(Table(terms, "Proportional hazards per term of the primary Cox model "
                            "(cox.zph)", name="ph-terms",
                            notes=(f"Terms of the {_primary_words(res)}; GLOBAL: all terms "
                                   "jointly.",)))
    if not len(sub) and not len(terms):
        blocks.append(Para("No proportional-hazards test is available for this result."))
    blocks.extend(ph_figures(a, png))
    return Section("Proportional-hazards diagnostics", tuple(blocks), id="ph")


def _ph_p_values(res) -> dict:
    """{panel title: cox.zph p of the treatment} from the HR rows (the subgroup table's p)."""
    out = {}
    ov = res._comparison(res.overall, None)
    ov = ov[ov.scale == "HR"]
    if len(ov):
        out["All patients"] = float(ov.iloc[0].get("ph_p_value", np.nan))
    sg = res._comparison(res.subgroups, None)
    sg = sg[sg.scale == "HR"]
    if "analysis" in sg and res.strategy != "within-subgroup":
        sg = sg[sg.analysis != "within-subgroup"]
    if "ph_p_value" in sg:
        for r in sg.drop_duplicates(["modifier", "level"]).itertuples():
            out.setdefault(f"{res.labels.get(r.modifier, r.modifier)}: "
                           f"{res.level_label(r.modifier, str(r.level))}", float(r.ph_p_value))
    return out


#: Most panels per row of the PH figures, and rows per figure (a figure fits one page).
PH_COLUMNS, PH_ROWS = 3, 4


def _ph_chunks(specs: list, ncols: int) -> list[list[tuple[str, list]]]:
    """The rows of the PH figures, [(key, row of up to ``ncols`` groups, None-padded)],
    each modifier starting a row, cut into figures of at most PH_ROWS rows."""
    rows = []
    for groups, _ncols, key in specs:
        for i in range(0, len(groups), ncols):
            row = list(groups[i:i + ncols])
            rows.append((key, row + [None] * (ncols - len(row))))
    return [rows[i:i + PH_ROWS] for i in range(0, len(rows), PH_ROWS)]


def ph_figures(a: PlannedAnalysis, png: bool = False) -> list:
    """Subsection "Proportional-hazards diagnostics (figures)": log-minus-log Kaplan–Meier
    curves by arm and scaled Schoenfeld residuals of the treatment with a smoother, for all
    analysed patients and within each level of the pre-specified categorical modifiers (the
    panels of the Kaplan–Meier section)."""
    from hte_report.presentation.survival_ph import lml_panels, schoenfeld_panels

    res = a.result
    meta, unit = res.meta or {}, time_unit(res)
    codes, labels = _arms(a)
    strata = tuple(meta.get("strata") or ())
    ties = str(meta.get("ties", "efron"))
    specs = _panel_groups(a)
    strat_words = (f"; stratified by {', '.join(strata)} as in the analysis, each stratum "
                   "with its own baseline hazard" if strata else "")
    blocks: list = [
        Para("Proportional-hazards diagnostics (figures)", strong=True),
        Para("The figures behind the tests above, for all analysed patients and within each "
             "level of the pre-specified categorical modifiers (the panels of the Kaplan–Meier "
             "section). Log-minus-log curves: under proportional hazards the two arms' curves "
             "are parallel, a constant vertical distance apart (the log hazard ratio). Scaled "
             "Schoenfeld residuals: under proportional hazards their smoother is flat, at the "
             "model's log hazard ratio; a trend shows a hazard ratio that changes over "
             "follow-up. Early parts of the curves rest on few events and wander by chance.")]
    lml_text = (
        " log(−log S(t)) of each arm's crude Kaplan–Meier estimate S(t) (not adjusted for "
        f"covariates{', nor stratified' if strata else ''}) against time in {unit} on a log "
        "scale, from the first event. Parallel curves (a constant vertical distance, equal to "
        "the log hazard ratio) are what proportional hazards imply; curves that converge, "
        "diverge or cross suggest a hazard ratio changing over follow-up. Same vertical axis "
        "in every panel.")
    zph_text = (
        f" One point per event: the scaled Schoenfeld residual of the treatment in a Cox model "
        f"of the treatment alone within the panel's patients ({ties.capitalize()} ties"
        f"{strat_words}), an estimate of the treatment's log hazard ratio β(t) at that event "
        f"time, as R's cox.zph(fit, transform = \"km\"); horizontal axis: time on the "
        f"Kaplan–Meier scale (1 − KM(t−) of all the panel's patients), tick labels in {unit}. "
        "Solid line: natural-spline smoother (4 df) with ± 2 standard errors (dashed), as R's "
        "plot(cox.zph); dotted line: the model's constant log hazard ratio; thin black line: "
        "0 (hazard ratio 1). A flat smoother at the dotted line is what proportional hazards "
        "imply; a sloping one shows the hazard ratio changing over follow-up. P: the cox.zph "
        "test of the treatment in the table above.")
    lml_figs, zph_figs = [], []
    p_values = _ph_p_values(res)
    # as many columns as the largest modifier has levels (2 or 3): no empty column
    ncols = min(PH_COLUMNS, max([len(g) for g, _n, k in specs if k != "overall"] or [1]))
    for i, chunk in enumerate(_ph_chunks(specs, ncols)):
        slots = [g for _key, row in chunk for g in row]
        keys = [key for key, _row in chunk]
        mods = [str(res.labels.get(k, k)) for k in dict.fromkeys(keys) if k != "overall"]
        head = " and ".join(
            ([f"all analysed patients (n = {len(specs[0][0][0][1])})"] if "overall" in keys
             else []) + ([f"within each level of {' and '.join(mods)}"] if mods else []))
        name = "" if i == 0 else f"-{i + 1}"
        fig, _ = lml_panels(slots, res, codes, labels, ncols=ncols)
        lml_figs.append(Figure.from_matplotlib(
            fig, f"Log-minus-log plots by arm, {head}:" + lml_text, f"ph-lml{name}", png))
        fig, _ = schoenfeld_panels(slots, res, codes, strata=strata, ties=ties,
                                   p_values=p_values, ncols=ncols)
        zph_figs.append(Figure.from_matplotlib(
            fig, f"Scaled Schoenfeld residuals of the treatment against time, {head}." +
            zph_text, f"ph-zph{name}", png))
    return [*blocks, *lml_figs, *zph_figs]


def _primary_words(res) -> str:
    row = res.analyses
    if row is not None and len(row) and "analysis" in row:
        o = row[row.analysis.astype(str).str.startswith("overall")]
        if len(o):
            return f"primary analysis ({o.formula.iloc[0]})"
    return f"Cox model ({res.formula})"


def methods_paras(a: PlannedAnalysis) -> list:
    """Methods of a time-to-event analysis: Cox model (ties, strata, variance), hazard ratios,
    standardized survival differences (Breslow baseline), RMST (Kaplan–Meier), horizons, tau."""
    res = a.result
    meta, unit = res.meta or {}, time_unit(res)
    ties = meta.get("ties", "efron")
    strata = meta.get("strata") or []
    horizons = meta.get("horizons") or []
    tau = meta.get("rmst_tau")
    cox = res.models[res.models.family.astype(str) == "cox"]
    variance = str(cox.variance.iloc[0]) if len(cox) else "model"
    var_words = {"model": "model-based (inverse information)",
                 "robust": "robust sandwich (each patient its own cluster)"}.get(
        variance, f"{variance} (clustered sandwich)")
    prim = "; ".join(f"{ax} scale: {s}" for ax, (s, _m) in res.primary.items())
    texts = [
        f"Outcome: time to {a.plan.outcome.get('label', 'event')} ({meta.get('time')}, in "
        f"{unit}), event indicator {meta.get('event')} (1 = event, 0 = censored). Primary "
        f"scales: {prim}.",
        f"Relative scale: Cox proportional-hazards models (partial likelihood, {ties.capitalize()} "
        f"method for tied event times"
        + (f", stratified by {', '.join(strata)} — each stratum its own baseline hazard"
           if strata else ", no strata") + f"; {var_words} variance). Each subgroup's hazard "
        "ratio is the treatment's hazard ratio within that subgroup from the modifier's "
        "interaction model, under one baseline hazard shared by all subgroups, with the other "
        "covariates at the reference profile; for a continuous modifier it is evaluated at the "
        "stated values. Interaction tests: Wald (and likelihood-ratio) tests of all treatment × "
        "modifier coefficients.",
        "Absolute scale: "
        + (f"survival at {', '.join(f'{h:g}' for h in horizons)} {unit} is predicted for every "
           "patient under each arm from the Cox model with the Breslow estimate of the baseline "
           "cumulative hazard, averaged over the subgroup's patients and contrasted "
           "(standardized survival difference, in percentage points; delta-method standard "
           "errors). Its heterogeneity test is the Wald test that the standardized "
           "differences are equal across levels; continuous modifiers have no such test. "
           if horizons else "no survival horizon was given. ")
        + (f"The restricted mean survival time difference up to τ = {tau:g} {unit} is "
           "computed from Kaplan–Meier curves within each arm of each subgroup (area under the "
           "curve up to τ, Greenwood-type variance); it needs no proportional-hazards "
           "assumption. " if tau is not None else "")
        + "Each horizon and τ must lie within the follow-up of both arms of every subgroup.",
        "Proportional hazards are checked with cox.zph-type score tests per model term and for "
        "the treatment within each subgroup (see the diagnostics section). Inference is "
        f"large-sample (z, chi-square). Multiplicity: {res.multiplicity} across the "
        "pre-specified modifiers on each scale, post hoc modifiers in a separate family.",
    ]
    return [Para(t) for t in texts]
