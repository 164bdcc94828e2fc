"""Invariants: standardized subgroup effects average back to the ATE; row order is irrelevant;
intervals contain their estimates; JSON export round-trips."""

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hte_report as hr
from hte_report.estimation.glm import fit as engine_fit  # one joint model

FORMULA = "arrest ~ fin * (age + C(wexp) + prio) + race + mar + paro"


def _fit(d, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(FORMULA, d, treatment="fin", **kw)


def _engine(d, formula=FORMULA):
    """One interaction model and its own standardized overall effect."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return engine_fit(formula, d, treatment="fin")


def test_standardized_subgroup_differences_average_to_overall(rossi):
    # within one model: the joint model, and each one-at-a-time model
    for res in (_engine(rossi), _engine(rossi, "arrest ~ fin * C(wexp) + race + mar + paro")):
        _averages_back(res)


def _averages_back(res):
    diff = res.subgroups.query("method == 'standardized' and scale == 'RD'")
    for (model, _modifier), g in diff.groupby(["model", "modifier"]):
        overall = res.overall[(res.overall.model == model)
                              & (res.overall.scale == "RD")].estimate.item()
        assert g.n.sum() == res.n_analysed
        np.testing.assert_allclose(np.average(g.estimate, weights=g.n), overall, rtol=1e-12)


def test_overall_rd_is_mean_of_predicted_differences(rossi):
    # ATE = E[CATE(X)]: n-weighted means of mu1, mu0 over subgroups equal the overall ones
    res = _engine(rossi)
    sub = res.subgroups.query("method == 'standardized' and scale == 'RR' and modifier == 'wexp'")
    for model, g in sub.groupby("model"):
        o = res.overall[(res.overall.model == model) & (res.overall.scale == "RR")].iloc[0]
        np.testing.assert_allclose(np.average(g.mu_treated, weights=g.n), o.mu_treated)
        np.testing.assert_allclose(np.average(g.mu_control, weights=g.n), o.mu_control)
        np.testing.assert_allclose(o.estimate, o.mu_treated / o.mu_control)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_change_results(rossi, rossi_result, seed):
    perm = np.random.default_rng(seed).permutation(len(rossi))
    res = _fit(rossi.iloc[perm].reset_index(drop=True))
    cols = ["estimate", "std_error", "conf_low", "conf_high", "p_value"]
    pd.testing.assert_frame_equal(res.subgroups[cols], rossi_result.subgroups[cols], rtol=1e-9)
    pd.testing.assert_frame_equal(res.interactions[["statistic", "p_value"]],
                                  rossi_result.interactions[["statistic", "p_value"]], rtol=1e-8)
    assert res.data_sha256 != rossi_result.data_sha256  # the data hash sees row order


def test_intervals_contain_estimates(rossi_result):
    for df in (rossi_result.subgroups, rossi_result.overall, rossi_result.curves):
        ok = df.dropna(subset=["estimate"])
        assert (ok.conf_low <= ok.estimate).all() and (ok.estimate <= ok.conf_high).all()


def test_same_input_same_numbers(rossi, rossi_result):
    again = _fit(rossi)
    pd.testing.assert_frame_equal(again.subgroups, rossi_result.subgroups)
    assert again.data_sha256 == rossi_result.data_sha256


def test_json_round_trip(rossi_result):
    back = hr.HTEResult.from_json(rossi_result.to_json())
    for name in ("subgroups", "overall", "interactions", "models", "additive"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(rossi_result, name),
                                      check_dtype=False, rtol=1e-13)
    assert back.summary() == rossi_result.summary()


def test_result_is_frozen(rossi_result):
    import dataclasses

    import pytest

    with pytest.raises(dataclasses.FrozenInstanceError):
        rossi_result.family = "count"


def test_marginal_odds_ratio_is_the_ratio_of_standardized_odds(rossi):
    res = _fit(rossi, models=("ols", "logit"))
    assert res.primary["relative"] == ("OR", "logit")
    o = res.overall_effect("relative")
    odds = lambda p: p / (1 - p)  # noqa: E731
    np.testing.assert_allclose(o.estimate, odds(o.mu_treated) / odds(o.mu_control), rtol=1e-12)
    assert set(res.effects("relative").scale) == {"OR"}


def test_reri_does_not_depend_on_where_other_interacting_covariates_are_centred(rossi):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = engine_fit("arrest ~ fin * (C(wexp) + age)", rossi, treatment="fin")
        b = engine_fit("arrest ~ fin * (C(wexp) + I(age - 30))", rossi.assign(), treatment="fin")
    cols = ["estimate", "conf_low", "conf_high"]
    pd.testing.assert_frame_equal(a.additive[cols], b.additive[cols], rtol=1e-8)
