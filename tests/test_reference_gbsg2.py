"""hr.fit on the GBSG2 trial (one modifier at a time, Cox + standardized survival + KM RMST)
against R (tests/reference/gbsg2.R -> gbsg2.json): subgroup and conditional hazard ratios,
ratios of HRs, Wald/LR tests, the primary analysis' overall row, SurvDiff at 1095 days,
RMSTDiff at 1825 days, cox.zph p-values, and Kaplan-Meier displays. Relative tolerance 1e-6."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.estimation.survival import fit_survival
from hte_report.models.survival import kaplan_meier

REF = Path(__file__).parent / "reference"
RTOL = 1e-6
J = json.loads((REF / "gbsg2.json").read_text())
RECORDS = J["records"]
FORMULA = "Surv(time, cens) ~ horTh * (age + C(menostat) + C(tgrade) + pnodes) + progrec"
MODIFIERS = {"age": "age", "menostat": "C(menostat)", "tgrade": "C(tgrade)",
             "pnodes": "pnodes"}
VALUES = ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value")
COUNTS = ("n", "n_treated", "n_control", "events_treated", "events_control",
          "exposure_treated", "exposure_control")


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REF / "data" / "gbsg2.csv")


@pytest.fixture(scope="module")
def res(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(FORMULA, data, treatment="horTh", reference="no", horizons=[1095],
                      rmst_tau=1825, display_cutpoints={"age": [50]},
                      at={"age": [40, 50, 60]})


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
    else:
        rows = rows[rows.level == r["level"]]
    return _one(rows, f"{r['modifier']}={r['level']} {r['scale']} {r['method']}")


def _check_record(g, r):
    what = f"{r['analysis']} {r['modifier']}={r['level']} {r['scale']} {r['method']}"
    for col in VALUES:
        _approx(g[col], r[col], f"{what}: {col}")
    for col in ("mu_treated", "mu_control", "ph_p_value", "horizon"):
        _approx(g[col], r[col], f"{what}: {col}")
    for col in COUNTS:
        if col in r:
            assert float(g[col]) == r[col], f"{what}: {col}"


@pytest.mark.parametrize("modifier", ["age", "menostat", "tgrade", "pnodes"])
def test_subgroup_and_conditional_rows(res, modifier):
    """HR per level / at values, standardized and conditional SurvDiff, KM RMSTDiff, with
    per-arm counts and the within-subgroup cox.zph p."""
    refs = [r for r in RECORDS if r["analysis"] == "one-at-a-time" and r["modifier"] == modifier]
    assert len(refs) >= 6
    for r in refs:
        _check_record(_record_row(res.subgroups, r), r)
    mine = res.subgroups[res.subgroups.modifier == modifier]
    assert len(mine) == len(refs), "rows the R reference does not describe"


def test_overall_rows_are_the_primary_analysis(res):
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
    """With a strategy the result's meta is the overall (primary) analysis': cox.zph per term
    of coxph(Surv ~ horTh + progrec)."""
    _zph_close(res.meta["ph_tests"], J["ph_tests"]["primary"], "primary")


@pytest.fixture(scope="module")
def one_at_a_time_fits(data):
    """The engine call the strategy layer makes for each modifier (its meta is not kept in the
    combined result)."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m, term in MODIFIERS.items():
            out[m] = fit_survival(f"Surv(time, cens) ~ horTh + {term} + horTh:{term} + progrec",
                                  data, treatment="horTh", reference="no", multiplicity="none")
    return out


@pytest.mark.parametrize("modifier", list(MODIFIERS))
def test_ph_tests_of_each_one_at_a_time_model(one_at_a_time_fits, modifier):
    _zph_close(one_at_a_time_fits[modifier].meta["ph_tests"],
               J["ph_tests"]["one_at_a_time"][modifier], modifier)


def _arm(data, arm, rows=None):
    m = (data.horTh == arm).to_numpy().copy()  # writable under pandas 3 (copy-on-write)
    if rows is not None:
        m &= rows
    return data.time.to_numpy(float)[m], data.cens.to_numpy(float)[m]


def test_km_survival_and_numbers_at_risk(data):
    """The package's Kaplan-Meier curve (models.survival.kaplan_meier) at the display times:
    survival and numbers at risk per arm as R's summary(survfit, times = ...)."""
    for r in J["km"]["at_risk"]:
        time, event = _arm(data, r["arm"])
        ut, surv, n_risk, _ = kaplan_meier(time, event)
        k = np.searchsorted(ut, r["time"], side="right")  # curve times <= t
        s = 1.0 if k == 0 else surv[k - 1]
        assert s == pytest.approx(r["surv"], rel=RTOL), (r["arm"], r["time"])
        j = np.searchsorted(ut, r["time"], side="left")  # first time >= t
        at_risk = int(n_risk[j]) if j < len(ut) else 0
        assert at_risk == r["n_risk"], (r["arm"], r["time"])


def _km_median(time, event):
    """Median of the package's KM curve by R's rule (first time with S <= 0.5; the midpoint
    to the next time when S is exactly 0.5 there); NaN when not reached."""
    ut, surv, _, d = kaplan_meier(time, event)
    keep = d > 0
    ut, surv = ut[keep], surv[keep]
    hit = np.flatnonzero(surv <= 0.5 + 1e-12)
    if not len(hit):
        return np.nan
    k = hit[0]
    if abs(surv[k] - 0.5) < 1e-12 and k + 1 < len(ut):
        return (ut[k] + ut[k + 1]) / 2
    return float(ut[k])


def test_km_medians(data):
    """Median survival per arm overall and within each menostat / tgrade level (hte_report
    has no median function; this derives it from kaplan_meier). The R CIs are stored in the
    JSON for the report."""
    assert len(J["km"]["medians"]) == 12
    for r in J["km"]["medians"]:
        rows = None if r["modifier"] == "All patients" else (
            data[r["modifier"]].astype(str) == r["level"]).to_numpy()
        time, event = _arm(data, r["arm"], rows)
        assert len(time) == r["n"] and event.sum() == r["events"]
        got = _km_median(time, event)
        _approx(got, r["median"], f"median {r['modifier']}={r['level']} {r['arm']}")
