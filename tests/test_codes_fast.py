"""Fast code paths checked against the numpy calls they replace (issue 21, fourth session):
first rows of each level code, quartile codes, and arm counts per subgroup."""

import numpy as np
import pandas as pd
import pytest

from hte_report.data.levels import first_rows
from hte_report.design.build import quarter_bins
from hte_report.estimation.contrasts import RowGroups


@pytest.mark.parametrize("seed", range(5))
def test_first_rows_equal_numpy_unique(seed):
    rng = np.random.default_rng(seed)
    for codes in (rng.integers(0, 5, 10_000).astype(np.int8),
                  rng.integers(-1, 3, 999).astype(np.int16),
                  rng.integers(-1, 2000, 50_000).astype(np.int32),
                  np.array([], np.int8), np.array([-1, -1], np.int8), np.array([3], np.int64)):
        assert np.array_equal(first_rows(codes), np.unique(codes, return_index=True)[1])


@pytest.mark.parametrize("x", [
    np.random.default_rng(1).normal(size=20_001),
    np.random.default_rng(2).integers(0, 4, 5_000).astype(float),  # ties at the quartiles
    np.repeat(2.0, 50),  # one value
    np.r_[np.random.default_rng(3).normal(size=100), np.inf, -np.inf],
    np.r_[np.random.default_rng(4).normal(size=100), np.nan],
])
def test_quarter_codes_equal_searchsorted(x):
    with np.errstate(invalid="ignore"):
        codes, edges = quarter_bins(pd.Series(x))
    ref = np.searchsorted(edges, x, side="left") - 1
    ref[x == edges[0]] = 0
    assert np.array_equal(codes, ref)


def test_arm_counts_per_group_equal_direct_sums():
    rng = np.random.default_rng(5)
    n = 30_000  # several blocks and a short last one
    masks = [np.ones(n, bool)] + [rng.random(n) < p for p in (0.05, 0.5, 0.9)]
    y = (rng.random(n) < 0.2).astype(float)
    expo = rng.random(n) * 3
    t = rng.random(n) < 0.4
    inside, outside = RowGroups.of(masks).sums([None, y, expo], t)
    for g, m in enumerate(masks):
        for got, sel in ((inside[g], m & t), (outside[g], m & ~t)):
            assert got[0] == np.count_nonzero(sel) and got[1] == y[sel].sum()
            assert got[2] == pytest.approx(expo[sel].sum(), rel=1e-13)
