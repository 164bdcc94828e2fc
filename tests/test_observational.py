"""Issue 17: standardized effects from observational data (g-computation, IPW, AIPW) with the
stacked-sandwich SEs, checked against R (tests/reference/observational.R: survey::svyglm for
the IPW means, direct predictions for g-computation and AIPW, the estimating functions written
in R with a numerical Jacobian for the sandwich) on NHEFS; positivity, trimming and balance."""

import json
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest

from hte_report.errors import DataError, DataWarning, FormulaError, HTEReportError, ModelError
from hte_report.estimation.observational import fit_observational
from hte_report.estimation.observational_core import crump_alpha

REF = pathlib.Path(__file__).parent / "reference"
CONF = ["sex", "race", "age", "I(age**2)", "C(education)", "smokeintensity",
        "I(smokeintensity**2)", "smokeyrs", "I(smokeyrs**2)", "C(exercise)", "C(active)",
        "wt71", "I(wt71**2)"]
EST = ("gcomp", "ipw", "aipw", "overlap")


@pytest.fixture(scope="module")
def nhefs():
    d = pd.read_csv(REF / "data" / "nhefs.csv")
    return d.assign(cl=d["seqn"] % 40)


@pytest.fixture(scope="module")
def fits(nhefs):
    out = {}
    for y in ("wt82_71", "death"):
        out[y, None] = fit_observational(nhefs, outcome=y, treatment="qsmk", confounders=CONF,
                                         modifiers=["sex", "race"], estimators=EST)
    # the cluster-robust cases of the reference: MD by sex, RD/RR/OR by race
    for y, m in (("wt82_71", "sex"), ("death", "race")):
        out[y, "cl"] = fit_observational(nhefs, outcome=y, treatment="qsmk", confounders=CONF,
                                         modifiers=[m], cluster="cl", estimators=EST)
    out["wt82_71", "trim"] = fit_observational(nhefs, outcome="wt82_71", treatment="qsmk",
                                               confounders=CONF, modifiers=["sex"], trim="crump",
                                               estimators=EST)
    return out


def test_against_r_reference(fits):
    ref = json.loads((REF / "observational.json").read_text())
    checked = checked_i = 0
    for case in ref["cases"]:
        trimmed = isinstance(case.get("trim"), (int, float))
        key = "trim" if trimmed else "cl" if case["cluster"] else None
        res = fits[case["outcome"], key]
        e = res.effects
        if key == "trim":
            assert res.meta["trim_alpha"] == pytest.approx(case["trim"], rel=1e-6)
            n = res.positivity.query("modifier == 'All patients'").n.iloc[0]
            assert n == case["n"] == 1566 - res.meta["n_trimmed"]
        for r in case["rows"]:
            lv = r["level"] if case["modifier"] == "All patients" else int(r["level"])
            row = e[(e.estimator == r["estimator"]) & (e.modifier == case["modifier"])
                    & (e.level == lv) & (e.scale == r["scale"])]
            assert len(row) == 1
            row = row.iloc[0]
            for col in ("estimate", "std_error", "mu1", "mu0"):
                assert row[col] == pytest.approx(r[col], rel=1e-6, abs=1e-12), (case, r, col)
            checked += 1
        for r in case.get("interactions") or []:
            i = res.interactions
            row = i[(i.estimator == r["estimator"]) & (i.modifier == case["modifier"])
                    & (i.scale == r["scale"])]
            assert len(row) == 1 and row.level.iloc[0] == int(r["level"])
            assert row.reference.iloc[0] == int(r["reference"])
            for col in ("estimate", "std_error"):
                assert row[col].iloc[0] == pytest.approx(r[col], rel=1e-6), (case, r, col)
            # two levels: the Wald heterogeneity test is the squared z of the interaction
            h = res.heterogeneity
            h = h[(h.estimator == r["estimator"]) & (h.modifier == case["modifier"])
                  & (h.scale == r["scale"])].iloc[0]
            f = np.log(r["estimate"]) if r["scale"] in ("RR", "OR") else r["estimate"]
            assert h.statistic == pytest.approx((f / r["std_error"]) ** 2, rel=1e-6)
            assert h.df == 1
            checked_i += 1
    assert checked == 4 * ((1 + 2 + 2) + 3 * (1 + 2 + 2) + 2 + 3 * 2 + (1 + 2))
    assert checked_i == 4 * (1 + 1 + 3 + 3 + 1 + 3 + 1)


