"""hr.fit on the ACTG 320 trial (one modifier at a time, Cox models stratified by the
randomization stratum strat2, standardized survival + KM RMST) against R
(tests/reference/actg320.R -> actg320.json): subgroup and conditional hazard ratios, ratios of
HRs, Wald/LR tests, the primary analysis' overall row, SurvDiff at 300 days (Breslow baseline
per stratum), RMSTDiff at 300 days, cox.zph p-values, and the Kaplan-Meier displays of the
report (presentation.survival: km_curve, survival_at, at_risk, km_panels). Relative tolerance
1e-6. The model is the one of examples/actg320/plan.yaml."""

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

import hte_report as hr
from hte_report.errors import DataError
from hte_report.presentation.survival import (
    at_risk,
    km_curve,
    km_panels,
    survival_at,
    time_ticks,
)
from tests.survival_reference import (
    approx,
    check_interaction_effects,
    check_overall_rows,
    check_subgroup_rows,
    check_tests,
    one,
    zph_close,
)

REF = Path(__file__).parent / "reference"
J = json.loads((REF / "actg320.json").read_text())
RECORDS = J["records"]
FORMULA = ("Surv(time, censor) ~ tx * (cd4 + age + C(sex) + C(ivdrug_ever) + karnof)"
           " + strata(strat2)")
MODIFIERS = {"cd4": "cd4", "age": "age", "sex": "C(sex)", "ivdrug_ever": "C(ivdrug_ever)",
             "karnof": "karnof"}


def _load():
    d = pd.read_csv(REF / "data" / "actg320.csv")
    d["ivdrug_ever"] = (d.ivdrug > 1).astype(int)  # current (2) or previous (3) use
    return d


@pytest.fixture(scope="module")
def data():
    return _load()


