"""hte_report against R on public data sets the other reference tests never use
(tests/reference/unseen_*.R -> unseen_*.json; helpers in unseen_common.R):

* pbc (survival::pbc): time to death, Cox (Efron), D-penicillamine x (stage 1-2 / 3 / 4, age,
  cholesterol) + log(bili), with missing treatment (106 not randomized) and cholesterol (28);
  HRs per level and at quartiles, ratios of HRs, Wald / LR, rows analysed and excluded.
* birthwt (MASS): binary low birth weight, smoke x (3-level race, age, ui), ols-HC3 /
  modified-poisson-HC0 / logit, one-at-a-time and joint (at a 90% level), RERI.
* cgd (survival::cgd0): count of serious infections per person-year (exposure), gamma
  interferon x (inherit, height, propylac), identity-poisson and poisson, variance clustered on
  13 centres (one-at-a-time) and model-based with LR tests (joint), RERI from the log link.
* toothgrowth (datasets::ToothGrowth): continuous odontoblast length, orange juice x dose
  (3 levels), ols with t intervals and F tests (HC3; joint call HC1 at a 99% level).

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


def _cgd():
    return pd.read_csv(REF / "data" / "unseen_cgd.csv")


def _toothgrowth():
    return pd.read_csv(REF / "data" / "unseen_toothgrowth.csv")


def _pbc():
    return pd.read_csv(REF / "data" / "unseen_pbc.csv", dtype={"stagegrp": str})


CASES = {
    "pbc": dict(data=_pbc),
    "birthwt": dict(data=_birthwt),
    "cgd": dict(data=_cgd),
    "toothgrowth": dict(data=_toothgrowth),
}
CALLS = [(case, call) for case in CASES
         for call in json.loads((REF / f"unseen_{case}.json").read_text())["calls"]]
IDS = [f"{case}-{call}" for case, call in CALLS]


@cache
def ref(case):
    return json.loads((REF / f"unseen_{case}.json").read_text())


def kwargs(case, call):
    """The R script's description of the call (hr.Cluster for {"cluster": column})."""
    kw = dict(ref(case)["calls"][call])
    if isinstance(kw.get("variance"), dict):
        kw["variance"] = hr.Cluster(kw["variance"]["cluster"])
    return kw


