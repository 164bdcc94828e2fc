"""Many-level adjustment factors (issue 21): split designs (codes, not dummy columns) fitted by
blocked Fisher scoring (``hte_report.design.wide``, ``hte_report.models.wide``).

* Every estimate, SE and test of a whole analysis equals the dense fit (statsmodels path) on
  the same data forced onto the wide path.
* Against R (``glm`` + ``sandwich::vcovHC`` / ``vcovCL``) on the Thornton HIV experiment with
  a fixed effect per village (tests/reference/wide_factor.R -> wide_factor.json).
* Bad inputs get package errors.
"""

import json
import warnings
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.design import wide as wd
from hte_report.design.wide import SplitMatrix
from hte_report.errors import DataError, HTEReportError, ModelError, ModelWarning
from hte_report.estimation.glm import fit as engine_fit

REF = Path(__file__).parent / "reference"
FORMULA = "y ~ treat * (age + C(sex)) + C(site)"


def trial(n=2000, sites=40, seed=7, continuous=False, scale=1.0):
    rng = np.random.default_rng(seed)
    site = np.arange(n) % sites
    rng.shuffle(site)
    treat = rng.integers(0, 2, n)
    age = rng.normal(50, 10, n)
    sex = rng.integers(0, 2, n)
    eta = -0.8 + 0.4 * treat + 0.02 * (age - 50) + 0.3 * sex - 0.3 * treat * sex
    eta = eta + rng.normal(0, 0.5, sites)[site]
    if continuous:
        y = eta + rng.normal(0, 1, n)
    else:
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "treat": treat, "age": age * scale, "sex": sex, "site": site,
                         "clinic": site % 23})


