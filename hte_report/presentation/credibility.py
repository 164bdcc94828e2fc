"""Credibility of effect modification: ICEMAN for randomized trials (Schandelmaier et al., CMAJ
2020) and the Sun et al. (BMJ 2010) criteria, answered from the locked plan and the results.

Each answer is one of the instrument's four options, with the reason shown. The overall rating
is the analyst's judgement recorded in the plan; the tool proposes one with its reasoning but
never reports a percentage or a sum (ICEMAN's authors advise against both). ICEMAN applies to a
suggested effect modification (interaction p < 0.1); the rating can differ between scales.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_report.core.format import fmt_p, is_ratio, p_eq
from hte_report.presentation.survival import higher_favours
from hte_report.results.result import HTEResult
from hte_report.spec.plan import ANSWERS, Plan

DN, PN, PY, DY = ANSWERS
#: Item 3 mapping of the interaction p-value to the four options.
P_THRESHOLDS = ((0.005, DY), (0.05, PY), (0.1, PN))

QUESTIONS = {
    1: "Was the direction of effect modification correctly hypothesized a priori?",
    2: "Is the effect modification supported by prior evidence?",
    3: "Does a test for interaction suggest that chance is an unlikely explanation?",
    4: "Were only a small number of effect modifiers tested, or was their number accounted for?",
    5: "For a continuous modifier, were arbitrary cut points avoided?",
}


def _benefit(theta: float, higher_is_better: bool) -> float:
    return theta if higher_is_better else -theta


def observed_direction(result: HTEResult, axis: str, modifier: str, when: str,
                       higher_is_better: bool) -> tuple[str, str]:
    """('larger'|'smaller', explanation): is benefit larger when the modifier is ``when``?"""
    scale, model = result.primary[axis]
    log = is_ratio(scale)
    higher_is_better = higher_favours(scale, higher_is_better)
    if result.modifier_kinds.get(modifier) == "continuous":
        df = result._comparison(result.subgroups, None)
        if "analysis" in df:
            df = df[df.analysis != "within-subgroup"]
        rows = df[(df.modifier == modifier) & (df.model == model) & (df.method == "conditional")
                  & (df.scale == scale)]
        rows = rows.sort_values("value")
        if len(rows) < 2:
            return "unknown", "too few evaluation points"
        th = np.log(rows.estimate.to_numpy()) if log else rows.estimate.to_numpy()
        lo, hi = _benefit(th[0], higher_is_better), _benefit(th[-1], higher_is_better)
        more_when_higher = hi > lo
        if when not in ("higher", "lower"):
            return "unknown", f"direction.when must be 'higher' or 'lower' for {modifier}"
        larger = more_when_higher if when == "higher" else not more_when_higher
        text = (f"{scale} at the 75th percentile ({rows.estimate.iloc[-1]:.3g}) vs 25th "
                f"({rows.estimate.iloc[0]:.3g})")
        return ("larger" if larger else "smaller"), text
    eff = result.effects(axis)
    rows = eff[eff.modifier == modifier]
    if str(when) not in set(rows.level):
        return "unknown", f"level {when!r} not found among {sorted(rows.level)}"
    th = np.log(rows.estimate.to_numpy()) if log else rows.estimate.to_numpy()
    ben = np.array([_benefit(t, higher_is_better) for t in th])
    at = rows.level.to_numpy() == str(when)
    larger = ben[at].mean() > ben[~at].mean()
    text = (f"{scale} in {modifier} = {when}: {rows.estimate[at].iloc[0]:.3g} vs other levels: "
            + ", ".join(f"{v:.3g}" for v in rows.estimate[~at]))
    return ("larger" if larger else "smaller"), text


def iceman(result: HTEResult, plan: Plan | None) -> pd.DataFrame:
    """ICEMAN core questions per (modifier, scale): one row per question with answer and reason."""
    rows = []
    k = len(result.modifiers)
    hib = bool(plan.outcome.get("higher_is_better", False)) if plan else False
    lock = plan.lock_status() if plan else "unlocked"
    for axis, (scale, model) in result.primary.items():
        tests = result.interaction_p(axis).set_index("modifier")
        for mod in result.modifiers:
            spec = plan.modifier(mod) if plan else None
            p = float(tests.loc[mod, "p_value"]) if mod in tests.index else np.nan
            p_adj = float(tests.loc[mod, "p_adjusted"]) if mod in tests.index else np.nan
            answers = {}
            # 1. direction a priori
            if spec is None:
                answers[1] = (DN, "post hoc: not pre-specified in the locked plan")
            elif not spec.direction:
                answers[1] = (PN, "pre-specified without a hypothesized direction")
            else:
                d = spec.direction
                applies = d.get("scale", "both") in ("both", axis)
                seen, how = observed_direction(result, axis, mod, str(d["when"]), hib)
                if not applies:
                    answers[1] = (PN, f"direction hypothesized on the {d['scale']} scale only")
                elif seen == "unknown":
                    answers[1] = (PN, f"direction could not be checked: {how}")
                elif seen != d["benefit"]:
                    answers[1] = (DN, f"hypothesized {d['benefit']} benefit when {d['when']}; "
                                      f"observed the opposite ({how})")
                elif lock == "matches":
                    answers[1] = (DY, f"locked plan states the direction, observed as "
                                      f"hypothesized ({how})")
                elif lock == "modified":
                    answers[1] = (PN, "direction as hypothesized, but the plan was edited after "
                                      "locking")
                else:
                    answers[1] = (PY, f"stated a priori in an unlocked plan; observed as "
                                      f"hypothesized ({how})")
            # 2. prior evidence (analyst input)
            pe = spec.prior_evidence if spec else None
            if pe:
                cites = "; ".join(pe.get("citations", [])) or "no citation given"
                answers[2] = (pe["support"], f"analyst's assessment in the plan ({cites})")
            else:
                answers[2] = (PN, "no prior evidence recorded in the plan")
            # 3. interaction test
            if not np.isfinite(p):
                answers[3] = (PN, "interaction test not estimable")
            else:
                ans = next((a for cut, a in P_THRESHOLDS if p < cut), DN)
                answers[3] = (ans, f"Wald interaction {p_eq(p)} ({model})")
            # 4. number of modifiers, and whether it was accounted for
            alpha = plan.alpha if plan else 0.05
            if k == 1:
                answers[4] = (DY, "a single effect modifier was tested")
            elif result.multiplicity != "none" and np.isfinite(p_adj) and p_adj < alpha:
                answers[4] = (DY, f"{k} modifiers; remains below α = {alpha} after "
                                  f"{result.multiplicity} adjustment ({p_eq(p_adj)})")
            else:  # the documented rule (docs/plan-schema.md): <= 5 small, <= 10 unclear
                adj = (f"not below α = {alpha} after {result.multiplicity} adjustment "
                       f"({p_eq(p_adj)})" if result.multiplicity != "none"
                       else "no multiplicity adjustment")
                answers[4] = ((PY, f"{k} modifiers, a small number; {adj}") if k <= 5 else
                              (PN, f"{k} modifiers; {adj}") if k <= 10 else
                              (DN, f"{k} modifiers; {adj}"))
            # 5. continuous modifier
            kind = result.modifier_kinds.get(mod)
            planned_type = spec.type if spec else None
            if kind == "continuous" and mod in (result.display_cutpoints or {}):
                answers[5] = (DY, "analysed as continuous; the pre-specified display "
                                  "categories only summarize the continuous model")
            elif kind == "continuous":
                answers[5] = (DY, "analysed as continuous (effects shown at its quartiles, "
                                  "no cut points)")
            elif planned_type == "continuous":
                answers[5] = (DN, "a continuous variable analysed in categories")
            else:
                answers[5] = ("not applicable", "categorical modifier")
            for q, (ans, why) in answers.items():
                rows.append({"modifier": mod, "label": result.labels.get(mod, mod),
                             "scale": scale, "model": model, "question": q,
                             "item": QUESTIONS[q], "answer": ans, "reason": why,
                             "interaction_p": p, "prespecified": spec is not None})
    return pd.DataFrame(rows)


def propose_rating(answers: pd.DataFrame) -> pd.DataFrame:
    """A proposed overall rating per (modifier, scale) with its reasoning; never a score."""
    out = []
    for (mod, scale), g in answers.groupby(["modifier", "scale"], sort=False):
        a = dict(zip(g.question, g.answer))
        p = g.interaction_p.iloc[0]
        if not np.isfinite(p) or p >= 0.1:
            rating = "not applicable"
            why = ("ICEMAN assesses a suggested effect modification (interaction p < 0.1); "
                   f"here {p_eq(p)}: no suggestion of effect modification on this scale.")
        elif DN in (a[1], a[3]):
            rating = "very low" if a[1] == DN and a[3] == DN else "low"
            why = "key items answered 'definitely no': " + ", ".join(
                f"Q{q}" for q in (1, 3) if a[q] == DN)
        else:
            relevant = [v for q, v in a.items() if v != "not applicable"]
            if all(v == DY for v in relevant):
                rating, why = "high", "every applicable item answered 'definitely yes'"
            elif all(v in (DY, PY) for v in relevant):
                rating, why = "moderate", "every applicable item answered yes (some 'probably')"
            else:
                weak = [f"Q{q}" for q, v in a.items() if v == PN]
                rating, why = "low", "items not supporting credibility: " + ", ".join(weak)
        out.append({"modifier": mod, "scale": scale, "proposed_rating": rating,
                    "reasoning": why})
    return pd.DataFrame(out)


def analyst_ratings(plan: Plan | None) -> pd.DataFrame:
    rows = plan.raw.get("credibility", []) if plan else []
    df = pd.DataFrame(rows, columns=["modifier", "scale", "rating", "rationale", "assessor",
                                     "reconciled"])
    df["reconciled"] = [v is True for v in df.reconciled]
    return df


def recorded_rating(analyst: pd.DataFrame, modifier: str, scale: str) -> str:
    """The rating to show for (modifier, 'absolute'|'relative'): the reconciled one; the only
    one; or, with several assessors and no reconciled rating, each assessor's."""
    rows = analyst[(analyst.modifier == modifier) & (analyst.scale == scale)]
    if rows.empty:
        return "not recorded"
    agreed = rows[rows.reconciled]
    if len(agreed):
        return str(agreed.rating.iloc[0]) + (" (reconciled)" if len(rows) > 1 else "")
    if len(rows) == 1:
        return str(rows.rating.iloc[0])
    return "; ".join(f"{r.assessor or 'unnamed'}: {r.rating}" for r in rows.itertuples()) + \
        " (not reconciled)"


