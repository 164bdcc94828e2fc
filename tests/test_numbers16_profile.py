"""ci_method="profile": profile-likelihood intervals against R (tests/reference/issue16_profile.R)
for a logit model (Rossi) and a log-binomial model (NSW): exact roots of the profile deviance
from R's glm (rel 1e-6), and R's confint(glm) (MASS profile, which interpolates on a grid:
rel 5e-4)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.estimation.glm import fit as engine_fit
from hte_report.spec.options import OptionError

REF = Path(__file__).parent / "reference"
FITS = json.loads((REF / "issue16_profile.json").read_text())["fits"]
_cache: dict = {}


def _data(case):
    d = pd.read_csv(REF / "data" / f"{case}.csv")
    return d.assign(emp=(d.re78 > 0).astype(int)) if case == "nsw" else d


def _fit(ref):
    if ref["case"] not in _cache:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _cache[ref["case"]] = engine_fit(ref["formula"], _data(ref["case"]),
                                             treatment=ref["treatment"], models=[ref["model"]],
                                             ci_method="profile")
    return _cache[ref["case"]]


@pytest.mark.parametrize("ref", FITS, ids=[f["case"] for f in FITS])
def test_coefficient_profile_intervals(ref):
    coef = _fit(ref).coefficients
    assert (coef.ci_method == "profile").all()
    np.testing.assert_allclose(coef.estimate, ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(coef.conf_low, ref["exact_low"], rtol=1e-6)
    np.testing.assert_allclose(coef.conf_high, ref["exact_high"], rtol=1e-6)
    slope = coef.term != "Intercept"  # R's grid interpolation is coarse at the log-binomial
    np.testing.assert_allclose(coef.conf_low[slope],  # intercept's boundary (4%)
                               np.array(ref["confint_low"])[slope.to_numpy()], rtol=5e-4)
    np.testing.assert_allclose(coef.conf_high[slope],
                               np.array(ref["confint_high"])[slope.to_numpy()], rtol=5e-4)


@pytest.mark.parametrize("ref", FITS, ids=[f["case"] for f in FITS])
def test_conditional_effects_have_profile_intervals(ref):
    sub = _fit(ref).subgroups
    native = "OR" if ref["model"] == "logit" else "RR"
    cond = sub[(sub.method == "conditional") & (sub.modifier == ref["modifier"])]
    # the conditional RD (and a logit model's RR) is not linear in the coefficients: Wald
    assert (cond[cond.scale != native].ci_method == "wald").all()
    cond = cond[cond.scale == native]
    assert (cond.ci_method == "profile").all() and (cond.profile_note == "").all()
    for r in ref["conditional"]:
        got = cond[cond.level == str(r["level"])].iloc[0]
        np.testing.assert_allclose(got.estimate, r["estimate"], rtol=1e-6)
        np.testing.assert_allclose([got.conf_low, got.conf_high],
                                   [r["exact_low"], r["exact_high"]], rtol=1e-6)
        np.testing.assert_allclose([got.conf_low, got.conf_high],
                                   [r["confint_low"], r["confint_high"]], rtol=5e-4)
    # standardized effects keep Wald intervals, and say so
    assert (sub[sub.method == "standardized"].ci_method == "wald").all()


def test_profile_is_refused_where_it_does_not_apply():
    with pytest.raises(OptionError, match="ci_method"):
        hr.fit("Surv(week, arrest) ~ fin * age", _data("rossi"), treatment="fin",
               ci_method="profile")
    with pytest.raises(OptionError, match="ci_method"):
        engine_fit("arrest ~ fin * age", _data("rossi"), treatment="fin", ci_method="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = engine_fit("arrest ~ fin * age", _data("rossi"), treatment="fin",
                         models=["ols", "modified-poisson"], ci_method="profile")
    assert (res.coefficients.ci_method == "wald").all()  # no likelihood of their own
