"""Subgroup-analysis strategies against R (tests/reference/strategies.R): one modifier at a time,
joint, within-subgroup, the primary overall analysis, interaction effects with CIs and k-arm
comparisons, on three real trials (colon: time to death, three arms; Rossi: binary re-arrest;
anorexia: continuous weight, three arms)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.estimation.glm import fit as engine_fit

REF = Path(__file__).parent / "reference"
RTOL = 1e-6
J = json.loads((REF / "strategies.json").read_text())
RECORDS = pd.DataFrame(J["records"])
TESTS = pd.DataFrame(J["tests"])
MODEL = {"ols": "ols-HC3", "modified-poisson": "modified-poisson-HC0", "logit": "logit",
         "cox": "cox-efron"}
EFFECT_SCALE = {"RD": "difference of RDs", "RR": "ratio of RRs", "OR": "ratio of ORs",
                "HR": "ratio of HRs", "MD": "difference of MDs"}

COLON = "Surv(time, status) ~ rx * (C(sex) + C(obstruct) + C(node4) + C(differ) + age) + C(surg)"
ROSSI = "arrest ~ fin * (C(wexp) + C(mar) + age) + prio"
ANOREXIA = "Postwt ~ Treat * Prewt"


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


@pytest.fixture(scope="module")
def colon():
    return pd.read_csv(REF / "data" / "colon_death.csv", dtype={"differ": "Int64"})


@pytest.fixture(scope="module")
def anorexia():
    return pd.read_csv(REF / "data" / "anorexia.csv")


@pytest.fixture(scope="module")
def fits(colon, anorexia):
    rossi = hr.datasets.load_rossi()
    out = {}
    for strategy in ("one-at-a-time", "joint", "within-subgroup"):
        out["colon", strategy] = _quiet(hr.fit, COLON, colon, treatment="rx", control="Obs",
                                        strategy=strategy, at={"age": [50, 60, 70]})
        out["rossi", strategy] = _quiet(hr.fit, ROSSI, rossi, treatment="fin",
                                        strategy=strategy, display_cutpoints={"age": [25]})
    # the overall rows do not depend on the modifiers: one is enough
    out["colon", "unadjusted"] = _quiet(hr.fit, "Surv(time, status) ~ rx * C(sex) + C(surg)",
                                        colon, treatment="rx", control="Obs",
                                        overall="unadjusted")
    out["rossi", "unadjusted"] = _quiet(hr.fit, ROSSI, rossi, treatment="fin",
                                        overall="unadjusted")
    for strategy in ("one-at-a-time", "within-subgroup"):
        out["anorexia", strategy] = _quiet(hr.fit, ANOREXIA, anorexia, treatment="Treat",
                                           control="Cont", strategy=strategy, inference="z",
                                           overall=["Prewt"], display_cutpoints={"Prewt": [82]})
    out["anorexia", "unadjusted"] = _quiet(hr.fit, ANOREXIA, anorexia, treatment="Treat",
                                           control="Cont", overall="unadjusted", inference="z")
    return out


def _close(got: pd.DataFrame, ref, what):
    assert len(got) == 1, f"{what}: {len(got)} rows"
    g = got.iloc[0]
    for col in ("estimate", "std_error", "conf_low", "conf_high"):
        assert g[col] == pytest.approx(ref[col], rel=RTOL), f"{what}: {col}"


def _cases(case, analysis, quantity=None):
    r = RECORDS[(RECORDS.case == case) & (RECORDS.analysis == analysis)]
    if quantity is not None:
        r = r[r.quantity == quantity]
    assert len(r), (case, analysis, quantity)
    return list(r.itertuples())


def _comparison(case, ref):
    return "" if case == "rossi" else ref.comparison


def _level(case, ref):
    """The package's label of a record's level."""
    if ref.quantity == "conditional":
        return None  # matched on `value`
    return ref.level


@pytest.mark.parametrize("case", ["colon", "rossi", "anorexia"])
def test_one_at_a_time_subgroups_and_categories(fits, case):
    res = fits[case, "one-at-a-time"]
    df = res.subgroups
    n = 0
    for ref in _cases(case, "one-at-a-time"):
        if ref.quantity not in ("subgroup", "category", "conditional"):
            continue
        rows = df[(df.comparison == _comparison(case, ref)) & (df.modifier == ref.modifier)
                  & (df.scale == ref.scale) & (df.model == MODEL[ref.model])
                  & (df.analysis == "one-at-a-time")]
        if ref.quantity == "conditional":
            rows = rows[(rows.method == "conditional") & np.isclose(rows.value, ref.value)]
        elif ref.scale == "HR":  # Cox: the HR within the level (conditional = any profile)
            rows = rows[(rows.level == ref.level) & (rows.method == "conditional")]
        else:
            rows = rows[(rows.level == ref.level) & (rows.method == "standardized")]
        _close(rows, ref._asdict(), f"{case} {ref.comparison} {ref.modifier}={ref.level} "
                                    f"{ref.scale} {ref.model}")
        if ref.quantity != "conditional" and ref.scale != "HR":
            assert rows.iloc[0].n == ref.n_subgroup
        n += 1
    assert n >= 6


@pytest.mark.parametrize("case,strategy", [("colon", "one-at-a-time"), ("colon", "joint"),
                                           ("rossi", "one-at-a-time"),
                                           ("anorexia", "one-at-a-time")])
def test_interaction_effects(fits, case, strategy):
    res = fits[case, strategy]
    df = res.interaction_effects
    for ref in _cases(case, strategy, "interaction-effect"):
        rows = df[(df.comparison == _comparison(case, ref)) & (df.modifier == ref.modifier)
                  & (df.level == ref.level) & (df.model == MODEL[ref.model])
                  & (df.scale == EFFECT_SCALE[ref.scale])]
        _close(rows, ref._asdict(), f"{case} {strategy} {ref.comparison} {ref.modifier}="
                                    f"{ref.level} {ref.scale} {ref.model}")


@pytest.mark.parametrize("case", ["colon", "rossi", "anorexia"])
def test_within_subgroup_fits(fits, case):
    df = fits[case, "within-subgroup"].subgroups
    df = df[df.analysis == "within-subgroup"]
    for ref in _cases(case, "within-subgroup"):
        rows = df[(df.comparison == _comparison(case, ref)) & (df.modifier == ref.modifier)
                  & (df.level == ref.level) & (df.scale == ref.scale)
                  & (df.model == MODEL[ref.model])]
        _close(rows, ref._asdict(), f"{case} within {ref.comparison} {ref.modifier}="
                                    f"{ref.level} {ref.scale} {ref.model}")
        assert rows.iloc[0].n == ref.n


@pytest.mark.parametrize("case", ["colon", "rossi", "anorexia"])
@pytest.mark.parametrize("overall", ["adjusted", "unadjusted"])
def test_overall_row_is_the_primary_analysis(fits, case, overall):
    res = fits[case, "one-at-a-time" if overall == "adjusted" else "unadjusted"]
    df = res.overall
    for ref in _cases(case, f"overall-{overall}"):
        rows = df[(df.comparison == _comparison(case, ref)) & (df.scale == ref.scale)
                  & (df.model == MODEL[ref.model])]
        _close(rows, ref._asdict(), f"{case} overall {overall} {ref.comparison} {ref.scale}")
        assert rows.iloc[0].n == ref.n
        assert rows.iloc[0].analysis == f"overall-{overall}"


@pytest.mark.parametrize("case,strategy", [("colon", "one-at-a-time"), ("colon", "joint"),
                                           ("rossi", "one-at-a-time"),
                                           ("anorexia", "one-at-a-time")])
def test_interaction_tests(fits, case, strategy):
    df = fits[case, strategy].interactions
    refs = TESTS[(TESTS.case == case) & (TESTS.analysis == strategy)]
    assert len(refs)
    for ref in refs.itertuples():
        rows = df[(df.comparison == _comparison(case, ref)) & (df.modifier == ref.modifier)
                  & (df.model == MODEL[ref.model]) & (df.test == ref.test)]
        assert len(rows) == 1, (case, ref)
        g = rows.iloc[0]
        assert g.statistic == pytest.approx(ref.statistic, rel=RTOL)
        assert g.df == ref.df
        assert g.p_value == pytest.approx(ref.p_value, rel=RTOL)


def test_k_arm_comparisons_are_labelled_and_counted(fits):
    res = fits["colon", "one-at-a-time"]
    assert res.comparisons == ("Lev vs Obs", "Lev+5FU vs Obs")
    assert res.treatment_labels == ("Obs", "Lev, Lev+5FU")
    a = res.analyses
    assert set(a.comparison) == set(res.comparisons)
    # each comparison uses the patients of its two arms; differ's analysis loses its NAs only
    for _, g in a.groupby("comparison"):
        overall = g[g.analysis == "overall-adjusted"].n_analysed.item()
        differ = g[g.modifier == "differ"].n_analysed.item()
        sex = g[g.modifier == "sex"].n_analysed.item()
        assert sex == overall > differ
    # multiplicity: one family over every modifier and comparison
    tests = res.interactions
    wald = tests[(tests.test == "wald") & (tests.comparison != "global")]
    assert len(wald) == 2 * 5
    from statsmodels.stats.multitest import multipletests

    np.testing.assert_allclose(wald.p_adjusted, multipletests(wald.p_value, method="holm")[1])


def test_one_at_a_time_rows_equal_a_single_modifier_fit(fits):
    rossi = hr.datasets.load_rossi()
    res = fits["rossi", "one-at-a-time"]
    single = _quiet(engine_fit, "arrest ~ fin * C(wexp) + prio", rossi, treatment="fin")
    got = res.subgroups[res.subgroups.modifier == "wexp"].drop(
        columns=["comparison", "analysis"]).reset_index(drop=True)
    want = single.subgroups.reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    tests = res.interactions[res.interactions.modifier == "wexp"]
    np.testing.assert_allclose(tests.statistic.to_numpy(),
                               single.interactions.statistic.to_numpy(), rtol=1e-12)


def test_a_patient_missing_one_modifier_counts_everywhere_else():
    rossi = hr.datasets.load_rossi()
    d = rossi.astype({"mar": float})
    d.loc[[3, 7], "mar"] = np.nan
    res = _quiet(hr.fit, ROSSI, d, treatment="fin")
    n = res.analyses.set_index(["analysis", "modifier"]).n_analysed
    assert n["overall-adjusted", ""] == 432
    assert n["one-at-a-time", "wexp"] == 432 and n["one-at-a-time", "age"] == 432
    assert n["one-at-a-time", "mar"] == 430
    assert res.overall.n.unique().tolist() == [432]
    assert res.analyses.set_index("modifier").loc["mar", "excluded_for"] == "mar: 2"
    # joint: the complete cases over every modifier
    joint = _quiet(hr.fit, ROSSI, d, treatment="fin", strategy="joint")
    assert joint.analyses.set_index("analysis").loc["joint", "n_analysed"] == 430
    assert joint.overall.n.unique().tolist() == [432]


def test_missing_modifier_warning_names_the_analysis():
    d = hr.datasets.load_rossi().astype({"mar": float})
    d.loc[3, "mar"] = np.nan
    with pytest.warns(hr.errors.MissingDataWarning if hasattr(hr, "errors") else UserWarning,
                      match="analysis of mar: 1 of 432 rows excluded"):
        hr.fit(ROSSI, d, treatment="fin")


@pytest.mark.parametrize("bad,match", [
    (dict(strategy="pairwise"), "strategy"),
    (dict(overall="both"), "overall"),
    (dict(overall=[1]), "overall"),
    (dict(display_cutpoints={"prio": [2]}), "not an effect modifier"),
    (dict(display_cutpoints={"age": ["x"]}), "must be numbers"),
    (dict(display_cutpoints={"age": [25, 25]}), "distinct finite"),
    (dict(display_cutpoints=[25]), "must map"),
    (dict(at={"prio": [1]}), "not effect modifiers"),
])
def test_strategy_options_are_checked(bad, match):
    with pytest.raises(hr.errors.HTEReportError, match=match):
        hr.fit(ROSSI, hr.datasets.load_rossi(), treatment="fin", **bad)


def test_per_arm_standardized_means_have_closed_form_standard_errors():
    # saturated in treatment x level, HC0: the standardized arm mean within a level is the
    # arm's proportion there, with SE sqrt(p (1 - p) / n)
    rossi = hr.datasets.load_rossi()
    res = _quiet(hr.fit, "arrest ~ fin * C(wexp)", rossi, treatment="fin", models=["ols"],
                 variance="HC0")
    rows = res.subgroups[(res.subgroups.method == "standardized") & (res.subgroups.scale == "RD")]
    for r in rows.itertuples():
        for arm, t in (("treated", 1), ("control", 0)):
            y = rossi.arrest[(rossi.wexp == int(r.level)) & (rossi.fin == t)]
            p = y.mean()
            assert getattr(r, f"mu_{arm}") == pytest.approx(p, rel=1e-12)
            assert getattr(r, f"mu_{arm}_se") == pytest.approx(np.sqrt(p * (1 - p) / len(y)),
                                                               rel=1e-9)


GLOBAL = json.loads((REF / "global_tests.json").read_text())


@pytest.fixture(scope="module")
def global_fits(colon, anorexia):
    return {"colon": _quiet(hr.fit, "Surv(time, status) ~ rx * (C(sex) + C(differ) + age) "
                            "+ C(surg)", colon, treatment="rx", control="Obs"),
            "anorexia": _quiet(hr.fit, ANOREXIA, anorexia, treatment="Treat", control="Cont",
                               inference="z")}


@pytest.mark.parametrize("ref", GLOBAL, ids=lambda r: f"{r['case']}-{r['modifier']}-{r['test']}")
def test_global_interaction_tests_of_a_three_arm_treatment(global_fits, ref):
    df = global_fits[ref["case"]].interactions
    rows = df[(df.comparison == "global") & (df.modifier == ref["modifier"])
              & (df.test == ref["test"]) & (df.model == MODEL[ref["model"]])]
    assert len(rows) == 1
    g = rows.iloc[0]
    assert g.statistic == pytest.approx(ref["statistic"], rel=RTOL)
    assert g.df == ref["df"] and g.n == ref["n"]
    assert g.p_value == pytest.approx(ref["p_value"], rel=RTOL)


def test_ph_tests_of_each_modifier_model_are_kept():
    rossi = hr.datasets.load_rossi()
    res = _quiet(hr.fit, "Surv(week, arrest) ~ fin * (age + C(wexp)) + prio", rossi,
                 treatment="fin")
    by = res.meta["ph_tests_by_model"]
    assert set(by) == {"age", "wexp"}
    own = _quiet(hr.fit_survival, "Surv(week, arrest) ~ fin + C(wexp) + fin:C(wexp) + prio",
                 rossi, treatment="fin")
    assert by["wexp"] == own.meta["ph_tests"]
    # the primary analysis's own tests stay where they were
    assert [t["term"] for t in res.meta["ph_tests"]] == ["fin", "prio", "GLOBAL"]


def test_k_arm_rows_without_a_treatment_are_counted(anorexia):
    d = anorexia.assign(Treat=anorexia.Treat.where(anorexia.index > 3))
    with pytest.warns(hr.errors.MissingDataWarning, match="4 of 72 rows have no value of 'Treat'"):
        res = hr.fit(ANOREXIA, d, treatment="Treat", control="Cont")
    assert any("are in no comparison" in n for n in res.notes)


def test_display_cutpoints_of_a_categorical_modifier_are_refused():
    with pytest.raises(hr.HTEReportError, match="analysed as categorical"):
        _quiet(hr.fit, "arrest ~ fin * C(wexp)", hr.datasets.load_rossi(), treatment="fin",
               display_cutpoints={"wexp": [0.5]})
