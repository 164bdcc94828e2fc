"""fit_mixed against R (lme4::lmer REML/ML, random intercept and slope; geepack::geeglm) on the
Mayo Clinic PBC trial's repeated bilirubin measurements (survival::pbcseq).

Reference numbers: tests/reference/mixed.json, made by tests/reference/mixed.R (which also writes
tests/reference/data/pbcseq.csv). Tolerance: relative 1e-6; estimates and interval bounds also
pass within 1e-6 standard errors and z statistics within 1e-6 absolute (an estimate near zero,
e.g. 0.08 SE from it, has no meaningful relative error). The variance components are found by
numerical optimization in both programs; at the optimum the likelihoods agree to 1e-14 relative
and the slope effects to about 1e-7 standard errors, well inside this tolerance.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte_report.errors import DataError, FormulaError
from hte_report.estimation.mixed import fit_mixed, parse_mixed_formula
from hte_report.results.result import HTEResult
from hte_report.spec.options import OptionError

RTOL = 1e-6
REF = Path(__file__).parent / "reference"
FIXTURE = json.loads((REF / "mixed.json").read_text())
FORMULA = "logbili ~ trt * years * (C(stagegrp) + age)"
_cache: dict = {}


def key(f):
    return "gee" if f["model"] == "gee" else f"lmm-{f['random']}-{'reml' if f['reml'] else 'ml'}"


FITS = {key(f): f for f in FIXTURE["fits"]}


@pytest.fixture(scope="module")
def pbc():
    return pd.read_csv(REF / "data" / "pbcseq.csv")


def run(name, data):
    if name not in _cache:
        f = FITS[name]
        kw = dict(models=["gee"]) if name == "gee" else dict(
            random=f["random"], method="reml" if f["reml"] else "ml")
        _cache[name] = fit_mixed(FORMULA, data, treatment="trt", time="years", group="id",
                                 strategy="joint", **kw)
    return _cache[name]


def close(a, b, what, scale=0.0):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=max(1e-12, RTOL * scale), err_msg=what)


@pytest.mark.parametrize("name", list(FITS))
class TestAgainstR:
    def test_fit(self, name, pbc):
        res, f = run(name, pbc), FITS[name]
        assert res.n_analysed == FIXTURE["n_rows"]
        assert res.meta["n_groups"] == FIXTURE["n_patients"]
        fe = res.models[res.models.analysis == "joint"].iloc[0]
        if f["model"] == "lmm":
            close(fe.loglik, f["loglik"], "loglik")
        else:
            alpha, scale = (float(v.split("=")[1]) for v in
                            fe.note.split(";")[0].split(" alpha")[1].split(","))
            close(alpha, f["alpha"], "alpha")
            close(scale, f["scale"], "scale", scale=1.0)

    def test_slope_effects(self, name, pbc):
        res, f = run(name, pbc), FITS[name]
        sub = res.subgroups
        assert (sub.method == "slope").all() and (sub.scale == "SlopeDiff").all()
        assert len(sub) == len(f["slopes"])
        # categorical levels: standardized over the level's patients since issue 15, checked
        # in tests/test_mixed_strategies.py; the conditional (reference-profile) slopes of this
        # reference are the equality test's inputs, checked below
        for r in [r for r in f["slopes"] if "level" not in r]:
            mine = sub[sub.modifier == r["modifier"]]
            got = mine[mine.level == r["level"]] if "level" in r else mine[
                np.isclose(mine.value, r["value"])]
            assert len(got) == 1, r
            got = got.iloc[0]
            se = r["std_error"]
            for k in ("estimate", "conf_low", "conf_high"):
                close(got[k], r[k], f"{name} {r['modifier']} {k}", scale=se)
            close(got.statistic, r["statistic"], f"{name} {r['modifier']} z", scale=1.0)
            for k in ("std_error", "p_value"):
                close(got[k], r[k], f"{name} {r['modifier']} {k}")
            if "level" in r:
                assert (got.n, got.n_treated) == (r["n"], r["n_treated"])

    def test_heterogeneity(self, name, pbc):
        res, f = run(name, pbc), FITS[name]
        tests = res.interactions
        for r in f["tests"]:
            got = tests[(tests.modifier == r["modifier"]) & (tests.test == r["test"])]
            assert len(got) == 1
            got = got.iloc[0]
            assert got.df == r["df"]
            close(got.statistic, r["statistic"], f"{r['test']} {r['modifier']}")
            close(got.p_value, r["p_value"], f"{r['test']} {r['modifier']} p")


def test_result_shape(pbc):
    res = run("lmm-slope-reml", pbc)
    assert res.family == "continuous"
    assert res.primary == {"absolute": ("SlopeDiff", "lmm-reml")}
    assert res.models.iloc[0].link == "identity"
    assert "(1 + years | id)" in res.models.iloc[0].note
    again = HTEResult.from_json(res.to_json())
    pd.testing.assert_frame_equal(again.subgroups, res.subgroups, check_dtype=False)
    assert set(res.curves.modifier) == {"age"}


def test_lmm_and_gee_together(pbc):
    res = fit_mixed(FORMULA, pbc, treatment="trt", time="years", group="id",
                    random="intercept", models=("lmm", "gee"), strategy="joint")
    assert list(res.models.model) == ["lmm-reml", "gee-exchangeable-robust"] * 2
    assert list(res.models.analysis) == ["overall-adjusted"] * 2 + ["joint"] * 2
    gee = res.subgroups[res.subgroups.model == "gee-exchangeable-robust"].reset_index(drop=True)
    alone = run("gee", pbc).subgroups  # the GEE rows do not depend on the other model
    pd.testing.assert_frame_equal(gee, alone.reset_index(drop=True))


def test_formula_roles():
    p = parse_mixed_formula("y ~ trt * t * (C(s) + a) + b", ["y", "trt", "t", "s", "a", "b"],
                            "trt", "t")
    assert [m.name for m in p.modifiers] == ["s", "a"]
    assert p.adjustment == ("b",)


@pytest.mark.parametrize("formula,match", [
    ("logbili ~ trt + years + age", "no trt:years term"),
    ("logbili ~ trt * years + age", "no trt:years:modifier"),
    ("logbili ~ trt * years * age * sex", "one-modifier"),
])
def test_formula_errors(pbc, formula, match):
    with pytest.raises(FormulaError, match=match):
        fit_mixed(formula, pbc, treatment="trt", time="years", group="id")


def test_modifier_must_be_baseline(pbc):
    d = pbc.copy()
    d["visitbili"] = d.bili > 2
    with pytest.raises(DataError, match="varies within id"):
        fit_mixed("logbili ~ trt * years * C(visitbili)", d, treatment="trt", time="years",
                  group="id")


@pytest.mark.parametrize("kw", [dict(random="quadratic"), dict(method="pql"),
                                dict(models=["glmm"])])
def test_bad_options(pbc, kw):
    with pytest.raises(OptionError):
        fit_mixed(FORMULA, pbc, treatment="trt", time="years", group="id", **kw)


def test_missing_outcome_excluded_and_counted(pbc):
    d = pbc.copy()
    d.loc[[0, 5], "logbili"] = np.nan
    with pytest.warns(Warning, match="2 of 1945 rows excluded"):
        res = fit_mixed(FORMULA, d, treatment="trt", time="years", group="id",
                        random="intercept")
    assert res.n_analysed == 1943


@pytest.mark.xfail(not hasattr(HTEResult, "_primary_filters"), strict=True,
                   reason="HTEResult.effects must honour primary_spec's row filters "
                          "({'method': 'slope'}); see the note on hte_report/result.py")
def test_primary_rows_are_the_slope_effects(pbc):
    res = run("lmm-slope-reml", pbc)
    eff = res.effects("absolute")
    assert len(eff) == 6 and (eff.method == "slope").all()
    assert list(res.interaction_p("absolute").modifier) == ["stagegrp", "age"]


def test_presentation_layers_accept_a_mixed_result(pbc):
    import matplotlib.pyplot as plt

    res = run("lmm-slope-reml", pbc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "Difference in slope per unit of time from lmm-reml" in res.summary()
        res.table().as_raw_html()
        res.forest()
    plt.close("all")
