"""Risk-based (PATH) analysis, personalized benefit, spline curves, STEPP and effect modelling.

Reference numbers: tests/reference/risk.json, made by tests/reference/risk.R (pROC, sandwich,
Hmisc, splines) from tests/reference/data/rossi.csv. Tolerance: relative 1e-6.
"""

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.errors import DataError, FormulaError, HTEReportError
from hte_report.path.benefit import risk_stratified
from hte_report.path.personalized import (
    benefit_from_result,
    personalized_benefit,
    plot_personalized_benefit,
)
from hte_report.path.risk import OverfittingWarning, c_statistic, risk_model
from hte_report.path.stepp import (
    c_for_benefit,
    match_on_benefit,
    ridge_effect_model,
    ridge_logit,
    stepp,
    stepp_windows,
)

RTOL = 1e-6
REF = Path(__file__).parent / "reference"
R = json.loads((REF / "risk.json").read_text())
RISK = "arrest ~ age + prio + wexp + mar + paro + race"
ROSSI = pd.read_csv(REF / "data" / "rossi.csv")
N = len(ROSSI)
FOLDS = np.arange(N) % 5 + 1  # R: ((i - 1) mod 5) + 1


def close(a, b, what, scale=0.0):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=max(1e-12, RTOL * scale), err_msg=what)


KW = {
    "pooled": dict(method="pooled"),
    "pooled_treatment": dict(method="pooled", include_treatment=True),
    "control_arm": dict(method="control-arm"),
    "pooled_cutpoints": dict(method="pooled"),
    "pooled_crossfit": dict(method="pooled", crossfit_folds=FOLDS),
    "control_arm_crossfit": dict(method="control-arm", crossfit_folds=FOLDS),
}
_cache: dict = {}


def analysis(name):
    if name not in _cache:
        case = next(c for c in R["cases"] if c["case"] == name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OverfittingWarning)
            rm = risk_model(RISK, ROSSI, treatment="fin", **KW[name])
        _cache[name] = (case, risk_stratified(rm, cutpoints=case["cutpoints"]))
    return _cache[name]


CASES = [c["case"] for c in R["cases"]]


