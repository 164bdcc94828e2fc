"""RR10, RR01, RR11 and the multiplicative interaction exp(b3) beside RERI, AP and SI, against
closed forms from R's glm (tests/reference/issue16_additive.R) on the Rossi and NSW data."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte_report.estimation.additive import additive_interaction
from hte_report.estimation.glm import fit as engine_fit

REF = Path(__file__).parent / "reference"
FITS = json.loads((REF / "issue16_additive.json").read_text())["fits"]


def _data(case):
    d = pd.read_csv(REF / "data" / f"{case}.csv")
    return d.assign(emp=(d.re78 > 0).astype(int)) if case == "nsw" else d


@pytest.mark.parametrize("ref", FITS, ids=[f"{f['case']}-{f['model']}" for f in FITS])
def test_joint_effects_and_additive_measures_match_r(ref):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = engine_fit(ref["formula"], _data(ref["case"]), treatment=ref["treatment"],
                         models=[ref["model"]])
    assert res.n_analysed == ref["n"]
    both = pd.concat([res.additive, res.joint_effects]).set_index("measure")
    assert (both.reference == f"{ref['treatment']}=0, {ref['modifier']}=0").all()
    label = "OR" if ref["model"] == "logit" else "RR"
    for name in ("RR10", "RR01", "RR11", "multiplicative", "RERI", "AP", "SI"):
        measure = f"{name}_{label}"
        got = both.loc[measure]
        if measure not in ref["measures"]:  # R: SI negative, no log-scale interval
            assert name == "SI" and np.isnan(got.estimate) and "not estimable" in got.note
            continue
        r = ref["measures"][measure]
        for k in ("estimate", "std_error", "conf_low", "conf_high"):
            np.testing.assert_allclose(got[k], r[k], rtol=1e-6, err_msg=f"{measure} {k}")
    assert set(res.joint_effects.measure) == {f"{n}_{label}" for n in
                                              ("RR10", "RR01", "RR11", "multiplicative")}


def test_closed_forms():
    """exp(b3) = RR11 / (RR10 RR01); RERI = RR11 - RR10 - RR01 + 1; AP = RERI / RR11."""
    b = np.array([-0.4, 0.3, 0.25])
    V = np.array([[0.04, 0.01, -0.02], [0.01, 0.05, -0.03], [-0.02, -0.03, 0.09]])
    add, joint = additive_interaction(b, V, 0.95, "RR")
    a = {r["measure"]: r for r in add + joint}
    r10, r01, r11 = np.exp(b[0]), np.exp(b[1]), np.exp(b.sum())
    assert a["RR10_RR"]["estimate"] == pytest.approx(r10, rel=1e-12)
    assert a["RR11_RR"]["estimate"] == pytest.approx(r11, rel=1e-12)
    assert a["multiplicative_RR"]["estimate"] == pytest.approx(r11 / (r10 * r01), rel=1e-12)
    assert a["RERI_RR"]["estimate"] == pytest.approx(r11 - r10 - r01 + 1, rel=1e-12)
    assert a["AP_RR"]["estimate"] == pytest.approx((r11 - r10 - r01 + 1) / r11, rel=1e-12)
    se11 = np.sqrt(np.ones(3) @ V @ np.ones(3))
    assert a["RR11_RR"]["std_error"] == pytest.approx(se11, rel=1e-12)
    assert a["RR11_RR"]["conf_low"] == pytest.approx(r11 * np.exp(-1.959963984540054 * se11),
                                                     rel=1e-10)
    # SI undefined (preventive individual effects, R11 > 1): not a number, with the reason
    add, _ = additive_interaction(np.array([-0.5, -0.4, 1.2]), V, 0.95, "OR")
    si = add[2]
    assert np.isnan(si["estimate"]) and "Knol" in si["note"]


RECODED = json.loads((REF / "issue16_reri_recoded.json").read_text())["fits"]


@pytest.mark.parametrize("ref", RECODED, ids=[f["model"] for f in RECODED])
def test_recoded_to_the_lowest_risk_stratum_matches_a_refit_in_r(ref):
    """Knol et al. (2011): R refits the model with the exposures recoded so that the stratum
    with the lowest predicted risk is the reference; the measures must agree."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = engine_fit("arrest ~ fin * C(wexp) + age + prio", _data("rossi"), treatment="fin",
                         models=[ref["model"]], reri_reference="lowest-risk")
    both = pd.concat([res.additive, res.joint_effects]).set_index("measure")
    want = f"fin={ref['reference_fin']}, wexp={ref['reference_wexp']}"
    assert (both.reference == want).all()
    assert both.note.str.contains("Knol").all()
    for measure, r in ref["measures"].items():
        for k, v in r.items():
            np.testing.assert_allclose(both.loc[measure, k], v, rtol=1e-6,
                                       err_msg=f"{measure} {k}")
