"""Cells of identical patients (``data.cells.aggregate``, bincount over factorized keys)
against pandas' groupby of the same rows: same cells in the same order, same dtypes, same
sufficient statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

from hte_report.data.cells import aggregate


def _groupby(frame, keys, outcome):
    y = frame[outcome].to_numpy(float)
    work = frame[keys].copy()
    work["_y"], work["_y2"], work["_lg"] = y, y * y, gammaln(y + 1)
    agg = work.groupby(keys, sort=True, observed=True, dropna=False).agg(
        n=("_y", "size"), s1=("_y", "sum"), s2=("_y2", "sum"), lg=("_lg", "sum"))
    return agg.reset_index()


@pytest.mark.parametrize("cluster", [None, "site", "person"])  # person: the sorted path
def test_cells_equal_groupby(cluster):
    rng = np.random.default_rng(4)
    n = 5000
    d = pd.DataFrame({
        "treat": rng.integers(0, 2, n), "y": rng.poisson(1.5, n).astype(float),
        "sex": rng.choice(["M", "F"], n),
        "grp": pd.Categorical(rng.choice(["c", "a", "b"], n), categories=["c", "b", "a"]),
        "dose": rng.choice([0.5, 2.0, 1.0], n), "flag": rng.random(n) < 0.3,
        "site": rng.integers(100, 140, n), "person": rng.integers(0, 4000, n),
    })
    keys = ["treat", "sex", "grp", "dose", "flag"] + ([cluster] if cluster else [])
    out, cells = aggregate(d, "treat", "y", ["sex", "grp", "dose", "flag"], cluster)
    ref = _groupby(d, keys, "y")
    assert list(out.columns) == keys + ["y"]
    for col in keys:
        assert out[col].dtype == d[col].dtype
        assert out[col].tolist() == ref[col].tolist()
    np.testing.assert_array_equal(cells.cnt, ref.n.to_numpy(float))
    for mine, theirs in ((cells.s1, ref.s1), (cells.s2, ref.s2), (cells.slg, ref.lg)):
        np.testing.assert_allclose(mine, theirs.to_numpy(float), rtol=1e-12)
    np.testing.assert_allclose(out.y.to_numpy(), ref.s1.to_numpy() / ref.n.to_numpy())