@pytest.mark.parametrize("name", CASES)
class TestRiskAgainstR:
    def test_linear_predictor(self, name):
        case, res = analysis(name)
        close(res.risk.patients.lp, case["lp"], "lp", scale=1.0)

    def test_coefficients(self, name):
        case, res = analysis(name)
        m = res.model
        assert [t.replace("(Intercept)", "Intercept") for t in case["coefficients"]["term"]] \
            == m.term.tolist()
        close(m.estimate, case["coefficients"]["estimate"], "coef")
        close(m.std_error, case["coefficients"]["std_error"], "coef se")

    def test_performance(self, name):
        case, res = analysis(name)
        perf = res.performance.set_index(["population", "metric"])
        for pop, ref in case["performance"].items():
            c = perf.loc[(pop, "c_statistic")]
            assert c.n == ref["n"] and c.events == ref["events"]
            for k in ("estimate", "std_error", "conf_low", "conf_high"):
                close(c[k], ref["c_statistic"][k], f"{pop} c {k}")
            close(c.estimate, ref["c_statistic"]["concordance"], "survival::concordance")
            for metric in ("calibration_intercept", "calibration_slope"):
                got = perf.loc[(pop, metric)]
                close(got.estimate, ref[metric]["estimate"], f"{pop} {metric}", scale=1.0)
                close(got.std_error, ref[metric]["std_error"], f"{pop} {metric} se")

    def test_grouped_calibration(self, name):
        case, res = analysis(name)
        cal = res.calibration
        for pop, groups in case["calibration"].items():
            mine = cal[cal.population == pop].reset_index(drop=True)
            assert len(mine) == len(groups)
            for g, r in zip(mine.itertuples(), groups):
                assert (g.n, g.events) == (r["n"], r["events"])
                for k in ("predicted", "observed", "conf_low", "conf_high"):
                    close(getattr(g, k), r[k], f"{pop} group {r['group']} {k}", scale=1.0)

    def test_strata(self, name):
        case, res = analysis(name)
        close(np.array(res.edges), case["breaks"], "stratum edges")
        st = res.strata
        for ref in case["strata"]["strata"]:
            for eff in ref["effects"]:
                got = st[(st.stratum == ref["stratum"]) & (st.scale == eff["scale"])]
                assert len(got) == 1
                got = got.iloc[0]
                for k in ("n", "n_treated", "n_control", "events_treated", "events_control"):
                    assert got[k] == ref[k], (k, ref["stratum"])
                close(got.mean_risk, ref["mean_risk"], "mean risk")
                for k in ("estimate", "std_error", "conf_low", "conf_high", "statistic",
                          "p_value"):
                    close(got[k], eff[k], f"stratum {ref['stratum']} {eff['scale']} {k}",
                          scale=eff["std_error"])

    def test_equality_across_strata(self, name):
        case, res = analysis(name)
        t = res.tests
        for ref in case["strata"]["equality"]:
            got = t[(t.hypothesis == "equal across strata") & (t.test == "wald")
                    & (t.scale == ref["scale"])].iloc[0]
            assert got.df == ref["df"]
            close(got.statistic, ref["statistic"], f"equality {ref['scale']}")
            close(got.p_value, ref["p_value"], f"equality {ref['scale']} p")

    def test_linear_predictor_interaction(self, name):
        case, res = analysis(name)
        t = res.tests[res.tests.hypothesis == "treatment x risk_lp"]
        for ref in case["lp_tests"]:
            got = t[(t.scale == ref["scale"]) & (t.test == ref.get("test", "wald"))].iloc[0]
            assert got.df == ref["df"]
            close(got.statistic, ref["statistic"], f"lp {ref['scale']}")
            close(got.p_value, ref["p_value"], f"lp {ref['scale']} p")

    def test_benefit_curve(self, name):
        case, res = analysis(name)
        ref = case["curve"]
        rd = res.curve[res.curve.scale == "RD"]
        rr = res.curve[res.curve.scale == "RR"]
        close(rd.lp, ref["lp"], "grid", scale=1.0)
        close(rd.mu_control, ref["mu_control"], "mu0")
        close(rd.estimate, ref["rd"], "RD curve", scale=0.01)
        close(rd.std_error, ref["rd_se"], "RD curve se")
        close(rr.estimate, ref["rr"], "RR curve")
        close(rr.std_error, ref["log_rr_se"], "log RR curve se")


# ----------------------------------------------------------------------------- risk model API
def test_overfitting_warning_and_crossfit_record():
    with pytest.warns(OverfittingWarning, match="crossfit_folds"):
        rm = risk_model(RISK, ROSSI, treatment="fin")
    assert rm.crossfit_folds is None and rm.seed is None and rm.notes
    with pytest.warns(OverfittingWarning, match="control arm"):
        risk_model(RISK, ROSSI, treatment="fin", method="control-arm")
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverfittingWarning)
        a = risk_model(RISK, ROSSI, treatment="fin", crossfit_folds=5, seed=11)
        b = risk_model(RISK, ROSSI, treatment="fin", crossfit_folds=5, seed=11)
        c = risk_model(RISK, ROSSI, treatment="fin", crossfit_folds=5, seed=12)
    assert (a.crossfit_folds, a.seed) == (5, 11)
    assert sorted(a.patients.fold.unique()) == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(a.patients, b.patients)
    assert not np.allclose(a.patients.risk, c.patients.risk)
    # folds balanced on arm x outcome
    counts = a.patients.groupby(["treatment", "outcome"]).fold.value_counts().unstack()
    assert (counts.max(axis=1) - counts.min(axis=1)).max() <= 1


def test_external_models_reproduce_the_fitted_one():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverfittingWarning)
        ctl = risk_model(RISK, ROSSI, treatment="fin", method="control-arm")
    coefs = dict(zip(ctl.model.term, ctl.model.estimate))
    ext = risk_model(RISK, ROSSI, treatment="fin", method="external", coefficients=coefs)
    close(ext.patients.lp, ctl.patients.lp, "external lp", scale=1.0)
    assert ext.model.std_error.isna().all()
    col = ROSSI.assign(p=ctl.patients.risk.to_numpy())
    ext2 = risk_model("arrest ~ 1", col, treatment="fin", method="external", risk_column="p")
    close(ext2.patients.lp, ctl.patients.lp, "risk column lp", scale=1.0)
    pd.testing.assert_frame_equal(ext2.performance, ctl.performance)


