"""A sweep of bad inputs over the public surface: each gives one of the package's errors with a
message that says what was wrong and what to do (never a KeyError, TypeError, LinAlgError or a
library's exception), or a recorded warning; rows are never dropped silently."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.errors import (
    ArgumentError,
    DataError,
    FormulaError,
    HTEReportError,
    MissingDataWarning,
    SparseSubgroupWarning,
)
from hte_report.spec.options import OptionError


def _trial(n=160, seed=3):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({
        "treat": rng.integers(0, 2, n),
        "age": rng.normal(60, 10, n),
        "region": rng.choice(["north", "south", "west"], n),
        "sbp": rng.normal(130, 15, n),
    })
    d["death"] = rng.binomial(1, 0.35, n)
    d["time"] = rng.exponential(10, n)
    d["event"] = rng.integers(0, 2, n)
    return d


D = _trial()
F = "death ~ treat * (age + C(region))"
S = "Surv(time, event) ~ treat * (age + C(region))"


def fit(formula=F, data=None, **kw):
    return hr.fit(formula, D if data is None else data, **kw)


def obs(**kw):
    args = dict(outcome="death", treatment="treat", confounders=["age", "sbp"],
                modifiers=["region"])
    args.update(kw)
    return hr.fit_observational(args.pop("data", D), **args)


def _long(n_id=30, seed=1):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame(dict(id=np.repeat(np.arange(n_id), 4), t=np.tile(np.arange(4), n_id)))
    d["treat"] = np.repeat(rng.integers(0, 2, n_id), 4)
    d["sex"] = np.repeat(rng.choice(["f", "m"], n_id), 4)
    d["y"] = rng.normal(size=len(d)) + 0.3 * d.t
    return d


L = _long()
_RESULT = {}


def res():
    if "r" not in _RESULT:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _RESULT["r"] = hr.fit("death ~ treat * age", D, treatment="treat")
    return _RESULT["r"]


CASES = [
    # unknown or misnamed arguments: what to write instead
    ("p_adjust=", lambda: fit(p_adjust="holm"), ArgumentError, r"p_adjust=.*multiplicity="),
    ("weights=", lambda: fit(weights="w"), ArgumentError, "weighted analyses are not supported"),
    ("subgroups=", lambda: fit(subgroups=["age"]), ArgumentError, "crossed with the treatment"),
    ("typo varaince=", lambda: fit(varaince="HC3"), ArgumentError, "did you mean variance="),
    ("fit_mixed without treatment", lambda: hr.fit_mixed("y ~ treat * t * age", D, time="t",
                                                         group="id"),
     ArgumentError, "treatment"),
    # option values
    ("models=[]", lambda: fit(models=[]), OptionError, "one or more working models"),
    ("models=5", lambda: fit(models=5), OptionError, "one or more working models"),
    ("Cluster(None)", lambda: hr.Cluster(None), OptionError, "name of the cluster column"),
    ("at= a list", lambda: fit(at=[60]), OptionError, "at= must map effect modifiers"),
    ("reference= a list", lambda: fit(treatment="treat", reference=[0]), OptionError,
     "one arm of the treatment"),
    ("exposure= a list", lambda: fit(exposure=["years"]), OptionError, "name of one column"),
    ("treatment= a number", lambda: fit(treatment=1), OptionError, "name of one column"),
    ("control= not an arm of two", lambda: fit(treatment="treat", control="x"), DataError,
     r"control='x' is not an arm"),
    # formulas and column names
    ("treatment= absent from formula", lambda: fit("death ~ sbp * age", treatment="treat"),
     FormulaError, "does not appear in the formula"),
    ("non-text column names", lambda: fit(data=D.rename(columns={"age": 5})), FormulaError,
     "not text"),
    ("MultiIndex columns", lambda: fit(data=pd.concat({"a": D}, axis=1)), FormulaError,
     "MultiIndex"),
    ("semicolon file read as one column",
     lambda: fit(data=pd.DataFrame({";".join(D.columns): ["x"]})), FormulaError,
     "separates its fields with semicolons"),
    ("term overflowing to inf", lambda: fit("death ~ treat * I(age ** 100000)",
                                            treatment="treat"),
     DataError, "infinite or overflowing"),
    # data values
    ("number column with a '.' code",
     lambda: fit(data=D.assign(age=D.age.round(1).astype(str).where(D.index > 3, "."))),
     DataError, r"text only because of the value\(s\) '\.' \(4 rows\)"),
    ("list-valued column", lambda: fit(data=D.assign(m=[[1]] * len(D))), DataError,
     "holds list values"),
    ("outcome too large to square", lambda: fit("sbp ~ treat * age",
                                                data=D.assign(sbp=D.sbp * 1e300)),
     DataError, "rescale it"),
    # observational analyses
    ("obs: confounders as one text", lambda: obs(confounders="bmi"), DataError,
     r"columns \['bmi'\]"),
    ("obs: outcome is the treatment", lambda: obs(outcome="treat"), DataError,
     "outcome and treatment are the same column"),
    ("obs: modifier is the treatment", lambda: obs(modifiers=["treat"]), DataError,
     "is the treatment"),
    ("obs: confounder is the treatment", lambda: obs(confounders=["treat", "age"]), DataError,
     "confounder 'treat' is the treatment"),
    ("obs: infinite confounder", lambda: obs(data=D.assign(age=np.where(D.index == 0, np.inf,
                                                                         D.age))),
     DataError, "infinite value"),
    ("obs: date confounder", lambda: obs(data=D.assign(dt=pd.date_range("2020", periods=len(D))),
                                         confounders=["dt"]),
     DataError, "holds dates/times"),
    ("obs: constant modifier", lambda: obs(data=D.assign(region="a")), DataError,
     "modifier 'region' is constant"),
    ("obs: max_outside=-1", lambda: obs(max_outside=-1), DataError, "max_outside must be"),
    ("obs: conf_level='0.95'", lambda: obs(conf_level="0.95"), OptionError, "conf_level"),
    ("obs: outcome all missing", lambda: obs(data=D.assign(death=np.nan)), DataError,
     "every one of the 160 rows misses a value"),
    ("obs: no rows", lambda: obs(data=D.iloc[:0]), DataError, "no rows"),
    # repeated measures
    ("mixed: time is the treatment", lambda: hr.fit_mixed("y ~ treat * C(sex)", L,
                                                          treatment="treat", time="treat",
                                                          group="id"),
     FormulaError, "name the same column"),
    ("mixed: one measurement per patient",
     lambda: hr.fit_mixed("y ~ treat * t * C(sex)", L.assign(id=L.index), treatment="treat",
                          time="t", group="id"),
     DataError, "no repeated measures"),
    # time-to-event analyses
    ("surv: list-valued column", lambda: hr.fit_survival(S, D.assign(m=[[1]] * len(D)),
                                                         treatment="treat"),
     DataError, "holds list values"),
    ("surv: term overflowing to inf",
     lambda: hr.fit_survival("Surv(time, event) ~ treat * I(age ** 100000)", D,
                             treatment="treat"),
     DataError, "infinite or overflowing"),
    ("surv: number column with a '.' code",
     lambda: hr.fit_survival(S, D.assign(age=D.age.round(1).astype(str).where(D.index > 3, ".")),
                             treatment="treat"),
     DataError, "text only because"),
    ("surv: weights=", lambda: hr.fit_survival(S, D, treatment="treat", weights="w"),
     ArgumentError, "weighted analyses are not supported"),
    ("mixed: list-valued column",
     lambda: hr.fit_mixed("y ~ treat * t * C(sex)", L.assign(m=[[1]] * len(L)),
                          treatment="treat", time="t", group="id"),
     DataError, "holds list values"),
    # exploratory forest
    ("explore: horizon without event", lambda: hr.explore(["age"], D, treatment="treat",
                                                          outcome="death", horizon=5),
     DataError, "applies to a time-to-event outcome only"),
    ("explore: numpy data", lambda: hr.explore(["age"], D.to_numpy(), treatment="treat",
                                               outcome="death"),
     DataError, "pandas or polars DataFrame"),
    # result methods, tables, exports
    ("table(scale=)", lambda: res().table(scale="RR"), ArgumentError, "table.. has no argument"),
    ("forest(foo=)", lambda: res().forest(foo=1), ArgumentError, "forest.. has no argument"),
    ("forest(ax=5)", lambda: res().forest(ax=5), ArgumentError, "matplotlib Axes"),
    ("forest(higher_is_better='no')", lambda: res().forest(higher_is_better="no"),
     ArgumentError, "True or False"),
    ("forest(style='big')", lambda: res().forest(style="big"), ArgumentError, "ForestStyle"),
    ("forest(comparison=) of two arms", lambda: res().forest(comparison="1 vs 0"), OptionError,
     "three or more arms"),
    ("effect_curve(data=5)", lambda: res().effect_curve("age", data=5), ArgumentError,
     "pandas DataFrame or None"),
    ("table(adjusted='no')", lambda: res().table(adjusted="no"), ArgumentError,
     "True or False"),
    ("to_docx(font_size=0)", lambda: hr.to_docx(res(), "/tmp/hte_sweep.docx", font_size=0),
     OptionError, "font_size"),
    ("effects(bad axis)", lambda: res().effects("RD"), OptionError, "not an axis"),
    ("overall_effect(bad axis)", lambda: res().overall_effect("XX"), OptionError,
     "not an axis"),
    ("interaction_p(bad axis)", lambda: res().interaction_p("zz"), OptionError, "not an axis"),
    ("comparison of a two-arm result", lambda: res().effects("absolute", comparison="B vs A"),
     OptionError, "two arms and no comparisons"),
    ("from_json(bad text)", lambda: hr.HTEResult.from_json("{not json"), DataError,
     "invalid JSON"),
    ("from_json(missing file)", lambda: hr.HTEResult.from_json("/nonexistent/r.json"),
     DataError, "cannot read a result from"),
    ("from_dict({})", lambda: hr.HTEResult.from_dict({}), DataError,
     "not a saved hte_report result"),
    ("to_latex(a frame)", lambda: hr.to_latex(D), ArgumentError, "got DataFrame"),
    ("to_ard(a frame)", lambda: hr.to_ard(D), ArgumentError, "got DataFrame"),
    ("save_figure(not a figure)", lambda: hr.save_figure(5, "/tmp/x.png"), ArgumentError,
     "matplotlib Figure"),
    ("from_ard(a frame)", lambda: hr.from_ard(D), DataError, "no column"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gets_a_package_error(call, error, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=message) as info:
            call()
    assert isinstance(info.value, HTEReportError)


def test_observational_rows_with_missing_values_are_counted():
    with pytest.warns(MissingDataWarning, match=r"analysis of All patients: .*age: 6"):
        r = obs(data=D.assign(age=D.age.where(D.index > 5)))
    assert r.meta["excluded_missing"]["All patients"] == {"age": 6}


def test_mixed_exclusions_are_missing_data_warnings():
    with pytest.warns(MissingDataWarning, match="4 of 120 rows excluded"):
        hr.fit_mixed("y ~ treat * t * C(sex)", L.assign(t=L.t.where(L.index > 3)),
                     treatment="treat", time="t", group="id", random="intercept")


def test_mixed_landmark_beyond_the_data_warns():
    from hte_report.errors import ModelWarning

    with pytest.warns(ModelWarning, match="outside the observed times"):
        hr.fit_mixed("y ~ treat * t * C(sex)", L, treatment="treat", time="t", group="id",
                     estimand="landmark", landmark=100, random="intercept")


def test_survival_accepts_every_p_adjust_method():
    r = hr.fit_survival("Surv(time, event) ~ treat * age", D, treatment="treat",
                        multiplicity="hommel")
    assert set(r.interactions.p_adjust_method) == {"hommel"}


def test_unknown_argument_is_still_a_type_error():
    with pytest.raises(TypeError):
        fit(p_adjust="holm")


def test_display_cutpoint_outside_the_range_warns():
    with pytest.warns(SparseSubgroupWarning, match="outside the observed range"):
        fit(display_cutpoints={"age": [1000]})


def test_result_round_trips_through_a_file(tmp_path):
    path = tmp_path / "r.json"
    res().to_json(str(path))
    again = hr.HTEResult.from_json(path)
    pd.testing.assert_frame_equal(again.overall, res().overall, check_dtype=False)
