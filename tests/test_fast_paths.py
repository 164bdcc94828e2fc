"""The fast paths (blocked IRLS, compressed cells) equal the statsmodels path for every model
and variance option; fit() records the path it used."""

import warnings

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.estimation.glm import fit as engine_fit  # one joint model
from hte_report.models.glm import fit_glm
from hte_report.spec.options import Cluster

VARIANCES = ["model", "HC0", "HC1", "HC2", "HC3", Cluster("g")]


def design(n=6000, seed=3):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    sex = rng.integers(0, 2, n)
    reg = rng.integers(0, 4, n)
    R = np.eye(4)[reg][:, 1:]
    Xc = np.column_stack([np.ones(n), t, sex, R, t * sex, t[:, None] * R])
    age = rng.normal(60, 10, n)
    X = np.column_stack([Xc, age, t * age])
    p = 1 / (1 + np.exp(-(-1 + 0.3 * sex - 0.4 * t + 0.01 * (age - 60))))
    ys = {"binary": rng.binomial(1, p).astype(float),
          "count": rng.poisson(2 * p).astype(float),
          "continuous": rng.normal(3 * p, 1)}
    return X, Xc, ys, rng.integers(0, 40, n)


X, XC, YS, GROUPS = design()
CASES = [("ols", "continuous"), ("ols", "binary"), ("logit", "binary"),
         ("modified-poisson", "binary"), ("poisson", "count")]


@pytest.mark.parametrize("path", ["irls", "compressed"])
@pytest.mark.parametrize("variance", VARIANCES, ids=str)
@pytest.mark.parametrize("name,family", CASES)
def test_fast_path_equals_statsmodels(name, family, variance, path):
    if name == "modified-poisson" and variance == "model":
        pytest.skip("modified Poisson refuses model-based variance")
    Xd = XC if path == "compressed" else X
    y = YS[family]
    ref = fit_glm(name, Xd, y, (), variance, groups=GROUPS, path="statsmodels")
    got = fit_glm(name, Xd, y, (), variance, groups=GROUPS, path=path)
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(got.vcov)), np.sqrt(np.diag(ref.vcov)),
                               rtol=1e-6)
    np.testing.assert_allclose(got.loglik, ref.loglik, rtol=1e-10)
    assert got.extra["path"] == path and ref.extra["path"] == "statsmodels"
    if path == "compressed":
        assert got.extra["cells"] <= 16 * 40  # design rows x clusters at most


def test_compressed_fit_is_exact_on_an_all_categorical_design():
    y = YS["binary"]
    ref = fit_glm("logit", XC, y, (), "HC0", path="statsmodels")
    got = fit_glm("logit", XC, y, (), "HC0", path="compressed")
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-10)
    np.testing.assert_allclose(got.vcov, ref.vcov, rtol=1e-9)
    assert got.extra["cells"] == 16


def _trial(n, seed=7):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"treat": rng.integers(0, 2, n), "sex": rng.choice(["F", "M"], n),
                      "region": rng.choice(list("NSEW"), n), "age": rng.normal(60, 10, n)})
    p = 1 / (1 + np.exp(-(-1 + 0.2 * (d.sex == "M") - 0.3 * d.treat)))
    d["y"] = rng.binomial(1, p)
    return d


@pytest.mark.parametrize("formula", ["y ~ treat * (C(sex) + C(region))",
                                     "y ~ treat * (age + C(sex))"])