def test_whatif_numbers_and_frames(fits):
    # Hernán & Robins, What If, 12.2: IPW (stabilized) effect of quitting on weight gain 3.4 kg
    e = fits["wt82_71", None].effects
    ipw = e[(e.estimator == "ipw") & (e.modifier == "All patients")].iloc[0]
    assert ipw.estimate == pytest.approx(3.44, abs=0.01)
    assert ipw.conf_low == pytest.approx(2.49, abs=0.05) and ipw.positivity == "adequate"
    assert set(e.estimator) == {"gcomp", "ipw", "aipw", "overlap"}
    assert (e.ps_formula.str.startswith("qsmk ~ sex + race")).all()
    out_f = e.loc[e.modifier == "sex", "outcome_formula"].iloc[0]
    assert out_f.startswith("wt82_71 ~ qsmk * C(sex)")
    res = fits["death", None]
    assert set(res.effects.scale) == {"RD", "RR", "OR"}
    h = res.heterogeneity
    assert len(h) == 2 * 3 * 4 and h.df.eq(1).all() and h.p_value.between(0, 1).all()
    assert res.meta["roles"]["sex"] == "modifier and confounder"
    assert res.meta["roles"]["C(education)"] == "confounder"
    b = res.balance
    assert (b.modifier == "All patients").any() and (b.level == 1).any()
    overall = b[b.modifier == "All patients"]
    assert overall.smd_unweighted.abs().max() > 0.2 and overall.smd_weighted.abs().max() < 0.05
    assert not b.smd_unweighted.isna().any()
    assert set(res.scores.columns) >= {"analysis", "level", "treated", "ps"}


def test_gcomp_equals_package_standardized(nhefs):
    import hte_report as hr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pkg = hr.fit("death ~ qsmk * C(sex) + age + wt71", nhefs, treatment="qsmk",
                     models=["logit"], overall="unadjusted").subgroups
    mine = fit_observational(nhefs, outcome="death", treatment="qsmk",
                             confounders=["sex", "age", "wt71"], modifiers=["sex"],
                             estimators=["gcomp"]).effects
    std = pkg[pkg.method == "standardized"]
    for _, r in std.iterrows():
        m = mine[(mine.modifier == "sex") & (mine.level == int(r.level)) & (mine.scale == r.scale)]
        assert m.estimate.iloc[0] == pytest.approx(r.estimate, rel=1e-6)


def _sim(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)                # bounded: propensity scores in (0.2, 0.95)
    g = rng.integers(0, 2, n)
    lin = -1.0 + 0.7 * x + 0.5 * x**2 + 0.4 * g
    a = rng.binomial(1, 1 / (1 + np.exp(-lin)))
    tau = np.where(g == 1, 2.0, 0.5)         # true subgroup effects
    y = 1 + x + x**2 + g + tau * a + rng.normal(size=n)
    return pd.DataFrame({"y": y, "a": a, "x": x, "g": g}), tau


def test_simulation_double_robustness():
    d, _ = _sim(20000, 1)
    truth = {0: 0.5, 1: 2.0}
    both = ["x", "I(x**2)"]
    # outcome model misspecified (x^2 left out): IPW and AIPW consistent, g-computation not
    r1 = fit_observational(d, outcome="y", treatment="a", confounders=both, outcome_terms=["x"],
                           modifiers=["g"])
    # propensity model misspecified (x^2 left out): g-computation and AIPW consistent
    r2 = fit_observational(d, outcome="y", treatment="a", confounders=both, modifiers=["g"],
                           ps_formula="x")
    for res, good, bad in ((r1, ("ipw", "aipw"), "gcomp"), (r2, ("gcomp", "aipw"), "ipw")):
        e = res.effects[res.effects.modifier == "g"]
        z = (e.estimate - e.level.map(truth)).abs() / e.std_error
        assert (z[e.estimator.isin(good)] < 3.5).all(), e
        assert z[e.estimator == bad].max() > 4, e      # the misspecified one is biased