def test_missing_rows_are_excluded_and_mapped_back():
    d = ROSSI.copy()
    d.loc[[3, 10], "prio"] = np.nan
    with pytest.warns(hr.HTEReportWarning):
        rm = risk_model(RISK, d, treatment="fin", crossfit_folds=4)
    assert rm.n_input == N and rm.n_analysed == N - 2
    assert 3 not in rm.patients.row.tolist() and 4 in rm.patients.row.tolist()


def test_c_statistic_small_example_and_ties():
    assert c_statistic([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])["estimate"] == 0.75
    assert c_statistic([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5])["estimate"] == 0.5
    with pytest.raises(DataError, match="at least two"):
        c_statistic([0, 1, 1], [0.2, 0.3, 0.4])


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(method="internal"), ValueError, "method="),
    (dict(method="control-arm", include_treatment=True), ValueError, "include_treatment"),
    (dict(method="external"), ValueError, "exactly one of"),
    (dict(method="external", coefficients={"Intercept": 0.1}), ValueError, "missing"),
    (dict(coefficients={"Intercept": 0.1}), ValueError, "method='external'"),
    (dict(crossfit_folds=1), ValueError, "crossfit_folds"),
    (dict(crossfit_folds=[1, 2]), ValueError, "one fold label per"),
    (dict(calibration_groups=1), ValueError, "calibration_groups"),
])
def test_risk_model_bad_input(kwargs, err, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverfittingWarning)
        with pytest.raises(err, match=match):
            risk_model(RISK, ROSSI, treatment="fin", **kwargs)


def test_risk_formula_errors():
    with pytest.raises(FormulaError, match="uses the treatment"):
        risk_model("arrest ~ age + fin", ROSSI, treatment="fin")
    with pytest.raises(FormulaError, match="not in the data"):
        risk_model("arrest ~ age + priors", ROSSI, treatment="fin")
    with pytest.raises(FormulaError, match="unsafe"):
        risk_model("arrest ~ age + I(open('x'))", ROSSI, treatment="fin", safe_formula=True)
    bad = ROSSI.assign(p=np.where(ROSSI.age > 40, 1.0, 0.3))
    with pytest.raises(DataError, match="strictly between 0 and 1"):
        risk_model("arrest ~ 1", bad, treatment="fin", method="external", risk_column="p")
    with pytest.raises(FormulaError, match="~ 1"):
        risk_model("arrest ~ age", bad, treatment="fin", method="external", risk_column="p")
    with pytest.raises(DataError, match="0/1"):
        risk_model("week ~ age", ROSSI, treatment="fin")


def test_stratification_errors():
    _, res = analysis("pooled")
    rm = res.risk
    with pytest.raises(ValueError, match="strictly increasing"):
        risk_stratified(rm, cutpoints=[0.3, 0.2])
    with pytest.raises(ValueError, match="strictly increasing"):
        risk_stratified(rm, cutpoints=[0.0, 0.5])
    with pytest.raises(DataError, match="treated and 0 control|0 treated"):
        risk_stratified(rm, cutpoints=[0.7])
    # a stratum of 40 patients (both arms) without an event
    quiet = ROSSI.index[ROSSI.arrest == 0]
    low = ROSSI.loc[quiet].groupby("fin").head(20).index
    d = ROSSI.assign(p=np.where(ROSSI.index.isin(low), 0.01, 0.3))
    rm3 = risk_model("arrest ~ 1", d, treatment="fin", method="external", risk_column="p")
    with pytest.raises(DataError, match="no events in either arm"):
        risk_stratified(rm3, cutpoints=[0.1])
    # zero events in one arm only: RD estimable, ratios marked not estimable (with a warning)
    one = ROSSI.index[(ROSSI.arrest == 0) & (ROSSI.fin == 1)][:20].append(
        ROSSI.index[ROSSI.fin == 0][:20])
    d = ROSSI.assign(p=np.where(ROSSI.index.isin(one), 0.01, 0.3))
    rm4 = risk_model("arrest ~ 1", d, treatment="fin", method="external", risk_column="p")
    with pytest.warns(hr.HTEReportWarning, match="zero events"):
        res4 = risk_stratified(rm4, cutpoints=[0.1])
    s1 = res4.strata[res4.strata.stratum == 1].set_index("scale")
    assert np.isfinite(s1.loc["RD", "estimate"]) and np.isnan(s1.loc["RR", "estimate"])
    assert s1.loc["RR", "note"].startswith("not estimable")


