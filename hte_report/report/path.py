"""The report's risk-based (PATH) section: a risk model, risk-stratified effects on both
scales and personalized benefit, from the plan's ``risk_based`` entry."""

from __future__ import annotations

import warnings

import pandas as pd

from hte_report.errors import HTEReportWarning
from hte_report.path.risk import OverfittingWarning, risk_model


def risk_section(analysis, with_png: bool = False) -> list:
    """Blocks of the report's risk-based (PATH) section for a planned analysis.

    Reads the plan's ``risk_based`` entry (``planned``, ``formula``, ``method``,
    ``include_treatment``, ``risk_column``, ``cutpoints``, ``groups``, ``crossfit_folds``; the
    plan's ``seed`` seeds the folds) and ``analysis.data``. A risk analysis that cannot be
    produced becomes a warning callout (a deviation), never a failed report.

    Returns
    -------
    list
        :mod:`hte_report.report.model` blocks.
    """
    from hte_report.core.format import fmt_ci, fmt_count, fmt_p
    from hte_report.errors import HTEReportError
    from hte_report.path.benefit import risk_stratified
    from hte_report.report.model import Callout, Para, Table

    plan, res = analysis.plan, analysis.result
    rb = plan.raw.get("risk_based") or {}
    if not rb.get("planned"):
        return [Para("Not planned: the plan does not request a risk-based (PATH) analysis.")]
    outcome = plan.outcome["variable"]
    if plan.outcome["family"] != "binary" or not (rb.get("formula") or rb.get("risk_column")):
        why = ("it needs a binary outcome" if plan.outcome["family"] != "binary" else
               "the plan gives neither risk_based.formula nor risk_based.risk_column")
        _warn_not_produced(why)
        return [Callout("warning", "Risk-based analysis not produced",
                        f"Planned, but not produced: {why}. This is a deviation from the plan.")]
    method = rb.get("method", "external" if rb.get("risk_column") else "pooled")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", HTEReportWarning)
            rm = risk_model(rb.get("formula") or f"{outcome} ~ 1", analysis.data,
                            treatment=plan.treatment, method=method,
                            include_treatment=bool(rb.get("include_treatment", False)),
                            risk_column=rb.get("risk_column"),
                            crossfit_folds=rb.get("crossfit_folds"),
                            seed=plan.seed if plan.seed is not None else 0,
                            reference=plan.raw["treatment"]["control"],
                            conf_level=plan.conf_level, safe_formula=True)
            rr = risk_stratified(rm, cutpoints=rb.get("cutpoints"), groups=rb.get("groups", 4))
    except (HTEReportError, ValueError) as exc:
        _warn_not_produced(f"it failed: {exc}")
        return [Callout("warning", "Risk-based analysis not produced",
                        f"Planned, but it failed: {exc} This is a deviation from the plan.")]
    how = {"pooled": "fitted on all patients without the treatment term (blinded to arm)"
                     + ("; the arm entered as a main effect set to control for prediction"
                        if rm.include_treatment else ""),
           "control-arm": "fitted on the control arm only",
           "external": "supplied from outside the trial"}[method]
    cross = (f" Predicted risks are {rm.crossfit_folds}-fold cross-fitted (seed {rm.seed}): each "
             "patient's risk comes from a model fitted without them." if rm.crossfit_folds
             else "")
    blocks: list = [Para(
        "Following the PATH statement (Kent et al. 2020), patients were grouped by their "
        f"predicted risk of the outcome without treatment. Risk model: {rm.formula}, {how}."
        f"{cross} Effects per stratum are crude (risk difference, risk ratio, odds ratio of "
        "each stratum's 2x2 table); the treatment x linear-predictor interaction is tested on "
        "each scale.")]
    if rm.developed_on_trial and not rm.crossfit_folds:
        blocks.append(Callout("warning", "Risk model developed on this trial", rm.notes[0]))
    perf = rm.performance.pivot_table(index="population", columns="metric", aggfunc="first",
                                      values=["estimate", "conf_low", "conf_high"])
    rows = []
    for pop in ("all", "control", "treated"):
        if pop not in perf.index:
            continue
        cells = [f"{perf.loc[pop, ('estimate', m)]:.2f} ({perf.loc[pop, ('conf_low', m)]:.2f} "
                 f"to {perf.loc[pop, ('conf_high', m)]:.2f})" for m in
                 ("c_statistic", "calibration_intercept", "calibration_slope")]
        rows.append([pop, *cells])
    blocks.append(Table(pd.DataFrame(rows, columns=["Patients", "c-statistic",
                                                    "Calibration-in-the-large",
                                                    "Calibration slope"]),
                        "Risk model discrimination and calibration",
                        notes=("c-statistic with DeLong interval; calibration-in-the-large: "
                               "intercept of logit(y) ~ offset(lp) (0 is ideal); slope of "
                               "logit(y) ~ lp (1 is ideal).",), name="risk-performance"))
    st = rr.strata.pivot_table(index=["stratum", "label", "mean_risk", "events_treated",
                                      "n_treated", "events_control", "n_control"],
                               columns="scale", values=["estimate", "conf_low", "conf_high"],
                               aggfunc="first").reset_index()
    ctl = plan.raw["treatment"].get("control_label", rm.treatment_labels[0])
    trt = plan.raw["treatment"].get("treated_label", rm.treatment_labels[1])
    tab = pd.DataFrame({
        "Stratum of predicted risk": st["label"],
        "Mean predicted risk": [f"{100 * v:.1f}%" for v in st["mean_risk"]],
        f"Events/n ({trt})": [fmt_count(e, n) for e, n in zip(st.events_treated, st.n_treated)],
        f"Events/n ({ctl})": [fmt_count(e, n) for e, n in zip(st.events_control, st.n_control)],
        **{name: [fmt_ci(e, lo, hi, sc) for e, lo, hi in zip(st[("estimate", sc)],
                                                            st[("conf_low", sc)],
                                                            st[("conf_high", sc)])]
           for sc, name in (("RD", "RD, % points (CI)"), ("RR", "RR (CI)"), ("OR", "OR (CI)"))},
    })
    blocks.append(Table(tab, "Treatment effects by stratum of predicted baseline risk",
                        notes=("Crude per stratum: Wald RD, Katz log-RR and Woolf log-OR "
                               "intervals.",), name="risk-strata"))
    tests = rr.tests.assign(p=[fmt_p(p) for p in rr.tests.p_value])
    blocks.append(Table(tests[["hypothesis", "scale", "test", "model", "p"]].rename(columns={
        "hypothesis": "Hypothesis", "scale": "Scale", "test": "Test", "model": "Model",
        "p": "P"}), "Heterogeneity of effect by baseline risk", name="risk-tests"))
    blocks.append(_figure_block(rr.plot(), "Treatment effect against predicted baseline risk: "
                                "crude stratum effects (points) and the logistic model with a "
                                "treatment x risk interaction (line, pointwise band).",
                                "risk-benefit", with_png))
    blocks.extend(_benefit_blocks(res, rr.strata[rr.strata.scale == "RD"].mean_risk.to_numpy()))
    msgs = list(dict.fromkeys(str(w.message) for w in caught
                              if not issubclass(w.category, OverfittingWarning)))
    if msgs:
        blocks.append(Callout("note", "Warnings", " ".join(msgs)))
    return blocks


