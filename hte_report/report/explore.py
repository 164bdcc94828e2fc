"""The report's exploratory section "Exploratory: data-driven heterogeneity" (issue 18): an
honest causal forest with its calibration test, GATES, the best linear projection on the
pre-specified modifiers, RATE / TOC and variable importance -- every caption labelled
exploratory (hypothesis-generating), its p-values a multiplicity family of their own.

Plan entry (read from ``plan.raw["exploratory"]``)::

    exploratory:
      planned: true
      method: causal_forest          # the only method so far
      covariates: [age, educ, ...]   # the columns the forest may split on
      modifiers: [age, black]        # optional; default: the plan's modifiers
      design: randomized             # or observational (estimated propensity); default:
                                     # the plan's trial.design, else randomized
      propensity: 0.5                # optional known allocation probability (randomized)
      horizon: 300                   # survival outcomes: RMST horizon (default
                                     # outcome.rmst_tau)
      n_trees: 2000                  # optional: min_leaf, max_samples, n_folds, n_groups,
                                     # n_bootstrap, nuisance_trees, crossfit_trees,
                                     # n_jobs (1: reproducible)
    seed: 20260101                   # the plan's seed seeds the forest (default 0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from hte_report.core.format import fmt_p
from hte_report.report.model import Bullets, Callout, Figure, Para, Section, Table

__all__ = ["EXPLORE_KEYS", "explore_blocks", "explore_section", "relative_scale"]

TITLE = "Exploratory: data-driven heterogeneity"
TAG = "Exploratory (hypothesis-generating)"
NEVER = ("Never promote a forest-found subgroup to a confirmatory claim: a subgroup suggested "
         "here is a hypothesis for a new trial or an independent data set.")
FAMILY = ("The p-values of this section form their own multiplicity family, separate from the "
          "pre-specified family and not adjusted with it; the best-linear-projection p-values "
          "are Holm-adjusted within this family.")

#: plan keys of ``exploratory`` the section reads, with the argument of ``explore`` they feed
EXPLORE_KEYS = {"covariates": "covariates", "modifiers": "modifiers", "design": "design",
                "propensity": "propensity", "n_trees": "n_trees", "min_leaf": "min_leaf",
                "n_folds": "n_folds", "n_groups": "n_groups", "n_bootstrap": "n_bootstrap",
                "nuisance_trees": "nuisance_trees", "crossfit_trees": "crossfit_trees",
                "max_samples": "max_samples",
                "n_jobs": "n_jobs"}


def _num(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    text = f"{x:.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"
    return text.replace("-", "−")


def _ci(est: float, lo: float, hi: float) -> str:
    return f"{_num(est)} ({_num(lo)} to {_num(hi)})"


def _holm(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def relative_scale(res) -> list:
    """Binary outcomes: a paragraph on the implied risk ratios, with the caveat."""
    if res.family != "binary" or "rr_implied" not in res.cate:
        return []
    rr = res.cate["rr_implied"].dropna()
    if not len(rr):
        return []
    q = np.quantile(rr, [0.25, 0.5, 0.75])
    return [Para(f"Relative scale (exploratory): the implied risk ratios of the patients have "
                 f"median {_num(q[1])} (quartiles {_num(q[0])} to {_num(q[2])}; "
                 f"{len(res.cate) - len(rr)} patients without one). They divide the implied "
                 "risk with treatment by the implied risk without it, from the forest's "
                 "risk-difference CATE and its baseline-risk model; they are not a fitted "
                 "ratio model.")]


def explore_blocks(res, with_png: bool = False) -> list:
    """The section's blocks for an :class:`~hte_report.exploratory.ExploreResult`."""
    from hte_report.presentation.explore import (
        cate_by_subgroup_plot,
        effect_name,
        gates_plot,
        importance_plot,
        toc_plot,
    )

    eff = effect_name(res)
    s = res.settings
    blocks: list = [
        Callout("warning", "Exploratory, hypothesis-generating", f"{NEVER} {FAMILY}"),
        Para(f"Verdict (exploratory): {res.verdict}", strong=True),
        Para(f"An honest, orthogonalized causal forest (generalized random forest of Athey, "
             f"Tibshirani & Wager 2019, through EconML's CausalForestDML) estimated the "
             f"conditional average treatment effect ({eff}) from {len(res.covariates)} "
             f"covariates ({', '.join(res.covariates)}) on {res.n} patients "
             f"({res.n_excluded} excluded for missing values): {s['n_trees']} trees, "
             f"minimum leaf size {s['min_leaf']}, {int(round(100 * s['max_samples']))}% "
             f"subsamples split in halves for honesty; outcome and treatment residualized "
             f"with {s['n_folds']}-fold cross-fitted nuisance models (propensity: "
             f"{res.propensity}); seed {res.seed}. The calibration test and the best linear "
             "projection use each patient's out-of-bag CATE (from trees that never saw the "
             "patient) and doubly robust scores; GATES and RATE rank the patients of each fold "
             f"by the CATE of a forest grown on the other folds ({s['crossfit_trees']} trees), "
             "so no patient's outcome helps rank its own fold."),
    ]
    cal = res.calibration.set_index("term")
    rows = []
    for term, words in (("mean.forest.prediction", "Mean forest prediction (1 = the average "
                                                    "effect is well calibrated)"),
                        ("differential.forest.prediction", "Differential forest prediction (1 "
                                                            "= the heterogeneity is well "
                                                            "calibrated; 0 = none found)")):
        r = cal.loc[term]
        rows.append({"Coefficient": words, "Estimate": _num(r["estimate"]),
                     "SE (HC3)": _num(r["std_error"]), "One-sided p": fmt_p(r["p_value"])})
    blocks.append(Table(pd.DataFrame(rows), f"{TAG}: calibration test of the causal forest "
                        "(best linear predictor; grf's test_calibration)",
                        notes=("Regression of Y − m(X) on (W − e(X)) × mean CATE and (W − e(X)) "
                               "× (CATE − mean CATE); HC3 standard errors, one-sided p-values "
                               "(Chernozhukov, Demirer, Duflo & Fernández-Val).",),
                        name="explore-calibration"))
    g = res.gates
    gt = res.gates_tests.set_index("test")
    tb = gt.loc["top - bottom"]
    z = float(stats.norm.ppf(0.5 + res.conf_level / 2))
    tb_ci = _ci(tb["estimate"], tb["estimate"] - z * tb["std_error"],
                tb["estimate"] + z * tb["std_error"])
    gdisp = pd.DataFrame({
        "Group": [f"G{k}" for k in g["group"]], "n": g["n"].astype(str),
        "Forest CATE range": [f"{_num(a)} to {_num(b)}" for a, b in zip(g["cate_low"],
                                                                       g["cate_high"])],
        f"GATES ({eff}, CI)": [_ci(e, lo, hi) for e, lo, hi in
                               zip(g["estimate"], g["conf_low"], g["conf_high"])]})
    blocks.append(Table(gdisp, f"{TAG}: sorted group average treatment effects (GATES) by "
                        "quantile of the forest CATE",
                        notes=(f"Test of equal GATES: chi-square "
                               f"{_num(gt.loc['equal GATES', 'statistic'])} on "
                               f"{int(gt.loc['equal GATES', 'df'])} df, p "
                               f"{fmt_p(gt.loc['equal GATES', 'p_value'])}; top minus bottom "
                               f"{tb_ci}, p {fmt_p(tb['p_value'])}. Group effects "
                               "are means of doubly robust scores with HC3 standard errors.",),
                        name="explore-gates"))
    blocks.append(Figure.from_matplotlib(gates_plot(res), f"{TAG}: GATES by forest-CATE "
                                         "quantile group", "explore-gates", png=with_png))
    blp = res.blp
    if len(blp) > 1:
        mods = blp[blp["term"] != "(Intercept)"]
        holm = _holm(mods["p_value"].to_numpy())
        bdisp = pd.DataFrame({
            "Pre-specified modifier": mods["term"].to_numpy(),
            "Change in CATE per unit (CI)": [_ci(e, lo, hi) for e, lo, hi in
                                             zip(mods["estimate"], mods["conf_low"],
                                                 mods["conf_high"])],
            "p": [fmt_p(p) for p in mods["p_value"]],
            "p (Holm, this family)": [fmt_p(p) for p in holm]})
        blocks.append(Table(bdisp, f"{TAG}: best linear projection of the CATE on the "
                            "pre-specified modifiers",
                            notes=("Doubly robust scores regressed on the modifiers jointly "
                                   "(grf's best_linear_projection), HC3 standard errors. It "
                                   "compares the forest's heterogeneity with the pre-specified "
                                   "modifiers; the confirmatory tests are those of the "
                                   "pre-specified analysis.",), name="explore-blp"))
        blocks.append(Figure.from_matplotlib(cate_by_subgroup_plot(res), f"{TAG}: forest CATE "
                                             "by pre-specified subgroup",
                                             "explore-subgroups", png=with_png))
    rate = res.rate
    n_boot = int(rate["n_bootstrap"].iloc[0])
    rdisp = pd.DataFrame({
        "Metric": rate["metric"].to_numpy(),
        "Estimate (CI)": [_ci(e, lo, hi) for e, lo, hi in
                          zip(rate["estimate"], rate["conf_low"], rate["conf_high"])],
        "Bootstrap SE": [_num(x) for x in rate["std_error"]],
        "p": [fmt_p(p) for p in rate["p_value"]]})
    blocks.append(Table(rdisp, f"{TAG}: rank-weighted average treatment effect (RATE) of the "
                        "forest's CATE ranking",
                        notes=(f"AUTOC and Qini (Yadlowsky et al.), {n_boot} bootstrap "
                               "replicates; 0 = the ranking does not find patients "
                               "who benefit more.",), name="explore-rate"))
    blocks.append(Figure.from_matplotlib(toc_plot(res), f"{TAG}: targeting operator "
                                         "characteristic (TOC) of the forest's ranking",
                                         "explore-toc", png=with_png))
    blocks.append(Figure.from_matplotlib(importance_plot(res), f"{TAG}: variable importance "
                                         "of the causal forest (how often it split on each "
                                         "covariate; not a test of effect modification)",
                                         "explore-importance", png=with_png))
    blocks.extend(relative_scale(res))
    notes = [n for n in res.notes if not n.startswith("Exploratory, hypothesis-generating")]
    versions = ", ".join(f"{k} {v}" for k, v in res.versions.items())
    blocks.append(Bullets(tuple([*notes, f"Software: {versions}.", NEVER])))
    return blocks


