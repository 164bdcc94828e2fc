"""The joint (global) heterogeneity test across every modifier (HTEResult.heterogeneity)
against R (tests/reference/issue16_joint.R, issue16_glm.R): Wald chi-square, F under t
inference (as lmtest::waldtest(test = "F") with a sandwich vcov) and LR (anova) for logit."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr

REF = Path(__file__).parent / "reference"
CASES = json.loads((REF / "issue16_joint.json").read_text())["cases"]
GLM = json.loads((REF / "issue16_glm.json").read_text())["fits"]
_cache: dict = {}


def _data(case):
    d = pd.read_csv(REF / "data" / f"{case}.csv")
    return d.assign(emp=(d.re78 > 0).astype(int)) if case == "nsw" else d


def _fit(formula, case, treatment, **kw):
    key = (formula, case, tuple(sorted(kw.items())))
    if key not in _cache:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _cache[key] = hr.fit(formula, _data(case), treatment=treatment, **kw)
    return _cache[key]


def _close(got, ref):
    assert got.df == ref["df"]
    np.testing.assert_allclose(got.statistic, ref["statistic"], rtol=1e-6)
    np.testing.assert_allclose(got.p_value, ref["p_value"], rtol=1e-6)
    if "df_denominator" in ref:
        assert got.distribution == "F" and got.df_denominator == ref["df_denominator"]
    else:
        assert got.distribution == "chi-square" and np.isnan(got.df_denominator)


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
@pytest.mark.parametrize("inference", ["z", "t"])
def test_joint_test_matches_r(case, inference):
    # z and t differ only for the Gaussian model: z needs only OLS again
    res = _fit(case["formula"], case["case"], case["treatment"], inference=inference,
               **({"models": ("ols",)} if inference == "z" else {}))
    het = res.heterogeneity
    assert (het.n == case["n"]).all() and (het.analysis == "joint").all()
    checked = 0
    for ref in case["tests"]:
        test = "lr" if ref["test"] == "lr" else "wald"
        if ref["model"] == "ols-HC3" and ref["test"] != f"wald-{inference}":
            if not (inference == "t" and ref["test"] == "waldtest-F"):
                continue
        if inference == "z" and ref["model"] != "ols-HC3":
            continue
        rows = het[(het.model == ref["model"]) & (het.test == test)]
        assert len(rows) == 1, ref
        _close(rows.iloc[0], ref)
        checked += 1
    assert checked == (5 if inference == "t" else 1)


def test_the_joint_test_does_not_depend_on_the_strategy_nor_change_the_others():
    c = CASES[0]
    a = _fit(c["formula"], c["case"], c["treatment"], inference="t")
    b = _fit(c["formula"], c["case"], c["treatment"], inference="t", strategy="joint")
    cols = ["model", "test", "statistic", "df", "p_value"]
    pd.testing.assert_frame_equal(a.heterogeneity[cols], b.heterogeneity[cols])
    assert "modifiers" in a.heterogeneity and a.heterogeneity.modifiers.iloc[0] == "age, wexp, prio"
    # the per-modifier tests and their multiplicity family are untouched
    assert set(a.interactions.modifier) == {"age", "wexp", "prio"}


@pytest.mark.parametrize("inference", ["t", "z"])
def test_nsw_continuous_joint_f_test(inference):
    ref = next(f for f in GLM if f["case"] == "nsw" and f["inference"] == inference)
    res = _fit(ref["formula"], "nsw", "treat", inference=inference, models=("ols",))
    got = res.heterogeneity[res.heterogeneity.test == "wald"].iloc[0]
    _close(got, ref["joint_wald"])


def test_one_modifier_the_joint_test_is_its_test():
    res = _fit("arrest ~ fin * (age) + prio", "rossi", "fin")
    het, t = res.heterogeneity, res.interactions
    t = t[t.test.isin(["wald", "lr"])]
    np.testing.assert_allclose(het.statistic, t.statistic.to_numpy())
    assert list(het.test) == list(t.test) and (het.n == 432).all()
    assert (het.modifiers == "age").all()


COX = json.loads((REF / "issue16_joint_cox.json").read_text())["cases"]


@pytest.mark.parametrize("case", COX, ids=[c["case"] for c in COX])
def test_cox_joint_test_matches_coxph(case):
    d = pd.read_csv(REF / "data" / f"{case['case']}.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit(case["formula"], d, treatment=case["treatment"],
                     reference="no" if case["case"] == "gbsg2" else None)
    het = res.heterogeneity
    assert (het.n == case["n"]).all() and list(het.test) == ["wald", "lr"]
    for test in ("wald", "lr"):
        _close(het[het.test == test].iloc[0], case[test])
