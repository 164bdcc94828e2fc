"""Reduced models of likelihood-ratio tests solved together by chord iterations
(``hte_report.models.reduced.reduced_logliks``, issue 21) against separate fits: statsmodels'
GLM on the reduced design (an independent implementation) at rel 1e-10 of the
log-likelihood."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from hte_report.models.glm import fit_glm
from hte_report.models.reduced import reduced_logliks


def _data(n, seed, family):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    age = rng.normal(0, 1, n)
    sex = rng.integers(0, 2, n)
    grp = rng.integers(0, 3, n)
    X = np.column_stack([np.ones(n), t, age, sex, grp == 1, grp == 2, t * age, t * sex,
                         t * (grp == 1), t * (grp == 2)]).astype(float)
    eta = -0.5 + 0.4 * t + 0.3 * age - 0.2 * sex + 0.25 * t * age
    expo = rng.uniform(0.5, 2.0, n) if family == "poisson" else None
    if family == "poisson":
        y = rng.poisson(np.exp(eta) * expo).astype(float)
    else:
        y = rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)
    return X, y, expo


DROPS = [[6], [7], [8, 9], [6, 7, 8, 9]]


@pytest.mark.parametrize("name,n", [("logit", 500), ("logit", 60_000), ("poisson", 2_000)])
def test_reduced_logliks_equal_separate_fits(name, n):
    X, y, expo = _data(n, 3, "poisson" if name == "poisson" else "binary")
    full = fit_glm(name, X, y, (), "model", expo, path="irls")
    lls = reduced_logliks(name, X, y, full.params, np.linalg.inv(full.vcov), DROPS, expo)
    fam = sm.families.Poisson() if name == "poisson" else sm.families.Binomial()
    for drop, ll in zip(DROPS, lls):
        keep = np.setdiff1d(np.arange(X.shape[1]), drop)
        ref = sm.GLM(y, X[:, keep], family=fam,
                     exposure=expo).fit(tol=1e-14, maxiter=100).llf
        assert ll == pytest.approx(ref, rel=1e-12, abs=1e-9)


def test_badly_scaled_column_and_drifting_model():
    """A column on a scale of 1e6 is handled (equilibrated factor); a reduced model that
    cannot settle is returned as None for the caller to refit alone."""
    X, y, _ = _data(3000, 5, "binary")
    Xs = X.copy()
    Xs[:, 2] *= 1e6
    full = fit_glm("logit", Xs, y, (), "model", path="irls")
    ll = reduced_logliks("logit", Xs, y, full.params, np.linalg.inv(full.vcov), [[6]])[0]
    keep = np.setdiff1d(np.arange(10), [6])
    ref = sm.GLM(y, Xs[:, keep], family=sm.families.Binomial()).fit(tol=1e-14).llf
    assert ll == pytest.approx(ref, rel=1e-12)
    # a nonsense information (far from the reduced model's): no convergence, None
    bad = np.eye(10) * 1e-6
    assert reduced_logliks("logit", X, y, full.params, bad, [[6]])[0] is None


def test_refuses_non_canonical():
    X, y, _ = _data(200, 1, "binary")
    with pytest.raises(ValueError):
        reduced_logliks("ols", X, y, np.zeros(10), np.eye(10), [[6]])


def test_shared_setup_gives_the_same_joint_test():
    """Under strategy='joint' the joint heterogeneity test reuses the joint model's setup and
    fits (same_data); its rows equal the test computed on its own, outside any sharing."""
    import warnings

    import pandas as pd

    import hte_report as hr
    from hte_report.estimation.global_tests import joint_heterogeneity

    rng = np.random.default_rng(11)
    n = 3000
    d = pd.DataFrame({"treat": rng.integers(0, 2, n), "age": rng.normal(60, 10, n),
                      "sex": rng.choice(["F", "M"], n), "grp": rng.choice(list("abc"), n)})
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(1 - 0.3 * d.treat - 0.02 * (d.age - 60))))
    d.loc[::97, "age"] = np.nan  # exclusions too
    f = "y ~ treat * (age + C(sex) + C(grp))"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit(f, d, treatment="treat", strategy="joint")
        alone = pd.DataFrame(joint_heterogeneity(f, d, treatment="treat"))
    got = res.heterogeneity.sort_values(["model", "test"]).reset_index(drop=True)
    alone = alone.sort_values(["model", "test"]).reset_index(drop=True)
    assert len(got) == len(alone) >= 4
    # Wald rows are the same numbers; the LR reduced model was solved in the joint analysis's
    # shared passes (with the per-modifier ones) rather than alone: each log-likelihood is
    # exact to REDUCED_GAIN_TOL (1e-10), so the statistic to a few 1e-10, absolute
    np.testing.assert_allclose(got.statistic.to_numpy(float), alone.statistic.to_numpy(float),
                               rtol=1e-12, atol=5e-10)
    np.testing.assert_allclose(got.p_value.to_numpy(float), alone.p_value.to_numpy(float),
                               rtol=1e-10, atol=1e-10)
    wald = (got.test == "wald").to_numpy()
    np.testing.assert_allclose(got.statistic[wald].to_numpy(float),
                               alone.statistic[wald].to_numpy(float), rtol=1e-12)
