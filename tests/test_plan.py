"""The analysis plan: validation errors, locking, post hoc labelling, ICEMAN answers."""

import shutil
import warnings
from pathlib import Path

import pytest
import yaml

import hte_report as hr
from hte_report.analysis import fit_plan
from hte_report.errors import FormulaError, PlanError
from hte_report.presentation.credibility import iceman, propose_rating
from hte_report.spec.plan import load_plan, lock_plan
from hte_report.spec.plan_data import check_plan_against_data

EXAMPLE = Path(__file__).parents[1] / "examples" / "rossi"


@pytest.fixture()
def plan_file(tmp_path):
    dst = tmp_path / "plan.yaml"
    shutil.copy(EXAMPLE / "plan.yaml", dst)
    return dst


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_example_plan_is_valid_and_locked():
    plan = load_plan(EXAMPLE / "plan.yaml")
    assert plan.lock_status() == "matches"
    assert [m.variable for m in plan.modifiers] == ["age", "prio", "wexp", "mar"]


def test_one_character_edit_after_locking_is_detected(plan_file):
    lock_plan(plan_file, statement="before unblinding")
    assert load_plan(plan_file).lock_status() == "matches"
    edit(plan_file, "alpha: 0.05", "alpha: 0.06")
    plan = load_plan(plan_file)
    assert plan.lock_status() == "modified"
    with pytest.raises(PlanError, match="already locks a different version"):
        lock_plan(plan_file)


def test_comments_and_key_order_do_not_change_the_hash(plan_file):
    h = load_plan(plan_file).sha256
    plan_file.write_text("# a new comment\n" + plan_file.read_text())
    assert load_plan(plan_file).sha256 == h


def test_unlocked_plan_says_so(plan_file):
    assert load_plan(plan_file).lock_status() == "unlocked"


def test_unknown_key_is_an_error_with_its_line(plan_file):
    edit(plan_file, "alpha: 0.05", "alpah: 0.05")
    with pytest.raises(PlanError, match=r"unknown key 'alpah' \(line \d+\)"):
        load_plan(plan_file)


def test_nested_unknown_key(plan_file):
    edit(plan_file, "    rationale: \"Marriage", "    rationle: \"x\"\n    rationale: \"Marriage")
    with pytest.raises(PlanError, match=r"unknown key 'modifiers\[3\]\.rationle'|'rationle'"):
        load_plan(plan_file)


def test_missing_required_key(plan_file):
    edit(plan_file, "population: >-", "populace: >-")
    with pytest.raises(PlanError, match="populace|population"):
        load_plan(plan_file)


def test_wrong_type_names_key_and_line(plan_file):
    edit(plan_file, "confidence_level: 0.95", "confidence_level: high")
    with pytest.raises(PlanError, match=r"'confidence_level' \(line \d+\): expected a number"):
        load_plan(plan_file)


def test_bad_choice_is_listed(plan_file):
    edit(plan_file, "multiplicity: holm", "multiplicity: sidak")
    with pytest.raises(PlanError, match="'sidak' is not one of"):
        load_plan(plan_file)


def test_modifier_absent_from_data(plan_file, rossi):
    edit(plan_file, "- variable: mar", "- variable: married")
    plan = load_plan(plan_file)
    with pytest.raises(PlanError, match=r"modifiers\[3\]\.variable.*'married'"):
        check_plan_against_data(plan, rossi.columns)


def test_modifier_not_in_formula(plan_file, rossi):
    edit(plan_file, "+ C(mar)) + race", ") + race + mar")
    plan = load_plan(plan_file)
    with pytest.raises(PlanError, match="does not interact"):
        check_plan_against_data(plan, rossi.columns)


@pytest.mark.parametrize("term", [
    "I(open('/etc/passwd').read())",
    "__import__('os').system('true')",
    "eval('1')",
    "np.log(age)",
    "age.__class__",
    "I([x for x in age])",
])
def test_unsafe_formula_in_plan_is_refused(plan_file, term):
    edit(plan_file, "+ race + paro\"", f"+ race + paro + {term}\"")
    with pytest.raises((FormulaError, PlanError), match="unsafe|not allowed|dunder|cannot parse"):
        load_plan(plan_file)