def test_small_coverage():
    cover = {k: 0 for k in ("gcomp", "ipw", "aipw")}
    reps = 20
    for s in range(reps):
        d, _ = _sim(2000, 100 + s)
        e = fit_observational(d, outcome="y", treatment="a", confounders=["x", "I(x**2)"],
                              modifiers=["g"]).effects
        e = e[(e.modifier == "g") & (e.level == 1)]
        for _, r in e.iterrows():
            cover[r.estimator] += r.conf_low <= 2.0 <= r.conf_high
    for k, c in cover.items():
        assert c >= 0.8 * reps, (k, c)


def test_positivity_violation_is_not_estimable():
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=n)
    g = rng.integers(0, 2, n)
    # in level g = 1 treatment is almost never given: PS near 0
    lin = np.where(g == 1, -5.5 + 0.3 * x, 0.2 * x)
    a = rng.binomial(1, 1 / (1 + np.exp(-lin)))
    y = rng.binomial(1, 0.3 + 0.1 * a, n)
    d = pd.DataFrame({"y": y, "a": a, "x": x, "g": g})
    with pytest.warns(DataWarning, match="positivity violated"):
        res = fit_observational(d, outcome="y", treatment="a", confounders=["x"],
                                modifiers=["g"])
    p = res.positivity.set_index(["modifier", "level"])
    assert p.loc[("g", 1), "verdict"] == "violated" and p.loc[("g", 0), "verdict"] == "adequate"
    assert p.loc[("g", 1), "share_outside"] >= 0.1
    e = res.effects
    bad = e[(e.modifier == "g") & (e.level == 1)]
    assert bad.estimate.isna().all() and bad.note.str.startswith("not estimable").all()
    good = e[(e.modifier == "g") & (e.level == 0)]
    assert good.estimate.notna().all()
    # an arm empty in a level: the level is reported, never estimated
    d2 = d.assign(a=np.where(d.g == 1, 0, d.a))
    with pytest.warns(DataWarning):
        res2 = fit_observational(d2, outcome="y", treatment="a", confounders=["x"],
                                 modifiers=["g"])
    p2 = res2.positivity.set_index(["modifier", "level"])
    assert p2.loc[("g", 1), "verdict"] == "violated"
    assert p2.loc[("g", 1), "reason"] == "an arm is empty"
    e2 = res2.effects
    assert e2[(e2.modifier == "g") & (e2.level == 1)].estimate.isna().all()


def test_crump_trimming_counts():
    rng = np.random.default_rng(5)
    n = 4000
    x, g = rng.normal(size=n), rng.integers(0, 2, n)
    a = rng.binomial(1, 1 / (1 + np.exp(-2 * x)))
    d = pd.DataFrame({"y": x + a + rng.normal(size=n), "a": a, "x": x, "g": g})
    res = fit_observational(d, outcome="y", treatment="a", confounders=["x"], modifiers=["g"],
                            trim="crump")
    alpha = res.meta["trim_alpha"]
    assert 0 < alpha < 0.5 and res.meta["n_trimmed"] > 0
    p = res.positivity
    ov = p[p.modifier == "All patients"].iloc[0]
    assert ov.n + ov.n_trimmed == len(d)
    sub = p[p.modifier == "g"]
    assert sub.n_trimmed.sum() == res.meta["n_trimmed"] and (sub.n + sub.n_trimmed).sum() == len(d)
    assert res.effects.n_trimmed.max() > 0
    fixed = fit_observational(d, outcome="y", treatment="a", confounders=["x"], trim=0.1)
    assert fixed.meta["trim_alpha"] == 0.1


def test_crump_alpha_closed_form():
    e = np.full(100, 0.5)
    assert crump_alpha(e) == 0.0
    e = np.r_[np.full(90, 0.5), np.full(10, 0.001)]
    h = np.sort(1 / (e * (1 - e)))
    alpha = crump_alpha(e)
    gamma = 1 / (alpha * (1 - alpha))
    assert gamma == pytest.approx(2 * h[h <= gamma].mean())


