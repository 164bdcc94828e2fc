"""Covariates on extreme scales and predictions far outside the data: a clear error or a
marked row, never an internal exception or a leaked numpy warning (found by the bad-input
sweep)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.errors import DataError, ModelError


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    n = 400
    return pd.DataFrame({"y": rng.integers(0, 2, n), "treat": rng.integers(0, 2, n),
                         "age": rng.normal(60, 10, n), "x": rng.normal(size=n)})


@pytest.mark.parametrize("term,error,phrase", [
    ("I(age * 1e-300)", ModelError, "extreme scale"),
    ("I(age * 1e300)", ModelError, "extreme scale"),
    ("I(age ** 200)", DataError, "infinite or overflowing"),
])
def test_extreme_columns_are_refused_by_name(data, term, error, phrase):
    with pytest.raises(error, match=phrase) as err:
        hr.fit(f"y ~ treat * {term}", data, treatment="treat")
    assert "Rescale" in str(err.value) and "age" in str(err.value)


@pytest.mark.parametrize("factor", [1e-90, 1e90, 1e-6, 1e6])
def test_large_and_small_scales_give_the_same_analysis(data, factor):
    """Scale-invariant numbers do not depend on the units of a covariate (the fit rescales
    by powers of two; the rank check works on scaled columns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = hr.fit("y ~ treat * (age + x)", data, treatment="treat")
        got = hr.fit("y ~ treat * (age + x)", data.assign(age=data.age * factor),
                     treatment="treat")
    a, b = ref.interactions, got.interactions
    np.testing.assert_allclose(b.statistic, a.statistic, rtol=1e-7)
    sa = ref.subgroups[ref.subgroups.method == "standardized"]
    sb = got.subgroups[got.subgroups.method == "standardized"]
    np.testing.assert_allclose(sb.estimate, sa.estimate, rtol=1e-7, atol=1e-12)


def test_prediction_far_outside_the_data_warns_once_and_is_marked(data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = hr.fit("y ~ treat * (age + x)", data, treatment="treat", at={"age": [1e6, 50]})
    texts = [str(w.message) for w in caught]
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], texts
    assert any("extrapolation" in t for t in texts)
    s = res.subgroups
    far = s[(s.modifier == "age") & (s.level == "at 1e+06") & (s.scale != "RD")]
    assert far.estimate.isna().all() and far.note.str.startswith("not estimable").all()
