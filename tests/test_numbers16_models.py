"""Coefficient tables, covariance matrices, model statistics and t inference of the working
models against R (tests/reference/issue16_glm.R: lm/glm, sandwich::vcovHC, lmtest::coeftest
and coefci, logLik, AIC, BIC, deviance) on the Rossi, anorexia (n = 72), NSW and RAND HIE data.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.estimation.glm import fit as engine_fit
from hte_report.spec.options import OptionError

REF = Path(__file__).parent / "reference"
FITS = json.loads((REF / "issue16_glm.json").read_text())["fits"]
RTOL = 1e-6
_cache: dict = {}


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def _data(name):
    if name not in _cache:
        _cache[name] = pd.read_csv(REF / "data" / name)
    return _cache[name]


def close(a, b, what, scale=0.0):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=max(1e-300, RTOL * scale), err_msg=what)


def _engine(ref):
    key = (ref["case"], ref["model"], ref["variance"], ref["inference"])
    if key not in _cache:
        _cache[key] = _quiet(engine_fit, ref["formula"], _data(ref["data"]),
                             treatment=ref["treatment"], models=[ref["model"]],
                             variance=ref["variance"], inference=ref["inference"],
                             family="count" if ref["case"] in ("randhie", "rossi-rate")
                             else None, exposure=ref.get("exposure"))
    return _cache[key]


def _anorexia(variance, inference):
    key = ("anorexia-fit", variance, inference)
    if key not in _cache:
        _cache[key] = _quiet(hr.fit, "Postwt ~ Treat * Prewt", _data("anorexia.csv"),
                             treatment="Treat", control="Cont", variance=variance,
                             inference=inference)
    return _cache[key]


def _result_and_selection(ref):
    if ref["case"] == "anorexia":
        res = _anorexia(ref["variance"], ref["inference"])
        return res, dict(analysis="one-at-a-time", modifier="Prewt",
                         comparison=ref["comparison"])
    return _engine(ref), {}


def _select(df, where):
    for k, v in where.items():
        df = df[df[k] == v]
    return df


ENGINE = [f for f in FITS]
IDS = [f"{f['case']}-{f.get('comparison', '')}-{f['model']}-{f['variance']}-{f['inference']}"
       for f in FITS]


@pytest.mark.parametrize("ref", ENGINE, ids=IDS)
def test_coefficient_table_matches_coeftest_and_coefci(ref):
    res, where = _result_and_selection(ref)
    coef = _select(res.coefficients, where)
    assert len(coef) == len(ref["terms"]), list(coef.term)
    for k in ("estimate", "std_error", "statistic", "conf_low", "conf_high"):
        close(coef[k].to_numpy(float), ref[k], k, scale=max(ref["std_error"]))
    p, rp = coef.p_value.to_numpy(float), np.array(ref["p_value"], float)
    tiny = rp < 1e-300  # R prints 0: ours must be as small
    assert np.all(p[tiny] < 1e-300)
    close(np.log(p[~tiny]), np.log(rp[~tiny]), "log p")
    assert (coef.inference == ref["inference"]).all()
    if ref["inference"] == "t":
        assert (coef.df == ref["df"]).all()
    else:
        assert coef.df.isna().all()


@pytest.mark.parametrize("ref", ENGINE, ids=IDS)
def test_vcov_matches_r(ref):
    res, where = _result_and_selection(ref)
    label = ref["model"] if ref["variance"] == "model" else f"{ref['model']}-{ref['variance']}"
    V = res.vcov(label, **where)
    assert list(V.index) == list(V.columns) == list(_select(res.coefficients, where).term)
    ref_v = np.array(ref["vcov"])
    close(V.to_numpy(), ref_v, "vcov", scale=np.abs(ref_v).max())
    # the model's name selects it too
    pd.testing.assert_frame_equal(res.vcov(ref["model"], **where), V)


@pytest.mark.parametrize("ref", ENGINE, ids=IDS)
def test_glance_matches_logLik_AIC_deviance(ref):
    res, where = _result_and_selection(ref)
    g = _select(res.glance, where)
    assert len(g) == 1
    g = g.iloc[0]
    assert g.n == ref["n"] and g.df_residual == ref["df_residual"]
    assert g.df_null == ref["df_null"] and bool(g.converged)
    for mine, theirs in (("loglik", "loglik"), ("aic", "aic"), ("bic", "bic"),
                         ("deviance", "deviance"), ("null_deviance", "null_deviance")):
        close(g[mine], ref[theirs], mine)


ANOREXIA = [f for f in FITS if f["case"] == "anorexia"]
AIDS = [f"{f['comparison']}-{f['variance']}-{f['inference']}" for f in ANOREXIA]


@pytest.mark.parametrize("ref", ANOREXIA, ids=AIDS)
def test_anorexia_effects_tests_and_interaction_effects_use_t(ref):
    res = _anorexia(ref["variance"], ref["inference"])
    sub = res.subgroups
    cond = sub[(sub.comparison == ref["comparison"]) & (sub.method == "conditional")]
    c = ref["conditional"]
    close(cond.value.to_numpy(float), c["value"], "evaluation points")
    for k in ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value"):
        close(cond[k].to_numpy(float), c[k], f"conditional {k}", scale=max(c["std_error"]))
    assert (cond.inference == ref["inference"]).all()
    ie = res.interaction_effects
    ie = ie[(ie.comparison == ref["comparison"]) & (ie.level == "per unit")]
    for k in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
        close(ie[k].to_numpy(float), ref["per_unit"][k], f"per unit {k}")
    t = res.interactions
    t = t[(t.comparison == ref["comparison"]) & (t.test == "wald")].iloc[0]
    w = ref["wald"]
    close(t.statistic, w["statistic"], "wald statistic")
    close(t.p_value, w["p_value"], "wald p")
    assert t.df == w["df"]
    if ref["inference"] == "t":
        assert t.distribution == "F" and t.df_denominator == w["df_denominator"]
    else:
        assert t.distribution == "chi-square" and np.isnan(t.df_denominator)


def test_t_and_z_differ_visibly_in_a_small_trial():
    """n = 55 (CBT vs Cont): the t interval is wider than the z interval by qt/qnorm."""
    t, z = _anorexia("HC3", "t"), _anorexia("HC3", "z")
    def pick(r):
        return r.subgroups[(r.subgroups.comparison == "CBT vs Cont")
                           & (r.subgroups.method == "conditional")]

    wt = (pick(t).conf_high - pick(t).conf_low).to_numpy()
    wz = (pick(z).conf_high - pick(z).conf_low).to_numpy()
    from scipy import stats

    np.testing.assert_allclose(wt / wz, stats.t.ppf(0.975, 51) / stats.norm.ppf(0.975))
    assert np.all(wt / wz > 1.01)


def test_t_applies_to_gaussian_models_only():
    res = _quiet(hr.fit, "arrest ~ fin * (age + C(wexp))", _data("rossi.csv"),
                 treatment="fin", inference="t")
    inf = res.coefficients.groupby("model").inference.unique()
    assert list(inf["ols-HC3"]) == ["t"]
    assert list(inf["logit"]) == ["z"] and list(inf["modified-poisson-HC0"]) == ["z"]
    assert set(res.glance.inference) == {"t", "z"}
    assert "ols-HC3 [identity link, HC3 variance, t inference on the residual df]" in \
        res.summary() and "logit [logit link, model variance]" in res.summary()
    with pytest.raises(OptionError, match="inference"):
        _quiet(hr.fit, "arrest ~ fin * age", _data("rossi.csv"), treatment="fin",
               inference="satterthwaite")
    with pytest.raises(OptionError, match="inference"):
        _quiet(hr.fit, "Surv(week, arrest) ~ fin * age", _data("rossi.csv"), treatment="fin",
               inference="t")


def test_vcov_asks_for_a_choice_when_several_models_match():
    res = _anorexia("HC3", "t")
    with pytest.raises(OptionError, match="give model= and analysis="):
        res.vcov("ols")
    with pytest.raises(OptionError, match="no working model"):
        res.vcov("logit", analysis="one-at-a-time")
    V = res.vcov("ols", analysis="Prewt", comparison="FT vs Cont")  # a modifier's analysis
    assert V.shape == (4, 4)


def test_frames_survive_json():
    res = _anorexia("HC3", "t")
    back = hr.HTEResult.from_json(res.to_json())
    pd.testing.assert_frame_equal(back.vcov("ols", "Prewt", comparison="CBT vs Cont"),
                                  res.vcov("ols", "Prewt", comparison="CBT vs Cont"))
    assert len(back.glance) == len(res.glance)


@pytest.mark.parametrize("family", ["binary", "continuous"])
def test_every_fitting_path_gives_the_same_tables(family):
    """statsmodels, blocked IRLS and cells of identical patients: same coefficients, vcov and
    model statistics (cells hold sufficient statistics, not patients)."""
    rng = np.random.default_rng(16)
    n = 1500
    d = pd.DataFrame({"t": rng.integers(0, 2, n), "g": rng.integers(0, 3, n),
                      "s": rng.integers(0, 2, n)})
    eta = -0.5 + 0.3 * d.t - 0.2 * d.g + 0.4 * d.t * (d.g == 2) + 0.3 * d.s
    d["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int) if family == "binary" \
        else eta + rng.normal(size=n)
    f = "y ~ t * C(g) + C(s)"
    out = {}
    for path, agg in (("statsmodels", False), ("irls", False), ("auto", True)):
        out[path] = _quiet(engine_fit, f, d, treatment="t", path=path, aggregate=agg,
                           family=family, inference="t")
    assert set(out["auto"].models.path) == {"cells"}
    a = out["statsmodels"]
    for other in ("irls", "auto"):
        b = out[other]
        for col in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
            np.testing.assert_allclose(b.coefficients[col], a.coefficients[col], rtol=1e-7,
                                       atol=1e-12, err_msg=f"{other} {col}")
        for col in ("loglik", "deviance", "null_deviance", "aic", "bic", "df_residual"):
            np.testing.assert_allclose(b.glance[col], a.glance[col], rtol=1e-8,
                                       err_msg=f"{other} {col}")
        for model in a.glance.model:
            np.testing.assert_allclose(b.vcov(model).to_numpy(), a.vcov(model).to_numpy(),
                                       rtol=1e-6, atol=1e-14)


@pytest.mark.parametrize("inference", ["t", "z"])
def test_standardized_effects_and_equality_test_use_t(inference):
    """NSW (n = 445): standardized mean differences within each level of black and overall
    (averages of (X1 - X0) b) with t or z intervals, and their equality test (F(1, df) or
    chi-square)."""
    ref = next(f for f in FITS if f["case"] == "nsw" and f["inference"] == inference)
    res = _engine(ref)
    sub = res.subgroups
    std = sub[(sub.modifier == "black") & (sub.method == "standardized")]
    rows = pd.concat([std[std.level == "0"], std[std.level == "1"], res.overall])
    s = ref["standardized_black"]
    for k in ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value"):
        close(rows[k].to_numpy(float), s[k], f"standardized {k}", scale=max(s["std_error"]))
    assert (rows.inference == inference).all()
    t = res.interactions
    eq = t[(t.modifier == "black") & (t.test == "equality")].iloc[0]
    e = ref["equality_black"]
    close(eq.statistic, e["statistic"], "equality statistic")
    close(eq.p_value, e["p_value"], "equality p")
    assert eq.distribution == ("F" if inference == "t" else "chi-square")
