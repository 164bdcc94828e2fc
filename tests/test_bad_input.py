"""Bad input gets a clear error or a recorded warning, never a silent number."""

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.errors import (
    ConvergenceWarning,
    DataError,
    FormulaError,
    MissingDataWarning,
    ModelError,
    ModelWarning,
    SparseSubgroupWarning,
)


def trial(n=400, seed=1):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({
        "treat": rng.integers(0, 2, n),
        "age": rng.normal(60, 10, n),
        "region": rng.choice(["north", "south", "west"], n),
        "diabetes": rng.integers(0, 2, n),
    })
    p = 1 / (1 + np.exp(-(-1 + 0.02 * (d.age - 60) - 0.4 * d.treat)))
    d["death"] = rng.binomial(1, p)
    d["sbp"] = rng.normal(130, 15, n)
    return d


def test_absent_column_is_named():
    with pytest.raises(FormulaError, match="'agee'.*Did you mean"):
        hr.fit("death ~ treat * agee", trial())


def test_absent_outcome():
    with pytest.raises(FormulaError, match="outcome"):
        hr.fit("dead ~ treat * age", trial())


def test_treatment_with_one_arm_is_refused():
    d = trial()
    d["treat"] = 1
    with pytest.raises(DataError, match="exactly two levels"):
        hr.fit("death ~ treat * age", d, treatment="treat")


def test_three_arms_need_a_named_control():
    d = trial()
    d["treat"] = np.resize([0, 1, 2], len(d))
    with pytest.raises(DataError, match="has 3 arms.*control="):
        hr.fit("death ~ treat * age", d, treatment="treat")
    with pytest.raises(DataError, match="control=5 is not an arm"):
        hr.fit("death ~ treat * age", d, treatment="treat", control=5)


def test_two_level_factor_needs_reference():
    d = trial()
    d["arm"] = np.where(d.treat == 1, "drug", "placebo")
    with pytest.raises(DataError, match="reference"):
        hr.fit("death ~ arm * age", d, treatment="arm")
    res = hr.fit("death ~ arm * age", d, treatment="arm", reference="placebo")
    ref = hr.fit("death ~ treat * age", d, treatment="treat")
    assert res.treatment_labels == ("placebo", "drug")
    np.testing.assert_allclose(res.overall.estimate, ref.overall.estimate, rtol=1e-12)


def test_outcome_not_binary():
    d = trial()
    d.loc[3, "death"] = 2
    with pytest.raises(DataError, match="0/1"):
        hr.fit("death ~ treat * age", d, family="binary")


def test_missing_values_are_excluded_and_counted():
    d = trial()
    d.loc[[1, 2, 3], "age"] = np.nan
    d.loc[[3, 4], "death"] = np.nan
    with pytest.warns(MissingDataWarning, match="analysis of age: 4 of 400 rows excluded"):
        res = hr.fit("death ~ treat * age", d, family="binary")
    # the overall (primary) analysis needs only the outcome and the treatment
    assert res.n_analysed == 398 and res.n_input == 400
    ex = res.exclusions.set_index("variable").n_missing
    assert ex["death"] == 2
    a = res.analyses.set_index("analysis")
    assert a.loc["one-at-a-time", "n_analysed"] == 396
    assert a.loc["one-at-a-time", "excluded_for"] == "death: 2, age: 3"
    assert a.loc["overall-adjusted", "n_excluded"] == 2


def test_infinite_values_are_errors():
    d = trial()
    d.loc[5, "age"] = np.inf
    with pytest.raises(DataError, match="infinite"):
        hr.fit("death ~ treat * age", d)


def test_no_treatment_interaction():
    with pytest.raises(FormulaError, match="no treatment-by-covariate interaction"):
        hr.fit("death ~ treat + age", trial())


def test_ambiguous_treatment_needs_name():
    with pytest.raises(FormulaError, match="Name it with treatment"):
        hr.fit("death ~ treat * diabetes", trial())


def test_single_arm_subgroup_is_an_error():
    d = trial()
    d.loc[d.region == "west", "treat"] = 1
    with pytest.raises(ModelError, match="region='west' has no control"):
        hr.fit("death ~ treat * C(region)", d, treatment="treat")


def test_empty_categorical_level_is_an_error():
    d = trial()
    d["region"] = pd.Categorical(d.region, categories=["east", "north", "south", "west"])
    with pytest.raises(ModelError, match="empty level"):
        hr.fit("death ~ treat * C(region)", d, treatment="treat")


def test_zero_events_in_a_cell_marks_rows_not_estimable():
    d = trial()
    d.loc[(d.region == "west") & (d.treat == 1), "death"] = 0
    with pytest.warns(SparseSubgroupWarning, match="zero events in the treated arm"):
        res = hr.fit("death ~ treat * C(region)", d, treatment="treat")
    rr = res.subgroups.query("scale == 'RR' and level == 'west'")
    assert rr.estimate.isna().all() and rr.note.str.contains("not estimable").all()
    rd = res.subgroups.query("scale == 'RD' and level == 'west' and model == 'ols-HC3'")
    assert np.isfinite(rd.estimate).all()
    wald = res.interactions.query("model == 'modified-poisson-HC0' and test == 'wald'")
    assert wald.p_value.isna().all()