def sun_checklist(result: HTEResult, plan: Plan | None) -> pd.DataFrame:
    """Sun et al. (BMJ 2010) criteria, answered where plan and results decide them."""
    k = len(result.modifiers)
    n_tests = k * len(result.primary)
    alpha = plan.alpha if plan else 0.05
    observational = bool(plan and plan.raw["trial"].get("design") == "observational")
    rows = []
    for mod in result.modifiers:
        spec = plan.modifier(mod) if plan else None
        tests = {ax: t.loc[mod] for ax in result.primary
                 if mod in (t := result.interaction_p(ax).set_index("modifier")).index}
        ps = {ax: float(t.p_adjusted) for ax, t in tests.items()}
        pstr = ", ".join(f"{result.primary[a][0]} {p_eq(float(t.p_value))} "
                         f"(adjusted {fmt_p(float(t.p_adjusted))})" for a, t in tests.items())
        pstr = pstr or "no interaction test on the primary scales"
        significant = any(np.isfinite(p) and p < alpha for p in ps.values())
        items = [
            ("Design", "Subgroup variable measured at baseline?", "analyst",
             "confirm the variable was measured before randomization" if not observational
             else "confirm the variable was measured before treatment started"),
            ("Design", "Effect suggested by comparisons within rather than between studies?",
             "yes", "a single randomized trial" if not observational else
             "a single observational study (comparisons within it)"),
            ("Design", "Hypothesis specified a priori?", "yes" if spec else "no",
             {"matches": "in the locked plan", "unlocked": "in the plan, which is not locked",
              "modified": "in the plan, edited after locking"}[
                 plan.lock_status() if plan else "unlocked"] if spec else "post hoc"),
            ("Design", "Direction specified a priori?",
             "yes" if spec and spec.direction else "no",
             spec.direction["statement"] if spec and spec.direction else "no direction stated"),
            ("Design", "One of a small number of hypothesized effects tested?",
             "yes" if n_tests <= 5 else "no",
             f"{k} modifiers on {len(result.primary)} scale(s): {n_tests} primary tests"),
            ("Analysis", "Interaction test suggests chance is unlikely?",
             "yes" if significant else "no", pstr + f"; α = {alpha} after adjustment"),
            ("Analysis", "Significant effect independent of other modifiers?",
             (("yes" if result.strategy == "joint" else "analyst") if k > 1
              else "not applicable") if significant else "not applicable",
             ("all modifiers estimated jointly in one model" if result.strategy == "joint"
              else "the modifier's own model does not adjust for the other modifiers: judge "
                   "from a joint-model sensitivity analysis") if significant and k > 1
             else "no significant effect to assess" if not significant
             else "a single modifier"),
            ("Context", "Size of the subgroup effect large?", "analyst",
             "judge from the subgroup table on each scale shown"),
            ("Context", "Interaction consistent across studies?", "not applicable",
             "single trial"),
            ("Context", "Interaction consistent across closely related outcomes?", "analyst",
             "related outcomes named: " + (", ".join(spec.related_outcomes)
                                           if spec and spec.related_outcomes else "none")),
            ("Context", "Indirect evidence supports the hypothesized interaction?", "analyst",
             (spec.rationale if spec else "no rationale recorded")),
            ("Design", "Subgroup variable a stratification factor at randomization? (Sun 2012)",
             "yes" if spec and spec.stratification_factor else
             "no" if spec and spec.stratification_factor is False else "analyst",
             "stratification_factor: true in the plan" if spec and spec.stratification_factor
             else "stratification_factor: false in the plan"
             if spec and spec.stratification_factor is False
             else "not recorded in the plan (modifiers[].stratification_factor)"),
        ]
        for i, (domain, crit, ans, why) in enumerate(items, 1):
            rows.append({"modifier": mod, "criterion": i, "domain": domain, "item": crit,
                         "answer": ans, "reason": why})
    return pd.DataFrame(rows)


