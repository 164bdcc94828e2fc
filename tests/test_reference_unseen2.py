"""hte_report against R on public data sets that no other reference test uses, for the areas the
first cross-check (test_reference_unseen.py) left out (tests/reference/unseen2_*.R ->
unseen2_*.json; data in tests/reference/data/unseen2_*.csv; helpers in unseen2_common.R):

* veteran (survival::veteran, VA lung cancer trial): Cox one modifier at a time (celltype,
  prior, karno) + age, Efron / model variance and Breslow / robust variance, the joint model
  (conditional rows at the profile) and within-subgroup fits: HRs, ratios of HRs,
  Wald / LR tests, standardized survival differences at 60 and 90 days by subgroup and overall
  (R route of its own: survfit(ctype = 1) baseline and its variance, numDeriv derivatives of
  the baseline through coxph(init =, iter.max = 0)), conditional SurvDiff, Kaplan-Meier
  RMST differences at 90 days (summary(survfit, rmean =)), equality tests, differences of
  SurvDiffs / RMSTDiffs, within-subgroup cox.zph p.
* lalonde (MatchIt::lalonde, NSW treated + PSID comparison men, observational):
  fit_observational with g-computation, IPW, AIPW and overlap weights; re78 (MD) after Crump
  trimming (alpha and the trimmed rows computed in R) with modifiers married, nodegree, race;
  employed78 = re78 > 0 (RD, RR, OR) on all 614 men with modifiers married, race. Means from
  predict() / survey::svyglm / AIPW written out; SEs from stacked estimating equations written
  in R with a numDeriv bread; equality tests, interaction effects, positivity (PS ranges,
  shares outside, ESS) and balance (SMDs). The binary analysis has a separated outcome-model
  cell (all 11 treated Hispanic men employed): R and the package agree that its ORs are not
  estimable (counterfactual risk 1 - 2e-13), see test_lalonde_separated_cell.
* respiratory (HSAUR3::respiratory, poor status at month 4): PATH risk model (pooled,
  cross-fitted on given folds, control-arm), DeLong c, calibration, risk-quarter RD / RR / OR,
  tests, benefit curve and ARR = p0 (1 - RR).
* btheb (HSAUR3::BtheB, Beat the Blues, BDI at 2-8 months with dropout): fit_mixed slope
  effects (lmer REML, random intercept and slope) and 8-month landmark effects (lmer ML, random
  intercept) by drug and episode length, with geeglm (exchangeable); Wald / equality tests and
  interaction effects.
* bootstrap (respiratory data): hte_report.bootstrap's 40 replicates and 8 grouped-jackknife
  samples refitted in R on the same frequency weights (lm / glm with weights), every
  replicate's RD / RR / OR, bootstrap SEs, percentile and BCa limits.

Every R record is matched to exactly one package row and compared at relative tolerance 1e-6
(values near zero: absolute 1e-6 standard errors; p-values below 1e-4: relative on the log);
every package row of the compared frames must be described by a record. R is not needed at
test time.
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
COUNTS = ("n", "n_treated", "n_control", "events_treated", "events_control",
          "exposure_treated", "exposure_control")


@cache
def ref(case):
    return json.loads((REF / f"unseen2_{case}.json").read_text())


def data(case, **kw):
    return pd.read_csv(REF / "data" / f"unseen2_{case}.csv", **kw)


def num(v):
    return np.nan if v is None else float(v)


def close(got, want, what, scale=0.0):
    """Relative 1e-6; absolute 1e-6 x ``scale`` (a standard error) for values near zero;
    p-values below 1e-4 compared on the log scale."""
    want, got = num(want), float(got)
    if np.isnan(want):
        assert np.isnan(got), f"{what}: {got} (R: NA)"
        return
    if what.endswith("p_value") and 0 < want < 1e-4:
        got, want = np.log(got), np.log(want)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=max(1e-13, RTOL * scale),
                               err_msg=what)


def one(df, what):
    assert len(df) == 1, f"{what}: {len(df)} rows"
    return df.iloc[0]


def same(col, value):
    """Rows whose ``col`` equals an R value (NA matches NaN)."""
    s = col.astype(float)
    return s.isna() if value is None else np.isclose(s, float(value), rtol=1e-12, atol=0)


def compare(g, r, what, cols=VALUES):
    scale = num(r.get("std_error")) if r.get("std_error") is not None else 0.0
    for c in cols:
        if c in r:
            close(g[c], r[c], f"{what}: {c}", scale=0.0 if c == "std_error" else scale)


# ---------------------------------------------------------------------------------- veteran
VETERAN_CALLS = list(ref("veteran")["calls"])


@cache
def veteran(call):
    J = ref("veteran")
    kw = dict(J["common"], **J["calls"][call]["kwargs"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(J["formula"], data("veteran"), **kw)


@pytest.mark.parametrize("call", VETERAN_CALLS)
def test_veteran_subgroup_and_overall_rows(call):
    """HR, standardized / conditional SurvDiff at 60 and 90 days, KM RMSTDiff at 90 days, per
    subgroup and overall, with means per arm, counts and within-subgroup cox.zph p."""
    res = veteran(call)
    refs = ref("veteran")["calls"][call]["records"]
    for frame, overall in ((res.subgroups, False), (res.overall, True)):
        mine = [r for r in refs if (r["analysis"] == "overall-adjusted") == overall]
        for r in mine:
            rows = frame[(frame.modifier == r["modifier"]) & (frame.scale == r["scale"])
                         & (frame.method == r["method"]) & (frame.level == r["level"])
                         & (frame.analysis == r["analysis"])
                         & same(frame.horizon, r["horizon"])]
            what = (f"{call} {r['analysis']} {r['modifier']}={r['level']} {r['scale']} "
                    f"{r['method']} h={r['horizon']}")
            g = one(rows, what)
            compare(g, r, what, VALUES + ("mu_treated", "mu_control", "ph_p_value", "value"))
            for c in COUNTS:
                if c in r:
                    assert float(g[c]) == r[c], f"{what}: {c}"
        assert len(frame) == len(mine), f"{call}: rows R does not describe"
    # 39 subgroup rows per analysis of the three modifiers (+ 32 within subgroups), 4 overall
    assert len(refs) == (75 if call == "within" else 43)


@pytest.mark.parametrize("call", VETERAN_CALLS)
def test_veteran_interaction_effects(call):
    res = veteran(call)
    df = res.interaction_effects
    refs = ref("veteran")["calls"][call]["interaction_effects"]
    for r in refs:
        what = f"{call} {r['modifier']}={r['level']} {r['scale']} h={r['horizon']}"
        g = one(df[(df.modifier == r["modifier"]) & (df.level == r["level"])
                   & (df.scale == r["scale"]) & same(df.horizon, r["horizon"])], what)
        assert g.reference == r["reference"] and g.method == r["method"], what
        compare(g, r, what)
    assert len(df) == len(refs) == 17


@pytest.mark.parametrize("call", VETERAN_CALLS)
def test_veteran_tests(call):
    """Wald and LR tests of the interaction terms, equality tests of SurvDiff / RMSTDiff."""
    res = veteran(call)
    df = res.interactions
    refs = ref("veteran")["calls"][call]["tests"]
    for r in refs:
        what = f"{call} {r['modifier']} {r['scale']} {r['test']} h={r['horizon']}"
        g = one(df[(df.modifier == r["modifier"]) & (df.scale == r["scale"])
                   & (df.test == r["test"]) & same(df.horizon, r["horizon"])], what)
        assert int(g.df) == r["df"], what
        for c in ("statistic", "p_value"):
            close(g[c], r[c], f"{what}: {c}")
    assert len(df) == len(refs) == 12


# ---------------------------------------------------------------------------------- lalonde
LALONDE_CALLS = list(ref("lalonde")["calls"])


@cache
def lalonde(call):
    from hte_report.estimation.observational import fit_observational

    kw = dict(ref("lalonde")["calls"][call]["kwargs"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_observational(data("lalonde"), **kw)


def lv(df):
    return df.level.astype(str)


@pytest.mark.parametrize("call", LALONDE_CALLS)
def test_lalonde_effects(call):
    res = lalonde(call)
    J = ref("lalonde")["calls"][call]
    assert res.meta["n_trimmed"] == J["n_trimmed"]
    if J["trim_alpha"] is not None:
        close(res.meta["trim_alpha"], J["trim_alpha"], "Crump alpha")
    df = res.effects
    for r in J["effects"]:
        what = f"{call} {r['estimator']} {r['modifier']}={r['level']} {r['scale']}"
        g = one(df[(df.estimator == r["estimator"]) & (df.modifier == r["modifier"])
                   & (lv(df) == r["level"]) & (df.scale == r["scale"])], what)
        for c in ("n", "n_treated", "n_control"):
            assert int(g[c]) == r[c], f"{what}: {c}"
        if r.get("not_estimable"):
            assert np.isnan(g.estimate) and g.note.startswith("not estimable"), what
            continue
        assert g.note == "", what
        compare(g, r, what, VALUES + ("mu1", "mu0"))
    assert len(df) == len(J["effects"])


@pytest.mark.parametrize("call", LALONDE_CALLS)
def test_lalonde_heterogeneity_and_interactions(call):
    res = lalonde(call)
    J = ref("lalonde")["calls"][call]
    het = res.heterogeneity
    for r in J["heterogeneity"]:
        what = f"{call} {r['estimator']} {r['modifier']} {r['scale']}"
        g = one(het[(het.estimator == r["estimator"]) & (het.modifier == r["modifier"])
                    & (het.scale == r["scale"])], what)
        assert int(g.df) == r["df"] and int(g.levels) == r["levels"], what
        for c in ("statistic", "p_value"):
            close(g[c], r[c], f"{what}: {c}")
    assert len(het) == len(J["heterogeneity"])
    inter = res.interactions
    for r in J["interactions"]:
        what = f"{call} {r['estimator']} {r['modifier']}={r['level']} {r['scale']}"
        g = one(inter[(inter.estimator == r["estimator"]) & (inter.modifier == r["modifier"])
                      & (lv(inter) == r["level"]) & (inter.scale == r["scale"])], what)
        assert str(g.reference) == r["reference"], what
        compare(g, r, what, ("estimate", "std_error", "conf_low", "conf_high", "p_value"))
    assert len(inter) == len(J["interactions"])


@pytest.mark.parametrize("call", LALONDE_CALLS)
def test_lalonde_positivity_and_balance(call):
    res = lalonde(call)
    J = ref("lalonde")["calls"][call]
    pos = res.positivity
    for r in J["positivity"]:
        what = f"{call} positivity {r['modifier']}={r['level']}"
        g = one(pos[(pos.modifier == r["modifier"]) & (lv(pos) == r["level"])], what)
        for c in ("n", "n_treated", "n_control", "n_outside"):
            assert int(g[c]) == r[c], f"{what}: {c}"
        for c in ("ps_min_treated", "ps_max_treated", "ps_min_control", "ps_max_control",
                  "share_outside", "ess_treated", "ess_control"):
            close(g[c], r[c], f"{what}: {c}")
    assert len(pos) == len(J["positivity"])
    bal = res.balance
    for r in J["balance"]:
        what = f"{call} balance {r['modifier']}={r['level']} {r['term']}"
        g = one(bal[(bal.modifier == r["modifier"]) & (lv(bal) == r["level"])
                    & (bal.term == r["term"])], what)
        for c in ("smd_unweighted", "smd_weighted"):
            close(g[c], r[c], f"{what}: {c}", scale=1.0)
    assert len(bal) == len(J["balance"])


def test_lalonde_separated_cell():
    """All 11 treated Hispanic men were employed in 1978: the outcome model y ~ treat *
    C(race) + ... has quasi-separation and a counterfactual risk of 1 - 2e-13 there. The OR
    (1e13 with a finite SE before the fix, and an equality test of 3037 on 2 df) is not
    estimable, the RD and RR are, and a ModelWarning says why."""
    from hte_report.errors import ModelWarning
    from hte_report.estimation.observational import fit_observational

    kw = dict(ref("lalonde")["calls"]["untrimmed"]["kwargs"])
    with pytest.warns(ModelWarning, match="quasi-separation"):
        res = fit_observational(data("lalonde"), **kw)
    e = res.effects
    hisp = e[(e.modifier == "race") & (e.level == "hispan")]
    assert hisp[hisp.scale == "OR"].estimate.isna().all()
    assert hisp[hisp.scale != "OR"].estimate.notna().all()
    h = res.heterogeneity
    assert (h[(h.modifier == "race") & (h.scale == "OR")].df == 1).all()


# ------------------------------------------------------------------------------ respiratory
RESP_CALLS = list(ref("respiratory")["calls"])


@cache
def respiratory(call):
    from hte_report.path.benefit import risk_stratified
    from hte_report.path.risk import risk_model

    d = data("respiratory")
    kw = dict(ref("respiratory")["calls"][call]["kwargs"])
    if "crossfit_folds" in kw:
        kw["crossfit_folds"] = d[kw["crossfit_folds"]].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rm = risk_model(ref("respiratory")["formula"], d, treatment="treat", **kw)
        return rm, risk_stratified(rm)


@pytest.mark.parametrize("call", RESP_CALLS)
def test_respiratory_risk_model(call):
    """Coefficients, every patient's linear predictor (cross-fitted where asked),
    c-statistics with DeLong SEs, calibration intercept / slope, calibration tenths."""
    rm, _ = respiratory(call)
    J = ref("respiratory")["calls"][call]
    np.testing.assert_allclose(rm.patients.lp.to_numpy(), J["lp"], rtol=RTOL, atol=1e-9)
    m = rm.model
    for r in J["model"]:
        compare(one(m[m.term == r["term"]], r["term"]), r, f"{call} {r['term']}")
    assert len(m) == len(J["model"])
    p = rm.performance
    for r in J["performance"]:
        what = f"{call} {r['metric']} {r['population']}"
        g = one(p[(p.metric == r["metric"]) & (p.population == r["population"])], what)
        assert int(g.n) == r["n"] and int(g.events) == r["events"], what
        compare(g, r, what, VALUES + ("null",))
    assert len(p) == len(J["performance"])
    c = rm.calibration
    for r in J["calibration"]:
        what = f"{call} calibration {r['population']} {r['group']}"
        g = one(c[(c.population == r["population"]) & (c.group == r["group"])], what)
        assert int(g.n) == r["n"] and int(g.events) == r["events"], what
        compare(g, r, what, ("risk_low", "risk_high", "predicted", "observed", "conf_low",
                             "conf_high"))
    assert len(c) == len(J["calibration"])


@pytest.mark.parametrize("call", RESP_CALLS)
def test_respiratory_risk_strata_and_tests(call):
    """Quarters of predicted risk: edges, mean risk, counts, RD / RR / OR per quarter; tests of
    equal effects across quarters and of treatment x linear predictor."""
    _, rs = respiratory(call)
    J = ref("respiratory")["calls"][call]
    np.testing.assert_allclose(rs.edges, J["edges"], rtol=RTOL)
    s = rs.strata
    for r in J["strata"]:
        what = f"{call} stratum {r['stratum']} {r['scale']}"
        g = one(s[(s.stratum == r["stratum"]) & (s.scale == r["scale"])], what)
        for c in COUNTS[:5]:
            assert float(g[c]) == r[c], f"{what}: {c}"
        compare(g, r, what, VALUES + ("risk_low", "risk_high", "mean_risk"))
    assert len(s) == len(J["strata"])
    t = rs.tests
    for r in J["tests"]:
        what = f"{call} {r['hypothesis']} {r['test']} {r['scale']}"
        g = one(t[(t.hypothesis == r["hypothesis"]) & (t.test == r["test"])
                  & (t.scale == r["scale"])], what)
        assert int(g.df) == r["df"], what
        for c in ("statistic", "p_value"):
            close(g[c], r[c], f"{what}: {c}")
    assert len(t) == len(J["tests"])


@pytest.mark.parametrize("call", RESP_CALLS)
def test_respiratory_benefit_curve_and_personalized_benefit(call):
    """Conditional RD and RR of logit(y) ~ treat * lp over the lp grid; absolute benefit
    ARR = p0 (1 - RR) per risk quarter (p0 = its mean predicted risk)."""
    from hte_report.path.personalized import personalized_benefit

    _, rs = respiratory(call)
    J = ref("respiratory")["calls"][call]
    cv = rs.curve
    for scale in ("RD", "RR"):
        got = cv[cv.scale == scale].reset_index(drop=True)
        want = [r for r in J["curve"] if r["scale"] == scale]
        assert len(got) == len(want) == 61
        for i, r in enumerate(want):
            compare(got.iloc[i], r, f"{call} curve {scale} {i}",
                    VALUES + ("lp", "risk", "mu_treated", "mu_control"))
    rr = rs.strata[rs.strata.scale == "RR"].sort_values("stratum")
    b = personalized_benefit(rr.mean_risk.to_numpy(), rr.estimate.to_numpy(),
                             (rr.conf_low.to_numpy(), rr.conf_high.to_numpy()))
    for i, r in enumerate(J["benefit"]):
        for c in ("p0", "rr", "arr", "arr_low", "arr_high", "nnt"):
            close(b[c].iloc[i], r[c], f"{call} benefit stratum {r['stratum']}: {c}",
                  scale=abs(r["arr_high"] - r["arr_low"]))


# ----------------------------------------------------------------------------------- BtheB
BTHEB_CALLS = list(ref("btheb")["calls"])
MODEL = {"lmm": "lmm-", "gee": "gee-exchangeable"}


@cache
def btheb(call):
    from hte_report.estimation.mixed import fit_mixed

    kw = dict(ref("btheb")["calls"][call]["kwargs"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_mixed(ref("btheb")["formula"], data("btheb"), treatment="treat",
                         time="month", group="id", models=("lmm", "gee"), **kw)


def _model(df, name):
    return df.model.str.startswith(MODEL[name])


@pytest.mark.parametrize("call", BTHEB_CALLS)
def test_btheb_effects(call):
    """Slope (or 8-month landmark) effects per level of drug and length, overall (primary
    analysis), from lmer and geeglm, with patient and visit counts."""
    res = btheb(call)
    refs = ref("btheb")["calls"][call]["records"]
    for frame, analysis in ((res.subgroups, "one-at-a-time"), (res.overall, "overall-adjusted")):
        mine = [r for r in refs if r["analysis"] == analysis]
        for r in mine:
            what = f"{call} {r['model']} {r['modifier']}={r['level']} {r['scale']}"
            rows = frame[(frame.modifier == r["modifier"]) & (frame.scale == r["scale"])
                         & _model(frame, r["model"])]
            if analysis != "overall-adjusted":
                rows = rows[rows.level == r["level"]]
            g = one(rows, what)
            assert int(g.n) == r["n"] and int(g.n_obs) == r["n_obs"], what
            compare(g, r, what)
        assert len(frame) == len(mine), f"{call} {analysis}"


@pytest.mark.parametrize("call", BTHEB_CALLS)
def test_btheb_tests_and_interaction_effects(call):
    res = btheb(call)
    J = ref("btheb")["calls"][call]
    df = res.interactions
    for r in J["tests"]:
        what = f"{call} {r['model']} {r['modifier']} {r['test']}"
        g = one(df[(df.modifier == r["modifier"]) & (df.test == r["test"])
                   & _model(df, r["model"])], what)
        assert int(g.df) == r["df"], what
        for c in ("statistic", "p_value"):
            close(g[c], r[c], f"{what}: {c}")
    assert len(df) == len(J["tests"])
    ie = res.interaction_effects
    for r in J["interaction_effects"]:
        what = f"{call} {r['model']} {r['modifier']}={r['level']}"
        g = one(ie[(ie.modifier == r["modifier"]) & (ie.level == r["level"])
                   & _model(ie, r["model"])], what)
        assert g.reference == r["reference"], what
        compare(g, r, what)
    assert len(ie) == len(J["interaction_effects"])


# ------------------------------------------------------------------------------- bootstrap
def test_bootstrap_resampling_design():
    """The frequency weights R refits on (written by unseen2_bootstrap_weights.py from the
    documented seeding) are the package's own replicates."""
    from hte_report.estimation.bootstrap import replicate_weights

    W = data("boot_weights")
    n = len(W)
    for b, child in enumerate(np.random.SeedSequence(7).spawn(40)):
        np.testing.assert_array_equal(replicate_weights(child, n, np.arange(n)), W[f"r{b + 1}"])


def test_bootstrap_replicates_and_intervals():
    """Every replicate's standardized RD / RR / OR (three working models) refitted in R on the
    same frequency weights; bootstrap SE, percentile and BCa limits (grouped jackknife
    acceleration) from them."""
    from hte_report.estimation.bootstrap import bootstrap

    J = ref("bootstrap")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap(J["formula"], data("respiratory"), keep_replicates=True, **J["kwargs"])
    df = res.intervals
    assert len(df) == len(J["rows"]) == 21
    for r in J["rows"]:
        what = f"bootstrap {r['model']} {r['modifier']}={r['level']} {r['scale']}"
        rows = df[(df.modifier == r["modifier"]) & (df.level == r["level"])
                  & (df.scale == r["scale"]) & (df.model == r["model"])]
        g = one(rows, what)
        np.testing.assert_allclose(res.replicates[:, rows.index[0]], r["replicates"],
                                   rtol=RTOL, atol=1e-12, err_msg=what)
        for c in ("estimate", "boot_se", "conf_low_percentile", "conf_high_percentile",
                  "conf_low_bca", "conf_high_bca"):
            close(g[c], r[c], f"{what}: {c}", scale=r["boot_se"])
