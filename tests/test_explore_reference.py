"""Issue 18: the exploratory forest's calibration numbers against R.

The forest's out-of-bag CATE, the cross-fitted nuisance predictions and the outcome/treatment
are exported to ``tests/reference/data/explore_*.csv`` (``python tests/test_explore_reference.py``
regenerates them from a seeded forest: out-of-bag CATE ``tau``, cross-fitted priorities
``prio`` and their ``fold``); ``tests/reference/explore.R`` recomputes, from the SAME numbers, grf's
test_calibration, the best linear projection and GATES with ``lm`` +
``sandwich::vcovHC(type = "HC3")`` + ``lmtest::coeftest``, and RATE (AUTOC, Qini) from a closed
form written independently, and the RMST pseudo-observations of the time-to-event transformation
by a brute-force jackknife of ``survival::survfit``'s restricted mean, into
``tests/reference/explore.json``. These are deterministic
functions of the exported predictions: relative tolerance 1e-8.

These tests need neither EconML nor R: only the CSVs and the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte_report.exploratory import calibration as cal

REF = Path(__file__).resolve().parent / "reference"
CASES = ("nsw", "nsw_binary", "sim")
MODIFIERS = {"nsw": ["age", "black", "nodegree", "re75"],
             "nsw_binary": ["age", "black", "nodegree", "re75"],
             "sim": ["x1", "x2", "g"]}
RTOL = 1e-8


@pytest.fixture(scope="module")
def reference():
    return json.loads((REF / "explore.json").read_text())


def _data(case):
    return pd.read_csv(REF / "data" / f"explore_{case}.csv")


def _close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=rtol, atol=1e-12)


def _modifiers(d, case):
    A = d[MODIFIERS[case]].astype(float)
    return A


@pytest.mark.parametrize("case", CASES)
def test_calibration_matches_r(reference, case):
    d, ref = _data(case), reference[case]["calibration"]
    out = cal.test_calibration(d.y, d.w, d.y_hat, d.w_hat, d.tau).set_index("term")
    for term in ("mean.forest.prediction", "differential.forest.prediction"):
        row = out.loc[term]
        _close([row.estimate, row.std_error, row.statistic, row.p_value],
               [ref[term][k] for k in ("estimate", "std_error", "statistic", "p_one_sided")])
        assert row.df == ref[term]["df"]


@pytest.mark.parametrize("case", CASES)
def test_dr_scores_and_blp_match_r(reference, case):
    d, ref = _data(case), reference[case]
    scores = cal.dr_scores(d.y, d.w, d.y_hat, d.w_hat, d.tau)
    _close(scores, ref["dr_scores"])
    blp = cal.best_linear_projection(scores, _modifiers(d, case)).set_index("term")
    assert list(blp.index) == ref["blp"]["term"]
    for key in ("estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"):
        _close(blp[key], ref["blp"][key])
    blp0 = cal.best_linear_projection(scores).iloc[0]  # intercept only: the AIPW ATE
    _close([blp0.estimate, blp0.std_error], [ref["blp_intercept_only"]["estimate"],
                                             ref["blp_intercept_only"]["std_error"]])


@pytest.mark.parametrize("case", CASES)
def test_gates_match_r(reference, case):
    d, ref = _data(case), reference[case]
    scores = np.asarray(ref["dr_scores"], dtype=float)
    _close(cal.quantile_groups(d.prio, 5, d.fold), ref["gates"]["group_of_row"], rtol=0)
    g, tests = cal.gates(scores, d.prio, 5, folds=d.fold)
    for key in ("estimate", "std_error", "p_value", "conf_low", "conf_high"):
        _close(g[key], ref["gates"][key])
    assert g["n"].tolist() == ref["gates"]["n"]
    t = tests.set_index("test")
    _close([t.loc["equal GATES", "statistic"], t.loc["equal GATES", "p_value"]],
           [ref["gates"]["wald_chi2"], ref["gates"]["wald_p"]])
    _close([t.loc["top - bottom", "estimate"], t.loc["top - bottom", "std_error"],
            t.loc["top - bottom", "p_value"]],
           [ref["gates"]["top_bottom"], ref["gates"]["top_bottom_se"],
            ref["gates"]["top_bottom_p"]])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_rate_matches_closed_form(reference, case, ties):
    d, ref = _data(case), reference[case]
    scores = np.asarray(ref["dr_scores"], dtype=float)
    prio = np.round(d.prio.to_numpy(), 1) if ties else d.prio.to_numpy()
    key = "rate_ties" if ties else "rate"
    _close(cal.rate_estimates(scores, prio, d.fold), [ref[key]["autoc"], ref[key]["qini"]])
    toc = cal.toc_curve(scores, prio, n_bootstrap=2, folds=d.fold)
    _close(toc["estimate"], ref[key]["toc"])
    # one fold: the plain (whole-sample) RATE
    _close(cal.rate_estimates(scores, prio), [ref[key]["autoc_pooled"], ref[key]["qini_pooled"]])


@pytest.mark.parametrize("horizon", ["40", "37.5"])
def test_rmst_pseudo_observations_match_r_jackknife(reference, horizon):
    from hte_report.exploratory.pseudo import km_rmst, rmst_pseudo_observations

    rossi = pd.read_csv(REF / "data" / "rossi.csv")
    ref = reference["rmst_pseudo"][horizon]
    _close(km_rmst(rossi.week, rossi.arrest, float(horizon)), ref["rmst"])
    _close(rmst_pseudo_observations(rossi.week, rossi.arrest, float(horizon), chunk=100),
           ref["pseudo"])


def _export() -> None:  # pragma: no cover - regenerates the CSVs (needs EconML)
    from hte_report.exploratory import explore

    nsw = pd.read_csv(REF / "data" / "nsw.csv")
    covs = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]
    nsw_b = nsw.assign(employed78=(nsw.re78 > 0).astype(int))
    rng = np.random.default_rng(2026)
    n = 800
    sim = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.uniform(size=n),
                        "x3": rng.normal(size=n), "g": rng.integers(0, 3, size=n)})
    sim["w"] = rng.binomial(1, 1 / (1 + np.exp(-0.5 * sim.x1)))
    sim["y"] = sim.x3 + (0.5 + sim.x1) * sim.w + rng.normal(size=n)
    runs = {"nsw": (nsw, covs, "re78", "randomized"),
            "nsw_binary": (nsw_b, covs, "employed78", "randomized"),
            "sim": (sim, ["x1", "x2", "x3", "g"], "y", "observational")}
    for case, (df, cv, y, design) in runs.items():
        res = explore(cv, df, treatment="treat" if case != "sim" else "w", outcome=y,
                      design=design, n_trees=400, nuisance_trees=100, seed=18, n_bootstrap=2)
        c = res.cate
        out = pd.DataFrame({"y": c.outcome, "w": c.treatment, "y_hat": c.y_hat,
                            "w_hat": c.w_hat, "tau": c.cate, "prio": c.cate_crossfit,
                            "fold": c.fold})
        for m in MODIFIERS[case]:
            out[m] = df.loc[c.row, m].to_numpy()
        out.to_csv(REF / "data" / f"explore_{case}.csv", index=False, float_format="%.17g")


if __name__ == "__main__":  # pragma: no cover
    _export()
