"""hte_report against R on public data sets the other reference tests never use
(tests/reference/unseen_*.R -> unseen_*.json; helpers in unseen_common.R):

* birthwt (MASS): binary low birth weight, smoke x (3-level race, age, ui), ols-HC3 /
  modified-poisson-HC0 / logit, one-at-a-time and joint (at a 90% level), RERI.

Each R record is matched to exactly one row of the package's tidy frames (coefficients, vcov,
glance, subgroups, overall, interactions, interaction_effects, additive, joint_effects,
heterogeneity, analyses) and compared at relative tolerance 1e-6 (values near zero relative
to their standard error, tiny p-values on the log scale); every package row of those frames
must be described by a record. R is not needed at test time.
"""

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr

REF = Path(__file__).parent / "reference"
RTOL = 1e-6
VALUES = ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value")


def _birthwt():
    return pd.read_csv(REF / "data" / "unseen_birthwt.csv")


CASES = {
    "birthwt": dict(
        data=_birthwt,
        formula="low ~ smoke * (C(race) + age + C(ui)) + lwt + ptl",
        calls={"default": dict(treatment="smoke"),
               "joint": dict(treatment="smoke", strategy="joint", conf_level=0.90)},
    ),
}


@cache
def ref(case):
    return json.loads((REF / f"unseen_{case}.json").read_text())


@cache
def result(case, call):
    spec = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(spec["formula"], spec["data"](), **spec["calls"][call])


def res_for(case, analysis):
    """The joint records come from the strategy="joint" call, the rest from the default."""
    calls = CASES[case]["calls"]
    return result(case, "joint" if analysis == "joint" and "joint" in calls else "default")


def analyses_of(call):
    """The analyses whose rows a call's frames hold."""
    return {"overall-adjusted", "joint" if call == "joint" else "one-at-a-time"}


def num(v):
    return np.nan if v is None else float(v)


def close(got, want, what, scale=0.0):
    want = num(want)
    got = float(got)
    if np.isnan(want):
        assert np.isnan(got), f"{what}: {got} (R: NA)"
        return
    if want != 0 and 0 < abs(want) < 1e-4 and what.endswith("p_value"):
        got, want = np.log(got), np.log(want)  # tiny p-values: relative error of the log
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=max(1e-13, RTOL * scale),
                               err_msg=what)


def one(df, what):
    assert len(df) == 1, f"{what}: {len(df)} rows"
    return df.iloc[0]


def where(df, **kw):
    for k, v in kw.items():
        df = df[df[k].astype(str) == str(v)] if k in df else df
    return df


def compare(g, r, what, cols=VALUES):
    scale = num(r.get("std_error")) if r.get("std_error") is not None else 0.0
    for c in cols:
        if c in r:
            close(g[c], r[c], f"{what}: {c}", scale=scale)


# ----------------------------------------------------------------------------------------------
CASE_NAMES = list(CASES)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_coefficients(case):
    for r in ref(case)["coefficients"]:
        res = res_for(case, r["analysis"])
        g = one(where(res.coefficients, analysis=r["analysis"], modifier=r["modifier"],
                      model=r["model"], term=r["term"]), str(r))
        compare(g, r, f"{r['analysis']} {r['modifier']} {r['model']} {r['term']}")
    for call in CASES[case]["calls"]:
        res = result(case, call)
        theirs = [r for r in ref(case)["coefficients"] if r["analysis"] in analyses_of(call)]
        assert len(res.coefficients) == len(theirs), call


@pytest.mark.parametrize("case", CASE_NAMES)
def test_vcov(case):
    for r in ref(case)["vcov"]:
        res = res_for(case, r["analysis"])
        analysis = r["modifier"] or r["analysis"]
        V = res.vcov(r["model"], analysis=analysis)
        assert list(V.index) == r["terms"], (analysis, r["model"])
        W = np.array(r["vcov"], float)
        np.testing.assert_allclose(V.to_numpy(), W, rtol=RTOL, atol=RTOL * np.abs(W).max(),
                                   err_msg=f"vcov {analysis} {r['model']}")


@pytest.mark.parametrize("case", CASE_NAMES)
def test_glance(case):
    for r in ref(case)["glance"]:
        res = res_for(case, r["analysis"])
        g = one(where(res.glance, analysis=r["analysis"], modifier=r["modifier"],
                      model=r["model"]), str(r)[:80])
        what = f"glance {r['analysis']} {r['modifier']} {r['model']}"
        assert g.n == r["n"] and g.df_residual == r["df_residual"], what
        for c in ("loglik", "deviance", "null_deviance", "aic", "bic"):
            close(g[c], r[c], f"{what}: {c}")


def subgroup_row(df, r):
    rows = where(df, analysis=r["analysis"], modifier=r["modifier"], scale=r["scale"],
                 model=r["model"], method=r["method"])
    if r.get("value") is not None:
        rows = rows[np.isclose(rows.value.astype(float), r["value"], rtol=1e-12)]
    elif r.get("level") is not None:
        rows = rows[rows.level.astype(str) == r["level"]]
    else:  # a quarter of a continuous modifier
        rows = rows[rows.value.isna() & (rows.order == r["order"])]
    return one(rows, f"{r['analysis']} {r['modifier']} {r.get('level')} {r.get('value')} "
                     f"{r['scale']} {r['model']} {r['method']}")


COUNTS = ("n", "n_treated", "n_control", "events_treated", "events_control")


