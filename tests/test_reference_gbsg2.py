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
from tests.survival_reference import (
    RTOL,
    approx,
    check_interaction_effects,
    check_overall_rows,
    check_subgroup_rows,
    check_tests,
    zph_close,
)

REF = Path(__file__).parent / "reference"
J = json.loads((REF / "gbsg2.json").read_text())
RECORDS = J["records"]
FORMULA = "Surv(time, cens) ~ horTh * (age + C(menostat) + C(tgrade) + pnodes) + progrec"
MODIFIERS = {"age": "age", "menostat": "C(menostat)", "tgrade": "C(tgrade)",
             "pnodes": "pnodes"}


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












@pytest.mark.parametrize("modifier", ["age", "menostat", "tgrade", "pnodes"])
def test_subgroup_and_conditional_rows(res, modifier):
    """HR per level / at values, standardized and conditional SurvDiff, KM RMSTDiff, with
    per-arm counts and the within-subgroup cox.zph p."""
    check_subgroup_rows(res, RECORDS, modifier)


def test_overall_rows_are_the_primary_analysis(res):
    check_overall_rows(res, RECORDS)


def test_interaction_effects(res):
    check_interaction_effects(res, J["interaction_effects"])


def test_interaction_and_equality_tests(res):
    check_tests(res, J["tests"])




def test_meta_ph_tests_are_the_primary_models(res):
    """With a strategy the result's meta is the overall (primary) analysis': cox.zph per term
    of coxph(Surv ~ horTh + progrec)."""
    zph_close(res.meta["ph_tests"], J["ph_tests"]["primary"], "primary")


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
    zph_close(one_at_a_time_fits[modifier].meta["ph_tests"],
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
        approx(got, r["median"], f"median {r['modifier']}={r['level']} {r['arm']}")