@cache
def result(case, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(ref(case)["formula"], CASES[case]["data"](), **kwargs(case, call))


def analyses_of(call):
    """The analyses whose rows a call's frames hold."""
    return {"overall-adjusted", "joint" if call == "joint" else "one-at-a-time"}


def records(case, call, frame):
    """The R records of one frame for one call (R ran the same analyses as the call)."""
    out = ref(case)["runs"][call].get(frame) or []
    out = [r for r in out if "analysis" not in r or r["analysis"] in analyses_of(call)]
    if frame == "tests":  # a Holm-adjusted p inherits the tolerance of its family's p-values
        fam = {}
        for r in out:
            if r["statistic"] is not None:
                key = (r["analysis"], r["model"], r["scale"], r["test"])
                fam[key] = max(fam.get(key, RTOL), p_rtol(
                    r["statistic"], r["df"], r["distribution"], r.get("df_denominator")))
        for r in out:
            r["p_adjusted_rtol"] = fam.get((r["analysis"], r["model"], r["scale"], r["test"]),
                                           RTOL)
    return out


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


def stat_tol(stat):
    """Absolute tolerance of a Wald / LR / equality statistic: relative 1e-6, plus what
    estimates 1e-6 standard errors apart give a statistic near zero (W = z^2, dW = 2 z dz).
    Needed because statsmodels' identity-link Poisson IRLS stops about 1e-7 SEs from R's
    optimum (glm epsilon 1e-14), which moves a statistic of 0.003 by 3e-6 relative."""
    return 1e-6 * abs(stat) + 2e-6 * np.sqrt(abs(stat))


def p_rtol(stat, df, dist, df_den=None):
    """Relative tolerance of a p-value: stat_tol through the hazard d(-log p)/dW of its
    distribution, at least 1e-6."""
    from scipy import stats

    d = stats.chi2(df) if dist == "chi-square" else stats.f(df, df_den)
    hazard = float(np.exp(d.logpdf(stat) - d.logsf(stat))) if stat > 0 else 0.0
    return max(RTOL, hazard * stat_tol(stat))


def close_test(g, r, what):
    """Statistic, p-value and adjusted p-value of a test row."""
    if r["statistic"] is None:
        assert np.isnan(float(g.statistic)), f"{what}: {g.statistic} (R: NA)"
        return
    np.testing.assert_allclose(float(g.statistic), r["statistic"], rtol=0,
                               atol=stat_tol(r["statistic"]), err_msg=f"{what}: statistic")
    tol = p_rtol(r["statistic"], r["df"], r["distribution"], r.get("df_denominator"))
    np.testing.assert_allclose(float(g.p_value), r["p_value"], rtol=tol, err_msg=f"{what}: p")
    if "p_adjusted" in r:
        np.testing.assert_allclose(float(g.p_adjusted), r["p_adjusted"], rtol=r["p_adjusted_rtol"],
                                   err_msg=f"{what}: p_adjusted")


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
@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_coefficients(case, call):
    res = result(case, call)
    refs = records(case, call, "coefficients")
    for r in refs:
        g = one(where(res.coefficients, analysis=r["analysis"], modifier=r["modifier"],
                      model=r["model"], term=r["term"]), str(r))
        compare(g, r, f"{r['analysis']} {r['modifier']} {r['model']} {r['term']}")
    assert len(res.coefficients) == len(refs)


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_vcov(case, call):
    res = result(case, call)
    for r in records(case, call, "vcov"):
        analysis = r["modifier"] or r["analysis"]
        V = res.vcov(r["model"], analysis=analysis)
        assert list(V.index) == r["terms"], (analysis, r["model"])
        W = np.array(r["vcov"], float)
        np.testing.assert_allclose(V.to_numpy(), W, rtol=RTOL, atol=RTOL * np.abs(W).max(),
                                   err_msg=f"vcov {analysis} {r['model']}")


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_glance(case, call):
    res = result(case, call)
    refs = records(case, call, "glance")
    for r in refs:
        g = one(where(res.glance, analysis=r["analysis"], modifier=r["modifier"],
                      model=r["model"]), str(r)[:80])
        what = f"glance {r['analysis']} {r['modifier']} {r['model']}"
        assert g.n == r["n"] and g.df_residual == r["df_residual"], what
        for c in ("loglik", "deviance", "null_deviance", "aic", "bic"):
            close(g[c], r[c], f"{what}: {c}")
    assert len(res.glance) == len(refs)


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
EXPOSURE = ("exposure_treated", "exposure_control")


def check_counts(g, r, what):
    for c in COUNTS:
        if c in r:
            assert g[c] == r[c], f"{what}: {c}"
    for c in EXPOSURE:
        if c in r:
            close(g[c], r[c], f"{what}: {c}")


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_subgroup_effects(case, call):
    """Standardized effects per level / quarter and conditional effects at the profile, with
    the arms' means and counts."""
    res = result(case, call)
    refs = records(case, call, "subgroups")
    for r in refs:
        g = subgroup_row(res.subgroups, r)
        what = f"{r['analysis']} {r['modifier']} {r.get('level')} {r.get('value')} " \
               f"{r['scale']} {r['model']} {r['method']}"
        compare(g, r, what, VALUES + ("mu_treated", "mu_control"))
        check_counts(g, r, what)
    assert len(res.subgroups) == len(refs), "rows the R reference does not describe"


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_overall_primary_analysis(case, call):
    res = result(case, call)
    refs = records(case, call, "overall")
    for r in refs:
        g = one(where(res.overall, scale=r["scale"], model=r["model"]), str(r)[:80])
        what = f"overall {r['scale']} {r['model']}"
        compare(g, r, what, VALUES + ("mu_treated", "mu_control"))
        check_counts(g, r, what)
    assert len(res.overall) == len(refs)


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_interaction_tests(case, call):
    """Wald (coefficients), LR (likelihood models) and equality (standardized) tests per
    modifier, with Holm-adjusted p-values across modifiers."""
    res = result(case, call)
    refs = records(case, call, "tests")
    for r in refs:
        g = one(where(res.interactions, analysis=r["analysis"], modifier=r["modifier"],
                      scale=r["scale"], test=r["test"], model=r["model"]), str(r)[:120])
        what = f"{r['analysis']} {r['modifier']} {r['scale']} {r['test']} {r['model']}"
        assert g.df == r["df"], what
        if r["statistic"] is not None and "distribution" in g.index:  # (Cox: chi-square)
            assert g.distribution == r["distribution"], what
        if r.get("df_denominator") is not None:
            assert g.df_denominator == r["df_denominator"], what
        close_test(g, r, what)
    assert len(res.interactions) == len(refs)


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_interaction_effects(case, call):
    res = result(case, call)
    refs = records(case, call, "interaction_effects")
    for r in refs:
        g = one(where(res.interaction_effects, analysis=r["analysis"], modifier=r["modifier"],
                      level=r["level"], scale=r["scale"], model=r["model"]), str(r)[:120])
        what = f"{r['analysis']} {r['modifier']} {r['level']} {r['scale']} {r['model']}"
        assert g.method == r["method"] and str(g.reference) == r["reference"], what
        compare(g, r, what)
    assert len(res.interaction_effects) == len(refs)


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
@pytest.mark.parametrize("frame", ["additive", "joint_effects"])
def test_additive_interaction(case, call, frame):
    """RERI / AP / SI (Hosmer-Lemeshow) and RR10 / RR01 / RR11 / exp(b3) of binary
    modifiers, at the reference profile."""
    res = result(case, call)
    refs = records(case, call, frame)
    for r in refs:
        g = one(where(getattr(res, frame), analysis=r["analysis"], modifier=r["modifier"],
                      measure=r["measure"], model=r["model"]), str(r)[:120])
        compare(g, r, f"{frame} {r['analysis']} {r['modifier']} {r['measure']} {r['model']}",
                ("estimate", "std_error", "conf_low", "conf_high"))
    assert len(getattr(res, frame)) == len(refs)


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_joint_heterogeneity_test(case, call):
    """One test across every modifier from the model with every interaction, the same in
    every strategy."""
    het = result(case, call).heterogeneity
    refs = records(case, call, "heterogeneity")
    assert len(het) == len(refs)
    for r in refs:
        g = one(where(het, scale=r["scale"], test=r["test"], model=r["model"]), str(r))
        assert g.df == r["df"] and g.n == r["n"]
        close_test(g, r, f"heterogeneity {r['model']} {r['test']}")


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_rows_analysed_and_excluded(case, call):
    res = result(case, call)
    refs = records(case, call, "analyses")
    for r in refs:
        g = one(where(res.analyses, analysis=r["analysis"], modifier=r["modifier"]), str(r))
        assert (g.n_analysed, g.n_excluded) == (r["n_analysed"], r["n_excluded"]), str(r)
    assert len(res.analyses) == len(refs)


@pytest.mark.parametrize("case,call", CALLS, ids=IDS)
def test_profile(case, call):
    prof = result(case, call).profile
    for r in records(case, call, "profile"):
        g = one(where(prof, analysis=r["analysis"], variable=r["variable"]), str(r))
        close(float(g.value), r["value"], f"profile {r['variable']}")


def test_joint_wald_from_a_diverging_cox_model_is_not_reported():
    four = ref("pbc")["four_stage_joint"]
    assert four["control_deaths_stage1"] == 0 and four["max_abs_coef"] > 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit("Surv(time, death) ~ dpca * (C(stage) + age + chol) + log(bili)", _pbc(),
                     treatment="dpca")
    t = res.interactions
    assert t[t.modifier == "stage"].statistic.isna().all()  # flagged (passes today)
    het = res.heterogeneity
    wald = one(het[het.test == "wald"], "joint Wald")
    assert wald.n == four["n"]
    assert np.isnan(wald.statistic) and "not estimable" in wald.note
    lr = one(het[het.test == "lr"], "joint LR")  # as the modifier's own LR test
    assert np.isnan(lr.statistic) and "stage" in lr.note
