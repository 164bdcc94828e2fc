"""Publication tables with great-tables, built from the tidy frames only."""

from __future__ import annotations

import numpy as np
import pandas as pd
from great_tables import GT, loc, style

from hte_report.core.format import clean_label, clean_text, fmt_count, fmt_p
from hte_report.presentation.plots.style import _arms, display_label
from hte_report.presentation.repeated import interaction_words
from hte_report.presentation.survival import fmt_effect, is_survival, scale_label
from hte_report.results.result import HTEResult

_PCT = "{:.0f}%"


def _label(res: HTEResult, modifier: str) -> str:
    lab = clean_label(display_label(res, modifier))
    if modifier in res.posthoc:
        lab += " (post hoc — hypothesis-generating)"
    return lab


def subgroup_frame(res: HTEResult, adjusted: bool = True,
                   comparison: str | None = None) -> pd.DataFrame:
    """The subgroup table as display strings: one row per subgroup, both scales side by side.

    A treatment with three or more arms: the rows of each comparison (``"B vs A"``) in turn,
    their groups prefixed by the comparison, or only those of ``comparison``."""
    if res.comparisons and comparison is None:
        parts = []
        for comp in res.comparisons:
            part = subgroup_frame(res, adjusted, comp)
            part["group"] = [f"{comp}: {g}" for g in part.group]
            parts.append(part)
        return pd.concat(parts, ignore_index=True)
    axes = list(res.primary)
    rows = []
    overall = {a: res.overall_effect(a, comparison) for a in axes}
    first = overall[axes[0]]
    row = {"group": "Overall", "subgroup": "All patients",
           "treated": fmt_count(first.get("events_treated", np.nan), first.n_treated),
           "control": fmt_count(first.get("events_control", np.nan), first.n_control)}
    for a in axes:
        scale = res.primary[a][0]
        o = overall[a] if overall[a].scale == scale else None
        row[f"est_{a}"] = fmt_effect(o.estimate, o.conf_low, o.conf_high, scale) if o is not None \
            else "–"
        row[f"p_{a}"] = ""
    rows.append(row)
    effects = {a: res.effects(a, comparison=comparison) for a in axes}
    tests = {a: res.interaction_p(a, comparison=comparison).set_index("modifier") for a in axes}
    from hte_report.presentation.analyses import display_levels

    for mod in res.modifiers:
        for i, (_, lv) in enumerate(display_levels(effects, mod, axes)):
            row = {"group": _label(res, mod),
                   "subgroup": clean_label(res.level_label(mod, lv.level)),
                   "treated": fmt_count(lv.events_treated, lv.n_treated),
                   "control": fmt_count(lv.events_control, lv.n_control)}
            for a in axes:
                e = effects[a]
                r = e[(e.modifier == mod) & (e.level == lv.level)]
                scale = res.primary[a][0]
                if r.empty:
                    row[f"est_{a}"] = "–"
                else:
                    r = r.iloc[0]
                    row[f"est_{a}"] = fmt_effect(r.estimate, r.conf_low, r.conf_high, scale) \
                        if np.isfinite(r.estimate) else _note(r.note)
                p = ""
                if i == 0 and mod in tests[a].index:
                    t = tests[a].loc[mod]
                    p = fmt_p(t.p_value)
                    if adjusted and res.multiplicity != "none":
                        p += f" (adj {fmt_p(t.p_adjusted)})"
                row[f"p_{a}"] = p
            rows.append(row)
    return pd.DataFrame(rows)


def _note(note: object) -> str:
    return clean_label(note) if isinstance(note, str) and note.strip() else "not estimable"


def column_labels(res: HTEResult) -> dict[str, str]:
    """Display labels of the subgroup table's columns (shared by the GT and the PDF table)."""
    pct = _PCT.format(res.conf_level * 100)
    count_word = {"continuous": "n", "count": "events/patients"}.get(res.family, "events/n")
    ctrl, trt = (("Control", "Treated") if res.comparisons else
                 _arms(res, ("Control", "Treated")))  # the plan's arm labels, not 0/1 codes
    labels = {"group": "Modifier", "subgroup": "Subgroup",
              "treated": f"{trt} ({count_word})", "control": f"{ctrl} ({count_word})"}
    for a, (scale, _model) in res.primary.items():
        name = scale_label(res, scale, short="table") if (
            is_survival(res) or (res.meta or {}).get("repeated")) else scale
        labels[f"est_{a}"] = f"{name} ({pct} CI)"
        labels[f"p_{a}"] = f"P interaction ({scale})"
    return labels


