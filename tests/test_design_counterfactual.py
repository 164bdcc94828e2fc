"""The design is held once (issue 21): the treated and untreated designs, their blocks and
predictions come from the observed design and :class:`~hte_report.design.counterfactual.Treated`,
and large designs are materialized by blocks of rows. Checked against formulaic materializing
the whole frame with the treatment set to 1 and to 0 (an independent construction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix

from hte_report.design import build
from hte_report.design.build import build_design
from hte_report.design.counterfactual import ONE, STORED
from hte_report.spec.formula import parse_formula


def _data(n=600, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "y": rng.integers(0, 2, n), "treat": rng.integers(0, 2, n),
        "age": rng.normal(60, 10, n).round(1), "sex": rng.choice(["F", "M"], n),
        "region": rng.choice([1, 2, 3, 4], n), "bmi": rng.choice(["<25", "25-30", ">30"], n),
    })


def _design(formula, d):
    parsed = parse_formula(formula, d.columns, treatment="treat")
    return parsed, build_design(parsed, d)


def _direct(parsed, d, value):
    """formulaic's own design of the whole frame with treatment set to ``value``."""
    return np.asarray(model_matrix(parsed.rhs, d.assign(treat=value)), dtype=float)


FORMULAS = [
    "y ~ treat * (age + C(sex) + C(region) + bmi)",
    "y ~ treat + age + treat:C(sex) + C(region)",  # treat:C(sex) without C(sex): stored
    "y ~ treat * age + treat:C(sex, contr.sum) + C(sex)",  # another coding: stored
    "y ~ treat * (center(age) + I(age ** 2)) + C(sex)",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_counterfactual_designs_equal_formulaic(formula):
    d = _data()
    parsed, des = _design(formula, d)
    X1, X0 = _direct(parsed, d, 1), _direct(parsed, d, 0)
    obs = np.where(d.treat.to_numpy()[:, None] == 1, X1, X0)
    assert np.array_equal(np.asarray(des.X), obs)
    assert np.array_equal(des.X1, X1) and np.array_equal(des.X0, X0)
    rng = np.random.default_rng(0)
    for rows in (slice(0, 97), slice(250, 600), slice(None, None, 3), d.age.to_numpy() > 60,
                 rng.permutation(600)[:50], np.array([-1, 0, 5])):
        assert np.array_equal(des.treated_rows(rows), X1[rows])
        assert np.array_equal(des.untreated_rows(rows), X0[rows])
    b = rng.normal(size=X1.shape[1])
    np.testing.assert_allclose(des.linear_predictor(b, True), X1 @ b, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(des.linear_predictor(b, False), X0 @ b, rtol=1e-13, atol=1e-12)


def test_values_come_from_design_columns_when_they_hold_them():
    d = _data()
    _p, des = _design(FORMULAS[0], d)
    t = des.treated
    assert (t.source != STORED).all() and t.stored.shape[1] == 0  # nothing stored
    assert (t.source == ONE).sum() == 1  # the treatment's own column
    _p, des = _design(FORMULAS[1], d)
    assert (des.treated.source == STORED).sum() == 1  # treat:C(sex)[T.M] has no twin
    assert des.treated.stored.shape == (int((d.treat == 0).sum()), 1)


WAYS = [  # formula, how a large design of it is built
    ("y ~ treat * (age + C(sex) + C(region) + bmi)", "columns"),
    ("y ~ treat * (flag + C(region, levels=[4, 3, 2, 1, 5]) + smoker) + age", "columns"),
    ("y ~ treat * C(region) + treat:C(sex) + age", "columns"),
    ("y ~ treat * (age + C(sex, contr.sum))", "blocks"),  # -1 entries: not a product
    ("y ~ treat * (center(age) + I(age ** 2)) + C(sex)", "whole"),  # state from all rows
]


@pytest.mark.parametrize("formula,way", WAYS)
def test_large_designs_equal_formulaic(formula, way, monkeypatch):
    """Large designs are written from the data's columns and codes, or materialized by
    formulaic in blocks of rows through a spec learned from the rows showing every level, or
    (stateful transforms) whole: each equals formulaic's design of the whole frame exactly."""
    d = _data(n=5000, seed=9)
    d["flag"] = (d.age > 62).astype(int)  # numeric 0/1 without C(): numeric to formulaic
    d["smoker"] = d.age.to_numpy() % 2 < 1  # bool
    d.loc[[4998, 4999], "region"] = 5  # a level seen only in the last block, in both arms
    d.loc[[4998, 4999], "treat"] = [0, 1]
    parsed, whole = _design(formula, d)
    monkeypatch.setattr(build, "CHUNK_ROWS", 256)
    monkeypatch.setattr(build, "COLUMNS_MIN_ROWS", 512)
    taken = []
    for name in ("_dense_columns", "write"):
        mod = build if name == "_dense_columns" else build.design_columns
        fn = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, fn=fn, name=name: taken.append(name) or fn(*a))
    _p, large = _design(formula, d)
    assert {"columns": ["write"], "blocks": [], "whole": ["_dense_columns"]}[way] == taken
    assert large.columns == whole.columns
    assert np.array_equal(np.asarray(large.X), np.asarray(whole.X))
    assert np.array_equal(large.X1, _direct(parsed, d, 1))
    assert np.array_equal(large.X0, _direct(parsed, d, 0))


def test_large_design_is_held_once():
    """Building a large design allocates the design about once: no treated copy, no
    formulaic frame of it: the traced peak is the n x p array and a few length-n vectors
    (1.28x here; a second copy would make it 2x; issue 21)."""
    import tracemalloc

    n = 2 * build.CHUNK_ROWS + 1000
    d = _data(n=n, seed=5)
    parsed = parse_formula(FORMULAS[0], d.columns, treatment="treat")
    tracemalloc.start()
    try:
        des = build_design(parsed, d)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = des.X.nbytes
    assert des.treated.stored.size == 0  # every treatment column's values are another's
    assert peak <= 1.5 * size, (peak / size)


@pytest.mark.parametrize("n", [600, 25_000])
def test_the_callers_data_are_not_modified(n):
    """The prepared frame shares the caller's columns (no copy, issue 21): every analysis must
    leave them as they were, values and dtypes."""
    import warnings

    import hte_report as hr

    d = _data(n=n, seed=12)
    d.loc[3, "age"] = np.nan  # an exclusion too
    d["treat"] = np.where(d.treat == 1, "active", "placebo")  # recoded by prepare
    before = d.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hr.fit("y ~ treat * (age + C(sex) + C(region))", d, treatment="treat",
               reference="placebo", strategy="joint")
    pd.testing.assert_frame_equal(d, before)