def _warn_not_produced(why: str) -> None:
    """Said where the report is rendered too (``hte-report render`` prints it)."""
    import warnings

    from hte_report.errors import HTEReportWarning

    warnings.warn(f"the planned exploratory (causal forest) analysis was not produced: "
                  f"{why.rstrip('.')}. The report records this as a deviation from the plan.",
                  HTEReportWarning, stacklevel=3)


def explore_section(analysis, with_png: bool = False, result=None) -> Section:
    """Section ``explore`` of the report for a planned analysis.

    Reads the plan's ``exploratory`` entry (see the module docstring), fits
    :func:`hte_report.explore` on ``analysis.data`` (or uses ``result``, an
    :class:`~hte_report.exploratory.ExploreResult`, when given) and lays out its calibration
    table, GATES table and plot, best linear projection on the pre-specified modifiers, CATE by
    pre-specified subgroup, RATE table, TOC curve and variable importance, with a plain-words
    verdict. Not planned: a one-line section saying so. Planned but impossible (no EconML,
    time-to-event outcome, bad covariates): a warning callout (a deviation), never a failed
    report."""
    from hte_report.errors import HTEReportError

    def section(blocks) -> Section:
        # planned (pre-specified as exploratory): not the "post hoc, not in the plan" box; the
        # warning callout that opens the section says exploratory / hypothesis-generating
        return Section(TITLE, tuple(blocks), id="explore")

    if result is None:
        plan = analysis.plan
        ex = plan.raw.get("exploratory") or {}
        if not ex.get("planned", bool(ex)):
            return section([Para("Not planned: the plan does not request an exploratory "
                                 "(machine-learning) analysis of heterogeneity.")])
        method = ex.get("method", "causal_forest")
        family = plan.outcome.get("family")
        why = None
        if method != "causal_forest":
            why = f"method {method!r} is not available (use causal_forest)"
        elif family not in ("binary", "continuous", "survival"):
            why = f"the causal forest does not support {family} outcomes yet"
        elif family == "survival" and ex.get("horizon", plan.outcome.get("rmst_tau")) is None:
            why = ("a time-to-event outcome needs an RMST horizon (exploratory.horizon or "
                   "outcome.rmst_tau)")
        elif not ex.get("covariates"):
            why = "the plan's exploratory entry lists no covariates"
        if why:
            _warn_not_produced(why)
            return section([Callout("warning", "Exploratory analysis not produced",
                                    f"Planned, but not produced: {why}. This is a deviation "
                                    "from the plan.")])
        kw = {arg: ex[key] for key, arg in EXPLORE_KEYS.items() if key in ex}
        kw.setdefault("modifiers", [m.variable for m in plan.modifiers])
        design = (plan.raw.get("trial") or {}).get("design")
        if design in ("randomized", "observational"):
            kw.setdefault("design", design)
        covariates = kw.pop("covariates")
        data = analysis.data
        if family == "survival":
            kw["horizon"] = ex.get("horizon", plan.outcome.get("rmst_tau"))
            kw["event"] = plan.outcome.get("event")
            censor = plan.outcome.get("censor")
            if kw["event"] is None and censor is not None and censor in data.columns:
                kw["event"] = "_event_from_censor"
                data = data.assign(_event_from_censor=1 - data[censor])
            family = "time"
        try:
            from hte_report.exploratory import explore

            result = explore(covariates, data, treatment=plan.treatment,
                             outcome=plan.outcome["variable"],
                             control=plan.raw["treatment"]["control"], family=family,
                             seed=plan.seed if plan.seed is not None else 0,
                             alpha=float(plan.raw.get("alpha") or 0.05),
                             conf_level=plan.conf_level, **kw)
        except (HTEReportError, ValueError, TypeError) as exc:
            _warn_not_produced(f"it failed: {exc}")
            return section([Callout("warning", "Exploratory analysis not produced",
                                    f"Planned, but it failed: {exc} This is a deviation from "
                                    "the plan.")])
    return section(explore_blocks(result, with_png=with_png))
