"""The forest plot's footnote: what the markers, scales and tests are, which analysis produced
the rows, and what the survival panels show."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hte_report.core.format import clean_label
from hte_report.presentation.plots.style import _label
from hte_report.presentation.repeated import interaction_words
from hte_report.presentation.survival import is_survival, scale_label

if TYPE_CHECKING:
    from hte_report.results.result import HTEResult

_WEIGHT = {"continuous": ["n"], "binary": ["events_treated", "events_control"],
           "count": ["events_treated", "events_control"],
           "survival": ["events_treated", "events_control"]}  # marker area


def _forest_notes(result: HTEResult, axes: list[str], rows: list, overall: dict,
                  adjusted: bool, comparison: str | None = None) -> list[str]:
    pct = f"{100 * result.conf_level:g}%"
    size = "subgroup size" if result.family == "continuous" else "number of events"
    sized = [r.cells[a][_WEIGHT[result.family]].sum(min_count=1) for a in axes for r in rows
             if r.kind == "level" and r.cells[a] is not None]
    circles = ("; circles: conditional effects at the stated value of a continuous modifier"
               if not np.isfinite(sized).all() else "")
    notes = [f"Squares: subgroup effects (area proportional to {size}){circles}; lines: {pct} "
             "CIs; diamond and dashed line: overall effect."]
    if is_survival(result):
        notes += _survival_notes(result, axes, rows)
    else:
        how = {"OR": " (conditional)"}
        cond = circles or any(s in how for s, _ in result.primary.values())
        notes.append("; ".join(f"{s} from {m}{how.get(s, '')}"
                               for s, m in result.primary.values())
                     + ("; conditional effects hold the other covariates at the reference "
                        "profile" if cond else "") + ".")
    adj = ""
    if adjusted:  # family sizes as recorded with the adjusted p-values
        t = result.interaction_p(axes[0], comparison=comparison)
        fam = t.groupby(t.get("family", pd.Series("all", t.index))).modifier.nunique()
        method = t.p_adjust_method.iloc[0] if len(t) else result.multiplicity
        adj = (f"; adj: {method}-adjusted across the {fam.iloc[0]} modifiers tested"
               if len(fam) == 1 else f"; adj: {method}-adjusted within each family ("
               + ", ".join(f"{n} {name}" for name, n in fam.items()) + " modifiers)")
    if is_survival(result) and adjusted:
        sizes = {result.primary[a][0]: result.interaction_p(a, comparison=comparison)
                 .modifier.nunique() for a in axes}
        if len(set(sizes.values())) > 1:
            adj = (f"; adj: {result.multiplicity}-adjusted across the modifiers tested on each "
                   "scale (" + ", ".join(f"{s} {n}" for s, n in sizes.items()) + ")")
    if is_survival(result):
        notes.append(_survival_p_note(result, axes, adj))
    else:
        notes.append(f"P-int: Wald test of the {interaction_words(result)} terms in the model of "
                     f"each scale{adj}.")
    from hte_report.presentation.analyses import display_notes, strategy_note

    if comparison:
        notes.insert(0, clean_label(f"Comparison: {comparison} (patients of these two arms)."))
    strategy = strategy_note(result)
    if strategy:
        notes.append(clean_label(strategy))
    notes += [clean_label(n) for n in display_notes(result)]
    notes += [f"No overall {result.primary[a][0]}: the result has no standardized overall effect "
              "on that scale." for a in axes if overall[a] is None]
    notes += [f"Blank {result.primary[a][0]} rows: the result has no such subgroup on that "
              "scale." for a in axes if not is_survival(result) and any(
                  r.kind == "level" and r.cells[a] is None for r in rows)]
    if set(result.posthoc) & set(result.modifiers):
        notes.append("Post hoc modifiers were not pre-specified; their results are "
                     "hypothesis-generating.")
    return notes


def _survival_notes(result: HTEResult, axes: list[str], rows: list) -> list[str]:
    """What each survival panel shows: the Cox model, ties, the horizon and the time unit,
    the direction of benefit, and rows shown on one scale only."""
    meta = result.meta or {}
    ties = meta.get("ties", "efron")
    strata = meta.get("strata") or []
    strat = f", stratified by {', '.join(strata)}" if strata else ""
    out = []
    for a in axes:
        scale, model = result.primary[a]
        name = scale_label(result, scale)
        if scale == "HR":
            out.append(f"HR: hazard ratio from the Cox model ({ties.capitalize()} ties{strat}), "
                       "within each subgroup under a shared baseline hazard, other covariates "
                       "at the reference profile; HR < 1 favours treatment.")
        elif scale == "SurvDiff":
            out.append(f"{name}: survival predicted by the Cox model with the Breslow baseline "
                       "hazard under each arm, standardized over the subgroup's patients; "
                       "> 0 favours treatment.")
        elif scale == "RMSTDiff":
            out.append(f"{name}: Kaplan\u2013Meier within each arm of each subgroup; > 0 "
                       "favours treatment.")
    for a in axes:  # rows the other scale has but this one has not (e.g. display categories)
        scale = result.primary[a][0]
        mods = sorted({m for m in result.modifiers if any(
            r.kind == "level" and r.modifier == m and r.cells.get(a) is None for r in rows)},
            key=list(result.modifiers).index)
        for m in mods:
            other = [b for b in axes if b != a]
            if scale == "HR" and m in (result.display_cutpoints or {}):
                out.append(f"{_label(result, m)}: no HR by display category \u2014 with {m} "
                           "continuous in the Cox model the HR changes continuously with it; "
                           "its conditional HRs at the stated values are shown instead, and "
                           "the interaction effect (ratio of HRs per unit) and the effect "
                           "curve describe it.")
            elif other:
                out.append(f"{_label(result, m)}: blank {scale} rows are shown on the "
                           f"{result.primary[other[0]][0]} scale only.")
    return out


def _survival_p_note(result: HTEResult, axes: list[str], adj: str) -> str:
    parts = []
    for a in axes:
        scale = result.primary[a][0]
        tests = result.interaction_p(a)
        kind = tests.test.iloc[0] if len(tests) else "wald"
        if kind == "equality":
            parts.append(f"{scale}: Wald test that the subgroup {scale} are equal "
                         "(categorical modifiers; \u2013 for continuous ones, whose test is "
                         "on the HR scale)")
        else:
            parts.append(f"{scale}: Wald test of the {interaction_words(result)} terms of the "
                         "Cox model")
    return "P-int \u2014 " + "; ".join(parts) + f"{adj}."