def test_result_is_frozen_and_consistent():
    _, res = analysis("pooled_crossfit")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.strata = None
    st = res.strata
    ok = np.isfinite(st.estimate)
    assert (st.conf_low[ok] <= st.estimate[ok]).all() and (st.estimate[ok]
                                                            <= st.conf_high[ok]).all()
    assert set(st.scale) == {"RD", "RR", "OR"}
    assert st.groupby("scale").n.sum().eq(N).all()
    assert "cross-fitted" in res.summary()
    assert res.model is res.risk.model


def test_benefit_plot_draws_the_frames():
    _, res = analysis("pooled")
    fig = res.plot()
    ax_rd, ax_rr = fig.axes[:2]
    rd = res.strata[res.strata.scale == "RD"]
    pts = ax_rd.containers[0].lines[0].get_xydata()
    close(pts[:, 0], rd.mean_risk * 100, "x")
    close(pts[:, 1], rd.estimate * 100, "y")
    assert ax_rr.get_yscale() == "log"
    fig.savefig("/tmp/risk_benefit.png", dpi=90)


# ----------------------------------------------------------------------------- benefit
def test_worked_example():
    b = personalized_benefit(0.05, 0.90).iloc[0]
    assert b.arr == pytest.approx(0.005, rel=1e-12)
    assert b.nnt == pytest.approx(200, rel=1e-12)
    assert b.nnt_type == "NNTB" and b.nnt_text == "NNTB 200"


def test_harm_and_altman_intervals():
    b = personalized_benefit([0.05, 0.05, 0.2, 0.2], [0.9, 0.9, 1.25, 0.5],
                             ([0.8, 0.85, 1.1, 0.4], [0.95, 1.01, 1.5, 0.6]))
    benefit, crossing, harm, strong = (b.iloc[i] for i in range(4))
    assert benefit.nnt_text == "NNTB 200 (NNTB 100 to 400)"
    assert (benefit.nntb_low, benefit.nntb_high) == pytest.approx((100, 400))
    assert crossing.nnt_text == "NNTB 200 (NNTH 2000 to ∞ to NNTB 134)"
    assert crossing.nntb_high == np.inf and crossing.nnth_high == np.inf
    assert harm.nnt_type == "NNTH" and harm.nnt == pytest.approx(20)
    assert harm.nnt_text == "NNTH 20 (NNTH 10 to 50)"
    assert np.isnan(harm.nntb_low)
    assert strong.nnt == pytest.approx(10) and strong.arr_low == pytest.approx(0.08)


def test_benefit_is_vectorized_over_p0():
    p0 = np.linspace(0.01, 0.6, 25)
    b = personalized_benefit(p0, 0.8, (0.7, 0.9))
    assert len(b) == 25
    close(b.arr, p0 * 0.2, "arr")
    assert (b.arr_low <= b.arr).all() and (b.arr <= b.arr_high).all()
    ax = plot_personalized_benefit(b)
    assert len(ax.lines) >= 2
    ax.figure.savefig("/tmp/personal_benefit.png", dpi=90)


