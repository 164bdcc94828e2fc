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

import numpy as np
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

REF = Path(__file__).parent / "reference"
RTOL = 1e-6
J = json.loads((REF / "actg320.json").read_text())
RECORDS = J["records"]
FORMULA = ("Surv(time, censor) ~ tx * (cd4 + age + C(sex) + C(ivdrug_ever) + karnof)"
           " + strata(strat2)")
MODIFIERS = {"cd4": "cd4", "age": "age", "sex": "C(sex)", "ivdrug_ever": "C(ivdrug_ever)",
             "karnof": "karnof"}
VALUES = ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value")
COUNTS = ("n", "n_treated", "n_control", "events_treated", "events_control",
          "exposure_treated", "exposure_control")


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


def _num(v):
    return np.nan if v is None else float(v)


def _approx(got, want, what):
    want = _num(want)
    if np.isnan(want):
        assert np.isnan(float(got)), f"{what}: {got} (R: NA)"
    else:
        assert float(got) == pytest.approx(want, rel=RTOL), f"{what}: {got} (R: {want})"


def _one(df, what):
    assert len(df) == 1, f"{what}: {len(df)} rows"
    return df.iloc[0]


def _record_row(df, r):
    rows = df[(df.modifier == r["modifier"]) & (df.scale == r["scale"])
              & (df.method == r["method"]) & (df.analysis == r["analysis"])]
    if r["value"] is not None:  # conditional effect at a value of a continuous modifier
        rows = rows[np.isclose(rows.value.astype(float), r["value"])]
        assert _one(rows, r["level"]).level == r["level"]
    else:
        rows = rows[rows.level == r["level"]]
    return _one(rows, f"{r['modifier']}={r['level']} {r['scale']} {r['method']}")


def _check_record(g, r):
    what = f"{r['analysis']} {r['modifier']}={r['level']} {r['scale']} {r['method']}"
    assert not g.note, f"{what}: {g.note}"
    for col in VALUES:
        _approx(g[col], r[col], f"{what}: {col}")
    for col in ("mu_treated", "mu_control", "ph_p_value", "horizon"):
        _approx(g[col], r[col], f"{what}: {col}")
    for col in COUNTS:
        if col in r:
            assert float(g[col]) == r[col], f"{what}: {col}"


def test_reference_data():
    d = _load()
    assert len(d) == J["n"] == 1151 and d.censor.sum() == J["events"] == 96
    assert not d.isna().any().any()


@pytest.mark.parametrize("modifier", list(MODIFIERS))
def test_subgroup_and_conditional_rows(res, modifier):
    """HR per level / at the quartiles, standardized SurvDiff (Breslow baseline per stratum)
    and conditional SurvDiff (modal stratum), KM RMSTDiff, with per-arm counts and the
    within-subgroup stratified cox.zph p."""
    refs = [r for r in RECORDS if r["analysis"] == "one-at-a-time" and r["modifier"] == modifier]
    assert len(refs) >= 6
    for r in refs:
        _check_record(_record_row(res.subgroups, r), r)
    mine = res.subgroups[res.subgroups.modifier == modifier]
    assert len(mine) == len(refs), "rows the R reference does not describe"


def test_overall_rows_are_the_primary_analysis(res):
    """coxph(Surv(time, censor) ~ tx + strata(strat2)): HR, standardized SurvDiff, KM RMSTDiff."""
    refs = [r for r in RECORDS if r["analysis"] == "overall-adjusted"]
    assert {r["scale"] for r in refs} == {"HR", "SurvDiff", "RMSTDiff"}
    for r in refs:
        _check_record(_record_row(res.overall, r), r)
    assert len(res.overall) == len(refs)


def test_interaction_effects(res):
    df = res.interaction_effects
    for r in J["interaction_effects"]:
        rows = df[(df.modifier == r["modifier"]) & (df.level == r["level"])
                  & (df.scale == r["scale"]) & (df.analysis == "one-at-a-time")]
        g = _one(rows, f"{r['modifier']}={r['level']} {r['scale']}")
        assert g.reference == r["reference"] and g.method == r["method"]
        _approx(g.horizon, r["horizon"], "horizon")
        for col in VALUES:
            _approx(g[col], r[col], f"{r['modifier']}={r['level']} {r['scale']}: {col}")
    assert len(df) == len(J["interaction_effects"])


def test_interaction_and_equality_tests(res):
    df = res.interactions
    for r in J["tests"]:
        rows = df[(df.modifier == r["modifier"]) & (df.scale == r["scale"])
                  & (df.test == r["test"])]
        g = _one(rows, f"{r['modifier']} {r['scale']} {r['test']}")
        assert int(g.df) == r["df"]
        _approx(g.horizon, r["horizon"], "horizon")
        for col in ("statistic", "p_value"):
            _approx(g[col], r[col], f"{r['modifier']} {r['scale']} {r['test']}: {col}")
    assert len(df) == len(J["tests"])


def _zph_close(got: list, want: list, what):
    assert [t["term"] for t in got] == [t["term"] for t in want], what
    for g, w in zip(got, want):
        assert g["df"] == w["df"], f"{what} {w['term']}"
        for col in ("statistic", "p_value"):
            _approx(g[col], w[col], f"{what} {w['term']}: {col}")


def test_meta_ph_tests_are_the_primary_models(res):
    """cox.zph per term of coxph(Surv ~ tx + strata(strat2)) (the strata term is not tested)."""
    assert res.meta["strata"] == ["strat2"]
    _zph_close(res.meta["ph_tests"], J["ph_tests"]["primary"], "primary")


@pytest.mark.parametrize("modifier", list(MODIFIERS))
def test_ph_tests_of_each_one_at_a_time_model(res, modifier):
    _zph_close(res.meta["ph_tests_by_model"][modifier],
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
        _approx(cv["median"], r["median"], f"{what}: median")
        _approx(survival_at(cv, J["horizon"]), r["surv_at_horizon"], f"{what}: S(300)")
        _approx(cv["s"].min(), r["min_surv"], f"{what}: min S")


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
        _approx(survival_at(km_curve(time, event), r["time"]), r["surv"], what)


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
        g = _one(summ[(summ.panel == title) & (summ.arm == arm)], f"{title} {arm}")
        assert g.n == r["n"] and g.events == r["events"], title
        _approx(g["median"], r["median"], f"{title} {arm}: median")
        _approx(g["300 days"], r["surv_at_horizon"], f"{title} {arm}: S(300)")
