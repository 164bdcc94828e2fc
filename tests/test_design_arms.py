"""Large designs held as their sources, by arm (issue 21): :class:`ArmDesign`.

Checked against formulaic materializing the whole frame with the treatment set to 1 and to 0
(an independent construction of the design), against the same analysis on the dense design,
and against statsmodels' own fits. The thresholds are lowered so that small frames take the
path that large ones take."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from formulaic import model_matrix

import hte_report as hr
from hte_report.design import build
from hte_report.design.arms import ArmDesign, rows_times
from hte_report.design.build import build_design
from hte_report.estimation.setup import setup
from hte_report.models import glm as models_glm
from hte_report.spec.formula import parse_formula
from hte_report.spec.options import Cluster


@pytest.fixture
def arms(monkeypatch):
    """Designs of 2,000 rows or more are held by arm and fitted by row blocks."""
    monkeypatch.setattr(build, "COLUMNS_MIN_ROWS", 2_000)
    monkeypatch.setattr(build, "ARMS_MIN_ROWS", 2_000)
    monkeypatch.setattr(models_glm, "IRLS_MIN_ROWS", 2_000)


def _data(n=12_000, seed=5):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({
        "treat": rng.integers(0, 2, n), "age": rng.normal(60, 10, n).round(1) - 45,
        "sbp": rng.normal(135, 18, n), "sex": rng.choice(["F", "M"], n),
        "region": rng.choice([1, 2, 3, 4], n), "bmi": rng.choice(["<25", "25-30", ">30"], n),
        "site": rng.integers(0, 40, n), "days": rng.uniform(0.5, 3.0, n),
    })
    lp = -1 + 0.03 * d.age + 0.01 * (d.sbp - 135) - 0.4 * d.treat + 0.3 * (d.sex == "M")
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    d["count"] = rng.poisson(d.days * np.exp(lp))
    return d


FORMULAS = [
    "y ~ treat * (age + sbp + C(sex) + C(region) + bmi)",
    "y ~ treat + treat:age + C(region)",  # age only in the interaction: an extra product
    "y ~ treat + treat:C(bmi) + sbp",  # the same with a factor
    "y ~ treat * (age + C(bmi)) + C(region):sbp",  # an adjustment interaction
]


def _formulaic(formula, d, value):
    parsed = parse_formula(formula, d.columns, treatment="treat")
    return np.asarray(model_matrix(parsed.rhs, d.assign(treat=value)), dtype=float)


@pytest.mark.parametrize("formula", FORMULAS)
def test_design_and_counterfactuals_equal_formulaic(arms, formula):
    d = _data()
    st = setup(formula, d, treatment="treat")
    X = st.design.X
    assert isinstance(X, ArmDesign)
    X1, X0 = _formulaic(formula, d, 1), _formulaic(formula, d, 0)
    obs = np.where(d.treat.to_numpy()[:, None] == 1, X1, X0)
    dense = np.asarray(X)
    assert np.array_equal(dense, obs) and not np.signbit(dense[obs == 0]).any()
    assert np.array_equal(np.asarray(st.design.X1), X1)
    assert np.array_equal(np.asarray(st.design.X0), X0)
    rng = np.random.default_rng(0)
    for rows in (slice(0, 97), slice(250, 12_000), slice(None, None, 7), slice(5, 40_000, 3),
                 d.age.to_numpy() > 10, rng.permutation(len(d))[:50], np.array([-1, 0, 5]),
                 [3, 2, 1]):
        assert np.array_equal(X[rows], obs[rows])
        assert np.array_equal(st.design.treated_rows(rows), X1[rows])
        assert np.array_equal(st.design.untreated_rows(rows), X0[rows])
    assert np.array_equal(X[7], obs[7]) and np.array_equal(X[-2], obs[-2])
    assert np.array_equal(X[:, 1], obs[:, 1])
    assert np.array_equal(X[10:20, [0, 2]], obs[10:20, [0, 2]])
    b = rng.normal(size=obs.shape[1])
    v = rng.normal(size=(len(d), 3))
    np.testing.assert_allclose(X @ b, obs @ b, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(X @ v[:, :1].repeat(obs.shape[1], 1).T[:, :2],
                               obs @ v[:, :1].repeat(obs.shape[1], 1).T[:, :2], rtol=1e-13,
                               atol=1e-11)
    np.testing.assert_allclose(X.T @ v, obs.T @ v, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(X.T @ X, obs.T @ obs, rtol=1e-13)
    np.testing.assert_allclose(rows_times(X, slice(100, 9000), b), obs[100:9000] @ b,
                               rtol=1e-13, atol=1e-12)
    for treated, ref in ((True, X1), (False, X0)):
        np.testing.assert_allclose(st.design.linear_predictor(b, treated, slice(30, 7000)),
                                   ref[30:7000] @ b, rtol=1e-13, atol=1e-12)
    for bad in (np.zeros(5, bool), np.array([0.5]), [len(d)], [-len(d) - 1]):
        with pytest.raises(IndexError):
            X[bad]
        with pytest.raises(IndexError):
            obs[bad]  # as numpy
    with pytest.raises(IndexError):  # (numpy would return a 2 x 2 x p array)
        X[np.zeros((2, 2), int)]


def test_only_designs_of_products_with_the_treatment_are_held_by_arm(arms):
    d = _data()
    for formula in ("y ~ treat * (center(age) + C(sex))", "y ~ treat * C(sex, contr.sum)"):
        st = setup(formula, d, treatment="treat")
        assert not isinstance(st.design.X, ArmDesign)
    parsed = parse_formula(FORMULAS[0], d.columns, treatment="treat")
    st = setup(FORMULAS[0], d, treatment="treat")
    dense = build_design(parsed, st.design.frame, st.prep.levels, by_arm=False)
    assert isinstance(dense.X, np.ndarray)  # the Cox and mixed-model fits take arrays
    assert np.array_equal(dense.X, np.asarray(st.design.X))


def _frames(res):
    return {k: getattr(res, k) for k in ("subgroups", "interactions", "coefficients")}


@pytest.mark.parametrize("variance,family,formula,kw", [
    (None, "binary", FORMULAS[0], {}),
    ("HC1", "binary", FORMULAS[3], {}),
    (Cluster("site"), "binary", FORMULAS[0], {}),
    (None, "count", "count ~ treat * (C(sex) + bmi) + C(region)", {"exposure": "days"}),
])
def test_analysis_equals_the_dense_design(arms, monkeypatch, variance, family, formula, kw):
    d = _data()
    if family == "count":
        d["y"] = d["count"]
    args = dict(treatment="treat", family=family, strategy="joint", **kw)
    if variance is not None:
        args["variance"] = variance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_arm = _frames(hr.fit(formula, d, **args))
        monkeypatch.setattr(build, "ARMS_MIN_ROWS", 10**12)
        dense = _frames(hr.fit(formula, d, **args))
    for key, a in by_arm.items():
        b = dense[key]
        assert a.shape == b.shape and list(a.columns) == list(b.columns)
        for col in a.columns:
            if pd.api.types.is_float_dtype(a[col]):
                # both are fits converged to 1e-9 (steps), LR statistics to 1e-9 (absolute)
                np.testing.assert_allclose(a[col], b[col], rtol=2e-8, atol=2e-9,
                                           err_msg=f"{key}.{col}")
            else:
                assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), (key, col)


@pytest.mark.parametrize("model,cov", [("ols", "HC3"), ("ols", "HC2"), ("poisson", "HC0"),
                                       ("logit", "nonrobust")])
def test_fits_equal_statsmodels(arms, model, cov):
    d = _data()
    formula = FORMULAS[0]
    st = setup(formula, d, treatment="treat")
    assert isinstance(st.design.X, ArmDesign)
    X = np.asarray(_formulaic(formula, d, 1))
    X = np.where(d.treat.to_numpy()[:, None] == 1, X, _formulaic(formula, d, 0))
    var = "model" if cov == "nonrobust" else cov
    name = {"ols": "ols", "poisson": "poisson", "logit": "logit"}[model]
    fm = models_glm.fit_glm(name, st.design.X, st.y, st.design.columns, var, path="irls")
    fam = {"ols": None, "poisson": sm.families.Poisson(), "logit": sm.families.Binomial()}
    if model == "ols":
        ref = sm.OLS(st.y, X).fit(cov_type=cov)
    else:  # statsmodels' default tolerance (1e-8 on the deviance) leaves SEs 3e-7 off
        ref = sm.GLM(st.y, X, family=fam[model]).fit(cov_type=cov, tol=1e-13)
    np.testing.assert_allclose(fm.params, ref.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(fm.vcov)), ref.bse, rtol=1e-7)


def test_no_design_sized_allocation(arms, monkeypatch):
    """The analysis never writes the n x p design (nor its treated version): no more dense
    rows are asked of the design held by arm than the fits' start subsample, it keeps ``Z``
    (here 9 of the design's 18 columns), and the peak of allocated memory, with the passes run
    one range after the other, is below that of the same analysis on the dense design."""
    import tracemalloc

    from hte_report.design import arms as arms_module

    n = 200_000
    d = _data(n)
    design_bytes = n * 18 * 8
    dense_rows = []
    rows_of = ArmDesign._rows

    def recorded(self, rows):
        out = rows_of(self, rows)
        dense_rows.append(len(out))
        return out

    def peak():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hr.fit(FORMULAS[0], d.head(3000), treatment="treat", strategy="joint")  # imports
            tracemalloc.start()
            hr.fit(FORMULAS[0], d, treatment="treat", strategy="joint")
            out = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return out

    X = setup(FORMULAS[0], d, treatment="treat").design.X
    list(X.blocks())  # the Z blocks in block order are made on the first pass and kept
    order, _n0 = X._by_arm()
    # beyond the data's own columns: Z (9 distinct products of the design's 18 columns), the
    # treatment as floats, the order
    held = sum(z0.nbytes + z1.nbytes for z0, z1 in X._cached_blocks()) + X.t.nbytes \
        + order.nbytes
    assert held < 0.6 * design_bytes  # 0.57 here (72 of 144 bytes a row, and t, order)
    monkeypatch.setattr(ArmDesign, "_rows", recorded)
    monkeypatch.setattr(arms_module, "THREADS", False)  # threads: two ranges' temporaries
    by_arm = peak()
    from hte_report.models.fast import SUBSAMPLE_ROWS

    assert max(dense_rows, default=0) <= SUBSAMPLE_ROWS  # the fits' start: every 4th row here
    monkeypatch.setattr(build, "ARMS_MIN_ROWS", 10**12)
    dense = peak()
    # the frame's own columns, masks and per-row vectors are of the design's size, and a
    # block's temporaries (8,192 rows) are large next to it, so the peaks differ by less than
    # the design: 1.49 against 1.56 designs, measured
    assert by_arm < dense, (by_arm / design_bytes, dense / design_bytes)


def test_threads_do_not_change_the_numbers(arms, monkeypatch):
    """Passes run as fixed ranges of blocks, in threads or one after the other: every number
    is the same bit for bit (the ranges and the order of their sums do not depend on the
    threads), including the cluster sums and the reduced models' log-likelihoods."""
    from hte_report.design import arms as arms_module

    d = _data(40_000)  # 5 blocks: two ranges of at least 2 blocks
    monkeypatch.setattr(arms_module, "MIN_BLOCKS_PER_PART", 2)

    def frames(threads):
        monkeypatch.setattr(arms_module, "THREADS", threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = hr.fit(FORMULAS[0], d, treatment="treat", strategy="joint")
            b = hr.fit(FORMULAS[0], d, treatment="treat", variance=Cluster("site"))
        return [a.subgroups, a.heterogeneity, a.coefficients, b.subgroups, b.heterogeneity]

    for a, b in zip(frames(True), frames(False)):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_map_blocks_raises_a_worker_error(arms):
    """An error in a range run by a worker thread reaches the caller."""
    d = _data(80_000)
    X = setup(FORMULAS[0], d, treatment="treat").design.X

    def fail_late(blocks):
        for blk in blocks:
            if blk.span.start >= 40_000:
                raise ValueError("late block")
        return 0

    with pytest.raises(ValueError, match="late block"):
        X.map_blocks(fail_late)


@pytest.mark.parametrize("formula", FORMULAS)
def test_profile_rows_equal_formulaic(arms, formula):
    """Rows of small frames (reference profiles, both arms) are written from the design's
    products without formulaic: equal to formulaic's rows (formulaic writes -0.0 for an
    untreated row's treatment times a negative value, these rows 0.0: equal, and every product
    with them the same); a level the design does not have, or a treatment other than 0/1,
    goes to formulaic."""
    from hte_report.estimation.profiles import profile_frame

    d = _data()
    design = setup(formula, d, treatment="treat").design
    assert isinstance(design.X, ArmDesign)
    prof = profile_frame(design, [{"age": a, "sbp": s, "sex": x, "region": r, "bmi": b}
                                  for a, s, x, r, b in [(-20.5, 100.0, "F", 1, "<25"),
                                                        (0.0, 135.0, "M", 4, ">30"),
                                                        (33.0, -5.0, "M", 2, "25-30")]])
    for value in (1, 0):
        frame = prof.assign(treat=value)
        ours = design.X.rows_of(frame, design.levels)
        assert ours is not None
        ref = np.asarray(design.spec.get_model_matrix(frame), dtype=float)
        assert np.array_equal(ours, ref)
        np.testing.assert_array_equal(design.materialize(frame), ref)
    assert design.X.rows_of(prof.assign(treat=2), design.levels) is None
    if "bmi" in formula:
        assert design.X.rows_of(prof.assign(treat=1, bmi="unknown"), design.levels) is None