def credibility_table(answers: pd.DataFrame, proposed: pd.DataFrame, analyst: pd.DataFrame):
    """great-tables view: one row per (modifier, scale), answers Q1-Q5, proposed and recorded
    ratings."""
    from great_tables import GT

    wide = answers.pivot_table(index=["modifier", "label", "scale"], columns="question",
                               values="answer", aggfunc="first").reset_index()
    wide.columns = [f"Q{c}" if isinstance(c, (int, np.integer)) else c for c in wide.columns]
    wide = wide.merge(proposed, on=["modifier", "scale"], how="left")
    wide["recorded"] = [recorded_rating(analyst, m, "relative" if is_ratio(s) else "absolute")
                        for m, s in zip(wide.modifier, wide.scale)]
    wide = wide[["label", "scale", "Q1", "Q2", "Q3", "Q4", "Q5", "proposed_rating",
                 "recorded"]]
    gt = GT(wide, groupname_col="label")
    gt = gt.cols_label(scale="Scale", proposed_rating="Proposed rating",
                       recorded="Analyst's rating")
    gt = gt.tab_header(title="Credibility of effect modification (ICEMAN, RCT version)",
                       subtitle="Q1 direction a priori · Q2 prior evidence · Q3 interaction test "
                                "· Q4 number of modifiers · Q5 continuous modifiers")
    gt = gt.tab_source_note("The overall rating is a judgement: the proposed rating is the "
                            "tool's suggestion with reasons; no score or percentage is "
                            "computed (as the instrument's authors advise).")
    return gt