@pytest.mark.parametrize("kw, err", [
    (dict(outcome="nope"), DataError),
    (dict(treatment="x"), DataError),
    (dict(confounders=[]), DataError),
    (dict(estimators=["tmle"]), DataError),
    (dict(modifiers=["zz"]), DataError),
    (dict(confounders=["__import__('os')"]), FormulaError),
    (dict(trim="yes"), DataError),
    (dict(family="count"), DataError),
    (dict(cluster="zz"), DataError),
])
def test_bad_input(kw, err):
    d, _ = _sim(300, 7)
    args = dict(outcome="y", treatment="a", confounders=["x"])
    args.update(kw)
    with pytest.raises(err) as ei:
        fit_observational(d, **args)
    assert isinstance(ei.value, HTEReportError)


def test_separation_is_a_model_error():
    d = pd.DataFrame({"y": [0, 1] * 20, "a": [0] * 20 + [1] * 20, "x": np.arange(40.0)})
    with pytest.raises(ModelError, match="separates|could not"):
        fit_observational(d, outcome="y", treatment="a", confounders=["x"])


def test_e_values_closed_form(fits):
    from hte_report.estimation.evalues import as_risk_ratio, e_value, e_value_ci

    # VanderWeele & Ding (2017), Ann Intern Med: RR 3.9 (1.8 to 8.7) -> 7.26 and 3.0
    assert e_value(3.9) == pytest.approx(3.9 + np.sqrt(3.9 * 2.9)) == pytest.approx(7.26, abs=0.01)
    assert e_value_ci(3.9, 1.8, 8.7) == pytest.approx(3.0)
    assert e_value(0.8) == pytest.approx(1.81, abs=0.005)
    assert e_value_ci(0.8, 0.71, 0.91) == pytest.approx(1.43, abs=0.005)
    assert e_value_ci(1.2, 0.9, 1.5) == 1.0
    assert as_risk_ratio("OR", 4.0, 2.0, 9.0, risk0=0.3) == (2.0, np.sqrt(2.0), 3.0)
    assert as_risk_ratio("OR", 4.0, 2.0, 9.0, risk0=0.05) == (4.0, 2.0, 9.0)
    e = fits["death", None].effects
    rr = e[e.scale == "RR"]
    for r in rr.itertuples():
        assert r.e_value == pytest.approx(e_value(r.estimate))
        assert r.e_value_ci == pytest.approx(e_value_ci(r.estimate, r.conf_low, r.conf_high))
    assert e[e.scale == "RD"].e_value.isna().all()
    md = fits["wt82_71", None].effects
    row = md[(md.modifier == "All patients") & (md.estimator == "ipw")].iloc[0]
    d = pd.read_csv(REF / "data" / "nhefs.csv")
    sd = d.wt82_71.std(ddof=1)
    assert row.e_value == pytest.approx(e_value(np.exp(0.91 * row.estimate / sd)))


def test_level_without_events_is_not_estimable_on_ratio_scales():
    rng = np.random.default_rng(11)
    n = 1500
    x, g = rng.normal(size=n), rng.integers(0, 2, n)
    a = rng.binomial(1, 1 / (1 + np.exp(-0.5 * x)))
    y = np.where(g == 1, 0, rng.binomial(1, 0.3, n))      # no events at all in g = 1
    d = pd.DataFrame({"y": y, "a": a, "x": x, "g": g})
    res = fit_observational(d, outcome="y", treatment="a", confounders=["x"], modifiers=["g"],
                            estimators=["ipw"])
    e = res.effects.query("modifier == 'g' and level == 1").set_index("scale")
    assert e.loc["RD", "estimate"] == 0 and np.isnan(e.loc["RR", "estimate"])
    assert e.loc["RR", "note"].startswith("not estimable: RR is undefined")
    assert res.effects.query("modifier == 'g' and level == 0").estimate.notna().all()