@pytest.mark.parametrize("p0,rr,ci,match", [
    (0.0, 0.9, None, "p0"), (1.0, 0.9, None, "p0"), (5, 0.9, None, "p0"),
    (0.05, 0.0, None, "rr must"), (0.05, -1, None, "rr must"), (0.05, np.inf, None, "rr must"),
    (0.05, 0.9, (0.95, 1.1), "low <= rr <= high"), (0.05, 0.9, (0.0, 1.1), "rr_ci"),
    (0.05, 0.9, 0.8, "pair"), ("x", 0.9, None, "p0 must be a number"),
])
def test_benefit_bad_input(p0, rr, ci, match):
    with pytest.raises(ValueError, match=match):
        personalized_benefit(p0, rr, ci)


def test_benefit_from_result(rossi):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit("arrest ~ fin * C(wexp)", rossi, treatment="fin")
    b = benefit_from_result(res, [0.1, 0.3], modifier="wexp")
    assert len(b) == 4 and set(b.level) == {"0", "1"}
    row = res.subgroups[(res.subgroups.scale == "RR") & (res.subgroups.level == "0")
                        & (res.subgroups.method == "standardized")].iloc[0]
    close(b[b.level == "0"].arr, np.array([0.1, 0.3]) * (1 - row.estimate), "arr")
    overall = benefit_from_result(res, 0.2)
    assert overall.modifier.iloc[0] == "All patients"
    with pytest.raises(ValueError, match="no risk ratio"):
        benefit_from_result(res, 0.2, modifier="age")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lg = hr.fit("arrest ~ fin * C(wexp)", rossi, treatment="fin", models=["logit"])
    with pytest.raises(ValueError, match="no risk-ratio model"):
        benefit_from_result(lg, 0.2)


# ----------------------------------------------------------------------------- splines
SPL = R["spline"]


