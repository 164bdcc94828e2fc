"""Issue 21: the numpy Cox fit (models.cox) against statsmodels' PHReg and the per-block
reference sums, at rel 1e-8 on small data: Efron and Breslow, strata, ties, model / robust /
cluster variance, score residuals, the Breslow baseline hazard and cox.zph; convergence,
monotone likelihood and singular designs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hte_report.errors import ConvergenceWarning, ModelError
from hte_report.models.cox import risk_sets
from hte_report.models.survival import (
    _fractions,
    _km_left,
    breslow_at,
    cox_loglik,
    cox_loglik_columns,
    event_blocks,
    fit_cox,
    fit_cox_columns,
    fit_cox_phreg,
    reference_score_residuals,
    score_residuals,
    zph_test,
)
from hte_report.spec.options import Cluster

REL = 1e-8


def _data(n=300, p=4, n_strata=1, seed=1, grid=20.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[:, 0] = rng.integers(0, 2, n)
    lp = X @ np.linspace(0.6, -0.3, p)
    t = rng.exponential(np.exp(-lp))
    c = rng.exponential(1.5, n)
    time = np.ceil(np.minimum(t, c) * grid) / grid  # many tied times, deaths and censorings
    event = (t <= c).astype(float)
    strata = rng.integers(0, n_strata, n)
    return X, time, event, strata, rng.integers(0, 25, n)


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("n_strata", [1, 3])
@pytest.mark.parametrize("variance", ["model", "robust", "cluster"])
def test_agrees_with_phreg(ties, n_strata, variance):
    X, time, event, strata, g = _data(n_strata=n_strata, seed=n_strata)
    assert len(np.unique(time[event == 1])) < event.sum()  # ties among deaths
    var = Cluster("site") if variance == "cluster" else variance
    new = fit_cox(X, time, event, strata, ties, var, g)
    ref = fit_cox_phreg(X, time, event, strata, ties, var, g)
    assert new.converged and ref.converged
    assert _rel(new.params, ref.params) < REL
    assert _rel(new.vcov, ref.vcov) < REL
    assert _rel(new.vcov_model, ref.vcov_model) < REL
    assert abs(new.loglik - ref.loglik) < REL * abs(ref.loglik)
    assert abs(new.loglik_null - ref.loglik_null) < REL * abs(ref.loglik_null)
    assert new.variance == ref.variance


def test_heavy_ties_and_a_stratum_without_events():
    X, time, event, strata, _ = _data(n=200, n_strata=3, seed=5, grid=2.0)
    event = np.where(strata == 2, 0.0, event)  # stratum 2: censored only
    for ties in ("efron", "breslow"):
        new = fit_cox(X, time, event, strata, ties, "robust")
        ref = fit_cox_phreg(X, time, event, strata, ties, "robust")
        assert _rel(new.params, ref.params) < REL
        assert _rel(new.vcov, ref.vcov) < REL
        assert abs(new.loglik - ref.loglik) < REL * abs(ref.loglik)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_passes_and_subset_order(monkeypatch, chunk):
    import hte_report.models.cox as cox

    X, time, event, strata, g = _data(n_strata=3, seed=29)
    ref = fit_cox_phreg(X, time, event, strata, "efron", "robust")
    monkeypatch.setattr(cox, "CHUNK", chunk)
    new = fit_cox(X, time, event, strata, "efron", "robust")
    assert len(new.risk.chunks) > 1
    assert _rel(new.params, ref.params) < REL and _rel(new.vcov, ref.vcov) < REL
    rows = (X[:, 1] > 0) & (strata != 1)  # a subset, its strata recoded 0, 1
    codes = np.unique(strata[rows], return_inverse=True)[1].ravel()
    order = cox.subset_order(new.risk, rows)
    a = fit_cox(X[rows], time[rows], event[rows], codes, "breslow", order=order)
    b = fit_cox_phreg(X[rows], time[rows], event[rows], codes, "breslow")
    assert _rel(a.params, b.params) < REL and _rel(a.vcov, b.vcov) < REL


def test_row_order_and_strata_labels_do_not_matter():
    X, time, event, strata, _ = _data(n_strata=3, seed=7)
    a = fit_cox(X, time, event, strata, "efron", "robust")
    perm = np.random.default_rng(0).permutation(len(time))
    b = fit_cox(X[perm], time[perm], event[perm], (strata * 7 + 3)[perm], "efron", "robust")
    assert _rel(a.params, b.params) < 1e-12 and _rel(a.vcov, b.vcov) < 1e-12


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_score_residuals_match_the_reference(ties):
    X, time, event, strata, _ = _data(n_strata=2, seed=3)
    fit = fit_cox(X, time, event, strata, ties)
    new = score_residuals(time, event, fit.X, fit.params, strata, ties)
    ref = reference_score_residuals(time, event, fit.X, fit.params, strata, ties)
    assert _rel(new, np.nan_to_num(ref)) < 1e-10
    assert np.allclose(new.sum(axis=0), 0, atol=1e-8)  # the score at the estimate


def _reference_zph(fit, terms):
    """The per-death implementation cox.zph was checked with before issue 21."""
    g_row = _km_left(fit.time, fit.event)
    g_row = g_row - g_row[fit.event == 1].mean()
    b = event_blocks(fit.time, fit.event, fit.X, fit.params, fit.strata)
    k, _f, _d, xbar, m2 = _fractions(b, fit.ties)
    key = {(s, t): g for s, t, g in zip(fit.strata, fit.time, g_row)}
    g_blk = np.array([key[(s, t)] for s, t in zip(b.stratum, b.time)])
    g = g_blk[k]
    u = np.sum(g_blk[:, None] * b.xdeath, axis=0) - np.sum(g[:, None] * xbar, axis=0)
    M = m2 - xbar[:, :, None] * xbar[:, None, :]
    return u, M.sum(axis=0), np.tensordot(g, M, axes=1), np.tensordot(g * g, M, axes=1)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("n_strata", [1, 2])
def test_zph_and_baseline_match_the_reference(ties, n_strata):
    X, time, event, strata, _ = _data(n_strata=n_strata, seed=11)
    fit = fit_cox(X, time, event, strata, ties)
    terms = {"a": np.array([0]), "b": np.array([1, 2])}
    new = zph_test(fit, terms)
    u, i0, i1, i2 = _reference_zph(fit, terms)
    p = len(u)
    imat = np.block([[i0, i1], [i1.T, i2]])
    for row, jj in zip(new, [np.array([0]), np.array([1, 2]), np.arange(p)]):
        kk = np.concatenate([np.arange(p), p + jj])
        uu = np.concatenate([np.zeros(p), u[jj]])
        stat = uu @ np.linalg.solve(imat[np.ix_(kk, kk)], uu)
        assert abs(row["statistic"] - stat) < 1e-9 * max(1.0, stat)
    b = event_blocks(fit.time, fit.event, fit.X, fit.params, fit.strata)
    for t in (0.3, 1.0, 5.0):
        base = breslow_at(fit, t, n_strata)
        for s in range(n_strata):
            m = (b.time <= t) & (b.stratum == s)
            assert np.isclose(base.cumhaz[s], np.sum(b.deaths[m] / b.S0[m]), rtol=1e-12)
            assert np.isclose(base.varhaz[s], np.sum(b.deaths[m] / b.S0[m] ** 2), rtol=1e-12)
            d = -np.sum((b.deaths[m] / b.S0[m] ** 2)[:, None] * b.S1[m], axis=0)
            assert np.allclose(base.dcumhaz[s], d, rtol=1e-11, atol=1e-14)


def test_warm_start_and_shared_risk_sets_give_the_same_fit():
    X, time, event, strata, _ = _data(n_strata=2, seed=13)
    cold = fit_cox(X, time, event, strata, "efron")
    rs = risk_sets(time, event, strata)
    warm = fit_cox(X[:, :3], time, event, strata, "efron", init=cold.params[:3], risk=rs)
    ref = fit_cox_phreg(X[:, :3], time, event, strata, "efron")
    assert _rel(warm.params, ref.params) < REL
    assert abs(warm.loglik_null - cold.loglik_null) < 1e-12 * abs(cold.loglik_null)
    ll = cox_loglik(X[:, :3], time, event, strata, "efron", init=cold.params[:3], risk=rs)
    assert abs(ll - ref.loglik) < REL * abs(ref.loglik)
    null = cox_loglik(X[:, :0], time, event, strata, "efron", risk=rs)
    assert abs(null - cold.loglik_null) < 1e-12 * abs(null)
    cols = fit_cox_columns(cold, [0, 1, 2], "robust", init=cold.params[:3])
    ref = fit_cox_phreg(X[:, :3], time, event, strata, "efron", "robust")
    assert _rel(cols.params, ref.params) < REL and _rel(cols.vcov, ref.vcov) < REL
    assert abs(cox_loglik_columns(cold, [0, 1, 2]) - ref.loglik) < REL * abs(ref.loglik)
    assert cox_loglik_columns(cold, []) == cold.loglik_null
    far = fit_cox(X, time, event, strata, "efron", init=np.full(X.shape[1], 3.0))  # halving
    assert far.converged and _rel(far.params, cold.params) < REL


def test_monotone_likelihood_warns_and_is_not_converged():
    X, time, event, strata, _ = _data(seed=17)
    z = np.random.default_rng(1).integers(0, 2, len(time)).astype(float)
    X = np.column_stack([X, z])
    event = np.where(z == 0, 0.0, event)  # no event where z is 0: its coefficient -> +inf
    with pytest.warns(ConvergenceWarning, match="may be infinite"):
        fit = fit_cox(X, time, event, strata, "efron", names=("a", "b", "c", "d", "group"))
    assert not fit.converged and "monotone" in fit.message
    assert fit.params[-1] > 10  # drifting towards +infinity
    ref = fit_cox_phreg(X, time, event, strata, "efron")
    assert _rel(fit.params[:-1], ref.params[:-1]) < 1e-6  # the other coefficients settle


def test_singular_design_and_no_events_are_model_errors():
    X, time, event, strata, _ = _data(seed=19)
    with pytest.raises(ModelError, match="singular"):
        fit_cox(np.column_stack([X, X[:, 1]]), time, event, strata, "efron")
    with pytest.raises(ModelError, match="no events"):
        fit_cox(X, time, np.zeros_like(event), strata, "efron")


def test_no_warning_on_a_regular_fit():
    X, time, event, strata, _ = _data(seed=23)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_cox(X, time, event, strata, "efron", "robust")
    assert fit.converged and fit.iterations <= 8


def test_score_is_summed_without_cancellation():
    """The score at the estimate is a small difference of large sums; it must be summed row by
    row (a difference of two sums loses three digits at n = 1e5)."""
    import hte_report.models.cox as cox

    X, time, event, strata, _ = _data(n=20000, p=6, seed=31)
    X[:, 1] = X[:, 1] * 10 + 60  # an age-like column and its interaction with a binary one
    X[:, 2] = X[:, 1] * X[:, 0]
    fit = fit_cox(X, time, event, strata, "efron")
    rs, Xs, ev = fit.evaluation()
    a, b = cox._block_sums(rs, ev.inv, ev.frac)
    c = cox._at_last(cox._cumsum(a, rs.blk_bounds), rs.last)
    c[rs.dead_rows] -= b[rs.kk]
    L = np.longdouble
    ref = (Xs.astype(L) * (rs.dead.astype(L) - ev.r.astype(L) * c.astype(L))[:, None]).sum(0)
    assert np.max(np.abs(ev.score - ref.astype(float))) < 1e-9  # a difference of sums: 1e-8
    assert np.max(np.abs(ev.score)) < 1e-8  # converged to rounding level
