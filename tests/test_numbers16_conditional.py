"""Conditional effects on every scale of every working model (a logit model's RD and RR beside
its OR, a modified Poisson model's RD, a linear model's RR) at the reference profile or at a
covariate profile given in at=, against R's delta method by hand and emmeans
(tests/reference/issue16_conditional.R)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte_report.estimation.glm import fit as engine_fit

REF = Path(__file__).parent / "reference"
FITS = json.loads((REF / "issue16_conditional.json").read_text())["fits"]
_cache: dict = {}


def _fit(ref):
    key = (ref["case"], tuple(sorted((ref.get("at") or {}).items())))
    if key not in _cache:
        d = pd.read_csv(REF / "data" / f"{ref['case']}.csv")
        if ref["case"] == "nsw":
            d = d.assign(emp=(d.re78 > 0).astype(int))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _cache[key] = engine_fit(ref["formula"], d, treatment=ref["treatment"],
                                     at=ref.get("at") or None)
    return _cache[key]


@pytest.mark.parametrize("ref", FITS, ids=[f"{f['case']}-{f['model']}{'-at' if f.get('at') else ''}"
                                          for f in FITS])
def test_conditional_effects_on_every_scale(ref):
    res = _fit(ref)
    if ref.get("at"):  # the stated covariate profile is the one reported
        prof = dict(zip(res.profile.variable, res.profile.value))
        assert {k: float(prof[k]) for k in ref["at"]} == ref["at"]
    sub = res.subgroups
    label = {"ols": "ols-HC3", "modified-poisson": "modified-poisson-HC0"}.get(ref["model"],
                                                                              ref["model"])
    cond = sub[(sub.method == "conditional") & (sub.model == label)
               & (sub.modifier == ref["modifier"])]
    assert len(cond) == len(ref["rows"])
    for r in ref["rows"]:
        got = cond[(cond.level == str(r["level"])) & (cond.scale == r["scale"])]
        assert len(got) == 1, r
        got = got.iloc[0]
        for mine, theirs in (("mu_treated", "mu1"), ("mu_control", "mu0"),
                             ("mu_treated_se", "mu1_se"), ("mu_control_se", "mu0_se"),
                             ("estimate", "estimate"), ("std_error", "std_error"),
                             ("conf_low", "conf_low"), ("conf_high", "conf_high"),
                             ("p_value", "p_value")):
            np.testing.assert_allclose(got[mine], r[theirs], rtol=1e-6,
                                       err_msg=f"{r['level']} {r['scale']} {mine}")
        std = sub[(sub.method == "standardized") & (sub.model == label)
                  & (sub.modifier == ref["modifier"]) & (sub.level == str(r["level"]))
                  & (sub.scale == r["scale"])].iloc[0]
        arms = r["standardized_arms"]
        np.testing.assert_allclose(
            [std.mu_treated, std.mu_control, std.mu_treated_se, std.mu_control_se],
            [arms["mu1"], arms["mu0"], arms["mu1_se"], arms["mu0_se"]], rtol=1e-6)
        if "emmeans_rd" in r:
            rd = cond[(cond.level == str(r["level"])) & (cond.scale == "RD")].iloc[0]
            np.testing.assert_allclose([rd.estimate, rd.std_error],
                                       [r["emmeans_rd"]["estimate"],
                                        r["emmeans_rd"]["std_error"]], rtol=1e-6)


def test_curves_stay_on_the_native_scale():
    d = pd.read_csv(REF / "data" / "rossi.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = engine_fit("arrest ~ fin * age", d, treatment="fin")
    scales = res.curves.groupby("model").scale.unique()
    assert {m: list(v) for m, v in scales.items()} == {
        "logit": ["OR"], "modified-poisson-HC0": ["RR"], "ols-HC3": ["RD"]}
    cond = res.subgroups[res.subgroups.method == "conditional"]
    assert set(cond[cond.model == "logit"].scale) == {"RD", "RR", "OR"}


def test_a_covariate_profile_takes_one_value_and_known_names_only():
    from hte_report.spec.options import OptionError

    d = pd.read_csv(REF / "data" / "rossi.csv")
    f = "arrest ~ fin * C(wexp) + age + C(mar)"
    for at, match in (({"age": [30, 40]}, "must be one value"),
                      ({"week": 3}, "neither an effect modifier"),
                      ({"mar": 2}, "not a level")):
        with pytest.raises(OptionError, match=match):
            engine_fit(f, d, treatment="fin", models=["logit"], at=at)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = engine_fit(f, d, treatment="fin", models=["logit"], at={"mar": "1"})
    assert dict(zip(res.profile.variable, res.profile.value))["mar"] == "1"



def test_every_pairwise_subgroup_difference_matches_r():
    """tests/reference/issue16_pairwise.R: standardized RD and RR differences between every
    pair of three levels (lm, HC3, t on the residual df)."""
    import hte_report as hr

    ref = json.loads((REF / "issue16_pairwise.json").read_text())["rows"]
    d = pd.read_csv(REF / "data" / "rossi.csv")
    d["pg"] = np.select([d.prio == 0, d.prio <= 2], [0, 1], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit("arrest ~ fin * C(pg) + age", d, treatment="fin", models=["ols"],
                     inference="t")
    diffs = res.subgroup_differences
    assert len(diffs) == len(ref) == 6
    scales = {"RD": "difference of RDs", "RR": "ratio of RRs"}
    for r in ref:
        got = diffs[(diffs.scale == scales[r["scale"]]) & (diffs.level == str(r["level"]))
                    & (diffs.reference == str(r["reference"]))]
        assert len(got) == 1, r
        got = got.iloc[0]
        for k in ("estimate", "std_error", "conf_low", "conf_high", "p_value", "df"):
            np.testing.assert_allclose(got[k], r[k], rtol=1e-6, err_msg=f"{r} {k}")
    # the pairs with the first level are the interaction effects
    first = diffs[diffs.reference == "0"].reset_index(drop=True)
    ie = res.interaction_effects.reset_index(drop=True)
    np.testing.assert_allclose(first.estimate, ie.estimate)
