"""Multiplicity adjustment and Gail-Simon against R (tests/reference/inference.R)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte_report.core.inference import adjust_pvalues, familywise_error, gail_simon

REF = json.loads((Path(__file__).parent / "reference" / "inference.json").read_text())
OURS = {"holm": "holm", "hochberg": "hochberg", "bonferroni": "bonferroni", "BH": "fdr_bh"}


@pytest.mark.parametrize("r_name", list(OURS))
def test_p_adjust_matches_r(r_name):
    p = np.array(REF["p"])
    tests = pd.DataFrame({"model": "m", "scale": "RD", "test": "wald", "p_value": p,
                          "modifier": [f"x{i}" for i in range(len(p))]})
    got = adjust_pvalues(tests, OURS[r_name]).p_adjusted.to_numpy()
    np.testing.assert_allclose(got, REF["adjusted"][r_name], rtol=1e-12)


def test_adjustment_is_per_model_scale_and_test():
    tests = pd.DataFrame({"model": ["a", "a", "b", "b"], "scale": "RD", "test": "wald",
                          "p_value": [0.01, 0.04, 0.01, 0.04], "modifier": ["x", "y", "x", "y"]})
    got = adjust_pvalues(tests, "bonferroni").p_adjusted.to_numpy()
    np.testing.assert_allclose(got, [0.02, 0.08, 0.02, 0.08])


def test_familywise_error_closed_form():
    assert familywise_error(0.05, 1) == pytest.approx(0.05)
    assert familywise_error(0.05, 10) == pytest.approx(1 - 0.95**10)


@pytest.mark.parametrize("case", REF["gail_simon"], ids=lambda c: f"I={len(c['d'])}")
def test_gail_simon_matches_r(case):
    qm, qp, q, p = gail_simon(np.array(case["d"]), np.array(case["s"]))
    np.testing.assert_allclose([qm, qp, q, p],
                               [case["q_minus"], case["q_plus"], case["q"], case["p_value"]],
                               rtol=1e-10)


def test_gail_simon_published_critical_values():
    """Gail & Simon (1985) Table 1: 5% critical values 2.71, 4.23, 5.43 for I = 2, 3, 4."""
    for k, c in zip(REF["gail_simon_critical_05"]["I"], REF["gail_simon_critical_05"]["c"]):
        # at the critical value with Q- = Q+ = c the p-value is 0.05
        d = np.r_[np.sqrt(c), -np.sqrt(c), np.zeros(k - 2) + 1e-9]
        _, _, q, p = gail_simon(d[:k], np.ones(k))
        assert q == pytest.approx(c, rel=1e-6) and p == pytest.approx(0.05, rel=1e-6)
    crit = REF["gail_simon_critical_05"]["c"]
    assert [round(c, 2) for c in crit[:3]] == [2.71, 4.23, 5.43]


def test_gail_simon_two_groups_closed_form():
    # I = 2: P(Q >= q) = 0.5 * P(chi2_1 >= q)
    from scipy import stats

    _, _, q, p = gail_simon(np.array([0.3, -0.2]), np.array([0.1, 0.1]))
    assert p == pytest.approx(0.5 * stats.chi2.sf(q, 1))