def _fit(plan, rossi, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_plan(plan, rossi, **kw)


def test_posthoc_modifier_is_labelled_everywhere(rossi):
    a = _fit(EXAMPLE / "plan.yaml", rossi, posthoc=["race"])
    post = a.posthoc[0]
    assert post.posthoc == ("race",)
    assert set(post.interactions.query("modifier == 'race'").family) == {"post hoc"}
    assert "post hoc" in post.summary()
    html = post.table().as_raw_html()
    assert "post hoc — hypothesis-generating" in html
    # never in the confirmatory family
    assert "race" not in a.result.modifiers


def test_iceman_answers_follow_plan_and_results(plan_file, rossi):
    lock_plan(plan_file)
    a = _fit(plan_file, rossi)
    ans = iceman(a.result, a.plan).set_index(["modifier", "scale", "question"]).answer
    assert ans["age", "RR", 1] == "definitely yes"  # locked, direction as observed
    # one at a time (the plan's strategy): age's own model, p = 0.072 on the RR scale
    assert ans["age", "RR", 3] == "probably no or unclear"
    assert ans["age", "RD", 3] == "definitely no"  # p = 0.35 on the absolute scale
    assert ans["prio", "RR", 1] == "definitely no"  # hypothesized the opposite direction
    assert ans["mar", "RR", 1] == "probably no or unclear"  # no direction
    assert ans["age", "RR", 5] == "definitely yes"  # continuous
    assert ans["wexp", "RR", 5] == "not applicable"
    prop = propose_rating(iceman(a.result, a.plan)).set_index(["modifier", "scale"])
    assert prop.loc[("age", "RD"), "proposed_rating"] == "not applicable"  # p >= 0.1
    assert "%" not in " ".join(prop.reasoning)

    # the joint model (mutually adjusted): p = 0.044 for age on the RR scale
    edit(plan_file, "  strategy: one-at-a-time", "  strategy: joint")
    j = _fit(plan_file, rossi)
    assert j.result.strategy == "joint"
    ansj = iceman(j.result, j.plan).set_index(["modifier", "scale", "question"]).answer
    assert ansj["age", "RR", 3] == "probably yes"
    edit(plan_file, "  strategy: joint", "  strategy: one-at-a-time")

    # flip the hypothesized direction: Q1 becomes definitely no
    edit(plan_file, "      benefit: larger\n      when: higher",
         "      benefit: smaller\n      when: higher")
    b = _fit(plan_file, rossi)
    ans2 = iceman(b.result, b.plan).set_index(["modifier", "scale", "question"]).answer
    assert ans2["age", "RR", 1] == "definitely no"

    # an unplanned modifier: Q1 definitely no
    res = a.result.with_plan(a.plan.labels, ("age",))
    ans3 = iceman(res, None).set_index(["modifier", "scale", "question"]).answer
    assert ans3["age", "RR", 1] == "definitely no"


def test_iceman_interaction_thresholds(rossi):
    from dataclasses import replace

    a = _fit(EXAMPLE / "plan.yaml", rossi)
    res = a.result
    for p, expected in [(0.001, "definitely yes"), (0.02, "probably yes"),
                        (0.07, "probably no or unclear"), (0.3, "definitely no")]:
        tests = res.interactions.copy()
        tests.loc[tests.modifier == "age", "p_value"] = p
        ans = iceman(replace(res, interactions=tests), a.plan)
        got = ans.query("modifier == 'age' and question == 3").answer
        assert set(got) == {expected}


def test_dict_plan_round_trip(rossi):
    raw = yaml.safe_load((EXAMPLE / "plan.yaml").read_text())
    plan = load_plan(raw)
    assert plan.lock_status() == "unlocked"
    assert plan.sha256 == load_plan(EXAMPLE / "plan.yaml").sha256
    assert isinstance(hr.fit(plan.formula, rossi, treatment="fin"), hr.HTEResult)


def test_analysis_strategy_and_display_cutpoints_from_the_plan(plan_file, rossi):
    from hte_report.spec.plan import load_plan

    p = load_plan(plan_file)
    assert (p.strategy, p.overall_analysis, p.display_cutpoints) == (
        "one-at-a-time", "adjusted", {"age": [30.0]})
    edit(plan_file, "  strategy: one-at-a-time", "  strategy: within-subgroup")
    edit(plan_file, "  overall: adjusted", "  overall: unadjusted")
    a = _fit(plan_file, rossi)
    assert a.result.strategy == "within-subgroup"
    assert a.result.overall_analysis == "unadjusted"
    assert "arrest ~ fin" in set(a.result.analyses.formula)
    edit(plan_file, "  strategy: within-subgroup", "  strategy: all")
    with pytest.raises(PlanError, match="'analysis.strategy'.*not one of"):
        load_plan(plan_file)


def test_display_cutpoints_of_a_categorical_modifier_are_refused(plan_file):
    from hte_report.spec.plan import load_plan

    edit(plan_file, '    levels: {0: "No", 1: "Yes"}\n    direction:',
         '    levels: {0: "No", 1: "Yes"}\n    display_cutpoints: [1]\n    direction:')
    with pytest.raises(PlanError, match="display cutpoints apply to a modifier analysed as "
                                        "continuous"):
        load_plan(plan_file)
