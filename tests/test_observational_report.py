"""Issue 17: observational plans (trial.design: observational, confounders, propensity), their
routing in fit_plan, the report's observational section and the overlap/balance figures."""

import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from hte_report.analysis import fit_plan
from hte_report.errors import FormulaError, PlanError
from hte_report.estimation.observational import fit_observational
from hte_report.presentation.overlap import balance_summary, love_plot, ps_histograms
from hte_report.report.content import build_report
from hte_report.report.model import Callout, Figure, Table
from hte_report.spec.plan import load_plan

ROOT = pathlib.Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "nhefs"


def _sim(n=1200, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    g = rng.integers(0, 3, n)
    a = rng.binomial(1, 1 / (1 + np.exp(-(0.6 * x + 0.3 * g - 0.5))))
    y = rng.binomial(1, 1 / (1 + np.exp(-(-1 + 0.5 * x + 0.4 * a + 0.3 * a * (g == 2)))))
    return pd.DataFrame({"y": y, "a": np.where(a == 1, "drug", "none"), "x": x, "g": g})


def _plan(**over):
    raw = {
        "schema": "hte-plan/1", "title": "Simulated cohort",
        "trial": {"id": "SIM-1", "design": "observational"},
        "population": "Simulated.",
        "outcome": {"variable": "y", "family": "binary"},
        "treatment": {"variable": "a", "treated": "drug", "control": "none"},
        "model": {"formula": "y ~ a * C(g) + x", "models": ["logit"]},
        "confounders": ["x", "C(g)"],
        "modifiers": [{"variable": "g", "type": "categorical", "rationale": "r",
                       "levels": {0: "low", 1: "mid", 2: "high"}}],
    }
    for k, v in over.items():
        if v is None:
            raw.pop(k, None)
        else:
            raw[k] = v
    return raw


def test_plan_routes_to_observational_and_report_section():
    d = _sim()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fit_plan(load_plan(_plan(propensity={"trim": "crump", "threshold": 0.05})), d)
    obs = a.observational
    assert obs is not None and obs.meta["modifiers"] == ["g"]
    assert obs.meta["roles"] == {"g": "modifier and confounder", "x": "confounder",
                                 "C(g)": "confounder"}
    # treated/control codes became 1/0: the same numbers as a direct call
    direct = fit_observational(d.assign(a=(d.a == "drug").astype(float)), outcome="y",
                               treatment="a", confounders=["x", "C(g)"], modifiers=["g"],
                               trim="crump")
    pd.testing.assert_frame_equal(obs.effects, direct.effects)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = build_report(a, date="2026-01-01")
    sec = rep.section("observational")
    text = " ".join(getattr(b, "text", "") or getattr(b, "caption", "") for b in sec.blocks)
    for words in ("Consistency", "exchangeability", "Positivity", "Crump"):
        assert words in text or words in str(sec.blocks)
    tables = {b.name: b for b in sec.blocks if isinstance(b, Table)}
    assert {"observational-roles", "observational-positivity", "observational-effects-RD",
            "observational-effects-RR", "observational-effects-OR",
            "observational-heterogeneity", "observational-evalues",
            "observational-interactions", "observational-target-trial"} <= set(tables)
    tt = tables["observational-target-trial"].frame.set_index("Component")["This analysis"]
    assert "x, C(g)" in tt["Assignment"] and "Crump" in tt["Causal contrast"]
    inter = obs.interactions
    assert len(inter) == 3 * 3 * 2 and set(inter.reference) == {0}
    rr = inter[inter.scale == "RR"]
    assert rr.e_value.notna().all() and inter[inter.scale == "RD"].e_value.isna().all()
    ev = tables["observational-evalues"].frame
    assert len(ev) == 4 and "AIPW (doubly robust)" in ev.columns
    eff = tables["observational-effects-RD"].frame
    assert {"g-computation (outcome regression)", "IPW (Hájek, stabilized weights)",
            "AIPW (doubly robust)"} <= set(eff.columns)
    assert list(eff.Level) == ["All patients", "low", "mid", "high"]
    figs = [b for b in sec.blocks if isinstance(b, Figure)]
    assert {f.name for f in figs} == {"observational-ps-g", "observational-balance-g"}


def test_randomized_plan_has_no_observational_section(tmp_path):
    d = _sim()
    raw = _plan(confounders=None, trial={"id": "SIM-1", "design": "randomized"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fit_plan(load_plan(raw), d)
    assert a.observational is None
    with pytest.raises(KeyError):
        build_report(a, date="2026-01-01").section("observational")


def test_violated_subgroup_is_flagged_in_report():
    d = _sim(1500, 4)
    # in level 2 almost nobody is treated
    rng = np.random.default_rng(0)
    a = np.where(d.g == 2, np.where(rng.random(len(d)) < 0.01, "drug", "none"), d.a)
    d = d.assign(a=a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        an = fit_plan(load_plan(_plan(confounders=["x"])), d)
        sec = build_report(an, date="2026-01-01").section("observational")
    call = [b for b in sec.blocks if isinstance(b, Callout)]
    assert call and call[0].kind == "danger" and "high" in call[0].text
    eff = [b for b in sec.blocks if isinstance(b, Table) and b.name == "observational-effects-RD"]
    row = eff[0].frame.query("Level == 'high'").iloc[0]
    assert row["Positivity"] == "violated" and row["AIPW (doubly robust)"] == "not estimable"


@pytest.mark.parametrize("over, err, match", [
    (dict(confounders=None), PlanError, "must name its confounders"),
    (dict(trial={"id": "S", "design": "randomized"}), PlanError, "observational"),
    (dict(propensity={"trim": 0.7}), PlanError, "propensity.trim"),
    (dict(propensity={"threshold": 0.6}), PlanError, "propensity.threshold"),
    (dict(propensity={"formula": "x + open('f')"}), FormulaError, "propensity.formula"),
    (dict(confounders=["__import__('os')"]), FormulaError, "confounders"),
])
def test_plan_validation(over, err, match):
    with pytest.raises(err, match=match):
        load_plan(_plan(**over))


def test_plan_confounder_not_in_data():
    d = _sim()
    with pytest.raises(PlanError, match="confounders"):
        fit_plan(load_plan(_plan(confounders=["x", "C(zz)"])), d)


def test_figures_and_balance_summary():
    d = _sim().assign(a=lambda f: (f.a == "drug").astype(float))
    res = fit_observational(d, outcome="y", treatment="a", confounders=["x"], modifiers=["g"])
    f1 = ps_histograms(res, "g")
    assert len([ax for ax in f1.axes if ax.get_visible()]) == 4
    f2 = love_plot(res, None)
    assert len(f2.axes) == 1
    s = balance_summary(res)
    assert len(s) == 4 and (s.max_abs_smd_weighted <= s.max_abs_smd_unweighted + 0.05).all()
    with pytest.raises(Exception, match="not a modifier"):
        ps_histograms(res, "x")


def test_worked_example_plan_is_valid():
    plan = load_plan(EXAMPLE / "plan.yaml")
    raw = yaml.safe_load((EXAMPLE / "plan.yaml").read_text())
    assert plan.raw["trial"]["design"] == "observational" and raw["confounders"]