@pytest.fixture(scope="module")
def res(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(FORMULA, data, treatment="tx", horizons=[300], rmst_tau=300,
                      display_cutpoints={"cd4": [50]})












def test_reference_data():
    d = _load()
    assert len(d) == J["n"] == 1151 and d.censor.sum() == J["events"] == 96
    assert not d.isna().any().any()


@pytest.mark.parametrize("modifier", list(MODIFIERS))
def test_subgroup_and_conditional_rows(res, modifier):
    """HR per level / at the quartiles, standardized SurvDiff (Breslow baseline per stratum)
    and conditional SurvDiff (modal stratum), KM RMSTDiff, with per-arm counts and the
    within-subgroup stratified cox.zph p."""
    check_subgroup_rows(res, RECORDS, modifier)


def test_overall_rows_are_the_primary_analysis(res):
    """coxph(Surv(time, censor) ~ tx + strata(strat2)): HR, standardized SurvDiff, KM RMSTDiff."""
    check_overall_rows(res, RECORDS)


def test_interaction_effects(res):
    check_interaction_effects(res, J["interaction_effects"])


def test_interaction_and_equality_tests(res):
    check_tests(res, J["tests"])




def test_meta_ph_tests_are_the_primary_models(res):
    """cox.zph per term of coxph(Surv ~ tx + strata(strat2)) (the strata term is not tested)."""
    assert res.meta["strata"] == ["strat2"]
    zph_close(res.meta["ph_tests"], J["ph_tests"]["primary"], "primary")


@pytest.mark.parametrize("modifier", list(MODIFIERS))
def test_ph_tests_of_each_one_at_a_time_model(res, modifier):
    zph_close(res.meta["ph_tests_by_model"][modifier],
               J["ph_tests"]["one_at_a_time"][modifier], modifier)


def test_a_subgroup_followed_less_than_the_horizon_is_not_estimable_there(data):
    """C(ivdrug) with its three levels (why the plan uses ivdrug_ever): ivdrug = 2 has 4
    patients and its single control patient is censored at 221 days, before the horizon. The
    fit goes on; that subgroup's absolute effects say why they are missing."""
    from hte_report.errors import SparseSubgroupWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", SparseSubgroupWarning)
        with pytest.warns(SparseSubgroupWarning, match=r"ivdrug=2 \(last observed time 221\)"):
            res = hr.fit("Surv(time, censor) ~ tx * (cd4 + C(ivdrug)) + strata(strat2)", data,
                         treatment="tx", horizons=[300], rmst_tau=300)
    rows = res.subgroups[(res.subgroups.modifier == "ivdrug") & (res.subgroups.level == "2")]
    assert rows.estimate.isna().all() and rows.note.str.startswith("not estimable").all()
    other = res.subgroups[(res.subgroups.modifier == "ivdrug") & (res.subgroups.level != "2")]
    assert other.estimate.notna().all()
    # the whole sample must be followed to the horizon: that stays an error
    with pytest.raises(DataError, match="beyond the follow-up"):
        hr.fit("Surv(time, censor) ~ tx * cd4", data, treatment="tx", horizons=[10_000])


# ----------------------------------------------------------------------------- Kaplan-Meier
def _panel_rows(data, r):
    if r["modifier"] == "All patients":
        return data
    return data[data[r["modifier"]].astype(str) == r["level"]]


def _arm(df, arm):
    sub = df[df.tx == arm]
    return sub.time.to_numpy(float), sub.censor.to_numpy(float)


def test_km_curve_median_and_survival_at_horizon(data):
    """km_curve (n, events, median: NaN = not reached, every curve stays above 0.5) and
    survival_at the horizon per arm, overall and within each level of sex and ivdrug_ever,
    as survfit."""
    assert len(J["km"]["panels"]) == 10
    for r in J["km"]["panels"]:
        what = f"{r['modifier']}={r['level']} arm {r['arm']}"
        cv = km_curve(*_arm(_panel_rows(data, r), r["arm"]))
        assert cv["n"] == r["n"] and cv["events"] == r["events"], what
        approx(cv["median"], r["median"], f"{what}: median")
        approx(survival_at(cv, J["horizon"]), r["surv_at_horizon"], f"{what}: S(300)")
        approx(cv["s"].min(), r["min_surv"], f"{what}: min S")


def test_km_numbers_at_risk_at_the_figure_ticks(data):
    """The ticks the KM figures use for this follow-up (364 days) and, at each, at_risk and
    survival_at per arm and panel as summary(survfit, times = ...)."""
    tmax = float(data.time.max())
    for unit in ("days", "time units"):
        for most in (8, 5):  # single panel, small multiples
            assert time_ticks(tmax, unit, most) == J["km_times"]
    for r in J["km"]["at_risk"]:
        what = f"{r['modifier']}={r['level']} arm {r['arm']} t={r['time']}"
        time, event = _arm(_panel_rows(data, r), r["arm"])
        assert at_risk(time, [r["time"]]) == [r["n_risk"]], what
        approx(survival_at(km_curve(time, event), r["time"]), r["surv"], what)


def test_km_panels_summaries(res, data):
    """The summary rows of the report's KM figures (km_panels: events/n, median, KM survival
    at the horizon mark) for the overall panel and the sex / ivdrug_ever panels."""
    import matplotlib.pyplot as plt

    groups = [("All patients", data)] + [
        (f"{m}: {lv}", data[data[m].astype(str) == lv])
        for m in ("sex", "ivdrug_ever") for lv in ("0", "1", "2")
        if (data[m].astype(str) == lv).any()]
    fig, summ = km_panels(groups, res, {"treated": 1, "control": 0},
                          {"treated": "IDV + ZDV + 3TC", "control": "ZDV + 3TC"},
                          marks={"300 days": 300.0})
    plt.close(fig)
    assert len(summ) == len(J["km"]["panels"])
    for r in J["km"]["panels"]:
        title = "All patients" if r["modifier"] == "All patients" else \
            f"{r['modifier']}: {r['level']}"
        arm = "IDV + ZDV + 3TC" if r["arm"] == 1 else "ZDV + 3TC"
        g = one(summ[(summ.panel == title) & (summ.arm == arm)], f"{title} {arm}")
        assert g.n == r["n"] and g.events == r["events"], title
        approx(g["median"], r["median"], f"{title} {arm}: median")
        approx(g["300 days"], r["surv_at_horizon"], f"{title} {arm}: S(300)")