BENEFIT_TITLE = "Absolute benefit implied by the overall risk ratio at each stratum's mean risk"


def _benefit_blocks(res, risks) -> list:
    """The personalized-benefit table: one row per stratum's mean risk. A risk the benefit
    cannot be computed at (e.g. baseline risk x RR above 1: a risk ratio cannot apply there)
    is a row marked with the reason; when no row can be computed (no risk-ratio model, an RR
    that is not estimable) a callout says why the table is absent."""
    from hte_report.core.format import fmt_ci
    from hte_report.errors import HTEReportError
    from hte_report.path.personalized import benefit_from_result
    from hte_report.report.model import Callout, Table

    rows, reasons = [], []
    for p in risks:
        try:
            b = benefit_from_result(res, [float(p)])
        except (HTEReportError, ValueError) as exc:
            reason = str(exc)
            reasons.append(reason)
            rows.append({"Baseline risk": f"{100 * p:.1f}%", "ARR, % points (CI)": "–",
                         "NNT (Altman 1998)": "–", "Note": f"not computed: {reason}"})
            continue
        for r in b.itertuples():
            rows.append({"Baseline risk": f"{100 * r.p0:.1f}%",
                         "ARR, % points (CI)": fmt_ci(r.arr, r.arr_low, r.arr_high, "RD"),
                         "NNT (Altman 1998)": r.nnt_text, "Note": ""})
    if not rows:
        return []
    if len(reasons) == len(rows):
        why = " ".join(dict.fromkeys(reasons))
        return [Callout("warning", "Personalized benefit not shown",
                        f"The table of the absolute benefit implied by the overall risk ratio "
                        f"at each stratum's mean risk is not shown: {why}")]
    tab = pd.DataFrame(rows)
    notes = ["ARR = p0 (1 - RR) with the overall RR of the primary relative model; assumes a "
             "constant relative effect: compare with the observed stratum RDs."]
    if reasons:
        notes.append(f"{len(reasons)} of {len(rows)} rows not computed (see Note): the overall "
                     "risk ratio does not apply at those baseline risks.")
    else:
        tab = tab.drop(columns="Note")
    return [Table(tab, BENEFIT_TITLE, notes=tuple(notes), name="personalized-benefit")]


def _warn_not_produced(why: str) -> None:
    """A planned section the report could not produce is said where the report is rendered
    too (``hte-report render`` prints it), not only inside the report."""
    warnings.warn(f"the planned risk-based (PATH) analysis was not produced: {why.rstrip('.')}. "
                  "The report records this as a deviation from the plan.", HTEReportWarning,
                  stacklevel=3)


def _figure_block(fig, caption: str, name: str, png: bool):
    from hte_report.report.model import Figure

    return Figure.from_matplotlib(fig, caption, name, png)