@pytest.fixture(scope="module")
def spline_fits():
    out = {}
    for model in ("ols", "modified-poisson", "logit"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[model] = hr.fit("arrest ~ fin * bs(age, df=4) + prio", ROSSI, treatment="fin",
                                models=[model], at={"age": [20, 25, 30, 35]})
    return out


def test_spline_knots_match_r():
    from formulaic import model_matrix

    state = model_matrix("bs(age, df=4)", ROSSI).model_spec.transform_state["bs(age, df=4)"]
    assert state["knots"][4:-4] == np.atleast_1d(SPL["knots"]).tolist()
    assert [state["lower_bound"], state["upper_bound"]] == SPL["boundary_knots"]


@pytest.mark.parametrize("model", ["ols", "modified-poisson", "logit"])
def test_spline_curves_and_joint_test(spline_fits, model):
    res, ref = spline_fits[model], SPL["fits"][model]
    curve = res.curves[res.curves.modifier == "age"]
    close(curve.value, ref["curve"]["value"], "grid", scale=1.0)
    for k in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
        close(curve[k], ref["curve"][k], f"{model} curve {k}", scale=0.01)
    native = {"ols": "RD", "modified-poisson": "RR", "logit": "OR"}[model]
    cond = res.subgroups[(res.subgroups.method == "conditional") & (res.subgroups.modifier
                                                                    == "age")
                         & (res.subgroups.scale == native)]  # the model's own scale
    close(cond.value, ref["at"]["value"], "at")
    for k in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
        close(cond[k], ref["at"][k], f"{model} at {k}", scale=0.01)
    t = res.interactions.set_index("test")
    assert t.loc["wald", "df"] == 4
    close(t.loc["wald", "statistic"], ref["wald"]["statistic"], "wald")
    close(t.loc["wald", "p_value"], ref["wald"]["p_value"], "wald p")
    if ref["lr"] is not None:
        close(t.loc["lr", "statistic"], ref["lr"]["statistic"], "lr")
        close(t.loc["lr", "p_value"], ref["lr"]["p_value"], "lr p")


# ----------------------------------------------------------------------------- STEPP
def test_stepp_against_r():
    ref = R["stepp"]
    s = stepp(ROSSI, outcome="arrest", treatment="fin", modifier="age", size=ref["size"],
              overlap=ref["overlap"])
    assert s.label == "exploratory"
    assert s.effects.window.nunique() == len(ref["windows"])
    for i, w in enumerate(ref["windows"]):
        mine = s.effects[s.effects.window == i + 1]
        first = mine.iloc[0]
        assert (first.modifier_low, first.modifier_high) == (w["low"], w["high"])
        assert first.modifier_median == w["median"]
        for k in ("n", "n_treated", "n_control", "events_treated", "events_control"):
            assert first[k] == w[k]
        for eff in w["effects"]:
            got = mine[mine.scale == eff["scale"]].iloc[0]
            for k in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
                close(got[k], eff[k], f"window {i + 1} {eff['scale']} {k}",
                      scale=eff["std_error"])
    for eff in ref["overall"]["effects"]:
        got = s.overall[s.overall.scale == eff["scale"]].iloc[0]
        close(got.estimate, eff["estimate"], "overall")
    fig = s.plot()
    assert "exploratory" in fig._suptitle.get_text()
    fig.savefig("/tmp/stepp.png", dpi=90)


def test_stepp_windows_and_errors():
    w = stepp_windows(np.arange(10), size=4, overlap=2)
    assert [np.flatnonzero(m).tolist() for m in w] == [[0, 1, 2, 3], [2, 3, 4, 5],
                                                       [4, 5, 6, 7], [6, 7, 8, 9]]
    w = stepp_windows(np.arange(11), size=4, overlap=1)  # last window ends at the maximum
    assert np.flatnonzero(w[-1]).tolist() == [7, 8, 9, 10]
    with pytest.raises(ValueError, match="overlap"):
        stepp_windows(np.arange(10), size=4, overlap=4)
    with pytest.raises(ValueError, match="size"):
        stepp_windows(np.arange(10), size=11, overlap=0)
    with pytest.raises(ValueError, match="not in the data"):
        stepp(ROSSI, outcome="arrest", treatment="fin", modifier="agee")
    s = stepp(ROSSI, outcome="arrest", treatment="fin", modifier="prio", size=60, overlap=30)
    assert (s.effects.n >= 60).all()


# ----------------------------------------------------------------------------- effect models
RIDGE = R["ridge"]
RIDGE_FORMULA = "arrest ~ fin * (age + prio + wexp + paro + race)"


@pytest.fixture(scope="module")
def ridge():
    return ridge_effect_model(RIDGE_FORMULA, ROSSI, treatment="fin", folds=FOLDS,
                              lambdas=RIDGE["lambdas"])


def test_ridge_against_r(ridge):
    assert ridge.label == "exploratory"
    assert ridge.coefficients.term.tolist() == [c.replace("(Intercept)", "Intercept")
                                                for c in RIDGE["columns"]]
    close(ridge.coefficients.unpenalized, RIDGE["unpenalized"], "ML")
    close(ridge.coefficients.unpenalized, RIDGE["glm"], "ML vs glm")
    close(ridge.cv.deviance, RIDGE["cv_deviance"], "cv deviance")
    close(ridge.cv.std_error, RIDGE["cv_std_error"], "cv se")
    close(ridge.penalty, RIDGE["lambda_min"], "lambda_min")
    close(ridge.coefficients.ridge, RIDGE["ridge_cv"], "ridge at lambda_min")
    cfb = ridge.c_for_benefit.set_index(["model", "predictions"])
    for name in ("unpenalized", "ridge"):
        ref = RIDGE[f"c_for_benefit_{name}"]
        got = cfb.loc[(name, "apparent")]
        assert got.n_pairs == ref["n_pairs"]
        close(got.estimate, ref["estimate"], f"c-for-benefit {name}")
    # interactions are shrunk, main effects are not penalized
    pen = ridge.coefficients[ridge.coefficients.penalized]
    assert (pen.ridge.abs() < pen.unpenalized.abs()).all()


def test_ridge_fixed_penalty_against_r():
    from formulaic import model_matrix

    X = np.asarray(model_matrix(RIDGE_FORMULA.split("~")[1], ROSSI), dtype=float)
    pen = RIDGE["lambda_fixed"] * np.asarray(RIDGE["sd"]) ** 2
    close(ridge_logit(X, ROSSI.arrest.to_numpy(float), pen), RIDGE["ridge_fixed"], "ridge")


def test_matching_and_c_for_benefit_small():
    it, ic = match_on_benefit([0.1, 0.2, 0.3, 0.4, 0.5], [1, 0, 1, 0, 0])
    assert it.tolist() == [0, 2] and len(ic) == 2
    # perfect ordering: larger predicted benefit always goes with larger observed benefit
    pb = np.array([0.0, 0.0, 1.0, 1.0])
    c = c_for_benefit(pb, [1, 0, 1, 0], [1, 1, 0, 1])
    assert c["estimate"] == 1.0 and c["n_pairs"] == 2
    with pytest.raises(DataError):
        match_on_benefit([0.1, 0.2, 0.3], [1, 0, 0])


def test_ridge_errors():
    with pytest.raises(ValueError, match="lambdas"):
        ridge_effect_model(RIDGE_FORMULA, ROSSI, treatment="fin", lambdas=[-1.0])
    with pytest.raises(HTEReportError, match="folds must be"):
        ridge_effect_model("arrest ~ fin * age", ROSSI, treatment="fin", folds=1)


# ----------------------------------------------------------------------------- report section
@pytest.fixture(scope="module")
def planned():
    from hte_report.analysis import fit_plan

    root = Path(__file__).parents[1] / "examples" / "rossi"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_plan(str(root / "plan.yaml"), root / "rossi.csv")


def _with_risk(analysis, **rb):
    plan = dataclasses.replace(analysis.plan, raw={**analysis.plan.raw, "risk_based": rb})
    return dataclasses.replace(analysis, plan=plan)


def test_risk_section_blocks_and_writers(planned):
    from hte_report.report.content import build_report
    from hte_report.report.html import render_html
    from hte_report.report.model import Callout, Figure, Para, Section, Table
    from hte_report.report.path import risk_section
    from hte_report.report.typst import render_typst

    assert isinstance(risk_section(planned)[0], Para)  # the example plan: not planned
    a = _with_risk(planned, planned=True, formula=RISK, method="pooled", crossfit_folds=5,
                   cutpoints=[0.2, 0.3, 0.4])
    blocks = risk_section(a)
    names = [b.name for b in blocks if isinstance(b, (Table, Figure))]
    assert names == ["risk-performance", "risk-strata", "risk-tests", "risk-benefit",
                     "personalized-benefit"]
    assert not any(isinstance(b, Callout) and "developed on this trial" in b.title
                   for b in blocks)
    strata = next(b for b in blocks if getattr(b, "name", "") == "risk-strata").frame
    assert len(strata) == 4 and strata.iloc[0, 0] == "[0, 0.2]"
    report = dataclasses.replace(build_report(a, date="2024-01-01"), sections=(
        Section("Risk-based analysis (PATH)", tuple(blocks), id="risk"),))
    html = render_html(report)
    Path("/tmp/risk_section.html").write_text(html, encoding="utf-8")
    assert "Treatment effects by stratum of predicted baseline risk" in html
    assert "NNTB" in html
    assert "Risk-based analysis" in render_typst(report)
    b2 = risk_section(_with_risk(planned, planned=True, formula=RISK))
    assert any(isinstance(b, Callout) and b.kind == "warning" for b in b2)


def test_risk_section_deviation_callouts(planned):
    from hte_report.report.model import Callout
    from hte_report.report.path import risk_section

    (c,) = risk_section(_with_risk(planned, planned=True))
    assert isinstance(c, Callout) and "deviation" in c.text
    (c,) = risk_section(_with_risk(planned, planned=True, formula="arrest ~ agee"))
    assert isinstance(c, Callout) and "not in the data" in c.text


def test_row_order_does_not_change_results():
    shuffled = ROSSI.sample(frac=1.0, random_state=3).reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverfittingWarning)
        a = risk_stratified(risk_model(RISK, ROSSI, treatment="fin"))
        b = risk_stratified(risk_model(RISK, shuffled, treatment="fin"))
    cols = ["stratum", "scale", "n", "events_treated", "estimate", "std_error"]
    pd.testing.assert_frame_equal(a.strata[cols], b.strata[cols], rtol=1e-7)
    pd.testing.assert_frame_equal(a.tests[["statistic", "p_value"]],
                                  b.tests[["statistic", "p_value"]], rtol=1e-7)
