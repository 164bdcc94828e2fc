"""Estimates, SEs, CIs and p-values against R (glm, sandwich, epiR) on real randomized data.

Reference numbers: tests/reference/core_glm.json, made by tests/reference/core_glm.R from the
CSVs in tests/reference/data (see tests/reference/README.md to regenerate). Every case runs
through the automatic path (statsmodels at these sizes) and through the blocked Fisher-scoring
path used for large n.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr

# the interaction-model engine: one joint model, its own standardized overall row
from hte_report.estimation.glm import fit as engine_fit

RTOL = 1e-6
REF = Path(__file__).parent / "reference"
CASES = json.loads((REF / "core_glm.json").read_text())["cases"]

SPEC = {
    "rossi_binary": dict(formula="arrest ~ fin * (age + C(wexp) + prio) + race + mar + paro",
                         treatment="fin"),
    "rossi_reri": dict(formula="arrest ~ fin * C(wexp) + age + prio", treatment="fin"),
    "hiv_cluster": dict(formula="got ~ any * (age + distvct)", treatment="any",
                        cluster="villnum"),
    "nsw_continuous": dict(formula="re78 ~ treat * (age + C(black) + nodegree) + educ + re75",
                           treatment="treat", family="continuous"),
    "nsw_spline": dict(formula="re78 ~ treat * bs(age, df=3) + educ", treatment="treat",
                       family="continuous"),
    "randhie_count": dict(formula="mdvis ~ free * (C(hlthg) + disea) + physlm",
                          treatment="free", family="count"),
    "rossi_rate": dict(formula="arrest ~ fin * (age + C(wexp))", treatment="fin",
                       family="count", exposure="week"),
}

FITS = [(c["case"], f) for c in CASES for f in c["fits"] if f["converged"]]
_cache = {}


def run(case, fit_ref, path="auto"):
    key = (case["case"], fit_ref["model"], fit_ref["variance"], path)
    if key not in _cache:
        spec = dict(SPEC[case["case"]])
        data = pd.read_csv(REF / "data" / case["data"])
        cluster = spec.pop("cluster", None)
        if cluster:  # R analysed complete cases including the cluster column for every fit
            data = data.dropna(subset=[cluster])
        variance = fit_ref["variance"]
        if variance == "CL":
            variance = hr.Cluster(cluster)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the R reference uses z (large-sample) intervals and tests throughout
            _cache[key] = engine_fit(spec.pop("formula"), data, models=[fit_ref["model"]],
                                     variance=variance, path=path, inference="z", **spec)
    return _cache[key]


def case_of(name):
    return next(c for c in CASES if c["case"] == name)


def close(a, b, what, scale=0.0):
    """Relative 1e-6; near zero (e.g. a CI bound crossing 0) relative to the standard error."""
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=max(1e-12, RTOL * scale), err_msg=what)


def close_p(a, b, what):
    """Tiny p-values amplify the statistic's relative error (d log p ~ stat/2 * d stat / stat):
    compare them on the log scale."""
    if b < 1e-4:
        close(np.log(a), np.log(b), what)
    else:
        close(a, b, what)


@pytest.mark.parametrize("path", ["auto", "irls"])  # small data: auto is statsmodels
@pytest.mark.parametrize("name,fit_ref", FITS, ids=[f"{c}-{f['model']}-{f['variance']}"
                                                    for c, f in FITS])
class TestAgainstR:
    def test_sample_size(self, name, fit_ref, path):
        case = case_of(name)
        assert run(case, fit_ref, path).n_analysed == case["n"]

    def test_standardized(self, name, fit_ref, path):
        case = case_of(name)
        res = run(case, fit_ref, path)
        sub = res.subgroups[res.subgroups.method == "standardized"]
        for r in fit_ref["standardized"]:
            if r["modifier"] == "(overall)":
                got = res.overall[res.overall.scale == r["scale"]]
            elif r.get("quarter") is not None:
                got = sub[(sub.modifier == r["modifier"]) & (sub.order == r["quarter"] - 1)
                          & (sub.scale == r["scale"])]
            else:
                got = sub[(sub.modifier == r["modifier"]) & (sub.level == str(r["level"]))
                          & (sub.scale == r["scale"])]
            assert len(got) == 1, r
            got = got.iloc[0]
            assert got.n == r["n"]
            for k in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
                close(got[k], r[k], f"{name} {r['modifier']} {r.get('level')} {r['scale']} {k}",
                      scale=r["std_error"])
            close(got.mu_treated, r["mu1"], "mu1")
            close(got.mu_control, r["mu0"], "mu0")

    def test_conditional(self, name, fit_ref, path):
        case = case_of(name)
        res = run(case, fit_ref, path)
        sub = res.subgroups[res.subgroups.method == "conditional"]
        assert fit_ref["conditional"]
        for r in fit_ref["conditional"]:
            mine = sub[(sub.modifier == r["modifier"]) & (sub.scale == r["scale"])]
            if r.get("level") is not None:
                got = mine[mine.level == str(r["level"])]
            else:
                got = mine[np.isclose(mine.value, r["value"])]
            assert len(got) == 1, r
            got = got.iloc[0]
            for k in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
                close(got[k], r[k], f"{name} conditional {r['modifier']} {k}")

    def test_interaction_tests(self, name, fit_ref, path):
        case = case_of(name)
        res = run(case, fit_ref, path)
        tests = res.interactions
        # LR tests are reported only with model-based variance (they ignore robust variance)
        lr = (fit_ref["lr"] or []) if fit_ref["variance"] == "model" else []
        assert not ((tests.test == "lr").any() and fit_ref["variance"] != "model")
        for kind, rows in (("wald", fit_ref["wald"]), ("lr", lr)):
            for r in rows:
                got = tests[(tests.modifier == r["modifier"]) & (tests.test == kind)].iloc[0]
                assert got.df == r["df"]
                close(got.statistic, r["statistic"], f"{kind} {r['modifier']}")
                close_p(got.p_value, r["p_value"], f"{kind} {r['modifier']} p")
        for r in fit_ref["equality"] or []:
            got = tests[(tests.modifier == r["modifier"]) & (tests.test == "equality")
                        & (tests.scale == r["scale"])].iloc[0]
            assert got.df == r["df"]
            close(got.statistic, r["statistic"], f"equality {r['modifier']} {r['scale']}")
            close_p(got.p_value, r["p_value"], "equality p")

RERI_FITS = [(c, f) for c, f in FITS if f.get("reri")]


@pytest.mark.parametrize("name,fit_ref", RERI_FITS,
                         ids=[f"{c}-{f['model']}-{f['variance']}" for c, f in RERI_FITS])
def test_additive_interaction(name, fit_ref):
    """RERI, AP, SI against our R delta method, which itself matches epiR::epi.interaction."""
    assert len(RERI_FITS) == 2
    res = run(case_of(name), fit_ref)
    add = res.additive.set_index("measure")
    checked = 0
    for r in fit_ref["reri"]:
        if r["measure"].split("_")[0] not in ("RERI", "AP", "SI"):
            continue
        got = add.loc[r["measure"]]
        for k in ("estimate", "conf_low", "conf_high"):
            close(got[k], r[k], f"{r['measure']} {k}")
        checked += 1
    assert checked >= 3


def test_non_converging_models_fall_back_like_r_fails():
    """R's glm could not fit these; we must not report numbers under their name."""
    failed = [(c["case"], f["model"]) for c in CASES for f in c["fits"] if not f["converged"]]
    assert failed
    for name, model in failed:
        case = case_of(name)
        spec = dict(SPEC[name])
        spec.pop("cluster", None)
        data = pd.read_csv(REF / "data" / case["data"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = engine_fit(spec.pop("formula"), data, models=[model], **spec)
            except hr.HTEReportError:
                continue
        assert not res.subgroups.model.str.startswith(model + "-").any()
        assert not (res.subgroups.model == model).any()