def test_collinear_terms():
    d = trial()
    d["age2"] = d.age * 2
    with pytest.raises(ModelError, match="collinear"):
        hr.fit("death ~ treat * age + age2", d, treatment="treat")


def test_perfect_separation_is_an_error():
    d = trial()
    d["death"] = (d.age > 60).astype(int)
    with pytest.raises(ModelError, match="separation|converge"):
        hr.fit("death ~ treat * age", d, treatment="treat", models=["logit"])


def test_log_binomial_fallback_is_recorded(rossi):
    with pytest.warns(ConvergenceWarning, match="fell back to modified-poisson"):
        res = hr.fit("arrest ~ fin * (age + prio)", rossi, treatment="fin",
                     models=["ols", "log-binomial"])
    rows = res.models.set_index("requested").loc[["log-binomial"]]
    fell = rows[rows.fallback_from == "log-binomial"]
    assert len(fell) and fell.model.str.startswith("modified-poisson").all()
    assert res.subgroups.model.str.startswith("modified-poisson").any()


def test_continuous_modifier_with_few_values_warns():
    d = trial()
    d["grade"] = np.resize([1, 2, 3], len(d))
    with pytest.warns(SparseSubgroupWarning, match="only 3 distinct values"):
        hr.fit("death ~ treat * grade", d, treatment="treat")


def test_modified_poisson_refuses_model_variance():
    with pytest.raises(ModelError, match="robust variance"):
        hr.fit("death ~ treat * age", trial(), treatment="treat", variance="model",
               models=["modified-poisson"])


def test_unknown_option_values():
    with pytest.raises(ValueError, match="variance="):
        hr.fit("death ~ treat * age", trial(), variance="HC4")
    with pytest.raises(ValueError, match="models="):
        hr.fit("death ~ treat * age", trial(), models=["probit"])
    with pytest.raises(TypeError):
        hr.fit("death ~ treat * age", trial(), varaince="HC3")


def test_count_outcome_checks():
    d = trial()
    d["events"] = np.resize([0, 1, 2, -1], len(d))
    d["years"] = 1.0
    with pytest.raises(DataError, match="non-negative integers"):
        hr.fit("events ~ treat * age", d, family="count", exposure="years")
    d["events"] = np.resize([0, 1, 2], len(d))
    d.loc[0, "years"] = 0
    with pytest.raises(DataError, match="positive"):
        hr.fit("events ~ treat * age", d, family="count", exposure="years")


def test_unsafe_formula_refused_before_evaluation(tmp_path):
    target = tmp_path / "touched"
    formula = f"death ~ treat * I(open('{target}', 'w').write('x'))"
    with pytest.raises(FormulaError, match="unsafe"):
        hr.fit(formula, trial(), treatment="treat", safe_formula=True)
    assert not target.exists()


def test_outcome_without_events_is_an_error():
    d = trial()
    d["death"] = 0
    with pytest.raises(DataError, match="no events"):
        hr.fit("death ~ treat * age", d, family="binary")


def test_string_outcome_suggests_recoding():
    d = trial()
    d["death"] = np.where(d.death == 1, "yes", "no")
    with pytest.raises(DataError, match="Recode it to 0/1"):
        hr.fit("death ~ treat * age", d, treatment="treat")


def test_zero_events_in_an_arm_overall_is_not_estimable():
    d = trial()
    d.loc[d.treat == 1, "death"] = 0
    with pytest.warns(SparseSubgroupWarning, match="all patients: zero events"):
        res = hr.fit("death ~ treat * age", d, treatment="treat")
    ratio = res.overall[res.overall.scale.isin(["RR", "OR"])]
    assert ratio.estimate.isna().all() and ratio.note.str.contains("not estimable").all()


def test_linear_probability_model_outside_unit_interval_warns(rossi):
    with pytest.warns(ModelWarning, match=r"outside \[0, 1\]"):
        res = hr.fit("arrest ~ fin * (age + prio)", rossi, treatment="fin")
    assert res.models.set_index("requested").loc["ols", "note"].str.contains(
        "outside [0, 1]", regex=False).any()


def test_overdispersed_counts_warn_with_model_variance():
    rng = np.random.default_rng(5)
    d = trial()
    d["visits"] = rng.negative_binomial(1, 0.2, len(d))
    with pytest.warns(ModelWarning, match="overdispersed"):
        hr.fit("visits ~ treat * age", d, treatment="treat", family="count",
               models=["poisson"], variance="model")


def test_treatment_inside_a_transform_is_refused():
    with pytest.raises(FormulaError, match="may enter only as a plain main effect"):
        hr.fit("death ~ treat * age + I(treat * sbp)", trial(), treatment="treat")


@pytest.mark.parametrize("formula", ["death ~ treat * age - 1", "death ~ 0 + treat * age"])
def test_formula_without_intercept_is_refused(formula):
    with pytest.raises(FormulaError, match="intercept"):
        hr.fit(formula, trial(), treatment="treat")