def subgroup_table(res: HTEResult, *, adjusted: bool = True, title: str | None = None,
                   footnotes: str = "marks") -> GT:
    """Subgroup table: per-arm events/n, both scales with CIs, interaction p (raw and adjusted).

    ``footnotes``: ``"marks"`` (footnotes marked on the column labels) or ``"notes"`` (as
    notes under the table; great-tables' LaTeX output cannot render footnote marks).

    Returns a great-tables ``GT`` so callers can keep chaining its methods.
    """
    from hte_report.results.result import require_result
    from hte_report.spec.options import check_flags

    require_result(res, "table()")
    check_flags(adjusted=adjusted)
    if footnotes not in ("marks", "notes"):
        from hte_report.spec.options import check_choice

        check_choice("footnotes", footnotes, ["marks", "notes"])
    df = subgroup_frame(res, adjusted=adjusted)
    pct = _PCT.format(res.conf_level * 100)
    ctrl, trt = res.treatment_labels
    gt = GT(df, rowname_col="subgroup", groupname_col="group")
    gt = gt.tab_header(title=clean_text(title or f"Treatment effect by subgroup: {res.outcome}"),
                       subtitle=clean_label(
                           (f"{res.treatment}: {', '.join(res.comparisons)} (rows grouped by "
                            "comparison)" if res.comparisons else
                            f"{res.treatment} = {trt} vs {ctrl}") + f"; {pct} confidence "
                           "intervals"))
    labels = {k: v for k, v in column_labels(res).items() if k not in ("group", "subgroup")}
    for a, (scale, _model) in res.primary.items():
        labels[f"p_{a}"] = "P interaction"
        gt = gt.tab_spanner(label=f"{a.capitalize()} scale: {scale_label(res, scale)}",
                            columns=[f"est_{a}", f"p_{a}"])
    gt = gt.cols_label(**labels)
    gt = gt.cols_align("right", columns=[c for c in df.columns if c not in ("group", "subgroup")])
    gt = gt.tab_style(style.css("font-variant-numeric: tabular-nums; white-space: nowrap;"),
                      loc.body())
    for a, text in scale_notes(res, adjusted).items():
        gt = (gt.tab_footnote(text, locations=loc.column_labels(columns=[f"est_{a}"]))
              if footnotes == "marks" else gt.tab_source_note(text))
    for note in source_notes(res):
        gt = gt.tab_source_note(note)
    return gt


def scale_notes(res: HTEResult, adjusted: bool = True) -> dict[str, str]:
    """Per axis: how its effects and interaction p-values were obtained (the footnote of its
    column in the subgroup table)."""
    out = {}
    for a, (scale, model) in res.primary.items():
        row = res.models[res.models.model == model].iloc[0]
        derived = res._primary_filters(a).get("method")
        method = {"km": "Kaplan–Meier within each subgroup",
                  "slope": "difference in the treatment × time slope"}.get(
            derived, "conditional on the reference profile" if scale == "HR"
            else "standardized (g-computation) over the subgroup's rows (categorical "
                 "modifiers) or conditional at the stated values (continuous modifiers)")
        tests = res.interaction_p(a)
        kind = tests.test.iloc[0] if len(tests) else "wald"
        what = (f"Wald test of all {interaction_words(res)} terms of that model"
                if kind == "wald"
                else "Wald test that the subgroup effects on this scale are equal")
        link = "" if derived else f"{row.link} link, "
        if is_survival(res) and scale == "HR":
            method = ("within-subgroup hazard ratio under a shared baseline hazard, "
                      "conditional on the reference profile")
            link = f"{(res.meta or {}).get('ties', 'efron')} ties, "
        elif is_survival(res) and scale == "SurvDiff":
            method = ("Cox-model survival (Breslow baseline hazard) under each arm, "
                      "standardized over the subgroup's rows, in percentage points")
            link = ""
        out[a] = (f"{scale}: {method}, from the {row.model} model ({link}{row.variance} "
                  f"variance); interaction p: {what}" + (
                      f", adjusted across modifiers ({res.multiplicity})"
                      if adjusted and res.multiplicity != "none" else "") + ".")
    return out


def source_notes(res: HTEResult) -> list[str]:
    """The notes under the subgroup table: the analysis strategy, display categories, and
    the formula, rows analysed and data hash."""
    from hte_report.presentation.analyses import display_notes, strategy_note

    notes = ([strategy_note(res)] if strategy_note(res) else []) + display_notes(res)
    notes = [clean_label(n) for n in notes]
    notes.append(clean_label(
        f"Formula: {res.formula}. n analysed (overall) = "
        + (f"{res.meta['repeated']['n_groups']} patients, {res.n_analysed} of {res.n_input} "
           "visits. " if (res.meta or {}).get("repeated") else
           f"{res.n_analysed} of {res.n_input}. ") +
        f"Data SHA-256 {res.data_sha256[:16]}…; hte_report {res.version}."))
    return notes


def interaction_table(res: HTEResult) -> GT:
    """All heterogeneity tests: every model, scale and test, with adjusted p-values."""
    df = res.interactions.copy()
    df["modifier"] = [_label(res, m) for m in df.modifier]
    df["note"] = [clean_label(n) if isinstance(n, str) else "" for n in df.note]
    df["p"] = [fmt_p(p) for p in df.p_value]
    df["p_adj"] = [fmt_p(p) for p in df.p_adjusted]
    df["statistic"] = [f"{s:.2f}" if np.isfinite(s) else "–" for s in df.statistic]
    df = df[["modifier", "model", "scale", "test", "statistic", "df", "p", "p_adj", "note"]]
    gt = GT(df, groupname_col="modifier")
    gt = gt.cols_label(model="Model", scale="Scale", test="Test", statistic="χ²", df="df",
                       p="P", p_adj=f"P adjusted ({res.multiplicity})", note="Note")
    gt = gt.tab_header(title="Tests of heterogeneity (interaction)",
                       subtitle=f"wald: all {interaction_words(res)} coefficients; "
                                + ("lr: likelihood ratio; " if (df.test == "lr").any() else "")
                                + "equality: of the subgroup effects")
    return gt