def fit_both(monkeypatch, data, formula=FORMULA, **kw):
    """The same analysis on the wide path and densely through statsmodels."""
    out = []
    for wide in (True, False):
        monkeypatch.setattr(wd, "WIDE_MIN_LEVELS", 10 if wide else 10_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(hr.fit(formula, data, path="auto" if wide else "statsmodels", **kw))
    return out


def close(a: pd.DataFrame, b: pd.DataFrame, keys, cols, rtol=1e-8):
    m = a.merge(b, on=keys, suffixes=("_w", "_d"), validate="one_to_one")
    assert len(m) == len(a) == len(b)
    for c in cols:
        x, y = m[f"{c}_w"].to_numpy(float), m[f"{c}_d"].to_numpy(float)
        assert np.array_equal(np.isnan(x), np.isnan(y)), c
        ok = ~np.isnan(x)
        np.testing.assert_allclose(x[ok], y[ok], rtol=rtol, atol=1e-12, err_msg=c)


def test_whole_analysis_equals_dense_fit(monkeypatch):
    wide, dense = fit_both(monkeypatch, trial())
    assert set(wide.models["path"]) == {"wide"}
    assert set(dense.models["path"]) == {"statsmodels"}
    stats = ["estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value"]
    keys = ["analysis", "modifier", "level", "scale", "model", "method"]
    close(wide.subgroups, dense.subgroups, keys, stats + ["mu_treated_se", "mu_control_se"])
    close(wide.overall, dense.overall, ["analysis", "scale", "model"], stats)
    close(wide.curves, dense.curves, keys + ["value"], stats)
    close(wide.interactions, dense.interactions, ["analysis", "modifier", "scale", "test",
                                                  "model"], ["statistic", "p_value"])
    close(wide.coefficients, dense.coefficients, ["analysis", "modifier", "model", "term"], stats)
    close(wide.interaction_effects, dense.interaction_effects,
          ["analysis", "modifier", "level", "scale", "model"], stats)
    close(wide.glance, dense.glance, ["analysis", "modifier", "model"],
          ["loglik", "deviance", "aic"])
    assert len(wide.heterogeneity) and np.allclose(
        wide.heterogeneity["statistic"], dense.heterogeneity["statistic"], rtol=1e-8)


@pytest.mark.parametrize("variance", ["HC1", "HC2", "model", "cluster"])
def test_variances_equal_dense_fit(monkeypatch, variance):
    data = trial(continuous=variance in ("model", "HC2"))
    var = hr.Cluster("clinic") if variance == "cluster" else variance
    models = ["ols"] if variance in ("model", "HC2") else ["ols", "modified-poisson"]
    wide, dense = fit_both(monkeypatch, data, "y ~ treat * (age + C(sex)) + C(site)",
                           variance=var, models=models)
    stats = ["estimate", "std_error", "p_value"]
    close(wide.subgroups, dense.subgroups,
          ["analysis", "modifier", "level", "scale", "model", "method"], stats)
    close(wide.coefficients, dense.coefficients, ["analysis", "modifier", "model", "term"], stats)
    close(wide.interactions, dense.interactions,
          ["analysis", "modifier", "scale", "test", "model"], ["statistic"])


def test_split_matrix_products():
    rng = np.random.default_rng(3)
    n, p = 500, 4
    codes = (rng.integers(0, 30, n), rng.integers(0, 7, n))
    X = SplitMatrix(rng.normal(size=(n, p)), codes, (29, 6))
    dense = np.asarray(X)
    b = rng.normal(size=X.shape[1])
    v = rng.random(n)
    np.testing.assert_allclose(X @ b, dense @ b, rtol=1e-12)
    np.testing.assert_allclose(v[None] @ X, v[None] @ dense, rtol=1e-12)
    blocks = X.crossprod(v)
    M = dense.T @ (dense * v[:, None])
    np.testing.assert_allclose(blocks.full(), M, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(blocks.solve(b), np.linalg.solve(M, b), rtol=1e-8)
    V = np.linalg.inv(M)
    np.testing.assert_allclose(blocks.solve(np.eye(X.shape[1])), V, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(blocks.inverse_quadratic(X),
                               np.einsum("ij,jk,ik->i", dense, V, dense), rtol=1e-8)
    one = SplitMatrix(X.dense, codes[:1], (29,))  # one wide factor: C diagonal
    d1 = np.asarray(one)
    np.testing.assert_allclose(one.crossprod(v).inverse_quadratic(one),
                               np.einsum("ij,jk,ik->i", d1,
                                         np.linalg.inv(d1.T @ (d1 * v[:, None])), d1),
                               rtol=1e-8)


def dense_sandwich(dense, v, q=None, groups=None, u=None, factor=1.0):
    inv = np.linalg.inv(dense.T @ (dense * v[:, None]))
    if q is not None:
        meat = dense.T @ (dense * q[:, None])
    elif groups is not None:
        S = np.stack([u[groups == g] @ dense[groups == g] for g in range(groups.max() + 1)])
        meat = S.T @ S
    else:
        return factor * inv
    return factor * inv @ meat @ inv


@pytest.mark.parametrize("factors", [1, 2])
@pytest.mark.parametrize("kind", ["model", "HC", "cluster"])
def test_covariance_operator(kind, factors):
    """WideCovariance (never the (p + K)^2 matrix) against the dense sandwich: ``L V``,
    ``V R``, the diagonal, entries, the dense matrix, non-finite rows of ``L``, the user's
    scale after rescaled columns."""
    from hte_report.models.wide_cov import ClusterMeat, WideCovariance

    rng = np.random.default_rng(5)
    n, p = 600, 3
    codes = (rng.integers(0, 25, n), rng.integers(0, 6, n))[:factors]
    X = SplitMatrix(rng.normal(size=(n, p)), codes, (24, 5)[:factors])
    dense, v, q = np.asarray(X), rng.random(n) + 0.5, rng.random(n)
    g, u = rng.integers(0, 40, n), rng.normal(size=n)
    info, P = X.crossprod(v), X.shape[1]
    if kind == "model":
        V, ref = WideCovariance(info, P, factor=2.5), dense_sandwich(dense, v, factor=2.5)
    elif kind == "HC":
        V, ref = WideCovariance(info, P, X.crossprod(q)), dense_sandwich(dense, v, q)
    else:
        V = WideCovariance(info, P, ClusterMeat(X, g, u, 1.5))
        ref = dense_sandwich(dense, v, groups=g, u=u, factor=1.5)
    L = rng.normal(size=(4, P))
    np.testing.assert_allclose(L @ V @ L.T, L @ ref @ L.T, rtol=1e-9)
    np.testing.assert_allclose(V @ L.T, ref @ L.T, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(np.diag(V), np.diag(ref), rtol=1e-9)
    np.testing.assert_allclose(V[np.ix_([0, 2], [1, P - 1])], ref[np.ix_([0, 2], [1, P - 1])],
                               rtol=1e-9)
    assert V[1, 1] == pytest.approx(ref[1, 1], rel=1e-9)
    np.testing.assert_allclose(np.asarray(V), ref, rtol=1e-8, atol=1e-15)
    assert np.all(np.isfinite(V)) and not np.all(np.isfinite(WideCovariance.undefined(P)))
    L[1, 3] = np.nan
    C = L @ V @ L.T
    assert np.all(np.isnan(C[1])) and np.all(np.isnan(C[:, 1]))
    np.testing.assert_allclose(C[0, 2], (L[0] @ ref @ L[2]), rtol=1e-9)
    scale = np.exp2(rng.integers(-3, 4, P))
    np.testing.assert_allclose(np.diag(V.rescaled(scale)), np.diag(ref) / scale ** 2,
                               rtol=1e-9)
    with pytest.raises(TypeError):
        V + 1.0  # noqa: B018 - nothing else pretends to be a matrix


def test_analysis_never_forms_the_covariance(monkeypatch):
    """No (p + K)^2 covariance in a whole analysis (every variance type): the operator is
    never made dense."""
    from hte_report.models.wide_cov import WideCovariance

    def refuse(self, *a, **k):
        raise AssertionError("the dense covariance was formed")

    monkeypatch.setattr(WideCovariance, "toarray", refuse)
    monkeypatch.setattr(wd, "WIDE_MIN_LEVELS", 10)
    data = trial(n=1500, sites=220)
    for var in ("HC0", "HC3", "model", hr.Cluster("clinic")):
        models = ["ols", "logit"] if var == "model" else None
        res = quiet_fit(FORMULA, data, variance=var, models=models)
        assert set(res.models["path"]) == {"wide"}
        assert np.isfinite(res.coefficients["std_error"]).all()


# -- against R ---------------------------------------------------------------------------

R = json.loads((REF / "wide_factor.json").read_text())["fits"]


def hiv() -> pd.DataFrame:
    d = pd.read_csv(REF / "data" / "thornton_hiv.csv")
    d = d.dropna(subset=["got", "any", "age", "distvct", "villnum"])
    share = d.groupby("villnum")["got"].transform("mean")
    return d[(share > 0) & (share < 1)].reset_index(drop=True)


_fits = {}


@pytest.mark.parametrize("ref", R, ids=[f"{r['model']}-{r['variance']}" for r in R])
def test_against_r(ref):
    key = (ref["model"], ref["variance"])
    if key not in _fits:
        var = hr.Cluster("villnum") if ref["variance"] == "CL" else ref["variance"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _fits[key] = engine_fit("got ~ any * (age + distvct) + C(villnum)", hiv(),
                                    treatment="any", models=[ref["model"]], variance=var)
    res = _fits[key]
    assert res.models["path"].iloc[0] == "wide" and res.n_analysed == ref["n"]
    coef = res.coefficients.set_index("term")
    terms = [t.replace("(Intercept)", "Intercept").replace("factor(villnum)", "C(villnum)[T.")
             + ("]" if t.startswith("factor(") else "") for t in ref["terms"]]
    assert sorted(terms) == sorted(coef.index)
    np.testing.assert_allclose(coef.loc[terms, "estimate"], ref["estimate"], rtol=1e-8,
                               atol=1e-10)
    # R's glm (as statsmodels) takes the covariance from the weights of its last IRLS step,
    # one step before the estimate; near-separated villages (a fitted risk of 0.97) leave that
    # step at ~1e-7 when the deviance has converged to 1e-14, and their logit SEs 4e-7 (rel.)
    # from the inverse information at the estimate, which the wide path uses
    np.testing.assert_allclose(coef.loc[terms, "std_error"], ref["std_error"], rtol=1e-6)
    ov = res.overall.set_index("scale")
    np.testing.assert_allclose([ov.loc["RD", "estimate"], ov.loc["RD", "std_error"],
                                ov.loc["RR", "estimate"], ov.loc["RR", "std_error"]],
                               [ref["rd"], ref["rd_se"], ref["rr"], ref["rr_se"]], rtol=1e-7)
    wald = res.interactions[res.interactions["test"] == "wald"].set_index("modifier")
    np.testing.assert_allclose(wald.loc[["age", "distvct"], "statistic"],
                               [ref["wald_age"], ref["wald_distvct"]], rtol=1e-7)
    if ref["loglik"] is not None:
        np.testing.assert_allclose(res.glance["loglik"].iloc[0], ref["loglik"], rtol=1e-10)


# -- bad inputs ------------------------------------------------------------------------------


def quiet_fit(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(formula, data, **kw)


@pytest.fixture
def narrow(monkeypatch):
    monkeypatch.setattr(wd, "WIDE_MIN_LEVELS", 10)


def test_many_level_modifier_is_refused(narrow, monkeypatch):
    with pytest.warns(ModelWarning, match="60 levels.*not a sensible"):
        hr.fit("y ~ treat * C(site) + age", trial(sites=60), models=["ols"])
    monkeypatch.setattr(wd, "MAX_MODIFIER_LEVELS", 59)
    with pytest.raises(ModelError, match="60 levels.*not a sensible.*more than 59"):
        quiet_fit("y ~ treat * C(site) + age", trial(sites=60))


def test_level_with_one_patient(narrow):
    data = trial()
    data.loc[0, "site"] = 999
    with pytest.raises(DataError, match=r"single analysed patient \(C\(site\)\[T.999\]\)"):
        quiet_fit("y ~ treat * age + C(site)", data)


def test_factor_collinear_with_treatment(narrow):
    data = trial()
    data["treat"] = data["site"] % 2  # cluster-randomized: treatment constant within site
    with pytest.raises(ModelError, match=r"\['treat'\] are linear combinations"):
        quiet_fit("y ~ treat * age + C(site)", data)


def test_nested_factors(narrow):
    data = trial().assign(region=lambda d: d["site"] // 2)
    with pytest.raises(ModelError, match="nested"):
        quiet_fit("y ~ treat * age + C(site) + C(region)", data)


def test_too_many_levels(narrow, monkeypatch):
    monkeypatch.setattr(wd, "MAX_WIDE_COLUMNS", 20)
    with pytest.raises(ModelError, match="39 coefficients.*Merge rare levels"):
        quiet_fit("y ~ treat * age + C(site)", trial())


def test_level_without_events(narrow, monkeypatch):
    """A site without events: its log/logit coefficient diverges (the fit stops when the
    log-likelihood is flat, as the dense paths, statsmodels and R do); the effects match the
    dense fit and the site is named in a warning."""
    data = trial()
    data.loc[data["site"] == 3, "y"] = 0
    with pytest.warns(ModelWarning, match=r"C\(site\)\[T.3\]\) have no events"):
        hr.fit("y ~ treat * age + C(site)", data, models=["logit"])
    wide, dense = fit_both(monkeypatch, data, "y ~ treat * age + C(site)")
    close(wide.subgroups, dense.subgroups,
          ["analysis", "modifier", "level", "scale", "model", "method"],
          ["estimate", "std_error"], rtol=1e-6)


def test_missing_levels_are_excluded_rows(narrow):
    data = trial()
    data.loc[:5, "site"] = np.nan
    res = quiet_fit("y ~ treat * age + C(site)", data)
    assert set(res.models["path"]) == {"wide"} and res.n_analysed == 1994


def test_cox_is_told_to_stratify(narrow):
    data = trial().assign(time=np.random.default_rng(1).exponential(5, 2000))
    with pytest.warns(ModelWarning, match=r"strata\(site\)"):
        hr.fit("Surv(time, y) ~ treat * age + C(site)", data)


def test_errors_are_package_errors(narrow):
    data = trial()
    data["treat"] = data["site"] % 2
    with pytest.raises(HTEReportError):
        quiet_fit("y ~ treat * age + C(site)", data)


def test_cells_of_identical_patients(monkeypatch):
    """All-categorical data aggregated to cells: the split design is built on the cells and
    fitted with their counts, sums of y and y^2 (exact, as the compressed path)."""
    data = trial(n=3000).assign(old=lambda d: (d["age"] > 50).astype(int))
    out = []
    for wide in (True, False):
        monkeypatch.setattr(wd, "WIDE_MIN_LEVELS", 10 if wide else 10_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(hr.fit("y ~ treat * (C(old) + C(sex)) + C(site)", data,
                              aggregate=wide, path="auto" if wide else "statsmodels"))
    wide, dense = out
    assert set(wide.models["path"]) == {"wide"}
    keys = ["analysis", "modifier", "level", "scale", "model", "method"]
    close(wide.subgroups, dense.subgroups, keys, ["estimate", "std_error", "p_value"])
    close(wide.interactions, dense.interactions,
          ["analysis", "modifier", "scale", "test", "model"], ["statistic"])
    close(wide.glance, dense.glance, ["analysis", "modifier", "model"], ["loglik"])


def test_time_estimate_and_progress(narrow, monkeypatch):
    from hte_report.estimation import fit_time as est

    monkeypatch.setattr(est, "SLOW_SECONDS", 0.0)
    monkeypatch.setattr(est, "PROGRESS_SECONDS", 0.0)
    with pytest.warns(ModelWarning) as caught:
        hr.fit(FORMULA, trial(), models=["logit"])
    text = [str(w.message) for w in caught]
    assert any("C(site) (40 levels), fitted from their codes" in t for t in text)
    assert any("fitting working model 1 of 1 (logit), about" in t for t in text)
    # the wide path's estimate is far below the dense one for the same design
    from hte_report.estimation.setup import setup

    design = setup(FORMULA, trial()).design
    assert est.fit_seconds(design, "wide") < 0.5


def test_bootstrap_says_it_does_not_take_wide_designs(narrow):
    from hte_report.estimation.bootstrap import bootstrap

    with pytest.raises(HTEReportError, match=r"many-level adjustment factor \(C\(site\)\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bootstrap(FORMULA, trial(), B=20)  # refused before any replicate


def test_methods_show_a_wide_factor_as_one_line(narrow):
    """The report's coefficient tables fold a many-level adjustment factor into one line per
    analysis and keep every other coefficient."""
    import yaml

    from hte_report.analysis import fit_plan
    from hte_report.datasets import load_rossi
    from hte_report.report.content import build_report
    from hte_report.report.html import render_html

    example = Path(__file__).parents[1] / "examples" / "rossi"
    plan = yaml.safe_load((example / "plan.yaml").read_text())
    plan["model"]["formula"] += " + C(site)"
    plan["risk_based"] = {"planned": False}
    rossi = load_rossi()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = fit_plan(plan, rossi.assign(site=np.arange(len(rossi)) % 20))
    res = analysis.result
    assert set(res.models["path"]) == {"wide"}
    html = render_html(build_report(analysis))
    shown = res.coefficients[res.coefficients["model"].isin(
        [m for _, m in res.primary.values()])]
    folded = shown["term"].str.startswith("C(site)[T.")
    assert folded.sum() == 19 * len(shown.groupby(["analysis", "modifier", "model"]))
    assert "C(site)[T." not in html
    assert html.count("C(site): 19 fixed-effect coefficients (not shown)") == len(
        shown[folded].groupby(["analysis", "modifier", "model"]))
    assert "per-level coefficients adjust the effects and are not shown" in html
    for term in set(shown.loc[~folded, "term"]):
        assert escape(term) in html, term


@pytest.mark.parametrize("name,variance", [("logit", "model"), ("ols", "HC3"),
                                           ("modified-poisson", "cluster")])
def test_fit_memory_is_a_few_vectors(monkeypatch, name, variance):
    """A wide fit (issue 21) allocates a few length-n vectors at most: Fisher scoring by blocks
    of rows, no (p + K)^2 covariance, no n x p copy of the design (the cluster variance: each
    row's cluster and score, and the sparse cluster sums, still less than the design)."""
    import tracemalloc

    from hte_report.estimation.setup import setup
    from hte_report.models.wide import fit_split

    data = trial(n=60_000, sites=500)
    var = hr.Cluster("clinic") if variance == "cluster" else variance
    st = setup(FORMULA, data, models=[name], variance=var)
    X, y = st.design.X, st.y
    assert isinstance(X, SplitMatrix) and X.shape[1] > 500
    fit_split(name, X, y, var, groups=st.groups)  # first touch
    tracemalloc.start()
    try:
        fit_split(name, X, y, var, groups=st.groups)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (X.dense.nbytes if variance == "cluster" else 4 * y.nbytes)
    assert 4 * y.nbytes < X.dense.nbytes