def test_fit_results_do_not_depend_on_path(formula):
    d = _trial(4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = engine_fit(formula, d, treatment="treat", path="statsmodels")
        paths = ["irls"] + (["compressed"] if "age" not in formula else [])
        for path in paths:
            got = engine_fit(formula, d, treatment="treat", path=path)
            cols = ["estimate", "std_error", "conf_low", "conf_high", "p_value"]
            pd.testing.assert_frame_equal(got.subgroups[cols], ref.subgroups[cols], rtol=1e-7)
            pd.testing.assert_frame_equal(got.interactions[["statistic", "p_value"]],
                                          ref.interactions[["statistic", "p_value"]], rtol=1e-6)
            assert set(got.models.path) == {path}


def test_auto_path_is_recorded():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = engine_fit("y ~ treat * (C(sex) + C(region))", _trial(5000), treatment="treat")
    assert set(res.models.path) == {"compressed"}


@pytest.mark.parametrize("formula,kw", [
    ("y ~ treat * (C(sex) + C(region))", {}),
    ("y ~ treat * (C(sex) + C(region))", {"variance": hr.Cluster("site")}),
    ("count ~ treat * (C(sex) + C(region))", {"family": "count"}),
    ("y ~ treat * C(sex) + C(region)", {"models": ["ols", "logit", "log-binomial"]}),
])
def test_aggregated_fit_equals_row_level_fit(formula, kw):
    """All-categorical designs are fitted on cells of identical patients: every number equals
    the row-level statsmodels fit."""
    rng = np.random.default_rng(3)
    d = _trial(6000).assign(site=rng.integers(0, 20, 6000))
    d["count"] = rng.poisson(2 + d.treat)
    d.loc[:40, "sex"] = None  # exclusions happen before aggregation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = engine_fit(formula, d, treatment="treat", aggregate=True, **kw)
        b = engine_fit(formula, d, treatment="treat", aggregate=False, path="statsmodels", **kw)
    assert set(a.models.path) == {"cells"} and a.n_analysed == b.n_analysed == 6000 - 41
    cols = ["estimate", "std_error", "conf_low", "conf_high", "p_value", "n", "n_treated",
            "events_treated"]
    pd.testing.assert_frame_equal(a.subgroups[cols], b.subgroups[cols], rtol=1e-8)
    pd.testing.assert_frame_equal(a.overall[cols], b.overall[cols], rtol=1e-8)
    pd.testing.assert_frame_equal(a.interactions[["statistic", "p_value", "p_adjusted"]],
                                  b.interactions[["statistic", "p_value", "p_adjusted"]],
                                  rtol=1e-6)
    pd.testing.assert_frame_equal(a.additive[["estimate", "conf_low", "conf_high"]],
                                  b.additive[["estimate", "conf_low", "conf_high"]], rtol=1e-8)
    assert a.profile.equals(b.profile)


def test_aggregate_refuses_continuous_designs():
    with pytest.raises(ValueError, match="all-categorical"):
        engine_fit("y ~ treat * (age + C(sex))", _trial(500), treatment="treat", aggregate=True)


@pytest.mark.parametrize("name,family", CASES)
def test_subsample_start_gives_the_same_fit(name, family, monkeypatch):
    """Large fits start from a fit on every k-th row; the result is the full-data fit."""
    from hte_report.models import fast

    monkeypatch.setattr(fast, "SUBSAMPLE_MIN_ROWS", 1000)
    monkeypatch.setattr(fast, "SUBSAMPLE_ROWS", 1500)
    starts = []
    original = fast._subsample_start
    monkeypatch.setattr(fast, "_subsample_start",
                        lambda *a: starts.append(original(*a)) or starts[-1])
    y = YS[family]
    var = "HC0" if name != "logit" else "model"
    ref = fit_glm(name, X, y, (), var, path="statsmodels")
    got = fit_glm(name, X, y, (), var, path="irls")
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(got.vcov)), np.sqrt(np.diag(ref.vcov)),
                               rtol=1e-6)
    if name != "ols":  # a linear model needs no start
        assert len(starts) == 1 and starts[0] is not None


@pytest.mark.parametrize("name,family", [("logit", "binary"), ("poisson", "count"),
                                         ("ols", "continuous")])