@pytest.mark.parametrize("case", CASE_NAMES)
def test_subgroup_effects(case):
    """Standardized effects per level / quarter and conditional effects at the profile, with
    the arms' means and counts."""
    for r in ref(case)["subgroups"]:
        g = subgroup_row(res_for(case, r["analysis"]).subgroups, r)
        what = f"{r['analysis']} {r['modifier']} {r.get('level')} {r.get('value')} " \
               f"{r['scale']} {r['model']} {r['method']}"
        compare(g, r, what, VALUES + ("mu_treated", "mu_control"))
        for c in COUNTS:
            if c in r:
                assert g[c] == r[c], f"{what}: {c}"
    for call in CASES[case]["calls"]:
        res = result(case, call)
        analysis = "joint" if call == "joint" else "one-at-a-time"
        theirs = [r for r in ref(case)["subgroups"] if r["analysis"] == analysis]
        mine = res.subgroups[res.subgroups.analysis == analysis]
        assert len(mine) == len(theirs), f"{call}: rows the R reference does not describe"


@pytest.mark.parametrize("case", CASE_NAMES)
def test_overall_primary_analysis(case):
    res = result(case, "default")
    for r in ref(case)["overall"]:
        g = one(where(res.overall, scale=r["scale"], model=r["model"]), str(r)[:80])
        compare(g, r, f"overall {r['scale']} {r['model']}", VALUES + ("mu_treated", "mu_control"))
        for c in COUNTS:
            if c in r:
                assert g[c] == r[c], f"overall {c}"
    assert len(res.overall) == len(ref(case)["overall"])


@pytest.mark.parametrize("case", CASE_NAMES)
def test_interaction_tests(case):
    """Wald (coefficients), LR (likelihood models) and equality (standardized) tests per
    modifier, with Holm-adjusted p-values across modifiers."""
    for r in ref(case)["tests"]:
        res = res_for(case, r["analysis"])
        g = one(where(res.interactions, analysis=r["analysis"], modifier=r["modifier"],
                      scale=r["scale"], test=r["test"], model=r["model"]), str(r)[:120])
        what = f"{r['analysis']} {r['modifier']} {r['scale']} {r['test']} {r['model']}"
        assert g.df == r["df"] and g.distribution == r["distribution"], what
        if r.get("df_denominator") is not None:
            assert g.df_denominator == r["df_denominator"], what
        for c in ("statistic", "p_value", "p_adjusted"):
            close(g[c], r[c], f"{what}: {c}")
    for call in CASES[case]["calls"]:
        analysis = "joint" if call == "joint" else "one-at-a-time"
        mine = result(case, call).interactions
        assert len(mine) == sum(r["analysis"] == analysis for r in ref(case)["tests"])


@pytest.mark.parametrize("case", CASE_NAMES)
def test_interaction_effects(case):
    for r in ref(case)["interaction_effects"]:
        res = res_for(case, r["analysis"])
        g = one(where(res.interaction_effects, analysis=r["analysis"], modifier=r["modifier"],
                      level=r["level"], scale=r["scale"], model=r["model"]), str(r)[:120])
        what = f"{r['analysis']} {r['modifier']} {r['level']} {r['scale']} {r['model']}"
        assert g.method == r["method"] and str(g.reference) == r["reference"], what
        compare(g, r, what)
    for call in CASES[case]["calls"]:
        analysis = "joint" if call == "joint" else "one-at-a-time"
        mine = result(case, call).interaction_effects
        assert len(mine) == sum(r["analysis"] == analysis
                                for r in ref(case)["interaction_effects"])


@pytest.mark.parametrize("case", CASE_NAMES)
@pytest.mark.parametrize("frame", ["additive", "joint_effects"])
def test_additive_interaction(case, frame):
    """RERI / AP / SI (Hosmer-Lemeshow) and RR10 / RR01 / RR11 / exp(b3) of binary
    modifiers."""
    refs = ref(case)[frame]
    for r in refs:
        res = res_for(case, r["analysis"])
        g = one(where(getattr(res, frame), analysis=r["analysis"], modifier=r["modifier"],
                      measure=r["measure"], model=r["model"]), str(r)[:120])
        compare(g, r, f"{frame} {r['analysis']} {r['modifier']} {r['measure']} {r['model']}",
                ("estimate", "std_error", "conf_low", "conf_high"))
    for call in CASES[case]["calls"]:
        analysis = "joint" if call == "joint" else "one-at-a-time"
        mine = getattr(result(case, call), frame)
        mine = mine[mine.analysis == analysis] if len(mine) else mine
        assert len(mine) == sum(r["analysis"] == analysis for r in refs), (frame, call)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_joint_heterogeneity_test(case):
    """One test across every modifier from the model with every interaction, the same in
    every strategy."""
    for call in CASES[case]["calls"]:
        het = result(case, call).heterogeneity
        assert len(het) == len(ref(case)["heterogeneity"])
        for r in ref(case)["heterogeneity"]:
            g = one(where(het, scale=r["scale"], test=r["test"], model=r["model"]), str(r))
            assert g.df == r["df"] and g.n == r["n"]
            for c in ("statistic", "p_value"):
                close(g[c], r[c], f"heterogeneity {r['model']} {r['test']}: {c}")


@pytest.mark.parametrize("case", CASE_NAMES)
def test_rows_analysed_and_excluded(case):
    for r in ref(case)["analyses"]:
        res = res_for(case, r["analysis"])
        df = res.analyses
        g = one(where(df, analysis=r["analysis"], modifier=r["modifier"]), str(r))
        assert (g.n_analysed, g.n_excluded) == (r["n_analysed"], r["n_excluded"]), str(r)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_joint_profile(case):
    prof = result(case, "joint").profile
    for r in ref(case)["profile"]:
        g = one(where(prof, analysis="joint", variable=r["variable"]), str(r))
        close(float(g.value), r["value"], f"profile {r['variable']}")
