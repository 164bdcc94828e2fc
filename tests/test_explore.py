"""Issue 18: the exploratory causal forest (hte_report.explore) -- simulation sanity,
reproducibility, designs and outcomes, bad input, lazy imports, figures and the report section.

Small forests (a few hundred trees, n <= 2000) keep the module fast; the numbers checked
against R are in tests/test_explore_reference.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("econml")

from hte_report.errors import DataError, FormulaError, HTEReportError  # noqa: E402
from hte_report.exploratory import ExploreResult, MissingDependencyError, explore  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAST = {"n_trees": 200, "nuisance_trees": 40, "n_bootstrap": 50, "n_folds": 3}


def _sim(n: int, effect, seed: int, confounded: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                      "x3": rng.uniform(size=n), "sex": rng.choice(["F", "M"], size=n)})
    p = 1 / (1 + np.exp(-0.8 * d.x2)) if confounded else np.full(n, 0.5)
    d["w"] = rng.binomial(1, p)
    d["y"] = d.x2 + effect(d) * d.w + rng.normal(size=n)
    return d


@pytest.fixture(scope="module")
def strong():
    d = _sim(1500, lambda d: 1.0 + 1.5 * d.x1, seed=11)
    return explore(["x1", "x2", "x3", "sex"], d, treatment="w", outcome="y",
                   modifiers=["x1", "x3", "sex"], propensity=0.5, seed=3, **FAST)


@pytest.fixture(scope="module")
def nsw():
    data = pd.read_csv(ROOT / "tests/reference/data/nsw.csv")
    return explore("re78 ~ age + educ + black + hisp + marr + nodegree + re74 + re75", data,
                   treatment="treat", modifiers=["age", "black", "nodegree"], seed=1, **FAST)


def test_strong_modifier_is_detected_and_blp_points_to_it(strong):
    assert isinstance(strong, ExploreResult) and strong.label == "exploratory"
    cal = strong.calibration.set_index("term")
    diff = cal.loc["differential.forest.prediction"]
    assert diff.p_value < 1e-6 and 0.6 < diff.estimate < 1.4
    assert 0.6 < cal.loc["mean.forest.prediction", "estimate"] < 1.4
    assert strong.heterogeneity_detected and strong.verdict.startswith("Exploratory evidence")
    blp = strong.blp.set_index("term")
    assert blp.loc["x1", "p_value"] < 1e-6 and 1.0 < blp.loc["x1", "estimate"] < 2.0
    assert blp.loc["x3", "p_value"] > 0.01 and blp.loc["sex[M]", "p_value"] > 0.01
    g = strong.gates["estimate"].to_numpy()
    assert g[-1] > g[0] + 2 and np.corrcoef(np.arange(5), g)[0, 1] > 0.9  # ordered
    t = strong.gates_tests.set_index("test")
    assert t.loc["equal GATES", "p_value"] < 1e-6
    assert strong.importance["variable"].iloc[0] == "x1"
    rate = strong.rate.set_index("metric")
    assert (rate["estimate"] > 0).all() and (rate["p_value"] < 1e-3).all()
    assert abs(strong.ate["estimate"].iloc[0] - 1.0) < 0.25  # ATE = 1
    # the forest recovers tau(x) = 1 + 1.5 x1
    d = _sim(1500, lambda d: 1.0 + 1.5 * d.x1, seed=11)
    assert np.corrcoef(strong.cate["cate"], 1 + 1.5 * d.x1)[0, 1] > 0.9
    assert strong.membership["row"].tolist() == strong.cate["row"].tolist()
    assert (strong.cate["w_hat"] == 0.5).all() and strong.propensity == "known, 0.5"
    assert set(strong.membership.columns) == {"row", "x1", "x3", "sex"}


def test_no_heterogeneity_is_not_reported():
    d = _sim(1500, lambda d: np.full(len(d), 0.5), seed=12)
    res = explore(["x1", "x2", "x3", "sex"], d, treatment="w", outcome="y", modifiers=["x1"],
                  seed=4, **FAST)
    diff = res.calibration.set_index("term").loc["differential.forest.prediction"]
    assert diff.p_value > 0.05
    assert not res.heterogeneity_detected
    assert res.verdict.startswith("No evidence of heterogeneity beyond the average effect")
    assert res.blp.set_index("term").loc["x1", "p_value"] > 0.01
    assert abs(res.ate["estimate"].iloc[0] - 0.5) < 0.2


def test_same_seed_same_numbers_other_seed_other_numbers():
    d = _sim(400, lambda d: d.x1, seed=13)
    kw = {"treatment": "w", "outcome": "y", "modifiers": ["x1", "sex"],
          **FAST, "n_trees": 100, "nuisance_trees": 20}
    a = explore(["x1", "x2", "sex"], d, seed=5, **kw)
    b = explore(["x1", "x2", "sex"], d, seed=5, **kw)
    for name in ("cate", "calibration", "gates", "gates_tests", "blp", "ate", "rate", "toc",
                 "importance", "subgroups"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    c = explore(["x1", "x2", "sex"], d, seed=6, **kw)
    assert not np.array_equal(a.cate["cate"], c.cate["cate"])
    assert a.seed == 5 and a.versions["econml"] != "not installed"


def test_observational_design_estimates_the_propensity():
    d = _sim(1000, lambda d: np.full(len(d), 1.0), seed=14, confounded=True)
    naive = d.loc[d.w == 1, "y"].mean() - d.loc[d.w == 0, "y"].mean()
    assert naive > 1.4  # confounded by x2
    res = explore(["x1", "x2", "x3"], d, treatment="w", outcome="y", design="observational",
                  seed=2, **FAST)
    assert res.cate["w_hat"].std() > 0.05 and res.design == "observational"
    assert abs(res.ate["estimate"].iloc[0] - 1.0) < 0.25


def test_binary_outcome_risk_difference_and_implied_risk_ratio():
    rng = np.random.default_rng(15)
    n = 1000
    d = pd.DataFrame({"age": rng.normal(60, 10, n), "grp": rng.choice(["a", "b", "c"], n),
                      "arm": rng.choice(["placebo", "drug"], n)})
    p0 = 1 / (1 + np.exp(-(-1 + 0.05 * (d.age - 60))))
    p = np.where(d.arm == "drug", p0 * 0.6, p0)
    d["event"] = rng.binomial(1, p)
    d.loc[3, "age"] = np.nan  # excluded and counted
    res = explore(["age", "grp"], d, treatment="arm", control="placebo", outcome="event",
                  modifiers=["grp"], seed=1, **FAST)
    assert res.family == "binary" and res.n == n - 1 and res.n_excluded == 1
    c = res.cate
    assert c["cate"].between(-1, 1).all()
    assert {"risk_control", "risk_treated", "rr_implied"} <= set(c.columns)
    np.testing.assert_allclose(c["risk_treated"] - c["risk_control"], c["cate"])
    assert 0.4 < np.nanmedian(c["rr_implied"]) < 0.9
    assert any("implied risk ratio" in note for note in res.notes)
    assert res.ate["estimate"].iloc[0] < 0
    assert set(res.importance["variable"]) == {"age", "grp"}
    from hte_report.report.explore import relative_scale

    (para,) = relative_scale(res)
    assert para.text.startswith("Relative scale (exploratory): the implied risk ratios")


def test_time_to_event_through_rmst_pseudo_observations():
    rossi = pd.read_csv(ROOT / "tests/reference/data/rossi.csv")
    res = explore(["age", "race", "wexp", "mar", "paro", "prio"], rossi, treatment="fin",
                  outcome="week", event="arrest", horizon=40, modifiers=["wexp"], seed=1,
                  **FAST)
    assert res.family == "time" and res.settings["horizon"] == 40
    assert res.cate["outcome"].between(0, 40 + 1e-9).mean() > 0.9  # pseudo-observations
    assert res.cate["outcome"].mean() == pytest.approx(36.5486111111, rel=1e-9)  # KM RMST
    assert any("pseudo-observations" in n and "censoring independent" in n for n in res.notes)
    from hte_report.presentation.explore import effect_name

    assert effect_name(res) == "RMST difference to 40"


def test_nsw_end_to_end(nsw):
    assert nsw.n == 445 and nsw.outcome == "re78" and nsw.family == "continuous"
    for name in ("cate", "calibration", "gates", "blp", "rate", "toc", "importance",
                 "subgroups", "ate", "gates_tests"):
        assert (getattr(nsw, name)["label"] == "exploratory").all(), name
    ate = nsw.ate.iloc[0]
    assert 500 < ate.estimate < 3000 and ate.conf_low < 1794 < ate.conf_high
    assert "Never promote a forest-found subgroup" in nsw.summary()
    assert list(nsw.subgroups["modifier"].unique()) == ["age", "black", "nodegree"]
    assert nsw.cate["row"].tolist() == list(range(445))


def test_figures_and_report_section(nsw, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from hte_report.presentation import explore as pe
    from hte_report.report.explore import explore_section
    from hte_report.report.model import Figure, Section, Table

    for f in (pe.cate_by_subgroup_plot, pe.gates_plot, pe.toc_plot, pe.importance_plot):
        fig = f(nsw)
        titles = [fig.get_suptitle()] + [ax.get_title(loc="left") for ax in fig.axes]
        assert any(t.startswith("Exploratory (hypothesis-generating)") for t in titles)
        fig.savefig(tmp_path / f"{f.__name__}.png", dpi=60)
    sec = explore_section(None, result=nsw)
    assert isinstance(sec, Section) and sec.id == "explore" and not sec.posthoc
    captions = [b.caption for b in sec.blocks if isinstance(b, (Table, Figure))]
    assert len(captions) >= 7
    assert all(c.startswith("Exploratory (hypothesis-generating)") for c in captions)
    text = " ".join(str(getattr(b, "text", "")) + " ".join(getattr(b, "items", ()))
                    for b in sec.blocks)
    assert "Never promote a forest-found subgroup to a confirmatory claim" in text
    assert "own multiplicity family" in text
    assert "No evidence of heterogeneity beyond the average effect" in text


def test_section_from_a_plan_reads_the_exploratory_entry(nsw):
    from types import SimpleNamespace

    from hte_report.report.explore import explore_section
    from hte_report.report.model import Callout, Para

    data = pd.read_csv(ROOT / "tests/reference/data/nsw.csv")

    def analysis(entry, family="continuous"):
        plan = SimpleNamespace(raw={"exploratory": entry, "treatment": {"control": 0}},
                               outcome={"variable": "re78", "family": family},
                               treatment="treat", seed=1, conf_level=0.95,
                               modifiers=(SimpleNamespace(variable="black"),))
        return SimpleNamespace(plan=plan, data=data)

    assert isinstance(explore_section(analysis(None)).blocks[0], Para)
    bad = explore_section(analysis({"planned": True, "covariates": ["age"]}, "survival"))
    assert isinstance(bad.blocks[0], Callout) and "deviation" in bad.blocks[0].text
    bad = explore_section(analysis({"planned": True, "covariates": ["agee"]}))
    assert isinstance(bad.blocks[0], Callout) and "did you mean 'age'" in bad.blocks[0].text
    entry = {"planned": True, "covariates": ["age", "educ", "black", "re75"], **FAST}
    sec = explore_section(analysis(entry))
    assert sec.id == "explore" and len(sec.blocks) > 5


@pytest.mark.parametrize("kwargs, error, words", [
    ({"covariates": ["age", "nope"]}, DataError, "'nope'"),
    ({"treatment": "nodegree", "outcome": "re78", "covariates": ["age"], "control": 5},
     DataError, "not a level"),
    ({"treatment": "educ", "covariates": ["age"]}, DataError, "exactly two levels"),
    ({"covariates": ["age", "treat"]}, FormulaError, "cannot also be a covariate"),
    ({"covariates": "re78 ~ age + log(re75)"}, FormulaError, "plain column names"),
    ({"covariates": []}, FormulaError, "at least one"),
    ({"design": "observational", "propensity": 0.5}, DataError, "known allocation"),
    ({"propensity": 1.2}, DataError, "strictly between 0 and 1"),
    ({"seed": -1}, DataError, "seed"),
    ({"n_trees": 0}, DataError, "n_trees"),
    ({"family": "survival"}, DataError, "needs event="),
    ({"family": "poisson"}, DataError, "family='poisson'"),
    ({"event": "black"}, DataError, "needs horizon="),
    ({"event": "black", "horizon": 1e9}, DataError, "no later than the last follow-up"),
    ({"event": "educ", "horizon": 10, "covariates": ["age"]}, DataError, "coded 0/1"),
    ({"event": "age", "covariates": ["age"]}, FormulaError, "cannot also be"),
    ({"family": "binary"}, DataError, "not coded 0/1"),
    ({"max_samples": 0.8}, DataError, "honest"),
    ({"n_jobs": 0}, DataError, "all cores"),
    ({"max_samples": "0.3"}, DataError, "must be a number"),
    ({"modifiers": ["treat"]}, FormulaError, "modifier 'treat' is the"),
    ({"outcome": "treat"}, FormulaError, "same column"),
])
def test_bad_input_gets_a_clear_error(kwargs, error, words):
    data = pd.read_csv(ROOT / "tests/reference/data/nsw.csv")
    args = {"covariates": ["age", "educ"], "treatment": "treat", "outcome": "re78",
            "seed": 1, **FAST}
    args.update(kwargs)
    with pytest.raises(error, match=words.replace("(", r"\(")) as info:
        explore(args.pop("covariates"), data, **args)
    assert isinstance(info.value, HTEReportError)


def test_tiny_arm_and_text_treatment_without_control():
    d = _sim(100, lambda d: d.x1, seed=1)
    d["arm"] = np.where(d.w == 1, "B", "A")
    with pytest.raises(DataError, match="give control="):
        explore(["x1"], d, treatment="arm", outcome="y", **FAST)
    d["w"] = 0
    d.loc[d.index[:3], "w"] = 1
    with pytest.raises(DataError, match="too few patients"):
        explore(["x1"], d, treatment="w", outcome="y", **FAST)


def test_import_is_lazy_and_missing_econml_says_how_to_install():
    code = ("import sys, hte_report, hte_report.exploratory, hte_report.report.explore\n"
            "bad = [m for m in ('econml', 'sklearn') if m in sys.modules]\n"
            "assert not bad, bad\n"
            "import pandas as pd\n"
            "sys.modules['econml'] = None\n"
            "from hte_report.exploratory import explore, MissingDependencyError\n"
            "d = pd.DataFrame({'x': [0.0, 1, 2, 3] * 30, 'w': [0, 1] * 60, 'y': [1.0] * 120})\n"
            "d.loc[0, 'y'] = 2.0\n"
            "try:\n"
            "    explore(['x'], d, treatment='w', outcome='y')\n"
            "except MissingDependencyError as e:\n"
            "    assert isinstance(e, ImportError)\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'hte-report[ml]'" in out.stdout
    assert issubclass(MissingDependencyError, HTEReportError)


def test_top_level_explore_is_the_function():
    import hte_report
    import hte_report.exploratory.calibration  # noqa: F401 - a sub-module import

    assert hte_report.explore is explore and callable(hte_report.explore)