def test_reduced_fit_without_copying_equals_fit_on_fewer_columns(name, family):
    """Likelihood-ratio reduced models: the irls path fixes dropped coefficients at zero."""
    y = YS[family]
    drop = (9, 10, 11)
    ref = fit_glm(name, np.delete(X, drop, axis=1), y, (), "model", path="statsmodels")
    start = np.zeros(X.shape[1])  # a warm start near the solution, as in the LR tests
    start[np.setdiff1d(np.arange(X.shape[1]), drop)] = ref.params * 0.99
    for s in (None, start):
        got = fit_glm(name, X, y, (), "model", path="irls", drop=drop, start=s)
        np.testing.assert_allclose(got.params, ref.params, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(got.loglik, ref.loglik, rtol=1e-12)
        assert np.isnan(got.vcov).all()  # only the log-likelihood is wanted


@pytest.mark.parametrize("hash_collides", [False, True])
def test_cells_are_exact_even_when_row_hashes_collide(hash_collides, monkeypatch):
    """Cells come from row hashes checked row by row; colliding hashes fall back to sorting."""
    from hte_report.models import cells_fit

    if hash_collides:
        monkeypatch.setattr(cells_fit, "_row_hash", lambda X, extra=None: np.zeros(len(X)))
    codes, first = cells_fit.row_cells(XC, GROUPS)
    np.testing.assert_array_equal(XC[first][codes], XC)
    np.testing.assert_array_equal(GROUPS[first][codes], GROUPS)
    key = np.column_stack([XC, GROUPS])
    assert len(first) == len(np.unique(key, axis=0))


def test_a_cell_without_events_is_handled_alike_on_every_path():
    """A subgroup-arm cell without events drives a coefficient to -infinity: every path stops
    when the log-likelihood stops changing (as statsmodels and R do), the cell is flagged not
    estimable, and the other subgroups' effects agree."""
    rng = np.random.default_rng(1)
    n = 3000
    d = pd.DataFrame({"treat": rng.integers(0, 2, n), "age": rng.normal(60, 10, n),
                      "grp": rng.choice(list("abc"), n)})
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(-(-1 + 0.02 * (d.age - 60)))))
    d.loc[(d.grp == "c") & (d.treat == 1), "y"] = 0
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in ("statsmodels", "irls"):
            res = engine_fit("y ~ treat * (age + C(grp))", d, treatment="treat", path=path)
            assert res.models.converged.all()
            out[path] = res.subgroups.query("modifier == 'grp' and method == 'standardized'")
    for path, sub in out.items():
        flagged = sub[sub.note.str.startswith("not estimable")]
        assert set(flagged.level) == {"c"} and flagged.estimate.isna().all(), path
    keep = out["statsmodels"].level != "c"
    np.testing.assert_allclose(out["irls"][keep].estimate, out["statsmodels"][keep].estimate,
                               rtol=1e-6)


def test_a_subsample_without_events_in_a_cell_is_not_used_as_start(monkeypatch):
    """Events of one cell fall outside the strided subsample: its fit drifts, so the full data
    start from scratch, and the fit still equals statsmodels."""
    from hte_report.models import fast

    monkeypatch.setattr(fast, "SUBSAMPLE_MIN_ROWS", 1000)
    monkeypatch.setattr(fast, "SUBSAMPLE_ROWS", 1500)  # every 4th row
    starts = []
    original = fast._subsample_start
    monkeypatch.setattr(fast, "_subsample_start",
                        lambda *a: starts.append(original(*a)) or starts[-1])
    y = YS["binary"].copy()
    cell = (X[:, 1] == 1) & (X[:, 2] == 1)  # treated, sex = 1
    y[cell] = 0.0
    off_sample = np.arange(len(y)) % 4 != 0
    y[np.flatnonzero(cell & off_sample)[:25]] = 1.0  # a few events, none in the subsample
    assert y[::4][cell[::4]].sum() == 0 and y[cell].sum() > 0
    ref = fit_glm("logit", X, y, (), "model", path="statsmodels")
    got = fit_glm("logit", X, y, (), "model", path="irls")
    assert starts == [None]
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-8)
