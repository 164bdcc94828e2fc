"""Property sweep (issue 12): small random data frames with missing values, constant columns,
one-patient arms and odd dtypes never raise an internal exception type (KeyError, IndexError,
TypeError, AttributeError, ZeroDivisionError, LinAlgError, numpy / pandas / formulaic errors)
and never leak a numpy RuntimeWarning: only the package's own errors and warnings."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hte_report as hr
from hte_report.errors import HTEReportError, HTEReportWarning

EXAMPLES = int(os.environ.get("HTE_FUZZ_EXAMPLES", "200"))
RANDOM = os.environ.get("HTE_FUZZ_RANDOM")  # set it to explore beyond the fixed sequence

FORMULAS = [
    "y ~ treat * (x + C(g))",
    "y ~ treat * C(g)",
    "y ~ treat * x + z",
    "y ~ treat * (x + z) + C(g)",
    "y ~ treat * C(h)",
]


DTYPES = ("string_dtype", "category_dtype", "nullable_int", "bool_treat", "text_treat",
          "object_numbers")
PERTURBATIONS = ("nan_y", "nan_x", "nan_g", "const_x", "const_g", "one_arm_level",
                 "rare_level", "const_treat", "big_x", "dup_rows", "all_events", "no_events",
                 *DTYPES)


@st.composite
def frames(draw):
    n = draw(st.one_of(st.just(0), st.integers(6, 120)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    treat = rng.integers(0, 2, n)
    kind = draw(st.sampled_from(["binary", "continuous", "count"]))
    if kind == "binary":
        y = rng.integers(0, 2, n).astype(float)
    elif kind == "count":
        y = rng.poisson(2, n).astype(float)
    else:
        y = rng.normal(size=n)
    x = rng.normal(50, 10, n)
    z = rng.normal(size=n)
    g = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    h = rng.choice(np.array([0, 1, 2]), n)
    d = pd.DataFrame({"treat": treat, "y": y, "x": x, "z": z, "g": g, "h": h})
    # perturbations of values first, of dtypes last (a Categorical takes no new value)
    todo = [draw(st.sampled_from(PERTURBATIONS)) for _ in range(draw(st.integers(0, 3)))]
    todo.sort(key=lambda w: w in DTYPES)
    for what in todo:
        if n == 0:
            break
        i = rng.integers(0, n, max(1, n // 5))
        if what == "nan_y":
            d.loc[i, "y"] = np.nan
        elif what == "nan_x":
            d.loc[i, "x"] = np.nan
        elif what == "nan_g":
            d.loc[i, "g"] = None
        elif what == "const_x":
            d["x"] = 1.0
        elif what == "const_g":
            d["g"] = "a"
        elif what == "one_arm_level":
            d.loc[i, "g"] = "solo"
            d.loc[i, "treat"] = 1
        elif what == "rare_level":
            d.loc[d.index[0], "g"] = "rare"
        elif what == "string_dtype":
            d["g"] = d["g"].astype("string")
        elif what == "category_dtype":
            d["g"] = d["g"].astype("category")
        elif what == "nullable_int" and pd.api.types.is_numeric_dtype(d["treat"]):
            d["treat"] = d["treat"].astype("Int64")
        elif what == "bool_treat":
            d["treat"] = d["treat"].astype(bool)
        elif what == "text_treat":
            d["treat"] = np.where(d["treat"] == 1, "active", "placebo")
        elif what == "const_treat":
            d["treat"] = 1
        elif what == "big_x":
            d["x"] = d["x"] * 1e12
        elif what == "dup_rows":
            d = pd.concat([d, d.iloc[:3]], ignore_index=True)
        elif what == "all_events":
            d["y"] = 1.0
        elif what == "no_events":
            d["y"] = 0.0
        elif what == "object_numbers":
            d["x"] = d["x"].astype(object)
    formula = draw(st.sampled_from(FORMULAS))
    options = draw(st.sampled_from([
        {}, {"variance": "HC3"}, {"variance": "model", "models": ["ols"]},
        {"variance": "HC2"}, {"reference": "placebo"}, {"path": "irls"},
        {"path": "compressed"}, {"aggregate": True},
    ]))
    return d, formula, options


@settings(max_examples=EXAMPLES, deadline=None, derandomize=RANDOM is None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frames())
def test_fit_raises_only_package_errors(case):
    d, formula, options = case
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", HTEReportWarning)
        try:
            res = hr.fit(formula, d, treatment="treat", **options)
        except HTEReportError:
            return
    for frame in (res.subgroups, res.overall):
        ok = frame.dropna(subset=["conf_low", "conf_high", "estimate"])
        assert (ok.conf_low <= ok.estimate + 1e-9).all()
        assert (ok.estimate <= ok.conf_high + 1e-9).all()


SURV_FORMULAS = [
    "Surv(time, event) ~ treat * (x + C(g))",
    "Surv(time, event) ~ treat * C(g)",
    "Surv(time, event) ~ treat * x + z",
]


@st.composite
def survival_frames(draw):
    n = draw(st.one_of(st.just(0), st.integers(6, 100)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = pd.DataFrame({
        "treat": rng.integers(0, 2, n), "time": np.round(rng.exponential(10, n), 1),
        "event": rng.integers(0, 2, n), "x": rng.normal(50, 10, n), "z": rng.normal(size=n),
        "g": rng.choice(np.array(["a", "b", "c"], dtype=object), n)})
    todo = [draw(st.sampled_from([
        "ties", "zero_time", "negative_time", "no_events", "all_events", "nan_time",
        "one_event", "event_2", "bool_event", "const_g", "solo_level", "huge_time",
        "text_time", "nan_event"])) for _ in range(draw(st.integers(0, 3)))]
    todo.sort(key=lambda w: w in ("text_time", "bool_event"))  # dtype changes last
    for what in todo:
        if n == 0:
            break
        i = rng.integers(0, n, max(1, n // 5))
        if what == "ties":
            d["time"] = np.round(d["time"] / 10)
        elif what == "zero_time":
            d.loc[i, "time"] = 0.0
        elif what == "negative_time":
            d.loc[i, "time"] = -1.0
        elif what == "no_events":
            d["event"] = 0
        elif what == "all_events":
            d["event"] = 1
        elif what == "nan_time":
            d.loc[i, "time"] = np.nan
        elif what == "one_event":
            d["event"] = 0
            d.loc[d.index[0], "event"] = 1
        elif what == "event_2":
            d.loc[i, "event"] = 2
        elif what == "bool_event":
            d["event"] = d["event"].astype(bool)
        elif what == "const_g":
            d["g"] = "a"
        elif what == "solo_level":
            d.loc[d.index[0], "g"] = "solo"
        elif what == "huge_time":
            d["time"] = d["time"] * 1e12
        elif what == "text_time":
            d["time"] = d["time"].astype(str)
        elif what == "nan_event":
            d["event"] = d["event"].astype(float)
            d.loc[i, "event"] = np.nan
    formula = draw(st.sampled_from(SURV_FORMULAS))
    options = draw(st.sampled_from([{}, {"variance": "robust"}, {"ties": "breslow"},
                                    {"horizons": [5.0]}, {"rmst_tau": 8.0}]))
    return d, formula, options


@settings(max_examples=EXAMPLES // 2, deadline=None, derandomize=RANDOM is None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(survival_frames())
def test_fit_survival_raises_only_package_errors(case):
    d, formula, options = case
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", HTEReportWarning)
        try:
            res = hr.fit_survival(formula, d, treatment="treat", **options)
        except HTEReportError:
            return
    ok = res.subgroups.dropna(subset=["conf_low", "conf_high", "estimate"])
    assert (ok.conf_low <= ok.estimate + 1e-9).all() and (ok.estimate <= ok.conf_high + 1e-9).all()
