"""Every method of R's p.adjust (tests/reference/issue16_padjust.R) and clear errors for others."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte_report.core.inference import MULTIPLICITY_METHODS, UnknownMethodError, adjust_pvalues
from hte_report.spec.options import OptionError, check_multiplicity

REF = json.loads((Path(__file__).parent / "reference" / "issue16_padjust.json").read_text())
#: R name -> the names this package accepts for it
NAMES = {"holm": ["holm"], "hochberg": ["hochberg"], "hommel": ["hommel"],
         "bonferroni": ["bonferroni"], "BH": ["BH", "fdr_bh"], "BY": ["BY", "fdr_by"],
         "fdr": ["fdr", "fdr_bh"], "none": ["none"]}
CASES = [(case, r_name, ours) for case in REF["cases"] for r_name in REF["methods"]
         for ours in NAMES[r_name]]


def _tests(p):
    return pd.DataFrame({"model": "m", "scale": "RD", "test": "wald", "p_value": p,
                         "modifier": [f"x{i}" for i in range(len(p))]})


@pytest.mark.parametrize("case,r_name,ours", CASES, ids=[f"{c}-{r}-{o}" for c, r, o in CASES])
def test_every_p_adjust_method_matches_r(case, r_name, ours):
    ref = REF["cases"][case]
    got = adjust_pvalues(_tests(np.array(ref["p"], float)), ours).p_adjusted.to_numpy()
    np.testing.assert_allclose(got, ref["adjusted"][r_name], rtol=1e-12, atol=0)


def test_every_r_method_is_accepted():
    assert set(REF["methods"]) <= set(MULTIPLICITY_METHODS)


def test_missing_p_values_are_left_out_of_the_family():
    p = np.array(REF["cases"]["mixed"]["p"] + [np.nan])
    got = adjust_pvalues(_tests(p), "hommel").p_adjusted.to_numpy()
    np.testing.assert_allclose(got[:-1], REF["cases"]["mixed"]["adjusted"]["hommel"], rtol=1e-12)
    assert np.isnan(got[-1])


@pytest.mark.parametrize("bad", ["sidak", "Holm", "", None, 3])
def test_unknown_method_is_a_clear_error(bad):
    with pytest.raises(OptionError, match="multiplicity=.*hommel"):
        check_multiplicity(bad)
    with pytest.raises(UnknownMethodError, match="multiplicity=.*hommel"):  # a ValueError
        adjust_pvalues(_tests(np.array([0.01, 0.2])), bad)


def test_fit_accepts_hommel_and_by():
    import warnings

    import hte_report as hr
    from hte_report.datasets import load_rossi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit("arrest ~ fin * (age + C(wexp) + prio)", load_rossi(), treatment="fin",
                     models=["logit"], multiplicity="hommel")
        with pytest.raises(OptionError, match="not a multiplicity"):
            hr.fit("arrest ~ fin * age", load_rossi(), treatment="fin", multiplicity="sidak")
    t = res.interactions[(res.interactions.test == "wald")]
    p = t.p_value.to_numpy()
    adj = adjust_pvalues(_tests(p), "hommel").p_adjusted.to_numpy()
    np.testing.assert_allclose(t.p_adjusted.to_numpy(), adj)
    assert (t.p_adjust_method == "hommel").all()
