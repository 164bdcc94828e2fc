"""fit_mixed's strategies and estimands against R (lme4::lmer, geepack::geeglm) on the Mayo
Clinic PBC trial's repeated bilirubin measurements: one-at-a-time and joint analyses, the slope
and the landmark (2 years) estimands, standardized subgroup effects, interaction effects, tests,
the primary (overall) analysis, GEE with an independence working correlation and the fitted mean
trajectories. Reference: tests/reference/mixed_plan.R -> mixed_plan.json (relative 1e-6;
estimates and bounds within 1e-6 standard errors)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte_report.estimation.mixed import fit_mixed
from hte_report.spec.options import OptionError

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "mixed_plan.json").read_text())
RTOL = 1e-6
_cache: dict = {}


@pytest.fixture(scope="module")
def pbc():
    return pd.read_csv(REF / "data" / "pbcseq.csv")


def fit(pbc, **kw):
    key = tuple(sorted((k, str(v)) for k, v in kw.items()))
    if key not in _cache:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _cache[key] = fit_mixed("logbili ~ trt * years * (C(stagegrp) + age)", pbc,
                                    treatment="trt", time="years", group="id", **kw)
    return _cache[key]


def close(a, b, what, scale=0.0):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=max(1e-12, RTOL * scale), err_msg=what)


def check_rows(res, ref, modifier):
    sub = res.subgroups[(res.subgroups.modifier == modifier)
                        & (res.subgroups.model == res.models.model.iloc[0])]
    for r in [r for r in ref["rows"] if r["modifier"] == modifier]:
        got = sub[sub.level == r["level"]] if "level" in r else sub[np.isclose(sub.value,
                                                                                 r["value"])]
        assert len(got) == 1, r
        got = got.iloc[0]
        for k in ("estimate", "conf_low", "conf_high"):
            close(got[k], r[k], f"{modifier} {k}", scale=r["std_error"])
        close(got.std_error, r["std_error"], f"{modifier} se")
        close(got.p_value, r["p_value"], f"{modifier} p")
        if "level" in r:
            assert (got.n, got.n_obs) == (r["n"], r["n_obs"])
    ie = res.interaction_effects
    ie = ie[(ie.modifier == modifier) & (ie.model == res.models.model.iloc[0])]
    for r in [r for r in ref["interaction_effects"] if r["modifier"] == modifier]:
        got = ie[ie.level == r["level"]]
        assert len(got) == 1, r
        got = got.iloc[0]
        assert got.reference == r["reference"]
        for k in ("estimate", "conf_low", "conf_high"):
            close(got[k], r[k], f"interaction effect {modifier} {k}", scale=r["std_error"])
        close(got.std_error, r["std_error"], "interaction effect se")
    tests = res.interactions
    for r in [r for r in ref["tests"] if r["modifier"] == modifier]:
        got = tests[(tests.modifier == modifier) & (tests.test == r["test"])
                    & (tests.model == res.models.model.iloc[0])]
        assert len(got) == 1, r
        assert got.iloc[0].df == r["df"]
        close(got.iloc[0].statistic, r["statistic"], f"{r['test']} {modifier}")
        close(got.iloc[0].p_value, r["p_value"], f"{r['test']} {modifier} p")


def check_overall(res, ref):
    got = res.overall.iloc[0]
    for k in ("estimate", "conf_low", "conf_high"):
        close(got[k], ref[k], f"overall {k}", scale=ref["std_error"])
    close(got.std_error, ref["std_error"], "overall se")
    assert got.analysis == "overall-adjusted"


@pytest.mark.parametrize("estimand", ["slope", "landmark"])
def test_one_at_a_time(pbc, estimand):
    kw = {"estimand": estimand} | ({"landmark": 2} if estimand == "landmark" else {})
    res = fit(pbc, **kw)
    assert res.strategy == "one-at-a-time"
    check_rows(res, R["analyses"][f"oaat_{estimand}_stage"], "stagegrp")
    check_rows(res, R["analyses"][f"oaat_{estimand}_age"], "age")
    check_overall(res, R["overall"][estimand])
    assert set(res.subgroups.analysis) == {"one-at-a-time"}
    assert (res.subgroups.method == estimand).all()
    a = res.analyses
    assert list(a.analysis) == ["overall-adjusted", "one-at-a-time", "one-at-a-time"]
    assert a.formula.iloc[1] == "logbili ~ trt + years + trt:years + C(stagegrp) + " \
        "trt:C(stagegrp) + years:C(stagegrp) + trt:years:C(stagegrp)"


def test_joint_standardized(pbc):
    res = fit(pbc, strategy="joint")
    ref = R["analyses"]["joint_slope"]
    check_rows(res, ref, "stagegrp")
    check_rows(res, ref, "age")
    check_overall(res, R["overall"]["slope"])
    assert set(res.subgroups.analysis) == {"joint"}


def test_gee_independence(pbc):
    res = fit(pbc, models=("gee",), correlation="independence")
    assert res.models.model.iloc[0] == "gee-independence-robust"
    check_rows(res, R["analyses"]["gee_ind_stage"], "stagegrp")
    check_overall(res, R["overall"]["gee_ind"])


def test_trajectories(pbc):
    res = fit(pbc)
    tr = pd.DataFrame(res.meta["trajectories"])
    ov = tr[(tr.modifier == "") & (tr.model == "lmm-reml")]
    assert len(ov) == 50 and set(ov.arm) == {0, 1}
    t = np.sort(pbc.years.unique())
    for r in R["overall"]["slope"]["trajectory"]:
        if r["time"] > t.max():
            continue
        # the grid runs from the first to the last visit time: compare by the model's linearity
        rows = ov[ov.arm == r["arm"]].sort_values("time")
        slope = np.diff(rows["mean"]) / np.diff(rows["time"])
        mean_at = rows["mean"].iloc[0] + slope[0] * (r["time"] - rows["time"].iloc[0])
        close(mean_at, r["mean"], f"trajectory arm {r['arm']} at {r['time']}", scale=1e-3)
    levels = tr[tr.modifier == "stagegrp"]
    assert set(levels.level) == {"1-2", "3", "4"}


def test_landmark_needs_a_time(pbc):
    with pytest.raises(OptionError, match="needs landmark"):
        fit_mixed("logbili ~ trt * years * age", pbc, treatment="trt", time="years",
                  group="id", estimand="landmark")
    with pytest.raises(OptionError, match="landmark= applies"):
        fit_mixed("logbili ~ trt * years * age", pbc, treatment="trt", time="years",
                  group="id", landmark=2)


@pytest.mark.parametrize("kw,match", [
    (dict(strategy="within-subgroup"), "strategy"),
    (dict(correlation="ar1"), "correlation"),
    (dict(at={"stagegrp": ["3"]}), "categorical modifier"),
    (dict(at={"sex": [1]}), "not effect modifiers"),
    (dict(models=()), "at least one"),
    (dict(models=3), "a list of them"),
    (dict(at={"age": ["x"]}), "finite numbers"),
    (dict(at={"age": []}), "non-empty"),
    (dict(at=[40]), "must be a dict"),
    (dict(estimand="landmark", landmark="two"), "must be a number"),
    (dict(time_unit=""), "time_unit"),
])
def test_bad_options(pbc, kw, match):
    with pytest.raises(OptionError, match=match):
        fit_mixed("logbili ~ trt * years * (C(stagegrp) + age)", pbc, treatment="trt",
                  time="years", group="id", **kw)
